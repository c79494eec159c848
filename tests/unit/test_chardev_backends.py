"""Host chardev backends (chardev/): real sockets, files, FIFOs, a pty, stdio.

Every test drives a real MainLoop with loop.wait() and has a SIGALRM
watchdog, so none can hang.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import termios
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from qemu_api.chardev import (
    CharBackend,
    ChrEvent,
    qemu_chr_backends,
    qemu_chr_delete,
    qemu_chr_new,
    qemu_chr_reset,
)
from qemu_api.error import Error
from system.main_loop import MainLoop

if TYPE_CHECKING:
    from chardev import PtyChardev, SocketChardev

# The chardev package is imported by the fixtures, not at collection time:
# importing it registers "socket", "file", "stdio" and "pty", which other test
# modules collected in the same process may expect to be unknown.

ROOT = Path(__file__).resolve().parents[2]
TEST_TIMEOUT_S = 30


# -- fixtures and helpers ------------------------------------------------------------


@pytest.fixture(autouse=True)
def _watchdog():
    """Fail a test that runs too long instead of hanging the suite."""

    def expire(signum, frame):
        raise TimeoutError(f"test did not finish in {TEST_TIMEOUT_S} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def loop():
    import chardev

    main_loop = MainLoop()
    chardev.set_main_loop(main_loop)
    try:
        yield main_loop
    finally:
        qemu_chr_reset()
        chardev.set_main_loop(None)
        main_loop.close()


@pytest.fixture
def sockdir():
    # Short, so that Unix socket paths stay below 108 bytes.
    d = tempfile.mkdtemp(prefix="chr", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_until(loop, cond, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        loop.wait(20_000_000)


class Device:
    """A frontend with an RX FIFO of `fifo` bytes that the guest drains.

    With autodrain, a bottom half empties the FIFO after each receive and
    calls accept_input(), like a guest reading the data register.
    """

    def __init__(self, chr_, fifo=1 << 20, loop=None, autodrain=False):
        self.fifo = fifo
        self.level = 0
        self.data = bytearray()
        self.chunks = []
        self.events = []
        self.can_receive_calls = 0
        self.loop = loop
        self.autodrain = autodrain
        self.fe = CharBackend()
        self.fe.connect(chr_)
        self.fe.set_handlers(self.can_receive, self.receive, self.event)

    def can_receive(self):
        self.can_receive_calls += 1
        return self.fifo - self.level

    def receive(self, data):
        assert 0 < len(data) <= self.fifo - self.level, "more than can_receive()"
        self.level += len(data)
        self.data += data
        self.chunks.append(len(data))
        if self.autodrain:
            self.loop.bh_schedule(self.drain)

    def drain(self):
        self.level = 0
        self.fe.accept_input()

    def event(self, ev):
        self.events.append(ev)


def new_socket(label, opts) -> SocketChardev:
    import chardev

    chr_ = qemu_chr_new(label, "socket", opts)
    assert isinstance(chr_, chardev.SocketChardev)
    return chr_


def new_pty(label) -> PtyChardev:
    import chardev

    chr_ = qemu_chr_new(label, "pty")
    assert isinstance(chr_, chardev.PtyChardev)
    return chr_


def unix_server(sockdir, label="s"):
    path = os.path.join(sockdir, f"{label}.sock")
    opts = {"path": path, "server": "on", "wait": "off"}
    return new_socket(label, opts), path


def connect_unix(path):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect(path)
    return c


def recv_exactly(sock, n):
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            break
        buf += part
    return bytes(buf)


# -- registry and main loop ----------------------------------------------------------


def test_import_registers_backends():
    import chardev

    assert chardev.qemu_chr_new is qemu_chr_new
    assert {"file", "socket", "stdio", "pty"} <= set(qemu_chr_backends())


def test_host_chardev_without_main_loop_is_an_error(sockdir):
    import chardev

    chardev.set_main_loop(None)
    with pytest.raises(Error) as exc:
        qemu_chr_new("s", "socket", {"path": f"{sockdir}/s", "server": "on"})
    assert str(exc.value) == (
        "Failed to add chardev 's': Host chardevs need a main loop, and none is set"
    )
    assert "chardev.set_main_loop(loop)" in (exc.value.hint or "")


def test_main_loop_cannot_change_under_live_chardevs(loop, sockdir):
    import chardev

    unix_server(sockdir)
    with pytest.raises(Error, match="Chardevs 's' use another main loop"):
        chardev.set_main_loop(MainLoop())
    chardev.set_main_loop(loop)  # the same loop is fine
    qemu_chr_delete("s")
    other = MainLoop()
    chardev.set_main_loop(other)  # no live chardev any more
    assert chardev.get_main_loop() is other
    other.close()


# -- socket: unix server ---------------------------------------------------------------


def test_unix_server_nowait_filename_and_permissions(loop, sockdir):
    import chardev

    chr_, path = unix_server(sockdir)
    assert chr_.filename == f"disconnected:unix:{path},server=on"
    assert not chr_.be_open
    assert not chr_.connected
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert chr_.addr == chardev.UnixSocketAddress(path)


def test_unix_server_data_both_ways_and_query_state(loop, sockdir):
    chr_, path = unix_server(sockdir)
    dev = Device(chr_)
    assert chr_.frontend_open
    client = connect_unix(path)
    run_until(loop, lambda: dev.events, what="OPENED")
    assert dev.events == [ChrEvent.OPENED]
    assert chr_.be_open
    assert chr_.connected
    assert chr_.filename == f"unix:{path},server=on"

    client.sendall(b"hello, device")
    run_until(loop, lambda: len(dev.data) == 13, what="input")
    assert dev.data == b"hello, device"

    assert dev.fe.write(b"hello, host") == 11
    assert recv_exactly(client, 11) == b"hello, host"
    client.close()
    dev.fe.disconnect()
    assert not chr_.frontend_open


def test_frontend_taking_one_byte_at_a_time_gets_everything_in_order(loop, sockdir):
    chr_, path = unix_server(sockdir)
    dev = Device(chr_, fifo=1, loop=loop, autodrain=True)
    client = connect_unix(path)
    payload = random.Random(1).randbytes(5000)
    client.sendall(payload)
    run_until(loop, lambda: len(dev.data) == len(payload), timeout=20, what="input")
    assert dev.data == payload
    assert set(dev.chunks) == {1}
    client.close()


def test_backend_stops_reading_while_frontend_is_full(loop, sockdir):
    chr_, path = unix_server(sockdir)
    dev = Device(chr_, fifo=3)
    client = connect_unix(path)
    client.sendall(b"abcdefgh")
    run_until(loop, lambda: len(dev.data) == 3, what="first 3 bytes")
    assert dev.data == b"abc"

    # Full: the socket is not watched, so the loop sleeps instead of spinning
    # and nothing more is read (the rest waits in the kernel).
    calls = dev.can_receive_calls
    start = time.monotonic()
    loop.wait(200_000_000)
    assert time.monotonic() - start >= 0.15
    assert dev.can_receive_calls == calls
    assert dev.data == b"abc"

    # The guest reads its FIFO: accept_input() resumes reading.
    dev.level = 0
    dev.fe.accept_input()
    run_until(loop, lambda: len(dev.data) == 6, what="next 3 bytes")
    dev.level = 0
    dev.fe.accept_input()
    run_until(loop, lambda: len(dev.data) == 8, what="last bytes")
    assert dev.data == b"abcdefgh"
    assert max(dev.chunks) <= 3
    client.close()


def test_input_the_frontend_refuses_midway_is_kept_not_dropped(loop, sockdir):
    chr_, path = unix_server(sockdir)
    answers: list[int] = []

    def scripted_can_receive():
        # The FIFO shrinks between the backend's read and its delivery
        # (4 when reading, then 1, then 0).
        return answers.pop(0) if answers else 100

    dev = Device(chr_)
    dev.fe.set_handlers(scripted_can_receive, dev.receive, dev.event)
    client = connect_unix(path)
    run_until(loop, lambda: dev.events == [ChrEvent.OPENED])
    answers[:] = [4, 1, 0, 0, 0, 0]
    client.sendall(b"wxyz")
    run_until(loop, lambda: dev.data, what="first byte")
    assert dev.data == b"w"
    answers.clear()
    loop.wait(50_000_000)
    assert dev.data == b"w"  # the rest is kept, and not read again
    dev.fe.accept_input()
    assert dev.data == b"wxyz"
    client.close()


def test_all_input_arrives_before_closed(loop, sockdir):
    chr_, path = unix_server(sockdir)
    dev = Device(chr_, fifo=1, loop=loop, autodrain=True)
    client = connect_unix(path)
    client.sendall(b"x" * 3000)
    client.close()
    run_until(loop, lambda: ChrEvent.CLOSED in dev.events, timeout=20, what="CLOSED")
    assert dev.data == b"x" * 3000
    assert dev.events == [ChrEvent.OPENED, ChrEvent.CLOSED]


def test_disconnect_and_reconnect_events(loop, sockdir):
    chr_, path = unix_server(sockdir)
    dev = Device(chr_)
    c1 = connect_unix(path)
    run_until(loop, lambda: dev.events == [ChrEvent.OPENED])
    c1.close()
    run_until(loop, lambda: len(dev.events) == 2, what="CLOSED")
    assert chr_.filename == f"disconnected:unix:{path},server=on"
    assert not chr_.be_open
    c2 = connect_unix(path)
    run_until(loop, lambda: len(dev.events) == 3, what="second OPENED")
    assert dev.events == [ChrEvent.OPENED, ChrEvent.CLOSED, ChrEvent.OPENED]
    c2.sendall(b"again")
    run_until(loop, lambda: dev.data == b"again")
    c2.close()


def test_server_serves_one_client_at_a_time(loop, sockdir):
    chr_, path = unix_server(sockdir)
    dev = Device(chr_)
    c1 = connect_unix(path)
    run_until(loop, lambda: dev.events == [ChrEvent.OPENED])
    c2 = connect_unix(path)  # waits in the backlog
    c2.sendall(b"second")
    c1.sendall(b"first")
    run_until(loop, lambda: dev.data == b"first")
    loop.wait(100_000_000)
    assert dev.data == b"first"
    c1.close()
    run_until(loop, lambda: dev.data == b"firstsecond", what="second client")
    assert dev.events == [ChrEvent.OPENED, ChrEvent.CLOSED, ChrEvent.OPENED]
    c2.close()


def test_server_wait_on_blocks_until_a_client_connects(loop, sockdir, capsys):
    path = os.path.join(sockdir, "w.sock")
    connected = []

    def client():
        time.sleep(0.3)
        s = connect_unix(path)
        connected.append(s)

    t = threading.Thread(target=client)
    t.start()
    start = time.monotonic()
    chr_ = new_socket("w", {"path": path, "server": "on"})
    elapsed = time.monotonic() - start
    t.join(5)
    assert elapsed >= 0.25
    assert connected
    assert chr_.be_open
    assert chr_.filename == f"unix:{path},server=on"
    err = capsys.readouterr().err
    assert err == (
        "pyqemu: info: pyqemu waiting for connection on: "
        f"disconnected:unix:{path},server=on\n"
    )
    dev = Device(chr_)
    assert dev.events == [ChrEvent.OPENED]
    connected[0].sendall(b"!")
    run_until(loop, lambda: dev.data == b"!")
    connected[0].close()


def test_unix_server_replaces_stale_path_and_removes_it_on_close(loop, sockdir):
    path = os.path.join(sockdir, "stale.sock")
    old = socket.socket(socket.AF_UNIX)
    old.bind(path)
    old.close()  # a stale socket file left behind
    qemu_chr_new("s", "socket", {"path": path, "server": "on", "wait": "off"})
    c = connect_unix(path)
    c.close()
    qemu_chr_delete("s")
    assert not os.path.exists(path)


def test_output_with_backpressure_and_write_watch(loop, sockdir):
    chr_, path = unix_server(sockdir)
    dev = Device(chr_)
    client = connect_unix(path)
    run_until(loop, lambda: dev.events)
    payload = random.Random(2).randbytes(2 << 20)
    sent = 0
    while True:
        n = dev.fe.write(payload[sent : sent + 65536])
        if n == 0:
            break
        sent += n
    assert 0 < sent < len(payload)  # the socket buffer filled up

    woken = []
    assert dev.fe.add_write_watch(lambda: woken.append(True))
    loop.wait(100_000_000)
    assert woken == []  # nobody reads: no room

    received = bytearray()

    def reader():
        while len(received) < len(payload):
            part = client.recv(1 << 16)
            if not part:
                break
            received.extend(part)

    t = threading.Thread(target=reader)
    t.start()
    run_until(loop, lambda: woken, what="write watch")

    def pump():
        nonlocal sent
        while sent < len(payload):
            n = dev.fe.write(payload[sent : sent + 65536])
            if n == 0:
                assert dev.fe.add_write_watch(pump)
                return
            sent += n

    pump()
    run_until(loop, lambda: sent == len(payload), timeout=20, what="all output")
    t.join(10)
    assert bytes(received) == payload
    client.close()


def test_write_all_blocks_until_written(loop, sockdir):
    chr_, path = unix_server(sockdir)
    dev = Device(chr_)
    client = connect_unix(path)
    run_until(loop, lambda: dev.events)
    payload = b"z" * (1 << 20)
    got = bytearray()
    t = threading.Thread(target=lambda: got.extend(recv_exactly(client, len(payload))))
    t.start()
    assert dev.fe.write_all(payload) == len(payload)
    t.join(10)
    assert got == payload
    client.close()


def test_output_without_a_peer_is_discarded(loop, sockdir):
    chr_, _ = unix_server(sockdir)
    dev = Device(chr_)
    assert dev.fe.write(b"lost") == 4
    assert dev.fe.write_all(b"lost too") == 8
    assert not dev.fe.add_write_watch(lambda: None)


def test_peer_gone_while_writing_disconnects(loop, sockdir):
    chr_, path = unix_server(sockdir)
    dev = Device(chr_, fifo=0)  # not reading: the write error disconnects
    client = connect_unix(path)
    run_until(loop, lambda: dev.events)
    client.close()
    deadline = time.monotonic() + 5
    while chr_.connected and time.monotonic() < deadline:
        assert dev.fe.write(b"data") == 4
        time.sleep(0.01)
    assert dev.events == [ChrEvent.OPENED, ChrEvent.CLOSED]


def test_write_watch_released_on_disconnect(loop, sockdir):
    chr_, path = unix_server(sockdir)
    dev = Device(chr_)
    client = connect_unix(path)
    run_until(loop, lambda: dev.events)
    while dev.fe.write(b"y" * 65536):
        pass
    woken = []
    assert dev.fe.add_write_watch(lambda: woken.append(True))
    client.close()
    run_until(loop, lambda: woken, what="write watch after hang-up")
    assert dev.events[-1] == ChrEvent.CLOSED


# -- socket: unix client ---------------------------------------------------------------


def test_unix_client_connects_and_talks(loop, sockdir):
    path = os.path.join(sockdir, "srv.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    chr_ = new_socket("c", {"path": path})
    peer, _ = srv.accept()
    peer.settimeout(5)
    assert chr_.be_open
    assert chr_.filename == f"unix:{path}"
    dev = Device(chr_)
    assert dev.events == [ChrEvent.OPENED]
    peer.sendall(b"ping")
    run_until(loop, lambda: dev.data == b"ping")
    dev.fe.write_all(b"pong")
    assert recv_exactly(peer, 4) == b"pong"
    peer.close()
    run_until(loop, lambda: dev.events[-1] == ChrEvent.CLOSED)
    assert chr_.filename == f"disconnected:unix:{path}"
    srv.close()


def test_unix_client_connect_failure(loop, sockdir):
    path = os.path.join(sockdir, "nobody.sock")
    with pytest.raises(Error) as exc:
        qemu_chr_new("c", "socket", {"path": path})
    assert str(exc.value) == (
        f"Failed to add chardev 'c': Failed to connect to '{path}': "
        "No such file or directory"
    )


def test_client_reconnects_in_background(loop, sockdir, capsys):
    path = os.path.join(sockdir, "later.sock")
    chr_ = new_socket("c", {"path": path, "reconnect-ms": "50"})
    assert chr_.reconnect_ms == 50
    assert not chr_.be_open
    dev = Device(chr_)
    loop.wait(120_000_000)
    loop.wait(120_000_000)
    err = capsys.readouterr().err
    assert err == (
        "pyqemu: Unable to connect character device c: Failed to connect to "
        f"'{path}': No such file or directory\n"
    )  # reported once, not at each retry
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(5)
    run_until(loop, lambda: dev.events == [ChrEvent.OPENED], what="connection")
    peer, _ = srv.accept()
    peer.close()
    run_until(loop, lambda: ChrEvent.CLOSED in dev.events, what="CLOSED")
    run_until(loop, lambda: len(dev.events) == 3, what="reconnection")
    assert dev.events == [ChrEvent.OPENED, ChrEvent.CLOSED, ChrEvent.OPENED]
    peer, _ = srv.accept()
    peer.sendall(b"back")
    run_until(loop, lambda: dev.data == b"back")
    peer.close()
    srv.close()


def test_reconnect_in_seconds(loop, sockdir):
    chr_ = new_socket("c", {"path": f"{sockdir}/x.sock", "reconnect": 2})
    assert chr_.reconnect_ms == 2000


# -- socket: tcp -----------------------------------------------------------------------


def test_tcp_server_filename_nodelay_and_data(loop):
    import chardev

    chr_ = new_socket(
        "t",
        {
            "host": "127.0.0.1",
            "port": 0,
            "server": True,
            "wait": False,
            "nodelay": "on",
        },
    )
    addr = chr_.addr
    assert isinstance(addr, chardev.InetSocketAddress)
    port = int(addr.port)
    assert port > 0
    assert chr_.addr == chardev.InetSocketAddress("127.0.0.1", str(port))
    assert chr_.filename == f"disconnected:tcp:127.0.0.1:{port},server=on"
    dev = Device(chr_)
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    cport = client.getsockname()[1]
    run_until(loop, lambda: dev.events == [ChrEvent.OPENED])
    assert chr_.filename == (f"tcp:127.0.0.1:{port},server=on <-> 127.0.0.1:{cport}")
    assert chr_.nodelay
    conn = chr_._conn
    assert conn is not None
    assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    client.sendall(b"over tcp")
    run_until(loop, lambda: dev.data == b"over tcp")
    dev.fe.write_all(b"and back")
    assert recv_exactly(client, 8) == b"and back"
    client.close()
    run_until(loop, lambda: dev.events[-1] == ChrEvent.CLOSED)
    assert chr_.filename == f"disconnected:tcp:127.0.0.1:{port},server=on"


def test_tcp_client_and_refused_connection(loop):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(5)
    sport = srv.getsockname()[1]
    chr_ = new_socket("t", {"host": "127.0.0.1", "port": str(sport)})
    peer, (_, cport) = srv.accept()
    assert chr_.filename == f"tcp:127.0.0.1:{cport} <-> 127.0.0.1:{sport}"
    dev = Device(chr_)
    peer.sendall(b"x")
    run_until(loop, lambda: dev.data == b"x")
    peer.close()
    srv.close()

    with pytest.raises(Error) as exc:
        qemu_chr_new("t2", "socket", {"host": "127.0.0.1", "port": str(sport)})
    assert str(exc.value) == (
        f"Failed to add chardev 't2': Failed to connect to '127.0.0.1:{sport}': "
        "Connection refused"
    )


def test_tcp_ipv4_only_server_on_a_host_name(loop):
    import chardev

    chr_ = new_socket(
        "t",
        {"host": "localhost", "port": "0", "ipv4": "on", "server": "on", "wait": "off"},
    )
    addr = chr_.addr
    assert isinstance(addr, chardev.InetSocketAddress)
    assert addr.host == "127.0.0.1"  # numeric once listening, as QEMU
    assert chr_.filename == f"disconnected:tcp:127.0.0.1:{addr.port},server=on"


def test_tcp_server_port_in_use(loop):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    with pytest.raises(Error) as exc:
        qemu_chr_new(
            "t",
            "socket",
            {"host": "127.0.0.1", "port": str(port), "server": "on", "wait": "off"},
        )
    assert str(exc.value) == (
        "Failed to add chardev 't': Failed to find an available port: "
        "Address already in use"
    )
    busy.close()


# -- socket: options -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"server": "on"}, "chardev: socket: no host given"),
        (
            {"path": "/tmp/x", "host": "localhost", "port": "1"},
            "None or one of 'path' or 'host' option required.",
        ),
        ({"host": "127.0.0.1"}, "chardev: socket: no port given"),
        (
            {"path": "/tmp/x", "wait": "off"},
            "'wait' option is incompatible with socket in client connect mode",
        ),
        (
            {"path": "/tmp/x", "server": "on", "reconnect": "1"},
            "'reconnect' option is incompatible with socket in server listen mode",
        ),
        (
            {"path": "/tmp/x", "server": "on", "reconnect-ms": "1"},
            "'reconnect-ms' option is incompatible with socket in server listen mode",
        ),
        (
            {"path": "/tmp/x", "reconnect": "1", "reconnect-ms": "5"},
            "'reconnect' and 'reconnect-ms' are mutually exclusive",
        ),
        (
            {"path": "/tmp/x", "delay": "on", "nodelay": "on"},
            "'delay' and 'nodelay' are mutually exclusive",
        ),
        (
            {"path": "/tmp/x", "server": "maybe"},
            "Parameter 'server' expects 'on' or 'off'",
        ),
        (
            {"path": "/tmp/x", "reconnect": "soon"},
            "Parameter 'reconnect' expects a number",
        ),
        ({"path": "/tmp/x", "telnet": "on"}, "Invalid parameter 'telnet'"),
        (
            {"path": "/tmp/" + "x" * 110},
            f"UNIX socket path '/tmp/{'x' * 110}' is too long",
        ),
    ],
)
def test_socket_option_errors(loop, opts, message):
    with pytest.raises(Error) as exc:
        qemu_chr_new("bad", "socket", opts)
    assert str(exc.value) == f"Failed to add chardev 'bad': {message}"


def test_socket_option_errors_have_hints(loop):
    with pytest.raises(Error) as exc:
        qemu_chr_new("bad", "socket", {"server": "on"})
    assert exc.value.hint == (
        "Give path=PATH for a Unix socket, or host=HOST,port=PORT for TCP.\n"
    )


def test_socket_bind_failure(loop):
    with pytest.raises(Error) as exc:
        qemu_chr_new(
            "bad",
            "socket",
            {"path": "/nonexistent/dir/s", "server": "on", "wait": "off"},
        )
    assert str(exc.value) == (
        "Failed to add chardev 'bad': Failed to bind socket to /nonexistent/dir/s: "
        "No such file or directory"
    )


# -- file ------------------------------------------------------------------------------


def test_file_truncates_or_appends(loop, tmp_path):
    path = tmp_path / "out.log"
    path.write_bytes(b"old contents\n")
    chr_ = qemu_chr_new("f", "file", {"path": str(path)})
    assert chr_.filename == "file"
    assert chr_.be_open
    dev = Device(chr_)
    assert dev.events == [ChrEvent.OPENED]
    dev.fe.write_all(b"first run\n")
    dev.fe.disconnect()
    qemu_chr_delete("f")
    assert path.read_bytes() == b"first run\n"

    chr_ = qemu_chr_new("f", "file", {"path": str(path), "append": "on"})
    fe = CharBackend()
    fe.connect(chr_)
    fe.write_all(b"second run\n")
    fe.disconnect()
    qemu_chr_delete("f")
    assert path.read_bytes() == b"first run\nsecond run\n"


def test_file_input_one_byte_at_a_time_then_closed(loop, tmp_path):
    src = tmp_path / "in.txt"
    payload = random.Random(3).randbytes(3000)
    src.write_bytes(payload)
    chr_ = qemu_chr_new(
        "f", "file", {"path": str(tmp_path / "out"), "input-path": str(src)}
    )
    dev = Device(chr_, fifo=1, loop=loop, autodrain=True)
    run_until(loop, lambda: ChrEvent.CLOSED in dev.events, timeout=20)
    assert dev.data == payload
    assert set(dev.chunks) == {1}


def test_file_input_waits_while_frontend_is_full(loop, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"0123456789")
    chr_ = qemu_chr_new("f", "file", {"out": str(tmp_path / "o"), "in": str(src)})
    dev = Device(chr_, fifo=4)
    run_until(loop, lambda: len(dev.data) == 4)
    calls = dev.can_receive_calls
    start = time.monotonic()
    loop.wait(150_000_000)  # a regular file is always readable: no spinning
    assert time.monotonic() - start >= 0.1
    assert dev.can_receive_calls == calls
    dev.level = 0
    dev.fe.accept_input()
    run_until(loop, lambda: len(dev.data) == 8)
    dev.level = 0
    dev.fe.accept_input()
    run_until(loop, lambda: ChrEvent.CLOSED in dev.events)
    assert dev.data == b"0123456789"


def test_file_fifo_output_backpressure(loop, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    chr_ = qemu_chr_new("f", "file", {"path": str(fifo)})
    fe = CharBackend()
    fe.connect(chr_)
    total = 0
    while (n := fe.write(b"q" * 4096)) > 0:
        total += n
    woken = []
    assert fe.add_write_watch(lambda: woken.append(True))
    loop.wait(50_000_000)
    assert woken == []
    drained = 0
    while drained < total:
        drained += len(os.read(reader, 65536))
    run_until(loop, lambda: woken, what="write watch")
    fe.disconnect()
    os.close(reader)


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({}, "chardev: file: no filename given"),
        ({"append": "on"}, "chardev: file: no filename given"),
        (
            {"path": "/nonexistent/dir/out"},
            "Could not open '/nonexistent/dir/out': No such file or directory",
        ),
        ({"path": "a", "out": "b"}, "Parameters 'path' and 'out' name the same file"),
        (
            {"path": "/tmp/x", "append": "often"},
            "Parameter 'append' expects 'on' or 'off'",
        ),
        ({"path": "/tmp/x", "mux": "on"}, "Invalid parameter 'mux'"),
    ],
)
def test_file_option_errors(loop, opts, message):
    with pytest.raises(Error) as exc:
        qemu_chr_new("bad", "file", opts)
    assert str(exc.value) == f"Failed to add chardev 'bad': {message}"


def test_file_missing_input_closes_output(loop, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(Error, match="Could not open '/nonexistent/in'"):
        qemu_chr_new("bad", "file", {"path": str(out), "input-path": "/nonexistent/in"})
    assert out.exists()
    # The descriptor was released with the failure: a new chardev can open it.
    qemu_chr_new("ok", "file", {"path": str(out)})


# -- pty -------------------------------------------------------------------------------


def test_pty_round_trip(loop, capsys):
    chr_ = new_pty("p")
    name = chr_.pty_name
    assert name.startswith("/dev/pts/")
    assert capsys.readouterr().out == f"char device redirected to {name} (label p)\n"
    assert chr_.filename == f"pty:{name}"
    assert not chr_.be_open
    chr_.POLL_INTERVAL_MS = 20
    dev = Device(chr_)
    assert dev.events == []
    assert dev.fe.write(b"nobody") == 6  # discarded: no terminal yet

    term = os.open(name, os.O_RDWR | os.O_NOCTTY)
    run_until(loop, lambda: dev.events == [ChrEvent.OPENED], what="OPENED by poll")
    assert chr_.connected
    # Raw mode: bytes pass unchanged both ways.
    os.write(term, b"keys\r\x03")
    run_until(loop, lambda: dev.data == b"keys\r\x03")
    dev.fe.write_all(b"out\n")
    assert os.read(term, 100) == b"out\n"

    os.close(term)
    run_until(loop, lambda: dev.events[-1] == ChrEvent.CLOSED, what="CLOSED")
    assert not chr_.be_open
    term = os.open(name, os.O_RDWR | os.O_NOCTTY)
    assert dev.fe.write(b"hi") == 2  # a write notices the terminal at once
    assert dev.events == [ChrEvent.OPENED, ChrEvent.CLOSED, ChrEvent.OPENED]
    assert os.read(term, 100) == b"hi"
    os.close(term)


def test_pty_input_respects_can_receive(loop, capsys):
    chr_ = new_pty("p")
    dev = Device(chr_, fifo=1, loop=loop, autodrain=True)
    term = os.open(chr_.pty_name, os.O_RDWR | os.O_NOCTTY)
    chr_.update_read_handler()
    assert dev.events == [ChrEvent.OPENED]
    payload = bytes(range(256)) * 4
    os.write(term, payload)
    run_until(loop, lambda: len(dev.data) == len(payload), timeout=20)
    assert dev.data == payload
    assert set(dev.chunks) == {1}
    os.close(term)


def test_pty_options_as_qemu_7_2(loop, tmp_path):
    # QEMU 7.2 accepts path= and ignores it: no link appears.
    chr_ = qemu_chr_new("p", "pty", {"path": str(tmp_path / "link")})
    assert chr_.filename.startswith("pty:/dev/")
    assert not (tmp_path / "link").exists()
    qemu_chr_delete("p")
    with pytest.raises(Error) as exc:
        qemu_chr_new("p", "pty", {"bogus": "1"})
    assert str(exc.value) == "Failed to add chardev 'p': Invalid parameter 'bogus'"


# -- stdio (in a child process: it takes over the process's stdin/stdout) --------------

CHILD_PRELUDE = """
import os, sys, termios
sys.path.insert(0, {root!r})
import chardev
from qemu_api import bql
from qemu_api.chardev import CharBackend, ChrEvent, qemu_chr_new, qemu_chr_delete
from qemu_api.error import Error
from system.main_loop import MainLoop
bql.bql_lock()
loop = MainLoop()
chardev.set_main_loop(loop)
"""


def run_child(body, **kwargs):
    code = CHILD_PRELUDE.format(root=str(ROOT)) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", code], timeout=20, check=False, **kwargs
    )


def test_stdio_pipes_echo_and_eof():
    body = """
    chr_ = qemu_chr_new("s", "stdio")
    try:
        qemu_chr_new("s2", "stdio")
    except Error as e:
        sys.stderr.write(str(e) + "\\n")
    fe = CharBackend()
    fe.connect(chr_)
    done = []
    def receive(data):
        fe.write_all(data.upper())
    def event(ev):
        if ev == ChrEvent.CLOSED:
            done.append(ev)
    fe.set_handlers(lambda: 2, receive, event)
    sys.stderr.write(chr_.filename + "\\n")
    while not done:
        loop.wait(100_000_000)
    fe.disconnect()
    qemu_chr_delete("s")
    """
    res = run_child(body, input=b"hello, stdio", capture_output=True)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout == b"HELLO, STDIO"
    assert res.stderr.decode().splitlines() == [
        "Failed to add chardev 's2': cannot use stdio by multiple character devices",
        "stdio",
    ]


def test_stdio_terminal_raw_mode_restored_on_close_and_exit():
    master, slave = os.openpty()
    try:
        body = """
        def flags():
            lflag = termios.tcgetattr(0)[3]
            return "".join(
                name
                for name, bit in (("icanon ", termios.ICANON), ("echo ", termios.ECHO),
                                  ("isig", termios.ISIG))
                if lflag & bit
            ).strip()
        report = os.fdopen(REPORT_FD, "w", buffering=1)
        report.write("before: " + flags() + "\\n")
        qemu_chr_new("s", "stdio")
        report.write("raw: " + flags() + "\\n")
        qemu_chr_delete("s")
        report.write("closed: " + flags() + "\\n")
        qemu_chr_new("s", "stdio", {"signal": "off"})
        report.write("signal=off: " + flags() + "\\n")
        # Exit without closing: the atexit handler restores the terminal.
        """
        r, w = os.pipe()
        code = CHILD_PRELUDE.format(root=str(ROOT)) + textwrap.dedent(body)
        proc = subprocess.Popen(
            [sys.executable, "-c", code.replace("REPORT_FD", str(w))],
            stdin=slave,
            stdout=slave,
            stderr=subprocess.PIPE,
            pass_fds=(w,),
        )
        os.close(w)
        with os.fdopen(r) as rep:
            lines = [line.strip() for line in rep.read().splitlines()]
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err.decode()
        assert lines == [
            "before: icanon echo isig",
            "raw: isig",
            "closed: icanon echo isig",
            "signal=off:",
        ]
        lflag = termios.tcgetattr(slave)[3]
        assert lflag & termios.ICANON
        assert lflag & termios.ECHO
        assert lflag & termios.ISIG
    finally:
        os.close(master)
        os.close(slave)


def test_term_exit_without_stdio_is_a_no_op():
    import chardev

    chardev.term_exit()
    chardev.term_exit()


def test_stdio_option_error(loop):
    with pytest.raises(Error) as exc:
        qemu_chr_new("s", "stdio", {"signal": 3})
    assert str(exc.value) == (
        "Failed to add chardev 's': Parameter 'signal' expects 'on' or 'off'"
    )
