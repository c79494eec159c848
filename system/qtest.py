r"""The qtest server: QEMU's line protocol for driving a machine from a test.

This module models QEMU's ``system/qtest.c`` (``softmmu/qtest.c`` in QEMU
7.2). A test program connects to the chardev given with ``-qtest`` and sends
one command per line; the server answers each with one line, ``OK ...``,
``FAIL ...`` or (for two malformed data cases, as QEMU) ``ERR ...``:

============================== ======================================
command                        reply
============================== ======================================
``readb/readw/readl/readq A``  ``OK 0x%016x`` (the value, target order)
``writeb/w/l/q A V``           ``OK``
``read A SIZE``                ``OK 0x<hex bytes>``
``write A SIZE 0x<hex>``       ``OK`` (short data is zero-filled)
``b64read A SIZE``             ``OK <base64>``
``b64write A SIZE <base64>``   ``OK``
``memset A SIZE BYTE``         ``OK``
``inb/inw/inl P``              ``OK 0x%04x``
``outb/outw/outl P V``         ``OK``
``clock_step [NS]``            ``OK <virtual time in ns>``
``clock_set NS``               ``OK <virtual time in ns>``
``irq_intercept_in PATH``      ``OK``
``irq_intercept_out PATH [N]`` ``OK``
``set_irq_in PATH NAME N LVL`` ``OK``
``endianness``                 ``OK little`` or ``OK big``
``module_load PREFIX NAME``    ``OK`` or ``FAIL`` (``qemu_api.module``)
============================== ======================================

Numbers are C ``strtoul`` numbers of base 0 (``0x`` hex, ``0`` octal,
decimal, an optional sign). Accesses go to the system address space
(:func:`~qemu_api.memory.get_address_space_memory`) through QEMU's buffer
path (``address_space_read``/``address_space_write``), with values in the
target's byte order. ``clock_step`` and ``clock_set`` exist only under
``-accel qtest``, where nothing else moves the virtual clock. After
``irq_intercept_in``/``irq_intercept_out``, each level change of the
device's anonymous GPIO lines is sent at once as an asynchronous line,
``IRQ raise N`` or ``IRQ lower N`` (it may come before the reply of the
command that caused it). ``irq_intercept_out PATH NAME`` intercepts the
named output list ``NAME`` instead (QEMU 8.1's form; ``sysbus-irq`` names a
sysbus device's IRQs) and fails when the device has no such outputs.

Where QEMU asserts (and dies) on a malformed line -- an unknown path given
to ``set_irq_in``, a missing argument, a bad number, a ``read`` of size 0 --
pyqemu answers ``FAIL <reason>`` and keeps serving. pyqemu is stricter in
three places where QEMU silently accepts garbage: extra arguments, ``write``
data that is not ``0x`` followed by hex digits, and sizes above
:data:`MAX_TRANSFER`. An exception raised by a device during a command is a
bug in the model: the reply is ``FAIL internal error ...``, the error goes to
:func:`~system.runstate.report_internal_error` (the machine stops in
``internal-error``) and the server goes on.

``-qtest-log FILE`` logs the session as QEMU does: ``[I 0.000000] OPENED``,
``[R +t] command`` for each line received and ``[S +t] reply`` for each
line sent, ``t`` being the seconds since the connection opened. Without
``-qtest-log`` the log goes to standard error; ``-qtest-log none`` turns it
off.

>>> from qemu_api.chardev import qemu_chr_delete, qemu_chr_new, ringbuf_read
>>> from system.main_loop import MainLoop
>>> ring = qemu_chr_new("qtest-doc", "ringbuf")
>>> loop = MainLoop()
>>> server = QTestServer(ring, loop, "none", accel_qtest=True)
>>> server.feed(b"endianness\nclock_step 10\nreadb 0x10 0x20\n")
>>> print(ringbuf_read("qtest-doc", 200), end="")
OK little
OK 10
FAIL readb: unexpected argument '0x20' (usage: readb ADDR)
>>> server.close()
>>> qemu_chr_delete("qtest-doc")
>>> loop.close()
"""

from __future__ import annotations

import base64
import contextlib
import functools
import re
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Literal, TextIO, final

from qemu_api.chardev import CHR_READ_BUF_LEN, CharBackend, Chardev, ChrEvent
from qemu_api.error import Error, error_report
from qemu_api.irq import IRQState, qemu_allocate_irq, qemu_irq_intercept_in
from qemu_api.memory import (
    AddressSpace,
    MemoryRegion,
    get_address_space_memory,
    get_system_memory,
    target_big_endian,
)
from qemu_api.module import module_load
from qemu_api.qdev import DeviceState
from qemu_api.qom import Object, object_resolve_path
from qemu_api.timer import (
    CLOCK_VIRTUAL,
    clock_set,
    clock_step,
    qemu_clock_deadline_ns,
    qemu_clock_get_ns,
)
from system import runstate
from system.main_loop import MainLoop

__all__ = ["MAX_TRANSFER", "QTestServer", "qtest_parse_number"]

MAX_TRANSFER: Final = 1 << 30
"""The largest SIZE of ``read``, ``write``, ``b64read``, ``b64write`` and ``memset``.

QEMU allocates SIZE bytes unchecked and dies on absurd sizes; pyqemu
answers ``FAIL`` above 1 GiB.
"""

_MAX_LINE: Final = 2 * MAX_TRANSFER + 4096
"""The longest line taken: ``write`` of :data:`MAX_TRANSFER` bytes in hex."""
_WRITE_CHUNK: Final = 1 << 16
"""The most bytes of a reply offered to the chardev at once (one copy each)."""
_OUT_HIGH_WATER: Final = 1 << 16
"""Queued reply bytes past which input waits until the client has read them."""

_UINT64_MAX: Final = (1 << 64) - 1
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_INT_MIN: Final = -(1 << 31)
_INT_MAX: Final = (1 << 31) - 1

# C strtoul/strtoll with base 0: leading white space, a sign, then 0x hex,
# 0 octal or decimal, and nothing after (QEMU's qemu_strtou64 with no endptr).
_NUMBER: Final = re.compile(
    r"[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))\Z"
)
_HEX_DIGITS: Final = re.compile(r"[0-9a-fA-F]*\Z")

# glib's base64 alphabet ranks (g_base64_decode_step); '=' has rank 0.
_B64_RANK: Final = {
    c: i
    for i, c in enumerate(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    )
}
_B64_PAD: Final = ord("=")
# Canonical base64, which glib and Python decode alike.
_B64_STRICT: Final = re.compile(
    r"[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z"
)


class _CommandError(Exception):
    """A malformed command: the reply is ``FAIL <message>``."""


def qtest_parse_number(text: str, lo: int, hi: int, *, wrap: bool = False) -> int:
    """Parse a qtest number as C's ``strtoull``/``strtoll`` with base 0 do.

    Args:
        text: the word: ``0x`` hex, ``0`` octal or decimal, with an optional
            sign and leading white space.
        lo: the smallest accepted value.
        hi: the largest accepted value.
        wrap: unsigned parsing: a negative number wraps modulo ``hi + 1``
            (``strtoull("-1")`` is ``UINT64_MAX``).

    Returns:
        The value.

    Raises:
        ValueError: ``text`` is not a number, or it is out of range; the
            message says which.

    >>> qtest_parse_number("0x10", 0, 2**64 - 1), qtest_parse_number("010", 0, 99)
    (16, 8)
    >>> hex(qtest_parse_number("-1", 0, 2**64 - 1, wrap=True))
    '0xffffffffffffffff'
    >>> qtest_parse_number("12ab", 0, 99)
    Traceback (most recent call last):
      ...
    ValueError: '12ab' is not a number (0x hex, 0 octal or decimal)
    """
    m = _NUMBER.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a number (0x hex, 0 octal or decimal)")
    sign, hexa, octal, dec = m.groups()
    if hexa is not None:
        magnitude = int(hexa, 16)
    elif octal is not None:
        magnitude = int(octal, 8)
    else:
        magnitude = int(dec, 10)
    value = -magnitude if sign == "-" else magnitude
    if wrap:
        if magnitude > hi:
            raise ValueError(f"{text!r} is out of range (at most {hi:#x})")
        return value % (hi + 1)
    if not lo <= value <= hi:
        raise ValueError(f"{text!r} is out of range ({lo} to {hi})")
    return value


def _g_base64_decode(text: str) -> bytes:
    """Decode base64 as glib's ``g_base64_decode`` does.

    Characters outside the alphabet are skipped and an incomplete final
    group is dropped: the lenient decoding QEMU's ``b64write`` relies on.
    """
    if len(text) % 4 == 0 and _B64_STRICT.match(text):
        return base64.b64decode(text)
    out = bytearray()
    v = 0
    i = 0
    last0 = last1 = 0
    for c in text.encode("latin-1", "replace"):
        rank = 0 if c == _B64_PAD else _B64_RANK.get(c)
        if rank is None:
            continue
        last1, last0 = last0, c
        v = ((v << 6) | rank) & 0xFFFFFF
        i += 1
        if i == 4:
            out.append(v >> 16)
            if last1 != _B64_PAD:
                out.append((v >> 8) & 0xFF)
            if last0 != _B64_PAD:
                out.append(v & 0xFF)
            i = 0
    return bytes(out)


def _open_log(path: str) -> TextIO:
    """Open (and truncate) the log, as QEMU's ``fopen(qtest_log, "w+")``.

    The text is Latin-1 so that every byte of a command is logged as received.
    """
    return open(path, "w+", encoding="latin-1")


def _region_at(addr: int) -> tuple[MemoryRegion, int] | None:
    """The leaf region that serves ``addr`` in system memory, and the offset in it.

    Only used to name the culprit of an internal error.
    """
    mr = get_system_memory()
    offset = addr
    while True:
        while mr.alias_target is not None:
            offset += mr.alias_offset
            target = mr.alias_target
            assert target is not None
            mr = target
        for sub in mr.subregions:
            if sub.enabled and sub.addr <= offset < sub.addr + sub.size:
                offset -= sub.addr
                mr = sub
                break
        else:
            return (mr, offset) if mr.parent_container is not None else None


def _describe(obj: object) -> str:
    """A device's type and QOM path, for an error message."""
    if isinstance(obj, Object):
        path = obj.canonical_path()
        return f"{obj.typename()} ({path})" if path else obj.typename()
    return type(obj).__name__


def _access_what(addr: int, size: int, is_write: bool) -> str:
    """Name the device and access behind an internal error (``pl011 read at ...``)."""
    kind = "write" if is_write else "read"
    found = _region_at(addr)
    if found is None:
        return f"{kind} at 0x{addr:08x} size {size}"
    mr, _ = found
    owner = mr.owner
    who = _describe(owner) if owner is not None else f"region '{mr.name}'"
    return f"{who} {kind} at 0x{addr:08x} size {size} (region '{mr.name}')"


_Handler = Callable[["QTestServer", list[str]], str]


@final
class _Command:
    """One protocol command: its handler and argument usage."""

    __slots__ = ("handler", "max_args", "min_args", "name", "qtest_only", "usage")

    def __init__(
        self,
        name: str,
        handler: _Handler,
        args: str,
        optional: int = 0,
        qtest_only: bool = False,
    ) -> None:
        self.name = name
        self.handler = handler
        self.usage = f"{name} {args}".rstrip()
        self.max_args = len(args.split())
        self.min_args = self.max_args - optional
        self.qtest_only = qtest_only


@final
class QTestServer:
    """The qtest protocol on a chardev (QEMU's ``qtest_server_init``).

    Args:
        chr_: the chardev given with ``-qtest``; the server becomes its
            frontend.
        loop: the emulator's main loop.
        log_path: ``-qtest-log``: a file to log the session to, ``"none"``
            for no log, None for standard error (QEMU's default).
        accel_qtest: whether the accelerator is qtest (``clock_step`` and
            ``clock_set`` exist only then); by default, whether the main
            loop leaves the virtual clock alone.

    Raises:
        Error: the log file cannot be opened, or the chardev is in use.
    """

    def __init__(
        self,
        chr_: Chardev,
        loop: MainLoop,
        log_path: str | None,
        *,
        accel_qtest: bool | None = None,
    ) -> None:
        self._loop = loop
        self._accel_qtest = (
            not loop.virtual_follows_host if accel_qtest is None else accel_qtest
        )
        self._log: TextIO | None
        self._files = contextlib.ExitStack()
        if log_path is None:
            self._log = sys.stderr
        elif log_path == "none":
            self._log = None
        else:
            try:
                self._log = self._files.enter_context(_open_log(log_path))
            except OSError as e:
                raise Error(
                    f"could not open qtest log file '{log_path}': {e.strerror}"
                ) from None
        self._inbuf = bytearray()
        self._scanned = 0  # bytes of _inbuf known to hold no newline
        self._discarding = False  # skipping the rest of an overlong line
        self._out: deque[bytes] = deque()  # replies not yet written
        self._out_head = 0  # bytes of _out[0] already written
        self._out_size = 0
        self._out_watch = False
        self._running = False  # inside _run_lines
        self._closed = False
        self._opened = False
        self._t0 = time.monotonic()
        self._irq_levels: dict[int, int] = {}
        self._intercept_dev: DeviceState | None = None
        self._fe = CharBackend()
        self._fe.connect(chr_)
        self._fe.set_handlers(self._can_receive, self.feed, self._event)

    # -- chardev side ------------------------------------------------------------

    def _can_receive(self) -> int:
        # Backpressure: no input while replies wait for the client to read.
        return 0 if self._out or self._closed else CHR_READ_BUF_LEN

    def _event(self, event: ChrEvent) -> None:
        if event is ChrEvent.OPENED:
            self._irq_levels.clear()
            self._t0 = time.monotonic()
            self._opened = True
            self._log_write(f"[I {0.0:.06f}] OPENED\n")
        elif event is ChrEvent.CLOSED:
            elapsed = self._elapsed()
            self._opened = False
            self._log_write(f"[I +{elapsed:.06f}] CLOSED\n")
            # The client is gone: what it sent or was sent dies with it.
            self._inbuf.clear()
            self._scanned = 0
            self._discarding = False
            self._out.clear()
            self._out_head = self._out_size = 0

    def feed(self, data: bytes) -> None:
        """Take input from the client: run every complete line in ``data``.

        The chardev calls it (it is the frontend's ``receive`` handler);
        an incomplete last line waits for the rest.  Replies go out without
        blocking the main loop: when the client reads slower than the
        commands produce, the remaining lines wait (and no more input is
        taken) until the replies are written.
        """
        self._inbuf += data
        self._run_lines()

    def _run_lines(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            while not self._closed:
                if self._out_size >= _OUT_HIGH_WATER and not self._flush():
                    return  # the write watch resumes
                line = self._next_line()
                if line is None:
                    break
                try:
                    self._process(line.decode("latin-1"))
                except Exception as exc:
                    # A bug in the server, not in a model: answer, log it, go
                    # on; the machine's run state is not the client's to change.
                    what = f"{type(exc).__name__}: {exc}"
                    error_report(f"internal error in the qtest server: {what}")
                    import traceback  # only on an internal error

                    sys.stderr.write("".join(traceback.format_exception(exc)))
                    sys.stderr.flush()
                    self._send(f"FAIL internal error in the qtest server: {what}\n")
            self._flush()
        finally:
            self._running = False

    def _next_line(self) -> bytes | None:
        """Take the next complete line from the input buffer."""
        buf = self._inbuf
        while True:
            nl = buf.find(b"\n", self._scanned)
            if nl < 0:
                self._scanned = len(buf)
                if len(buf) > _MAX_LINE:
                    # No command needs this much: drop it up to its newline.
                    buf.clear()
                    self._scanned = 0
                    self._discarding = True
                return None
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            self._scanned = 0
            if not self._discarding:
                return line
            self._discarding = False
            self._send(
                f"FAIL line too long: more than {_MAX_LINE} bytes (the largest "
                f"transfer is {MAX_TRANSFER:#x} bytes)\n"
            )

    def close(self) -> None:
        """Stop serving: release the chardev and close the log file."""
        self._closed = True
        self._out.clear()
        self._out_head = self._out_size = 0
        self._fe.disconnect()
        self._log = None
        self._files.close()

    # -- output ------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0 if self._opened else 0.0

    def _log_write(self, text: str) -> None:
        if self._log is not None:
            self._log.write(text)
            self._log.flush()

    def _send(self, text: str, prefix: bool = True) -> None:
        """Send one line (QEMU's ``qtest_send_prefix`` + ``qtest_send``)."""
        log = self._log
        if log is not None and self._opened:
            if prefix:
                log.write(f"[S +{self._elapsed():.06f}] ")
            log.write(text)
        if self._closed:
            return
        data = text.encode("latin-1")
        self._out.append(data)
        self._out_size += len(data)
        if not self._running:
            self._flush()  # an IRQ line outside a command: at once

    def _flush(self) -> bool:
        """Write queued replies without blocking; return True when all are out.

        What the client does not take now waits for a write watch, which
        resumes the pending input; the log is flushed first, since a client
        may end the emulator on a reply.
        """
        if not self._out:
            return True
        if self._log is not None:
            self._log.flush()
        out = self._out
        while out:
            chunk = out[0]
            head = self._out_head
            piece = (
                chunk[head : head + _WRITE_CHUNK]
                if head or len(chunk) > _WRITE_CHUNK
                else chunk
            )
            n = self._fe.write(piece)
            if n <= 0:
                if self._out_watch:
                    return False
                if self._fe.add_write_watch(self._writable):
                    self._out_watch = True
                    return False
                # The backend cannot say when it has room (and so never
                # blocks for long): wait, as QEMU's qtest_send does.
                self._fe.write_all(chunk[head:])
                n = len(chunk) - head
            self._out_size -= n
            head += n
            if head >= len(chunk):
                out.popleft()
                head = 0
            self._out_head = head
        return True

    def _writable(self) -> None:
        """The client can take more output: write, then take input again."""
        self._out_watch = False
        if self._flush() and not self._closed:
            self._run_lines()
            if not self._out:
                self._fe.accept_input()

    # -- commands ----------------------------------------------------------------

    def _process(self, line: str) -> None:
        words = line.split(" ")
        if self._log is not None:
            self._log.write(
                f"[R +{self._elapsed():.06f}]" + "".join(" " + w for w in words) + "\n"
            )
        cmd = _COMMANDS.get(words[0])
        if cmd is None or (cmd.qtest_only and not self._accel_qtest):
            self._send(f"FAIL Unknown command '{words[0]}'\n")
            return
        nargs = len(words) - 1
        try:
            if "" in words:
                raise _CommandError(
                    f"{cmd.name}: empty argument {words.index('')}: separate the "
                    "words with exactly one space (and none at the end)"
                )
            if nargs < cmd.min_args:
                missing = cmd.usage.split()[nargs + 1]
                raise _CommandError(
                    f"{cmd.name}: missing {missing} (usage: {cmd.usage})"
                )
            if nargs > cmd.max_args:
                raise _CommandError(
                    f"{cmd.name}: unexpected argument '{words[cmd.max_args + 1]}' "
                    f"(usage: {cmd.usage})"
                )
            reply = cmd.handler(self, words)
        except _CommandError as e:
            self._send(f"FAIL {e}\n")
            return
        # QEMU sends its two "ERR" replies without the log prefix.
        self._send(reply, prefix=not reply.startswith("ERR "))

    def _internal_error(self, what: str, exc: Exception) -> _CommandError:
        runstate.report_internal_error(what, exc)
        return _CommandError(f"internal error in {what}: {type(exc).__name__}: {exc}")

    def _number(
        self, words: list[str], i: int, lo: int, hi: int, *, wrap: bool = False
    ) -> int:
        try:
            return qtest_parse_number(words[i], lo, hi, wrap=wrap)
        except ValueError as e:
            cmd = _COMMANDS[words[0]]
            arg = cmd.usage.split()[i]
            raise _CommandError(f"{cmd.name}: {arg} {e}") from None

    def _u64(self, words: list[str], i: int) -> int:
        return self._number(words, i, 0, _UINT64_MAX, wrap=True)

    def _size(self, words: list[str], i: int, *, nonzero: bool = False) -> int:
        size = self._u64(words, i)
        if nonzero and size == 0:
            raise _CommandError(f"{words[0]}: SIZE must not be 0")
        if size > MAX_TRANSFER:
            raise _CommandError(
                f"{words[0]}: SIZE {size:#x} is too large (at most {MAX_TRANSFER:#x})"
            )
        return size

    def _space(self) -> AddressSpace:
        return get_address_space_memory()

    def _mem_read(self, addr: int, size: int) -> bytearray:
        buf = bytearray(size)
        try:
            self._space().read_buf(addr, buf)
        except Exception as exc:
            raise self._internal_error(_access_what(addr, size, False), exc) from None
        return buf

    def _mem_write(self, addr: int, data: bytes | bytearray) -> None:
        try:
            self._space().write_buf(addr, data)
        except Exception as exc:
            what = _access_what(addr, len(data), True)
            raise self._internal_error(what, exc) from None

    @staticmethod
    def _byteorder() -> Literal["little", "big"]:
        return "big" if target_big_endian() else "little"

    def _cmd_read_value(self, words: list[str]) -> str:
        size = _SIZES[words[0][4]]
        addr = self._u64(words, 1)
        buf = self._mem_read(addr, size)
        value = int.from_bytes(buf, self._byteorder())
        return f"OK 0x{value:016x}\n"

    def _cmd_write_value(self, words: list[str]) -> str:
        size = _SIZES[words[0][5]]
        addr = self._u64(words, 1)
        value = self._u64(words, 2) & ((1 << (size * 8)) - 1)
        self._mem_write(addr, value.to_bytes(size, self._byteorder()))
        return "OK\n"

    def _cmd_in(self, words: list[str]) -> str:
        # pyqemu models no port I/O yet: every port reads as QEMU's unassigned
        # I/O ports do, all ones; bytes past the 64 KiB I/O space read as 0.
        size = _SIZES[words[0][2]]
        port = self._port(words)
        data = bytes(0xFF if port + i <= 0xFFFF else 0 for i in range(size))
        return f"OK 0x{int.from_bytes(data, self._byteorder()):04x}\n"

    def _cmd_out(self, words: list[str]) -> str:
        self._port(words)
        self._number(words, 2, 0, _UINT64_MAX, wrap=True)
        return "OK\n"

    def _port(self, words: list[str]) -> int:
        port = self._u64(words, 1)
        if port > 0xFFFF:
            raise _CommandError(
                f"{words[0]}: ADDR {port:#x} is not an I/O port (0 to 0xffff)"
            )
        return port

    def _cmd_read(self, words: list[str]) -> str:
        addr = self._u64(words, 1)
        size = self._size(words, 2, nonzero=True)
        return f"OK 0x{self._mem_read(addr, size).hex()}\n"

    def _cmd_b64read(self, words: list[str]) -> str:
        addr = self._u64(words, 1)
        size = self._size(words, 2)
        data = self._mem_read(addr, size) if size else b""
        return f"OK {base64.b64encode(data).decode('ascii')}\n"

    def _cmd_write(self, words: list[str]) -> str:
        addr = self._u64(words, 1)
        size = self._size(words, 2)
        text = words[3]
        if len(text) < 3:
            return "ERR invalid argument size\n"
        digits = text[2:]
        if text[:2] not in ("0x", "0X") or _HEX_DIGITS.match(digits) is None:
            raise _CommandError(
                f"write: DATA {text!r} is not 0x followed by hex digits"
            )
        # QEMU takes whole bytes only; short data is zero-filled, long data cut.
        nbytes = min(size, len(digits) // 2)
        data = bytes.fromhex(digits[: nbytes * 2]) + bytes(size - nbytes)
        if size:
            self._mem_write(addr, data)
        return "OK\n"

    def _cmd_b64write(self, words: list[str]) -> str:
        addr = self._u64(words, 1)
        size = self._size(words, 2)
        text = words[3]
        if len(text) < 3:
            return "ERR invalid argument size\n"
        data = _g_base64_decode(text)
        if len(data) != size:
            if self._log is not None and self._opened:
                self._log.write(
                    f"[S +{self._elapsed():.06f}] b64write: data length mismatch "
                    f"(told {size}, found {len(data)})\n"
                )
            data = data[:size] + bytes(max(size - len(data), 0))
        if size:
            self._mem_write(addr, data)
        return "OK\n"

    def _cmd_memset(self, words: list[str]) -> str:
        addr = self._u64(words, 1)
        size = self._size(words, 2)
        pattern = self._number(words, 3, 0, _UINT64_MAX, wrap=True) & 0xFF
        if size:
            self._mem_write(addr, bytes((pattern,)) * size)
        return "OK\n"

    def _cmd_endianness(self, words: list[str]) -> str:
        return "OK big\n" if target_big_endian() else "OK little\n"

    def _clock_warp(self, dest: int) -> str:
        now = qemu_clock_get_ns(CLOCK_VIRTUAL)
        try:
            if dest >= now:
                clock_set(dest)
        except Exception as exc:
            raise self._internal_error(
                f"a timer callback while moving the virtual clock to {dest} ns", exc
            ) from None
        return f"OK {qemu_clock_get_ns(CLOCK_VIRTUAL)}\n"

    def _cmd_clock_step(self, words: list[str]) -> str:
        if len(words) > 1:
            ns = self._number(words, 1, _INT64_MIN, _INT64_MAX)
        else:
            # QEMU: the next deadline, or -1 (no move) when no timer is armed.
            ns = qemu_clock_deadline_ns(CLOCK_VIRTUAL)
        now = qemu_clock_get_ns(CLOCK_VIRTUAL)
        if ns < 0:
            return f"OK {now}\n"
        if ns == 0:
            # Run what is due, as QEMU's main loop would right after the reply.
            try:
                clock_step(0)
            except Exception as exc:
                raise self._internal_error(
                    "a timer callback during clock_step", exc
                ) from None
            return f"OK {qemu_clock_get_ns(CLOCK_VIRTUAL)}\n"
        return self._clock_warp(min(now + ns, _INT64_MAX))

    def _cmd_clock_set(self, words: list[str]) -> str:
        return self._clock_warp(self._number(words, 1, _INT64_MIN, _INT64_MAX))

    def _cmd_module_load(self, words: list[str]) -> str:
        # QEMU's module_load: OK once loaded, a bare FAIL for an unknown
        # module; a module that fails to import is reported on stderr first.
        try:
            loaded = module_load(words[1], words[2])
        except Error as e:
            error_report(e.msg)
            return "FAIL\n"
        return "OK\n" if loaded else "FAIL\n"

    def _device(self, words: list[str]) -> DeviceState | None:
        obj = object_resolve_path(words[1])
        if obj is None:
            return None
        dev = obj.dynamic_cast(DeviceState)
        if dev is None:
            raise _CommandError(
                f"{words[0]}: '{words[1]}' is a {obj.typename()}, not a device"
            )
        return dev

    def _cmd_irq_intercept(self, words: list[str]) -> str:
        dev = self._device(words)
        if dev is None:
            return "FAIL Unknown device\n"
        if self._intercept_dev is not None:
            if self._intercept_dev is not dev:
                return "FAIL IRQ intercept already enabled\n"
            return "OK\n"
        # QEMU 7.2 intercepts the anonymous GPIO lists only; QEMU 8.1 added
        # an optional output list name.
        if words[0] == "irq_intercept_out":
            name = words[2] if len(words) > 2 else None
            if name is not None and dev.num_gpio_out(name) == 0:
                return "FAIL No intercepts installed\n"
            for i in range(dev.num_gpio_out(name)):
                old = dev.get_gpio_out_connector(name, i)
                icpt = qemu_allocate_irq(functools.partial(self._irq_out, old), i)
                dev.connect_gpio_out_named(name, i, icpt)
        else:
            lines = [dev.get_gpio_in(i) for i in range(dev.num_gpio_in(None))]
            qemu_irq_intercept_in(lines, self._irq_in)
        self._intercept_dev = dev
        return "OK\n"

    def _irq_in(self, original: IRQState, n: int, level: int) -> None:
        original.set(level)
        self._irq_report(n, level)

    def _irq_out(self, old: IRQState | None, n: int, level: int) -> None:
        if old is not None:
            old.set(level)
        self._irq_report(n, level)

    def _irq_report(self, n: int, level: int) -> None:
        if self._irq_levels.get(n, 0) != level:
            self._irq_levels[n] = level
            self._send(f"IRQ {'raise' if level else 'lower'} {n}\n")

    def _cmd_set_irq_in(self, words: list[str]) -> str:
        dev = self._device(words)
        if dev is None:
            return "FAIL Unknown device\n"
        name: str | None = None if words[2] == "unnamed-gpio-in" else words[2]
        n = self._number(words, 3, _INT_MIN, _INT_MAX)
        level = self._number(words, 4, _INT_MIN, _INT_MAX)
        try:
            irq = dev.get_gpio_in_named(name, n)
        except Error as e:
            raise _CommandError(f"set_irq_in: {e.msg}") from None
        try:
            irq.set(level)
        except Exception as exc:
            raise self._internal_error(
                f"{_describe(dev)} GPIO input '{words[2]}[{n}]' set to {level}", exc
            ) from None
        return "OK\n"


_SIZES: Final = {"b": 1, "w": 2, "l": 4, "q": 8}

_COMMANDS: Final[dict[str, _Command]] = {
    c.name: c
    for c in (
        *(_Command(f"read{s}", QTestServer._cmd_read_value, "ADDR") for s in "bwlq"),
        *(
            _Command(f"write{s}", QTestServer._cmd_write_value, "ADDR VALUE")
            for s in "bwlq"
        ),
        *(_Command(f"in{s}", QTestServer._cmd_in, "ADDR") for s in "bwl"),
        *(_Command(f"out{s}", QTestServer._cmd_out, "ADDR VALUE") for s in "bwl"),
        _Command("read", QTestServer._cmd_read, "ADDR SIZE"),
        _Command("write", QTestServer._cmd_write, "ADDR SIZE DATA"),
        _Command("b64read", QTestServer._cmd_b64read, "ADDR SIZE"),
        _Command("b64write", QTestServer._cmd_b64write, "ADDR SIZE B64_DATA"),
        _Command("memset", QTestServer._cmd_memset, "ADDR SIZE VALUE"),
        _Command("endianness", QTestServer._cmd_endianness, ""),
        _Command("clock_step", QTestServer._cmd_clock_step, "[NS]", 1, True),
        _Command("clock_set", QTestServer._cmd_clock_set, "NS", qtest_only=True),
        _Command("module_load", QTestServer._cmd_module_load, "PREFIX NAME"),
        _Command("irq_intercept_in", QTestServer._cmd_irq_intercept, "QOM-PATH"),
        _Command(
            "irq_intercept_out", QTestServer._cmd_irq_intercept, "QOM-PATH [NAME]", 1
        ),
        _Command("set_irq_in", QTestServer._cmd_set_irq_in, "QOM-PATH NAME NUM LEVEL"),
    )
}
