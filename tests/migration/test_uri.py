"""Migration URIs and transports: file, unix, tcp, exec, both directions."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from qemu_api.error import Error
from qemu_api.migration.uri import (
    IncomingMigration,
    MigrationStatus,
    migrate,
    migrate_get_current,
    migrate_incoming,
    migration_incoming_get_current,
    parse_migration_uri,
    query_migrate,
)
from qemu_api.timer import clock_step
from system.main_loop import MainLoop
from tests.migration.machine import machine_state, make_virt, write_pattern
from tests.migration.migdev import fill
from tests.runtime import reset_runtime

RAM = 8 << 20


@pytest.mark.parametrize(
    ("uri", "scheme", "address", "skip"),
    [
        ("file:/tmp/x.mig", "file", "/tmp/x.mig", False),
        ("unix:/tmp/s,skip-unknown=on", "unix", "/tmp/s", True),
        ("tcp:localhost:4444,skip-unknown=off", "tcp", "localhost:4444", False),
        ("exec:cat > /tmp/a,b", "exec", "cat > /tmp/a,b", False),
        ("exec:cat /tmp/x,skip-unknown=on", "exec", "cat /tmp/x", True),
    ],
)
def test_parse(uri: str, scheme: str, address: str, skip: bool) -> None:
    parsed = parse_migration_uri(uri)
    assert (parsed.scheme, parsed.address, parsed.skip_unknown) == (
        scheme,
        address,
        skip,
    )


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("rdma:1.2.3.4:5", r"Parameter 'uri' expects a valid migration protocol"),
        ("nothing", r"not 'nothing'"),
        ("file:", r"file:: the file: URI needs an address after the colon"),
        ("unix:/s,foo=1", r"unknown option 'foo=1'; the only option is skip-unknown"),
        ("unix:/s,skip-unknown=maybe", r"skip-unknown must be 'on' or 'off'"),
    ],
)
def test_bad_uris(uri: str, message: str) -> None:
    with pytest.raises(Error, match=message):
        parse_migration_uri(uri)


def test_tcp_host_port() -> None:
    assert parse_migration_uri("tcp:[::1]:80").host_port() == ("::1", 80)
    assert parse_migration_uri("tcp::80").host_port() == ("localhost", 80)
    with pytest.raises(Error, match=r"expected tcp:HOST:PORT"):
        parse_migration_uri("tcp:host").host_port()


def source_machine() -> object:
    machine, dev = make_virt(ram_size=RAM)
    assert dev is not None
    fill(dev)
    write_pattern(0x2000, b"transported")
    clock_step(4321)
    return machine_state(machine, dev)


def destination() -> object:
    reset_runtime()
    machine, dev = make_virt(ram_size=RAM)
    return machine, dev


def loaded_state() -> object:
    from qemu_api.qom import object_resolve_path
    from tests.migration.migdev import MigTestDev

    machine = object_resolve_path("/machine")
    dev = object_resolve_path("/machine/migdev")
    assert isinstance(dev, MigTestDev)
    from hw.core.machine import MachineState

    assert isinstance(machine, MachineState)
    return machine_state(machine, dev)


def test_file_both_ways(tmp_path: Path) -> None:
    expected = source_machine()
    path = tmp_path / "x.mig"
    state = migrate(f"file:{path}", runstate="paused")
    assert state.status is MigrationStatus.COMPLETED
    info = query_migrate()
    assert info["status"] == "completed"
    ram = info["ram"]
    assert isinstance(ram, dict)
    assert ram["normal"] == 1
    assert ram["duplicate"] == RAM // 4096 - 1
    assert ram["page-size"] == 4096
    assert isinstance(info["total-time"], int)
    destination()
    inc = migrate_incoming(f"file:{path}")
    result = inc.wait()
    assert result.runstate == "paused"
    assert loaded_state() == expected
    assert migration_incoming_get_current().query() == {"status": "completed"}


def test_exec_both_ways(tmp_path: Path) -> None:
    expected = source_machine()
    path = tmp_path / "e.mig"
    migrate(f"exec:cat > {path}")
    assert path.stat().st_size > 0
    destination()
    migrate_incoming(f"exec:cat {path}").wait()
    assert loaded_state() == expected


def test_exec_failure_is_reported(tmp_path: Path) -> None:
    source_machine()
    with pytest.raises(
        Error, match=r"exec:cat > /nonexistent/dir/x 2>/dev/null: the command exited"
    ):
        migrate("exec:cat > /nonexistent/dir/x 2>/dev/null")
    assert migrate_get_current().status is MigrationStatus.FAILED
    info = query_migrate()
    assert info["status"] == "failed"
    assert "exited with status" in str(info["error-desc"])


def stream_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "s.mig"
    migrate(f"file:{path}")
    return path.read_bytes()


def send_unix_later(path: str, data: bytes) -> threading.Thread:
    def run() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(data)

    t = threading.Thread(target=run)
    t.start()
    return t


def send_tcp_later(port: int, data: bytes) -> threading.Thread:
    def run() -> None:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(data)

    t = threading.Thread(target=run)
    t.start()
    return t


def receive_later(server: socket.socket, out: list[bytes]) -> threading.Thread:
    def run() -> None:
        conn, _ = server.accept()
        with conn:
            chunks = []
            while chunk := conn.recv(1 << 16):
                chunks.append(chunk)
        out.append(b"".join(chunks))

    t = threading.Thread(target=run)
    t.start()
    return t


def test_unix_incoming(tmp_path: Path) -> None:
    expected = source_machine()
    data = stream_bytes(tmp_path)
    destination()
    sock = str(tmp_path / "in.sock")
    inc = migrate_incoming(f"unix:{sock}")
    assert os.path.exists(sock)  # listening before the source connects
    sender = send_unix_later(sock, data)
    inc.wait()
    sender.join()
    assert loaded_state() == expected
    assert not os.path.exists(sock)


def test_tcp_incoming_on_any_port(tmp_path: Path) -> None:
    expected = source_machine()
    data = stream_bytes(tmp_path)
    destination()
    inc = migrate_incoming("tcp:127.0.0.1:0")
    address = inc.listen_address()
    assert address is not None
    sender = send_tcp_later(int(address.rpartition(":")[2]), data)
    inc.wait()
    sender.join()
    assert loaded_state() == expected


def test_unix_and_tcp_outgoing_send_the_same_stream(tmp_path: Path) -> None:
    source_machine()
    data = stream_bytes(tmp_path)
    path = str(tmp_path / "out.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got: list[bytes] = []
    receiver = receive_later(server, got)
    migrate(f"unix:{path}")
    receiver.join()
    server.close()
    tcp = socket.create_server(("127.0.0.1", 0))
    receiver = receive_later(tcp, got)
    migrate(f"tcp:127.0.0.1:{tcp.getsockname()[1]}")
    receiver.join()
    tcp.close()
    assert got == [data, data]


def test_connection_refused_fails_the_migration(tmp_path: Path) -> None:
    source_machine()
    with pytest.raises(Error, match=r"Failed to connect to 'unix:.*nobody.sock'"):
        migrate(f"unix:{tmp_path}/nobody.sock")
    info = query_migrate()
    assert info["status"] == "failed"
    assert "Failed to connect" in str(info["error-desc"])


def test_incoming_driven_by_the_main_loop(tmp_path: Path) -> None:
    expected = source_machine()
    data = stream_bytes(tmp_path)
    destination()
    loop = MainLoop()
    done: list[IncomingMigration] = []
    sock = str(tmp_path / "loop.sock")
    inc = migrate_incoming(
        f"unix:{sock},skip-unknown=on",
        watch=lambda fd, cb: loop.set_fd_handler(fd, cb, None, "migration"),
        on_done=done.append,
    )
    assert inc.uri.skip_unknown
    assert migration_incoming_get_current().query() == {"status": "active"}
    sender = send_unix_later(sock, data)
    loop.run(until=lambda: bool(done))
    sender.join()
    loop.close()
    assert done == [inc]
    assert inc.state.status is MigrationStatus.COMPLETED
    assert loaded_state() == expected


def test_incoming_rejection_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "bad.mig"
    path.write_bytes(b"QEVX" + bytes(20))
    destination()
    with pytest.raises(Error, match=r"not a migration stream: bad magic"):
        migrate_incoming(f"file:{path}").wait()
    info = migration_incoming_get_current().query()
    assert info["status"] == "failed"
    assert "bad magic" in str(info["error-desc"])


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        # QEMU 8.1's file: transport (7.2 has none) and 7.2's socket messages.
        ("file:/nonexistent/m", "Unable to open /nonexistent/m: No such file or"),
        (
            "unix:/nonexistent/dir/sock",
            "Failed to bind socket to /nonexistent/dir/sock: No such file or",
        ),
        ("tcp:192.0.2.1:4444", "Failed to bind socket: Cannot assign requested"),
        (
            "tcp:nosuchhost.invalid:4444",
            "address resolution failed for nosuchhost.invalid:4444: ",
        ),
    ],
)
def test_incoming_cannot_open(uri: str, message: str) -> None:
    # A transport that cannot be opened was recorded as a failed migration,
    # which the runtime took for a reported load failure: it then waited in
    # inmigrate for ever, and QMP migrate-incoming returned success.
    destination()
    with pytest.raises(Error, match="^" + message):
        migrate_incoming(uri)
    # As QEMU: no migration took place (query-migrate answers {}).
    assert migration_incoming_get_current().status is MigrationStatus.NONE
    assert query_migrate() == {}


def test_incoming_unix_socket_is_owner_only_whatever_the_umask(
    tmp_path: Path,
) -> None:
    destination()
    sock = tmp_path / "open.sock"
    old = os.umask(0)
    try:
        inc = migrate_incoming(f"unix:{sock}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    inc.cancel()
    assert not sock.exists()


def test_incoming_file_of_zeros_is_refused_at_once() -> None:
    # /dev/zero was read whole before the magic was checked: gigabytes,
    # without end.
    destination()
    with pytest.raises(Error, match=r"not a migration stream: bad magic 0x00000000"):
        migrate_incoming("file:/dev/zero").wait()
    assert migration_incoming_get_current().status is MigrationStatus.FAILED


def test_incoming_exec_of_zeros_is_refused_and_the_command_ended() -> None:
    destination()
    with pytest.raises(Error, match=r"not a migration stream: bad magic 0x00000000"):
        migrate_incoming("exec:exec cat /dev/zero").wait()


def test_incoming_tcp_fed_zeros_is_refused_while_reading(tmp_path: Path) -> None:
    destination()
    inc = migrate_incoming("tcp:127.0.0.1:0")
    address = inc.listen_address()
    assert address is not None
    sent = [0]

    def flood() -> None:
        zeros = bytes(1 << 16)
        with socket.create_connection(("127.0.0.1", int(address.split(":")[1]))) as s:
            try:
                while sent[0] < 1 << 30:
                    s.sendall(zeros)
                    sent[0] += len(zeros)
            except OSError:
                pass  # the destination closed the connection

    sender = threading.Thread(target=flood)
    sender.start()
    with pytest.raises(Error, match=r"not a migration stream: bad magic"):
        inc.wait()
    sender.join()
    assert sent[0] < 64 << 20


def test_incoming_stream_longer_than_the_machine_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_machine()
    start = stream_bytes(tmp_path)[:4096]
    path = tmp_path / "endless.sh"
    path.write_bytes(
        b"cat " + str(tmp_path / "start").encode() + b"\nexec cat /dev/zero\n"
    )
    (tmp_path / "start").write_bytes(start)
    destination()
    monkeypatch.setattr(
        "qemu_api.migration.uri.qemu_loadvm_max_size", lambda m: 1 << 20
    )
    with pytest.raises(Error, match=r"the stream is longer than 1048576 bytes"):
        migrate_incoming(f"exec:sh {path}").wait()
