"""Migration through the running launcher: QMP migrate, -incoming, query-migrate.

Two emulator processes are driven with qtest and QMP: the source is programmed
(a PL011 and RAM), migrated over a file or a unix socket, and the destination
must read the same registers and RAM, at the same virtual time, in the run state
QEMU would choose.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.qtest.libqtest import QMPError, QTestState, qemu_binary

UART = 0x09000000
RAM = 0x40000000
VIRT = ["-M", "virt", "-nodefaults"]

# IBRD, FBRD, LCR_H, CR, IFLS, IMSC: registers QEMU migrates.
REGS = (0x24, 0x28, 0x2C, 0x30, 0x34, 0x38)


def program(qts: QTestState) -> None:
    qts.writel(UART + 0x24, 0x1234)
    qts.writel(UART + 0x28, 0x15)
    qts.writel(UART + 0x2C, 0x70)
    qts.writel(UART + 0x30, 0x301)
    qts.writel(UART + 0x38, 0x50)
    qts.memwrite(RAM + 0x1000, bytes(range(256)) * 4)
    qts.clock_step(12345)


def snapshot(qts: QTestState) -> tuple[list[int], bytes, int]:
    return (
        [qts.readl(UART + r) for r in REGS],
        qts.memread(RAM + 0x1000, 1024),
        qts.clock_step(0),
    )


def status(qts: QTestState) -> object:
    st = qts.qmp("query-status")
    assert isinstance(st, dict)
    return st["status"]


def wait_status(qts: QTestState, want: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while status(qts) != want:
        assert time.monotonic() < deadline, f"status stayed {status(qts)}"
        time.sleep(0.02)


def test_file_migration_round_trip(tmp_path: Path) -> None:
    stream = tmp_path / "vm.mig"
    with QTestState(VIRT, qmp=True) as src:
        program(src)
        before = snapshot(src)
        assert src.qmp("migrate", uri=f"file:{stream}") == {}
        assert [e["event"] for e in src.qmp_events] == ["STOP"]
        assert status(src) == "postmigrate"
        info = src.qmp("query-migrate")
        assert isinstance(info, dict)
        assert info["status"] == "completed"
        assert isinstance(info["ram"], dict)
        assert info["ram"]["total"] == 128 * 1024 * 1024
    with QTestState([*VIRT, "-incoming", f"file:{stream}"], qmp=True) as dst:
        wait_status(dst, "running")
        assert snapshot(dst) == before
        info = dst.qmp("query-migrate")
        assert isinstance(info, dict)
        assert info["status"] == "completed"


def test_live_migration_over_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "mig.sock"
    with QTestState([*VIRT, "-incoming", f"unix:{sock}"], qmp=True) as dst:
        assert status(dst) == "inmigrate"
        with QTestState(VIRT, qmp=True) as src:
            program(src)
            before = snapshot(src)
            src.qmp("migrate", uri=f"unix:{sock}")
            assert status(src) == "postmigrate"
        wait_status(dst, "running")
        assert snapshot(dst) == before
        assert [e["event"] for e in dst.qmp_events] == ["RESUME"]


def test_paused_source_arrives_paused_and_s_holds_a_running_one(
    tmp_path: Path,
) -> None:
    paused = tmp_path / "paused.mig"
    running = tmp_path / "running.mig"
    with QTestState(VIRT, qmp=True) as src:
        src.qmp("migrate", uri=f"file:{running}")
    with QTestState([*VIRT, "-S"], qmp=True) as src:
        src.qmp("migrate", uri=f"file:{paused}")
        assert status(src) == "postmigrate"
    with QTestState([*VIRT, "-incoming", f"file:{paused}"], qmp=True) as dst:
        wait_status(dst, "prelaunch")
    with QTestState([*VIRT, "-S", "-incoming", f"file:{running}"], qmp=True) as dst:
        wait_status(dst, "paused")
        dst.qmp("cont")
        assert status(dst) == "running"


def test_incoming_defer_then_migrate_incoming(tmp_path: Path) -> None:
    sock = tmp_path / "defer.sock"
    with QTestState([*VIRT, "-incoming", "defer"], qmp=True) as dst:
        assert status(dst) == "inmigrate"
        dst.qmp("migrate-incoming", uri=f"unix:{sock}")
        with pytest.raises(QMPError, match="already been started"):
            dst.qmp("migrate-incoming", uri=f"unix:{sock}.2")
        with QTestState(VIRT, qmp=True) as src:
            program(src)
            before = snapshot(src)
            src.qmp("migrate", uri=f"unix:{sock}")
        wait_status(dst, "running")
        assert snapshot(dst) == before


def test_migrate_errors_leave_the_machine_running(tmp_path: Path) -> None:
    with QTestState(VIRT, qmp=True) as qts:
        with pytest.raises(QMPError, match="'blk' and 'inc' are not supported"):
            qts.qmp("migrate", uri=f"file:{tmp_path}/x", blk=True)
        with pytest.raises(QMPError, match="'-incoming' was not specified"):
            qts.qmp("migrate-incoming", uri=f"file:{tmp_path}/x")
        with pytest.raises(QMPError, match="No such file or directory"):
            qts.qmp("migrate", uri=f"unix:{tmp_path}/nobody-listens")
        assert status(qts) == "running"
        info = qts.qmp("query-migrate")
        assert isinstance(info, dict)
        assert info["status"] == "failed"
        assert "nobody-listens" in str(info["error-desc"])


def run_launcher(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(qemu_binary("aarch64")), "-display", "none", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_corrupt_incoming_stream_exits_with_status_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mig"
    bad.write_bytes(b"QEVX\x00\x00\x00\x03")
    res = run_launcher(*VIRT, "-incoming", f"file:{bad}")
    assert res.returncode == 1
    assert "load of migration failed" in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_incoming_uri_is_a_command_line_error() -> None:
    res = run_launcher(*VIRT, "-incoming", "ftp:somewhere")
    assert res.returncode == 1
    assert res.stderr.startswith("pyqemu-system-aarch64: -incoming ftp:somewhere: ")
    assert "Traceback" not in res.stderr


def test_dump_vmstate(tmp_path: Path) -> None:
    out = tmp_path / "vmstate.json"
    res = run_launcher(*VIRT, "-dump-vmstate", str(out))
    assert res.returncode == 0, res.stderr
    desc = json.loads(out.read_text())
    assert desc["pl011"]["version_id"] == 2
    assert "vmschkmachine" in desc


# -- transports that cannot be opened: an error, never a silent wait ------------------


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("file:/nonexistent/m", "Unable to open /nonexistent/m: No such file or"),
        (
            "unix:/nonexistent/dir/sock",
            "Failed to bind socket to /nonexistent/dir/sock: No such file or",
        ),
        ("tcp:192.0.2.1:4444", "Failed to bind socket: Cannot assign requested"),
    ],
)
def test_incoming_that_cannot_open_is_a_command_line_error(
    uri: str, message: str
) -> None:
    # It waited in inmigrate for ever, saying nothing.  QEMU 7.2 says, for
    # the sockets: "-incoming URI: Failed to bind socket to ...", status 1.
    res = run_launcher(*VIRT, "-incoming", uri)
    assert res.returncode == 1
    assert res.stderr.startswith(f"pyqemu-system-aarch64: -incoming {uri}: {message}")
    assert res.stderr.count("\n") == 1


def test_migrate_incoming_that_cannot_open_fails_and_may_be_retried(
    tmp_path: Path,
) -> None:
    # QMP migrate-incoming returned success and nothing listened.  QEMU 7.2
    # answers the error, stays in inmigrate and takes another URI.
    sock = tmp_path / "retry.sock"
    with QTestState([*VIRT, "-incoming", "defer"], qmp=True) as dst:
        with pytest.raises(
            QMPError, match=r"^QMP migrate-incoming failed: Failed to bind"
        ):
            dst.qmp("migrate-incoming", uri="unix:/nonexistent/dir/sock")
        with pytest.raises(QMPError, match="Unable to open /nonexistent/m"):
            dst.qmp("migrate-incoming", uri="file:/nonexistent/m")
        assert status(dst) == "inmigrate"
        assert dst.qmp("query-migrate") == {}
        dst.qmp("migrate-incoming", uri=f"unix:{sock}")
        with QTestState(VIRT, qmp=True) as src:
            program(src)
            before = snapshot(src)
            src.qmp("migrate", uri=f"unix:{sock}")
        wait_status(dst, "running")
        assert snapshot(dst) == before


def test_incoming_zeros_are_refused_at_once() -> None:
    # -incoming file:/dev/zero read gigabytes before checking the magic.
    res = run_launcher(*VIRT, "-incoming", "file:/dev/zero")
    assert res.returncode == 1
    assert res.stderr == (
        "pyqemu-system-aarch64: load of migration failed: migration: not a "
        "migration stream: bad magic 0x00000000 (expected 0x5145564d, 'QEVM')\n"
    )


# -- the socket files of the command line: owner-only, removed on the way out ---------


def socket_args(tmp: Path) -> list[str]:
    return [
        "-qmp",
        f"unix:{tmp}/qmp.sock,server=on,wait=off",
        "-serial",
        f"unix:{tmp}/serial.sock,server=on,wait=off",
        "-chardev",
        f"socket,id=extra,path={tmp}/chardev.sock,server=on,wait=off",
        "-incoming",
        f"unix:{tmp}/mig.sock",
    ]


SOCKETS = ["chardev.sock", "mig.sock", "qmp.sock", "serial.sock"]


def wait_for(paths: list[Path], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"never created: {paths}"
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["SIGTERM", "quit"])
def test_sockets_are_owner_only_and_removed_at_exit(tmp_path: Path, how: str) -> None:
    # The -incoming socket followed the umask (world-writable under umask
    # 000) and no socket file was removed at exit; QEMU removes its
    # chardev sockets, and the user guide says pyqemu does.
    launcher = [str(qemu_binary("aarch64")), "-display", "none", *VIRT]
    proc = subprocess.Popen(
        ["sh", "-c", 'umask 000; exec "$@"', "sh", *launcher, *socket_args(tmp_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        paths = [tmp_path / name for name in SOCKETS]
        wait_for(paths)
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in paths}
        assert modes == dict.fromkeys(SOCKETS, 0o600)
        if how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        else:
            with socket.socket(socket.AF_UNIX) as qmp:
                qmp.connect(str(tmp_path / "qmp.sock"))
                qmp.sendall(b'{"execute": "qmp_capabilities"}{"execute": "quit"}')
                while qmp.recv(4096):
                    pass
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert sorted(os.listdir(tmp_path)) == []
