import random
import threading
import time

import pytest

from qemu_api.bql import BqlNotHeldError, bql_locked, bql_unlock
from qemu_api.chardev import (
    CHR_READ_BUF_LEN,
    CharBackend,
    Chardev,
    ChrEvent,
    DataFormat,
    NullChardev,
    RingBufChardev,
    qemu_chr_backends,
    qemu_chr_delete,
    qemu_chr_find,
    qemu_chr_list,
    qemu_chr_new,
    qemu_chr_reset,
    register_chardev_backend,
    ringbuf_read,
    ringbuf_write,
)
from qemu_api.error import Error
from qemu_api.qom import Object, object_get_root, override
from qemu_api.timer import CLOCK_REALTIME, qemu_clock_run_timers


class BoundedChardev(Chardev):
    """A test backend with a bounded output buffer and host-side input."""

    BACKEND = "test-bounded"
    OPTIONS = frozenset({"capacity", "connected"})
    SUPPORTS_WRITE_WATCH = True

    def __init__(self, label, options=None):
        super().__init__(label, options)
        opts = options or {}
        self.capacity = int(opts.get("capacity", 4))
        self.connected = bool(opts.get("connected", True))
        self.out = bytearray()
        self.pending = bytearray()  # host input the device has not taken yet
        self.lock = threading.Lock()
        self.breaks = []
        self.fe_open_calls = []
        self.read_handler_updates = 0
        self.closed = False

    def open(self):
        return self.connected

    def close(self):
        self.closed = True

    def write(self, data):
        with self.lock:
            n = min(len(data), self.capacity - len(self.out))
            self.out += data[:n]
            return n

    def drain(self, n):
        """The host reads n bytes of output (no BQL: another thread may do it)."""
        with self.lock:
            data = bytes(self.out[:n])
            del self.out[:n]
            return data

    def host_send(self, data):
        self.pending += data
        self.accept_input()

    def accept_input(self):
        n = self.be_write(bytes(self.pending))
        del self.pending[:n]

    def update_read_handler(self):
        self.read_handler_updates += 1

    def set_fe_open(self, fe_open):
        self.fe_open_calls.append(fe_open)

    def set_break(self, enable):
        self.breaks.append(enable)
        return True


register_chardev_backend(BoundedChardev)


class Device:
    """A UART-like frontend with a receive FIFO of `depth` bytes."""

    def __init__(self, depth=4):
        self.depth = depth
        self.fifo = bytearray()
        self.events = []
        self.receive_sizes = []
        self.fe = CharBackend()

    def can_receive(self):
        assert bql_locked()
        return self.depth - len(self.fifo)

    def receive(self, data):
        assert bql_locked()
        assert len(data) <= self.depth - len(self.fifo), "got more than it can take"
        self.receive_sizes.append(len(data))
        self.fifo += data

    def event(self, ev):
        assert bql_locked()
        self.events.append(ev)

    def realize(self, chr_):
        self.fe.connect(chr_)
        self.fe.set_handlers(self.can_receive, self.receive, self.event)

    def guest_read(self, n):
        data = bytes(self.fifo[:n])
        del self.fifo[:n]
        self.fe.accept_input()
        return data


# Untyped accessors: mypy would otherwise keep a property narrowed by an
# earlier assert across the call that changes it.
def frontend_open(chr_):
    return chr_.frontend_open


def pending(watch):
    return watch.pending


def frontend_of(chr_):
    return chr_.frontend


def chardev_of(fe):
    return fe.chr


def test_event_values():
    assert [(e.name, int(e)) for e in ChrEvent] == [
        ("BREAK", 0),
        ("OPENED", 1),
        ("MUX_IN", 2),
        ("MUX_OUT", 3),
        ("CLOSED", 4),
    ]
    assert CHR_READ_BUF_LEN == 4096


# --- registry -------------------------------------------------------------------


def test_new_find_list_delete():
    a = qemu_chr_new("a", "null")
    b = qemu_chr_new("b", "ringbuf", {"size": 16})
    assert isinstance(a, NullChardev)
    assert isinstance(b, RingBufChardev)
    assert qemu_chr_find("a") is a
    assert qemu_chr_find("zzz") is None
    assert qemu_chr_list() == [a, b]
    assert a.label == "a"
    assert a.filename == "null"
    assert a.be_open
    qemu_chr_delete("a")
    assert qemu_chr_find("a") is None
    assert qemu_chr_list() == [b]


def test_backends_list():
    assert {"null", "ringbuf", "memory", "test-bounded"} <= set(qemu_chr_backends())
    assert qemu_chr_backends() == sorted(qemu_chr_backends())
    assert isinstance(qemu_chr_new("m", "memory"), RingBufChardev)


def test_duplicate_label():
    qemu_chr_new("dup", "null")
    with pytest.raises(Error, match=r"^Chardev with id 'dup' already exists$"):
        qemu_chr_new("dup", "ringbuf")


def test_unknown_backend():
    with pytest.raises(Error) as ei:
        qemu_chr_new("x", "sock")
    assert (
        str(ei.value)
        == "Failed to add chardev 'x': 'sock' is not a valid char driver name"
    )
    assert ei.value.hint is not None
    assert ei.value.hint.startswith("Available chardev backend types: ")
    assert "memory null ringbuf" in ei.value.hint
    assert qemu_chr_find("x") is None


def test_unknown_option():
    with pytest.raises(Error) as ei:
        qemu_chr_new("x", "ringbuf", {"sise": 16})
    assert str(ei.value) == "Failed to add chardev 'x': Invalid parameter 'sise'"
    assert (
        ei.value.hint == "Options of the 'ringbuf' backend: logappend, logfile, size\n"
    )
    with pytest.raises(Error) as ei:
        qemu_chr_new("y", "null", {"path": "/tmp/x"})
    assert ei.value.hint == "Options of the 'null' backend: logappend, logfile\n"


def test_ringbuf_size_power_of_two():
    with pytest.raises(Error) as ei:
        qemu_chr_new("r", "ringbuf", {"size": 1000})
    assert str(ei.value) == (
        "Failed to add chardev 'r': size of ringbuf chardev must be power of two"
    )
    assert ei.value.hint == "Got 1000; try 512 or 1024.\n"
    assert qemu_chr_find("r") is None


@pytest.mark.parametrize(
    ("size", "expected"),
    [(None, 65536), (0, 65536), (1, 1), (64, 64), ("4K", 4096), ("1m", 1 << 20),
     ("32", 32), (" 2k", 2048)],
)  # fmt: skip
def test_ringbuf_size_option(size, expected):
    options = {} if size is None else {"size": size}
    ring = qemu_chr_new("r", "ringbuf", options)
    assert isinstance(ring, RingBufChardev)
    assert ring.size == expected


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("lots", "Parameter 'size' expects a non-negative number below 2^64"),
        (-4, "Parameter 'size' expects a non-negative size"),
        (True, "Parameter 'size' expects a size"),
    ],
)
def test_ringbuf_size_invalid(size, message):
    with pytest.raises(Error) as ei:
        qemu_chr_new("r", "ringbuf", {"size": size})
    assert str(ei.value) == f"Failed to add chardev 'r': {message}"


def test_delete_errors():
    with pytest.raises(Error, match=r"^Chardev 'nope' not found$"):
        qemu_chr_delete("nope")
    chr_ = qemu_chr_new("busy", "test-bounded")
    fe = CharBackend()
    fe.connect(chr_)
    with pytest.raises(Error, match=r"^Chardev 'busy' is busy$") as ei:
        qemu_chr_delete("busy")
    assert "Unplug the device" in (ei.value.hint or "")
    fe.disconnect()
    qemu_chr_delete("busy")
    assert isinstance(chr_, BoundedChardev)
    assert chr_.closed


def test_reset_detaches_frontends():
    chr_ = qemu_chr_new("s", "test-bounded")
    dev = Device()
    dev.realize(chr_)
    qemu_chr_reset()
    assert qemu_chr_list() == []
    assert dev.fe.chr is None
    assert chr_.frontend is None
    assert isinstance(chr_, BoundedChardev)
    assert chr_.closed
    assert "ringbuf" in qemu_chr_backends()  # backends stay registered


def test_register_errors():
    class Nameless(Chardev):
        pass

    class Other(Chardev):
        BACKEND = "null"

    with pytest.raises(
        Error, match=r"^Nameless has no BACKEND name to register under$"
    ):
        register_chardev_backend(Nameless)
    with pytest.raises(
        Error, match=r"^chardev backend 'null' is already registered by NullChardev$"
    ):
        register_chardev_backend(Other)
    register_chardev_backend(NullChardev)  # registering again is fine


def test_backend_open_failure_is_prefixed():
    class Broken(Chardev):
        BACKEND = "test-broken"

        def open(self):
            raise Error("cannot connect to host")

    register_chardev_backend(Broken)
    with pytest.raises(
        Error, match=r"^Failed to add chardev 'b': cannot connect to host$"
    ):
        qemu_chr_new("b", "test-broken")
    assert qemu_chr_find("b") is None


def test_repr():
    chr_ = qemu_chr_new("serial0", "ringbuf")
    assert repr(chr_) == "<RingBufChardev 'serial0' (ringbuf)>"
    fe = CharBackend()
    assert repr(fe) == "<CharBackend chr=None open=False>"
    fe.connect(chr_)
    fe.set_handlers(lambda: 0, lambda data: None)
    assert repr(fe) == "<CharBackend chr='serial0' open=True>"


# --- null and ringbuf -----------------------------------------------------------


def test_null_discards():
    null = qemu_chr_new("n", "null")
    assert null.write(b"abc") == 3
    assert null.write_all(b"abcdef") == 6
    assert null.be_can_write() == 0
    assert null.be_write(b"x") == 0
    assert null.set_break(True) is False
    assert null.add_write_watch(lambda: None) is False


def test_ringbuf_wraps_around():
    ring = RingBufChardev("r", {"size": 8})
    assert ring.write(b"0123456") == 7
    assert ring.read(3) == b"012"
    assert ring.write(b"789AB") == 5  # crosses the end of the buffer, drops "3"
    assert ring.count() == 8
    assert ring.read(5) == b"45678"
    assert ring.read(100) == b"9AB"
    assert ring.count() == 0


def ring_model(size, ops):
    """QEMU's byte-by-byte ringbuf, as in chardev/char-ringbuf.c."""
    cbuf = bytearray(size)
    prod = cons = 0
    out = []
    for op, arg in ops:
        if op == "w":
            for b in arg:
                cbuf[prod & (size - 1)] = b
                prod += 1
                if prod - cons > size:
                    cons = prod - size
        else:
            got = bytearray()
            while len(got) < arg and cons != prod:
                got.append(cbuf[cons & (size - 1)])
                cons += 1
            out.append(bytes(got))
    return out


def test_ringbuf_overwrites_oldest():
    ring = RingBufChardev("r", {"size": 4})
    assert ring.write(b"abcdef") == 6
    assert ring.count() == 4
    assert ring.read(10) == b"cdef"
    assert ring.read(10) == b""
    ring.write(b"xy")
    ring.write(b"z123")  # overwrites x and y
    assert ring.read(2) == b"z1"
    assert ring.read(5) == b"23"


def test_ringbuf_matches_qemu_model():
    rng = random.Random(1234)
    for size in (1, 2, 8, 16):
        ring = RingBufChardev("r", {"size": size})
        ops: list[tuple[str, bytes | int]] = []
        for _ in range(300):
            if rng.random() < 0.6:
                n = rng.randrange(0, 3 * size)
                ops.append(("w", bytes(rng.randrange(256) for _ in range(n))))
            else:
                ops.append(("r", rng.randrange(0, 2 * size)))
        got: list[bytes] = []
        for op, arg in ops:
            if op == "w":
                assert isinstance(arg, bytes)
                assert ring.write(arg) == len(arg)
            else:
                assert isinstance(arg, int)
                got.append(ring.read(arg))
        assert got == ring_model(size, ops)


def test_ringbuf_as_device_output():
    ring = qemu_chr_new("log", "ringbuf", {"size": 8})
    fe = CharBackend()
    fe.connect(ring)
    assert fe.write(b"hello, world") == 12  # a ring never pushes back
    assert ringbuf_read("log", 100) == "o, world"
    # A ring cannot signal room: a watch on it is polled in host time.
    woken = []
    watch = fe.add_write_watch(lambda: woken.append(True))
    assert watch is not None
    assert pending(watch)
    deadline = time.monotonic() + 5
    while not woken and time.monotonic() < deadline:
        time.sleep(0.002)
        qemu_clock_run_timers(CLOCK_REALTIME)
    assert woken == [True]
    assert not pending(watch)
    assert fe.send_break(True) is False


def test_logfile_copies_what_the_backend_took(tmp_path):
    log = tmp_path / "out.log"
    log.write_bytes(b"old contents")
    bounded = qemu_chr_new("b", "test-bounded", {"capacity": 4, "logfile": str(log)})
    assert isinstance(bounded, BoundedChardev)
    assert bounded.logfile == str(log)
    assert not bounded.logappend
    assert log.read_bytes() == b""  # truncated at creation, as QEMU does
    fe = CharBackend()
    fe.connect(bounded)
    assert fe.write(b"abcdef") == 4  # a full backend: only what it took is logged
    assert log.read_bytes() == b"abcd"
    assert fe.write(b"gh") == 0
    assert log.read_bytes() == b"abcd"
    assert bounded.drain(4) == b"abcd"
    assert fe.write(b"gh") == 2
    assert log.read_bytes() == b"abcdgh"
    fe.disconnect()
    qemu_chr_delete("b")
    assert bounded._logfd == -1


def test_logfile_write_all_and_append(tmp_path):
    log = tmp_path / "out.log"
    log.write_bytes(b"kept:")
    ring = qemu_chr_new("r", "ringbuf", {"logfile": str(log), "logappend": "on"})
    fe = CharBackend()
    fe.connect(ring)
    data = bytes(range(256)) * 300  # larger than one write chunk
    assert fe.write_all(data) == len(data)
    assert log.read_bytes() == b"kept:" + data
    # Input from the host is not logged, only output.
    ring.be_write(b"input")
    assert log.read_bytes() == b"kept:" + data
    fe.disconnect()


def test_logfile_on_null_and_reset(tmp_path):
    log = tmp_path / "null.log"
    null = qemu_chr_new("n", "null", {"logfile": str(log), "logappend": False})
    fe = CharBackend()
    fe.connect(null)
    assert fe.write(b"discarded but logged") == 20
    assert log.read_bytes() == b"discarded but logged"
    qemu_chr_reset()
    assert null._logfd == -1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"logfile": "/nonexistent/dir/log"},
            (
                "Failed to add chardev 'x': Could not create "
                "'/nonexistent/dir/log': No such file or directory"
            ),
        ),
        (
            {"logfile": "/tmp/unused.log", "logappend": "maybe"},
            "Failed to add chardev 'x': Parameter 'logappend' expects 'on' or 'off'",
        ),
    ],
)
def test_logfile_errors(options, message):
    with pytest.raises(Error) as ei:
        qemu_chr_new("x", "null", options)
    assert str(ei.value) == message
    assert qemu_chr_find("x") is None


def test_ringbuf_qmp_utf8():
    qemu_chr_new("rb", "ringbuf", {"size": 16})
    ringbuf_write("rb", "héllo")
    assert ringbuf_read("rb", 3) == "hé"  # h + two UTF-8 bytes of é
    assert ringbuf_read("rb", 100) == "llo"
    ringbuf_write("rb", "ab\0cd")  # a C string ends at NUL
    assert ringbuf_read("rb", 100) == "ab"


def test_ringbuf_qmp_utf8_read_of_binary():
    ring = qemu_chr_new("rb", "ringbuf", {"size": 16})
    ring.write(b"ok\xff\xfeend")
    assert ringbuf_read("rb", 7) == "ok\ufffd\ufffdend"
    ring.write(b"A\0B")
    assert ringbuf_read("rb", 3) == "A"  # the bytes after NUL are consumed
    assert ringbuf_read("rb", 3) == ""


def test_ringbuf_qmp_utf8_partial_character():
    qemu_chr_new("rb", "ringbuf")
    ringbuf_write("rb", "é")
    assert ringbuf_read("rb", 1) == "\ufffd"


def test_ringbuf_qmp_base64():
    qemu_chr_new("rb", "ringbuf", {"size": 16})
    ringbuf_write("rb", "AAEC/w==", DataFormat.BASE64)
    assert ringbuf_read("rb", 100, DataFormat.BASE64) == "AAEC/w=="
    ringbuf_write("rb", "", DataFormat.BASE64)
    assert ringbuf_read("rb", 1, DataFormat.BASE64) == ""


def test_ringbuf_qmp_errors():
    qemu_chr_new("rb", "ringbuf")
    qemu_chr_new("null0", "null")
    with pytest.raises(Error, match=r"^Device 'nope' not found$"):
        ringbuf_write("nope", "x")
    with pytest.raises(Error, match=r"^Device 'nope' not found$"):
        ringbuf_read("nope", 1)
    with pytest.raises(Error, match=r"^null0 is not a ringbuf device$"):
        ringbuf_write("null0", "x")
    with pytest.raises(Error, match=r"^null0 is not a ringbuf device$"):
        ringbuf_read("null0", 1)
    for size in (0, -1):
        with pytest.raises(Error, match=r"^size must be greater than zero$"):
            ringbuf_read("rb", size)
    with pytest.raises(Error, match=r"^Base64 data is not valid$"):
        ringbuf_write("rb", "not base64!", DataFormat.BASE64)
    with pytest.raises(Error, match=r"^Base64 data is not valid$"):
        ringbuf_write("rb", "AAE", DataFormat.BASE64)
    with pytest.raises(Error, match=r"^Base64 data contains embedded NUL characters$"):
        ringbuf_write("rb", "AA\0=", DataFormat.BASE64)
    assert ringbuf_read("rb", 10) == ""


# --- frontend -------------------------------------------------------------------


def test_connect_in_use():
    chr_ = qemu_chr_new("s", "null")
    a, b = CharBackend(), CharBackend()
    a.connect(chr_)
    a.connect(chr_)  # connecting again to the same chardev is a no-op
    with pytest.raises(Error, match=r"^Device 's' is in use$") as ei:
        b.connect(chr_)
    assert "create another chardev" in (ei.value.hint or "")
    assert b.chr is None
    assert chr_.frontend is a


def test_connect_moves_to_another_chardev():
    s1 = qemu_chr_new("s1", "test-bounded")
    s2 = qemu_chr_new("s2", "test-bounded")
    dev = Device()
    dev.realize(s1)
    dev.fe.connect(s2)
    assert dev.fe.chr is s2
    assert s1.frontend is None
    assert not s1.frontend_open
    qemu_chr_delete("s1")


def test_no_backend():
    fe = CharBackend()
    fe.connect(None)
    assert fe.chr is None
    assert not fe.backend_connected()
    assert not fe.backend_open()
    assert fe.write(b"x") == 0
    assert fe.write_all(b"x") == 0
    assert fe.add_write_watch(lambda: None) is None
    assert fe.send_break(True) is False
    fe.accept_input()
    fe.set_handlers(lambda: 1, lambda data: None)
    fe.disable_handlers()
    fe.disconnect()


def test_opened_event_on_set_handlers():
    chr_ = qemu_chr_new("s", "test-bounded")
    dev = Device()
    dev.fe.connect(chr_)
    assert dev.fe.backend_connected()
    assert dev.fe.backend_open()
    assert not frontend_open(chr_)
    dev.fe.set_handlers(dev.can_receive, dev.receive, dev.event)
    assert dev.events == [ChrEvent.OPENED]
    assert frontend_open(chr_)
    assert isinstance(chr_, BoundedChardev)
    assert chr_.fe_open_calls == [True]
    assert chr_.read_handler_updates == 1


def test_backend_opened_later():
    chr_ = qemu_chr_new("s", "test-bounded", {"connected": False})
    assert not chr_.be_open
    dev = Device()
    dev.realize(chr_)
    assert dev.events == []
    assert not dev.fe.backend_open()
    chr_.be_event(ChrEvent.OPENED)
    assert dev.fe.backend_open()
    chr_.be_event(ChrEvent.BREAK)
    chr_.be_event(ChrEvent.CLOSED)
    assert not chr_.be_open
    assert dev.events == [ChrEvent.OPENED, ChrEvent.BREAK, ChrEvent.CLOSED]


def test_event_without_handler():
    chr_ = qemu_chr_new("s", "test-bounded")
    fe = CharBackend()
    fe.connect(chr_)
    fe.set_handlers(lambda: 0, lambda data: None)  # no event handler
    chr_.be_event(ChrEvent.CLOSED)
    assert not chr_.be_open


def test_input_respects_can_receive():
    chr_ = qemu_chr_new("s", "test-bounded")
    assert isinstance(chr_, BoundedChardev)
    dev = Device(depth=4)
    dev.realize(chr_)
    chr_.host_send(b"0123456789")
    assert bytes(dev.fifo) == b"0123"
    assert bytes(chr_.pending) == b"456789"  # kept by the backend
    assert dev.guest_read(1) == b"0"  # accept_input pushes one more
    assert bytes(dev.fifo) == b"1234"
    assert dev.guest_read(4) == b"1234"
    assert bytes(dev.fifo) == b"5678"
    assert dev.guest_read(4) == b"5678"
    assert dev.guest_read(4) == b"9"
    assert chr_.pending == b""
    assert dev.receive_sizes == [4, 1, 4, 1]
    assert max(dev.receive_sizes) <= dev.depth


def test_input_one_byte_at_a_time():
    chr_ = qemu_chr_new("s", "test-bounded")
    assert isinstance(chr_, BoundedChardev)
    dev = Device(depth=1)  # a UART with its FIFO disabled
    dev.realize(chr_)
    chr_.host_send(b"abc")
    got = [dev.guest_read(1) for _ in range(4)]
    assert got == [b"a", b"b", b"c", b""]
    assert dev.receive_sizes == [1, 1, 1]


def test_no_input_without_handlers():
    chr_ = qemu_chr_new("s", "test-bounded")
    assert isinstance(chr_, BoundedChardev)
    dev = Device()
    dev.fe.connect(chr_)
    assert chr_.be_can_write() == 0
    chr_.host_send(b"xy")
    assert chr_.pending == b"xy"
    dev.fe.set_handlers(dev.can_receive, dev.receive, dev.event)
    dev.fe.accept_input()
    assert bytes(dev.fifo) == b"xy"
    dev.fe.disable_handlers()
    assert not chr_.frontend_open
    assert chr_.fe_open_calls == [True, False]
    chr_.host_send(b"z")
    chr_.be_event(ChrEvent.BREAK)
    assert bytes(dev.fifo) == b"xy"
    assert dev.events == [ChrEvent.OPENED]


def test_negative_can_receive_counts_as_zero():
    chr_ = qemu_chr_new("s", "test-bounded")
    got: list[bytes] = []
    fe = CharBackend()
    fe.connect(chr_)
    fe.set_handlers(lambda: -5, got.append)
    assert chr_.be_can_write() == 0
    assert chr_.be_write(b"abc") == 0
    assert got == []


def test_output_backpressure_and_watch():
    chr_ = qemu_chr_new("s", "test-bounded", {"capacity": 4})
    assert isinstance(chr_, BoundedChardev)
    dev = Device()
    dev.realize(chr_)
    assert dev.fe.write(b"0123456789") == 4
    assert dev.fe.write(b"456789") == 0  # full: the device keeps its data
    woken = []
    assert dev.fe.add_write_watch(lambda: woken.append(bql_locked()))
    assert chr_.drain(2) == b"01"
    chr_.be_writable()
    assert woken == [True]
    chr_.be_writable()  # a watch fires once
    assert woken == [True]
    assert dev.fe.write(b"456789") == 2
    assert chr_.drain(10) == b"2345"


def test_write_watch_handle_runs_once_and_can_be_removed():
    chr_ = qemu_chr_new("s", "test-bounded", {"capacity": 2})
    assert isinstance(chr_, BoundedChardev)
    dev = Device()
    dev.realize(chr_)
    assert dev.fe.write(b"abc") == 2
    woken = []
    first = dev.fe.add_write_watch(lambda: woken.append("first"))
    second = dev.fe.add_write_watch(lambda: woken.append("second"))
    assert first is not None
    assert second is not None
    assert pending(first)
    assert pending(second)
    assert len(chr_._write_watches) == 1  # one backend watch serves both
    second.remove()
    second.remove()  # removing twice is harmless
    assert not pending(second)
    chr_.drain(2)
    chr_.be_writable()
    assert woken == ["first"]
    assert not pending(first)
    first.remove()  # after it ran: nothing to do
    # The last watch removed: the backend is no longer asked.
    third = dev.fe.add_write_watch(lambda: woken.append("third"))
    assert third is not None
    third.remove()
    assert chr_._write_watches == []


def test_write_watches_die_with_the_handlers_and_the_connection():
    chr_ = qemu_chr_new("s", "test-bounded", {"capacity": 1})
    dev = Device()
    dev.realize(chr_)
    woken = []
    watch = dev.fe.add_write_watch(lambda: woken.append(True))
    assert watch is not None
    dev.fe.disable_handlers()
    assert not pending(watch)
    assert chr_._write_watches == []
    dev.realize(chr_)
    watch = dev.fe.add_write_watch(lambda: woken.append(True))
    assert watch is not None
    dev.fe.disconnect()
    assert not pending(watch)
    assert chr_._write_watches == []
    chr_.be_writable()
    assert woken == []


def test_write_watch_polls_a_backend_that_cannot_signal():
    class Stingy(Chardev):
        BACKEND = "test-stingy"

        def __init__(self):
            super().__init__("stingy")
            self.room = 0

        def write(self, data):
            n = min(self.room, len(data))
            self.room -= n
            return n

    chr_ = Stingy()
    dev = Device()
    dev.realize(chr_)
    assert dev.fe.write(b"x") == 0
    woken = []
    watch = dev.fe.add_write_watch(lambda: woken.append(True))
    assert watch is not None
    deadline = time.monotonic() + 5
    while not woken and time.monotonic() < deadline:
        time.sleep(0.002)
        qemu_clock_run_timers(CLOCK_REALTIME)
    assert woken == [True]
    # A removed polled watch does not run.
    watch = dev.fe.add_write_watch(lambda: woken.append(True))
    assert watch is not None
    watch.remove()
    time.sleep(0.005)
    qemu_clock_run_timers(CLOCK_REALTIME)
    assert woken == [True]
    dev.fe.disconnect()


def test_write_all_waits_for_the_host():
    chr_ = qemu_chr_new("s", "test-bounded", {"capacity": 3})
    assert isinstance(chr_, BoundedChardev)
    fe = CharBackend()
    fe.connect(chr_)
    received = bytearray()
    stop = threading.Event()

    def host_reader():  # the host side reads without the BQL
        while not stop.is_set() or chr_.out:
            received.extend(chr_.drain(2))
            stop.wait(0.0005)

    t = threading.Thread(target=host_reader)
    t.start()
    try:
        assert fe.write_all(b"the quick brown fox") == 19
    finally:
        stop.set()
        t.join(5)
    assert bytes(received) == b"the quick brown fox"


class RefusingChardev(Chardev):
    """Refuses the first ``refusals`` writes; each wait for room takes 2 ms."""

    BACKEND = "test-refusing"

    def __init__(self, label, refusals):
        super().__init__(label)
        self.refusals = refusals
        self.waits = 0

    def write(self, data):
        if self.refusals:
            self.refusals -= 1
            return 0
        return len(data)

    def wait_writable(self):
        self.waits += 1
        time.sleep(0.002)


def test_write_all_counts_the_time_it_waited():
    # The time a blocking write stood still, for the machine's figures: what
    # the backend's waits took, and nothing when it never had to wait.
    quick = RefusingChardev("quick", 0)
    assert quick.write_all(b"abc") == 3
    assert quick.write_all_wait_ns == 0
    slow = RefusingChardev("slow", 3)
    assert slow.write_all(b"abc") == 3
    assert slow.waits == 3
    first = slow.write_all_wait_ns
    assert first >= 3 * 2_000_000
    slow.refusals = 1
    assert slow.write_all(b"d") == 1
    assert slow.write_all_wait_ns >= first + 2_000_000


def test_send_break():
    chr_ = qemu_chr_new("s", "test-bounded")
    assert isinstance(chr_, BoundedChardev)
    fe = CharBackend()
    fe.connect(chr_)
    assert fe.send_break(True) is True
    assert fe.send_break(False) is True
    assert chr_.breaks == [True, False]


def test_frontend_property():
    chr_ = qemu_chr_new("s", "null")
    fe = CharBackend()
    fe.connect(chr_)
    assert chr_.frontend is fe
    assert fe.chr is chr_
    fe.disconnect()
    assert frontend_of(chr_) is None
    assert chardev_of(fe) is None
    fe.disconnect()  # twice is fine


@pytest.mark.parametrize(
    ("what", "call"),
    [
        ("qemu_chr_new()", lambda c, fe: qemu_chr_new("new", "null")),
        ("qemu_chr_delete()", lambda c, fe: qemu_chr_delete("s")),
        ("qemu_chr_reset()", lambda c, fe: qemu_chr_reset()),
        ("Chardev.be_can_write()", lambda c, fe: c.be_can_write()),
        ("Chardev.be_can_write()", lambda c, fe: c.be_write(b"x")),
        ("Chardev.be_event()", lambda c, fe: c.be_event(ChrEvent.BREAK)),
        ("Chardev.be_writable()", lambda c, fe: c.be_writable()),
        ("CharBackend.connect()", lambda c, fe: CharBackend().connect(None)),
        ("CharBackend.disconnect()", lambda c, fe: fe.disconnect()),
        ("CharBackend.set_handlers()", lambda c, fe: fe.set_handlers(int, print)),
        ("CharBackend.disable_handlers()", lambda c, fe: fe.disable_handlers()),
        ("ringbuf_write()", lambda c, fe: ringbuf_write("s", "x")),
        ("ringbuf_read()", lambda c, fe: ringbuf_read("s", 1)),
    ],
)
def test_needs_bql(what, call):
    chr_ = qemu_chr_new("s", "test-bounded")
    fe = CharBackend()
    fe.connect(chr_)
    bql_unlock()
    with pytest.raises(BqlNotHeldError) as ei:
        call(chr_, fe)
    assert str(ei.value).startswith(f"{what} needs the BQL")


class Frontend(Object, type_name="test-chardev-frontend"):
    """A QOM object with chardev handlers as methods."""

    @override
    def instance_init(self) -> None:
        self.got = bytearray()
        self.fe = CharBackend()

    def can_receive(self) -> int:
        return 8

    def receive(self, data: bytes) -> None:
        self.got += data


def test_handlers_die_with_their_owner() -> None:
    chr_ = qemu_chr_new("c", "null")
    dev = object_get_root().property_add_child("dev", Frontend())
    dev.fe.connect(chr_)
    dev.fe.set_handlers(dev.can_receive, dev.receive)
    assert chr_.be_write(b"ab") == 2
    dev.unparent()
    assert chr_.be_write(b"cd") == 0
    assert not chr_.frontend_open
    assert bytes(dev.got) == b"ab"


def test_handlers_quiesce_and_change_owner() -> None:
    chr_ = qemu_chr_new("c", "null")
    dev = object_get_root().property_add_child("dev", Frontend())
    other = object_get_root().property_add_child("other", Frontend())
    fe = CharBackend()
    fe.connect(chr_)
    fe.set_handlers(dev.can_receive, dev.receive)
    # Handlers of another owner replace them; the first owner lets go.
    fe.set_handlers(other.can_receive, other.receive)
    dev.unparent()
    assert chr_.be_write(b"x") == 1
    fe.owner_quiesce()
    assert chr_.be_write(b"y") == 0
    fe.set_handlers(other.can_receive, other.receive)
    fe.disable_handlers()
    # Disabled handlers are no longer owned: the owner's death is a no-op.
    other.unparent()
    fe.set_handlers(lambda: 1, lambda data: None)
    assert chr_.be_write(b"zz") == 1
    assert bytes(other.got) == b"x"


class TrickleChardev(Chardev):
    """A backend that takes at most ``per_call`` bytes per write, as a busy socket."""

    BACKEND = "test-trickle"

    def __init__(self, label, options=None):
        super().__init__(label, options)
        self.per_call = 4096
        self.offered = 0
        self.calls = 0
        self.out = bytearray()

    def write(self, data):
        self.calls += 1
        self.offered += len(data)
        taken = bytes(data[: self.per_call])
        self.out += taken
        return len(taken)


def test_write_all_is_linear_when_the_backend_takes_little_at_a_time():
    # write_all copied the whole rest of the buffer on every partial write:
    # a 256 MiB qtest reply took 148 s.  Now each write is offered a bounded
    # slice, so the bytes copied grow linearly with the data.
    from qemu_api.chardev import CHR_WRITE_CHUNK

    chr_ = TrickleChardev("t")
    data = bytes(range(256)) * 4096  # 1 MiB
    assert chr_.write_all(data) == len(data)
    assert bytes(chr_.out) == data
    assert chr_.calls == len(data) // chr_.per_call
    assert chr_.offered <= chr_.calls * CHR_WRITE_CHUNK
    assert chr_.offered <= 16 * len(data)  # the old way offered ~128 times that
