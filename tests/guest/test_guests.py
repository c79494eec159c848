"""Bare-metal guests on pyqemu's virt, checked against Debian's QEMU 7.2.

Each guest (built by tests/guest/meson.build from tests/guest/aarch64/*.S) runs
on pyqemu and on qemu-system-aarch64 7.2, each loading it with ``-kernel`` (an
ELF: its segments become ROM blobs that every reset copies back); the serial
output must be identical. The oracle must be installed
(.ci/run installs it); a missing oracle fails the test. The exit status must be
0: the guests end with PSCI SYSTEM_OFF.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

GUEST_DIR = Path(os.environ.get("PYQEMU_GUEST_DIR", "build/tests/guest"))
QEMU = "qemu-system-aarch64"
LAUNCHER = Path(os.environ.get("PYQEMU_BUILD_ROOT", "build")) / "pyqemu-system-aarch64"
# The guests are linked at 0x40080000, under the 1 MiB DTB's place at the
# start of RAM: both emulators then boot them without a DTB; pyqemu says so.
DTB_WARNING = "pyqemu-system-aarch64: warning: the DTB (1048576 bytes) does not fit"
TIMEOUT = 120


def guest(name: str) -> Path:
    path = GUEST_DIR / f"{name}.elf"
    assert path.exists(), f"{path} is missing: build the guests with ninja"
    return path


def run_pyqemu(
    elf: Path, *extra: str, timeout: float = TIMEOUT, stdin: str | None = None
) -> tuple[int, str]:
    proc = subprocess.run(
        [
            str(LAUNCHER),
            "-kernel",
            str(elf),
            "-M",
            "virt",
            "-nographic",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        check=False,
        input=stdin,
    )
    errors = [ln for ln in proc.stderr.splitlines() if not ln.startswith(DTB_WARNING)]
    assert not errors, proc.stderr
    return proc.returncode, proc.stdout


def run_qemu(elf: Path, *extra: str, stdin: str | None = None) -> tuple[int, str]:
    assert shutil.which(QEMU), f"{QEMU} (Debian's QEMU 7.2) is the oracle: install it"
    proc = subprocess.run(
        [
            QEMU,
            "-M",
            "virt",
            "-cpu",
            "cortex-a57",
            "-nographic",
            "-kernel",
            str(elf),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        input=stdin,
    )
    return proc.returncode, proc.stdout


def test_boot_serial(tmp_path: Path) -> None:
    # QEMU's boot-serial-test: the mini-kernel prints 'T' forever; the test
    # looks for "TT" in the serial file, then quits the emulator.
    serial = tmp_path / "serial.txt"
    proc = subprocess.Popen(
        [
            str(LAUNCHER),
            "-kernel",
            str(guest("boot_serial")),
            "-M",
            "virt",
            "-cpu",
            "cortex-a57",
            "-no-shutdown",
            "-display",
            "none",
            "-chardev",
            f"file,id=serial0,path={serial}",
            "-serial",
            "chardev:serial0",
            "-accel",
            "tcg",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):
            if serial.exists() and "TT" in serial.read_text():
                break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        assert "TT" in serial.read_text()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_exceptions() -> None:
    status, out = run_pyqemu(guest("exceptions"))
    assert status == 0
    assert "ESR=0000000056000042" in out  # SVC #0x42 from EL1
    assert "ESR=0000000096000010" in out  # external abort, EA=0 (decode error)
    assert "FAR=0000000009100000" in out
    assert "ESR=0000000096000021" in out  # alignment fault (LDXR), from the MMU code
    assert out.endswith("done\n")
    assert (status, out) == run_qemu(guest("exceptions"))


def test_timers() -> None:
    status, out = run_pyqemu(guest("timers"))
    assert status == 0
    assert "CNTFRQ=0000000003b9aca0\n" in out  # 62.5 MHz
    assert "CNTV_CTL expired=0000000000000005\n" in out
    assert out.endswith("done\n")
    assert (status, out) == run_qemu(guest("timers"))


def test_gic() -> None:
    # GICv2 on virt: an SGI, the virtual timer (INTID 27) three times and the
    # physical timer (INTID 30) in WFI, PSTATE and priority masking, split
    # EOI/deactivate, and an interrupt-driven PL011 echo of the input.
    status, out = run_pyqemu(guest("gic"), stdin="hello.")
    assert status == 0
    assert "vtimer iar=000000000000001b\n" in out
    assert "ptimer iar=000000000000001e\n" in out
    assert "echo:hello.\n" in out
    assert out.endswith("done\n")
    assert (status, out) == run_qemu(guest("gic"), stdin="hello.")


def test_idle() -> None:
    # The guest arms the virtual timer 1 s ahead and waits in WFI for its
    # interrupt (the benchmark's copy waits 10 s and measures the host CPU
    # time the wait costs).
    status, out = run_pyqemu(guest("idle_test"))
    assert status == 0
    assert out == (
        "idle: waiting in WFI for the virtual timer, ticks=0000000003b9aca0\n"
        "woke at or after the deadline=0000000000000001\n"
    )
    assert (status, out) == run_qemu(guest("idle_test"))


def counters(out: str) -> list[int]:
    return [
        int(line.split("=")[1], 16)
        for line in out.splitlines()
        if line.startswith("cntvct")
    ]


def test_icount() -> None:
    # -icount: the virtual counter follows instructions, so two runs print
    # the same counter values; without it they follow host time.
    first = run_pyqemu(guest("icount"), "-icount", "shift=3")
    second = run_pyqemu(guest("icount"), "-icount", "shift=3")
    assert first == second
    status, out = first
    assert status == 0
    ticks = counters(out)
    assert len(ticks) == 5
    # Five timer interrupts, each at the same counter value in both runs.
    irq_ticks = [
        int(line.split("=")[1], 16)
        for line in out.splitlines()
        if line.startswith("tick cntvct")
    ]
    assert len(irq_ticks) == 5
    assert ticks == sorted(ticks)
    assert len(set(ticks)) == 5
    # The checksums are QEMU's, and so is the time each round takes: the
    # counter advances by the round's instructions, 8 ns each (QEMU's clock
    # starts at a different point, so only the differences compare).
    q_status, q_out = run_qemu(guest("icount"), "-icount", "shift=3")
    assert q_status == 0
    # (The last checksum depends on where each interrupt lands, which differs
    # from QEMU's by up to a translation block.)
    sums = [line for line in out.splitlines() if line.startswith("sum")]
    q_sums = [line for line in q_out.splitlines() if line.startswith("sum")]
    assert sums[:5] == q_sums[:5]
    theirs = counters(q_out)
    for i in range(1, 5):
        assert abs((ticks[i] - ticks[i - 1]) - (theirs[i] - theirs[i - 1])) <= 1
    # The first tick comes one timer period after the last round, as on QEMU
    # (a timer armed by the guest ends the instruction budget of the slice).
    q_irq = [
        int(line.split("=")[1], 16)
        for line in q_out.splitlines()
        if line.startswith("tick cntvct")
    ]
    ours_gaps = [b - a for a, b in itertools.pairwise([ticks[-1], *irq_ticks])]
    q_gaps = [b - a for a, b in itertools.pairwise([theirs[-1], *q_irq])]
    for ours_gap, q_gap in zip(ours_gaps, q_gaps, strict=True):
        assert abs(ours_gap - q_gap) <= q_gap // 50 + 4


@pytest.mark.parametrize("shift", ["auto", "11"])
def test_icount_bad_shift(shift: str) -> None:
    status, out = run_pyqemu_error(guest("icount"), "-icount", f"shift={shift}")
    assert status == 1
    assert "icount" in out


def run_pyqemu_error(elf: Path, *extra: str) -> tuple[int, str]:
    proc = subprocess.run(
        [
            str(LAUNCHER),
            "-kernel",
            str(elf),
            "-M",
            "virt",
            "-nographic",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return proc.returncode, proc.stderr


def qmp(path: Path, *commands: dict[str, object]) -> list[dict[str, object]]:
    """Send QMP commands over a fresh connection; return their replies."""
    import json
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        f = s.makefile("rw")
        json.loads(f.readline())  # greeting
        replies = []
        for cmd in ({"execute": "qmp_capabilities"}, *commands):
            f.write(json.dumps(cmd) + "\n")
            f.flush()
            while True:
                msg = json.loads(f.readline())
                if "event" not in msg:
                    break
            replies.append(msg)
        return replies[1:]


def test_counter_live_migration(tmp_path: Path) -> None:
    # A guest printing through the PL011 is migrated mid-run between two
    # pyqemu processes; its output continues on the destination with no
    # byte lost or repeated, and the destination ends with the guest's
    # power-off.
    build = Path(os.environ.get("PYQEMU_BUILD_ROOT", "build"))
    sock, mon = tmp_path / "mig.sock", tmp_path / "qmp.sock"
    out_a, out_b = tmp_path / "a.txt", tmp_path / "b.txt"
    dest = subprocess.Popen(
        [
            str(build / "pyqemu-system-aarch64"),
            "-M",
            "virt",
            "-display",
            "none",
            "-serial",
            f"file:{out_b}",
            "-incoming",
            f"unix:{sock}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    source = subprocess.Popen(
        [
            str(LAUNCHER),
            "-kernel",
            str(guest("counter")),
            "-M",
            "virt",
            "-display",
            "none",
            "-serial",
            f"file:{out_a}",
            "-qmp",
            f"unix:{mon},server=on,wait=off",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        for _ in range(1200):
            if out_a.exists() and out_a.read_text().count("\n") >= 30 and sock.exists():
                break
            time.sleep(0.05)
        assert mon.exists()
        (reply,) = qmp(
            mon, {"execute": "migrate", "arguments": {"uri": f"unix:{sock}"}}
        )
        assert reply == {"return": {}}
        (status,) = qmp(mon, {"execute": "query-migrate"})
        assert status["return"]["status"] == "completed"  # type: ignore[index]
        (status,) = qmp(mon, {"execute": "query-status"})
        assert status["return"]["status"] == "postmigrate"  # type: ignore[index]
        qmp(mon, {"execute": "quit"})
        assert dest.wait(timeout=120) == 0
    finally:
        for p in (source, dest):
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=30)
    before, after = out_a.read_text(), out_b.read_text()
    assert before.count("\n") >= 30
    assert after
    assert before + after == "".join(f"{i:016x}\n" for i in range(300))


def launcher(*args: str) -> subprocess.CompletedProcess[str]:
    build = Path(os.environ.get("PYQEMU_BUILD_ROOT", "build"))
    return subprocess.run(
        [str(build / "pyqemu-system-aarch64"), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_cmdline_cpu_accel_smp_icount() -> None:
    # QEMU's layouts for the help texts; clear errors for what is not there.
    assert launcher("-cpu", "help").stdout == "Available CPUs:\n  cortex-a57\n  max\n"
    assert launcher("-accel", "help").stdout == (
        "Accelerators supported in QEMU binary:\nqtest\ntcg\n"
    )
    smp = launcher("-M", "virt", "-display", "none", "-smp", "2")
    assert smp.returncode == 1
    assert smp.stderr.startswith(
        "pyqemu-system-aarch64: Invalid SMP CPUs 2. The max CPUs supported by "
        "machine 'virt-7.2' is 1\n"
    )
    bad_cpu = launcher("-M", "virt", "-display", "none", "-cpu", "cortex-a15")
    assert bad_cpu.returncode == 1
    assert "unable to find CPU model 'cortex-a15'" in bad_cpu.stderr
    for icount, message in (
        ("shift=auto", "shift=auto is not supported"),
        ("shift=11", "shift must be a number from 0 to 10"),
    ):
        r = launcher("-M", "virt", "-display", "none", "-icount", icount)
        assert r.returncode == 1
        assert message in r.stderr
    r = launcher("-M", "virt", "-display", "none", "-accel", "qtest", "-icount", "3")
    assert r.returncode == 1
    assert "-icount is not allowed with qtest" in r.stderr


def test_cmdline_monitor_stop_cont_reset(tmp_path: Path) -> None:
    # The monitor with a running CPU: stop freezes it (the registers do not
    # change), cont resumes it, system_reset starts the guest again from its
    # entry, and query-cpus-fast / info registers show it.
    mon, out = tmp_path / "qmp.sock", tmp_path / "serial.txt"
    proc = subprocess.Popen(
        [
            str(LAUNCHER),
            "-kernel",
            str(guest("counter")),
            "-M",
            "virt",
            "-display",
            "none",
            "-serial",
            f"file:{out}",
            "-qmp",
            f"unix:{mon},server=on,wait=off",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        for _ in range(1200):
            if out.exists() and out.read_text().count("\n") >= 5 and mon.exists():
                break
            time.sleep(0.05)
        regs: dict[str, object] = {
            "execute": "human-monitor-command",
            "arguments": {"command-line": "info registers"},
        }
        (stopped, first, second, cpus) = qmp(
            mon, {"execute": "stop"}, regs, regs, {"execute": "query-cpus-fast"}
        )
        assert stopped == {"return": {}}
        assert first == second  # frozen at an instruction boundary
        text = first["return"]
        assert isinstance(text, str)
        assert text.startswith("\r\nCPU#0\r\n PC=")  # QEMU 7.2's layout
        assert "PSTATE=" in text
        lines = out.read_text().count("\n")
        time.sleep(0.3)
        assert out.read_text().count("\n") == lines  # nothing printed while stopped
        infos = cpus["return"]
        assert isinstance(infos, list)
        (info,) = infos
        assert isinstance(info, dict)
        assert info["qom-path"] == "/machine/unattached/device[0]"
        assert (info["cpu-index"], info["target"]) == (0, "aarch64")
        qmp(mon, {"execute": "cont"})
        for _ in range(600):
            if out.read_text().count("\n") > lines:
                break
            time.sleep(0.05)
        assert out.read_text().count("\n") > lines
        qmp(mon, {"execute": "system_reset"})
        for _ in range(600):
            if out.read_text().count(f"{0:016x}\n") >= 2:
                break
            time.sleep(0.05)
        # The guest started over: its first line appears a second time.
        assert out.read_text().count(f"{0:016x}\n") >= 2
        qmp(mon, {"execute": "quit"})
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
