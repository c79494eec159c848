"""Character devices: backends, the chardev registry and device frontends.

This module models QEMU's ``include/chardev/char.h`` and
``include/chardev/char-fe.h`` (``chardev/char.c``, ``chardev/char-fe.c``):

- :class:`Chardev` is a *backend*: where a serial port's bytes go and come
  from (a file, a socket, a ring buffer).  This module has the ``null`` and
  ``ringbuf`` backends; the runtime adds the host-facing ones
  (:func:`register_chardev_backend`).
- The registry creates backends by name and label, as ``-chardev`` and
  QMP ``chardev-add`` do: :func:`qemu_chr_new`, :func:`qemu_chr_find`,
  :func:`qemu_chr_delete`.
- :class:`CharBackend` is a device's *frontend* (QEMU's ``CharBackend`` and
  its ``qemu_chr_fe_*`` functions): the device connects it to a backend,
  installs its handlers and writes its output through it.

Flow control works both ways.  Output: :meth:`CharBackend.write` returns how
many bytes the backend accepted (0 when it cannot take more now);
:meth:`CharBackend.write_all` waits until everything is written.  Input: a
backend hands bytes to the device only through :meth:`Chardev.be_write`,
which never delivers more than the device's ``can_receive`` handler allows;
the rest stays in the backend (in the operating system, or in a bounded
buffer), and the device calls :meth:`CharBackend.accept_input` when it can
take more.

.. rubric:: Writing without blocking

:meth:`CharBackend.write_all` stalls the whole machine while the host side
does not read (QEMU's ``qemu_chr_fe_write_all``).  A device with a transmit
buffer or FIFO never has to: it writes what the backend takes now with
:meth:`CharBackend.write` (``qemu_chr_fe_write``), keeps the rest, and asks
to be called back when the backend can take more with
:meth:`CharBackend.add_write_watch` (``qemu_chr_fe_add_watch(G_IO_OUT |
G_IO_HUP)``).  The watch is one-shot; the callback may still find the
backend full (it then writes nothing and watches again).  It also runs when
the host side goes away, after which writes discard their data and report
it taken, so a device never waits for a peer that is gone.  Every backend
can be watched: those that cannot signal room are polled every
:data:`CHR_WRITE_POLL_MS` milliseconds of host time.

Watches belong to the frontend: disconnecting it or removing its handlers
(which the owner's unrealize does) removes them, and
:meth:`ChrWatch.remove` cancels one.  Without a backend, :meth:`CharBackend.write`
returns 0 and there is nothing to watch (``add_write_watch`` returns None):
check :meth:`CharBackend.backend_connected` and treat the output as sent.

>>> class Slow(Chardev):  # a backend with room for 2 bytes at a time
...     SUPPORTS_WRITE_WATCH = True
...
...     def __init__(self) -> None:
...         super().__init__("slow")
...         self.out, self.room = bytearray(), 2
...
...     def write(self, data: bytes) -> int:
...         n = min(len(data), self.room)
...         self.out += data[:n]
...         self.room -= n
...         return n
>>> class Tx:  # a device's transmit side
...     def __init__(self, fe: CharBackend) -> None:
...         self.fe, self.pending, self.watch = fe, b"", None
...
...     def send(self, data: bytes) -> None:
...         self.pending += data
...         self.flush()
...
...     def flush(self) -> None:
...         self.watch = None
...         n = self.fe.write(self.pending)
...         self.pending = self.pending[n:]
...         if self.pending:
...             self.watch = self.fe.add_write_watch(self.flush)
>>> slow = Slow()
>>> fe = CharBackend()
>>> fe.connect(slow)
>>> tx = Tx(fe)
>>> tx.send(b"hello")  # returns at once, whatever the backend takes
>>> bytes(slow.out), tx.pending, tx.watch.pending
(b'he', b'llo', True)
>>> slow.room = 8
>>> slow.be_writable()  # the backend has room again: the watch runs
>>> bytes(slow.out), tx.pending, tx.watch
(b'hello', b'', None)
>>> fe.disconnect()

All handlers run with the BQL held.

>>> ring = qemu_chr_new("log", "ringbuf", {"size": 8})
>>> fe = CharBackend()
>>> fe.connect(ring)
>>> fe.write_all(b"hello, world")
12
>>> ringbuf_read("log", 100)
'o, world'
>>> qemu_chr_delete("log")
Traceback (most recent call last):
  ...
qemu_api.error.Error: Chardev 'log' is busy
>>> fe.disconnect()
>>> qemu_chr_delete("log")
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import time
from collections.abc import Callable, Mapping
from typing import ClassVar, final

from qemu_api._compat import override
from qemu_api.bql import bql_assert_locked
from qemu_api.error import Error
from qemu_api.option import parse_bool, parse_size
from qemu_api.qom import Object, callback_owner
from qemu_api.timer import CLOCK_REALTIME, SCALE_MS, Timer, qemu_clock_get_ms
from qemu_trace.qemu_api import trace_qemu_chr_write_all_wait

__all__ = [
    "CHR_READ_BUF_LEN",
    "CHR_WRITE_CHUNK",
    "CHR_WRITE_POLL_MS",
    "CharBackend",
    "Chardev",
    "ChardevOptions",
    "ChrEvent",
    "ChrWatch",
    "DataFormat",
    "NullChardev",
    "RingBufChardev",
    "qemu_chr_backends",
    "qemu_chr_delete",
    "qemu_chr_find",
    "qemu_chr_list",
    "qemu_chr_new",
    "qemu_chr_reset",
    "register_chardev_backend",
    "ringbuf_read",
    "ringbuf_write",
]

ChardevOptions = Mapping[str, "str | int | bool"]
"""Backend options, as ``-chardev`` key=value pairs or QMP arguments."""

CHR_READ_BUF_LEN = 4096
"""The most bytes a backend reads from the host at once (QEMU's constant)."""

CHR_WRITE_CHUNK = 1 << 16
"""The most bytes :meth:`Chardev.write_all` offers a backend at once."""

CHR_WRITE_POLL_MS = 1
"""How often a write watch asks a backend that cannot signal room (host ms)."""


@final
class ChrEvent(enum.IntEnum):
    """Events a backend reports to its frontend (``QEMUChrEvent``)."""

    BREAK = 0
    """A serial break was received."""
    OPENED = 1
    """A connection was established (the backend is open)."""
    MUX_IN = 2
    """The mux focus moved to this frontend."""
    MUX_OUT = 3
    """The mux focus is moving away from this frontend."""
    CLOSED = 4
    """The connection was closed."""


@final
class DataFormat(enum.Enum):
    """The encodings of QMP ``ringbuf-write``/``ringbuf-read`` data."""

    UTF8 = "utf8"
    """Text: the bytes as UTF-8."""
    BASE64 = "base64"
    """Binary data in base64."""


class Chardev:
    """Base class of chardev backends (QEMU's ``Chardev``/``ChardevClass``).

    A backend subclass overrides the hooks it needs:

    - :meth:`write` takes output from the frontend (by default it discards
      it, as QEMU's ``null_chr_write``);
    - :meth:`open` acquires host resources when the chardev is created, and
      :meth:`close` releases them when it is deleted;
    - :meth:`accept_input` is called when the frontend can take more input:
      push what is pending with :meth:`be_write`;
    - :meth:`update_read_handler` is called when the frontend's handlers
      change (start or stop reading from the host);
    - :meth:`wait_writable` blocks until :meth:`write` can make progress;
    - :meth:`set_break` sends a serial break, if the backend can.

    Backends push input with :meth:`be_write`, report events with
    :meth:`be_event`, and wake frontends waiting for room with
    :meth:`be_writable`.

    Class attributes ``BACKEND`` (the driver name) and ``OPTIONS`` (the
    option names it accepts) describe the backend to the registry.

    Args:
        label: the chardev's id (``-chardev ...,id=LABEL``).
        options: the backend options; see ``OPTIONS``.

    Raises:
        Error: an option is unknown or invalid.
    """

    BACKEND: ClassVar[str] = ""
    """The driver name, as in ``-chardev BACKEND,...``."""
    OPTIONS: ClassVar[frozenset[str]] = frozenset()
    """The option names this backend accepts."""
    SUPPORTS_WRITE_WATCH: ClassVar[bool] = False
    """True if the backend calls :meth:`be_writable` when room frees up."""
    COMMON_OPTIONS: ClassVar[frozenset[str]] = frozenset({"logfile", "logappend"})
    """The options every backend takes (QEMU's ``ChardevCommon``): ``logfile``
    names a file that receives a copy of everything the frontend wrote (what
    the backend accepted); ``logappend=on`` appends to it instead of
    truncating it."""

    def __init__(self, label: str, options: ChardevOptions | None = None) -> None:
        self.label = label
        self.filename = self.BACKEND
        """What the chardev is connected to, for ``query-chardev``."""
        self.be_open = False
        """True while the backend is open (between OPENED and CLOSED events)."""
        self._fe: CharBackend | None = None
        self._write_watches: list[Callable[[], None]] = []
        self.write_all_wait_ns = 0
        """Host ns spent in :meth:`write_all` waiting for room: the time the
        writer (with a CPU, the whole machine) was blocked on this chardev.
        Each wait is also traced (``qemu_chr_write_all_wait``)."""
        for name in options or {}:
            if name not in self.OPTIONS and name not in self.COMMON_OPTIONS:
                accepted = ", ".join(sorted(self.OPTIONS | self.COMMON_OPTIONS))
                raise Error(
                    f"Invalid parameter '{name}'",
                    hint=f"Options of the '{self.BACKEND}' backend: {accepted}\n",
                )
        logfile = (options or {}).get("logfile")
        self.logfile = None if logfile is None else str(logfile)
        """The file that receives a copy of the output (``logfile=``), or None."""
        logappend = (options or {}).get("logappend", False)
        self.logappend = (
            logappend
            if isinstance(logappend, bool)
            else parse_bool("logappend", str(logappend))
        )
        """True if the log is appended to rather than truncated."""
        self._logfd = -1

    # -- hooks ---------------------------------------------------------------

    def open(self) -> bool:
        """Acquire host resources; return True if the backend is open now.

        Called once by :func:`qemu_chr_new`; returning True sends
        :attr:`ChrEvent.OPENED` (QEMU's ``be_opened``).  A backend that waits
        for a connection returns False and sends the event later.

        Raises:
            Error: the backend cannot be opened.
        """
        return True

    def close(self) -> None:
        """Release host resources; called when the chardev is deleted."""

    def write(self, data: bytes) -> int:
        """Take output from the frontend without blocking (``chr_write``).

        Returns:
            How many bytes from the start of ``data`` were accepted: all of
            them, some, or 0 when the backend cannot take any now.  A backend
            that lost its peer discards the data and returns ``len(data)``,
            as QEMU's socket backend does.
        """
        return len(data)

    def wait_writable(self) -> None:
        """Block until :meth:`write` can accept data again.

        Used by :meth:`write_all`.  The default sleeps 100 µs, as QEMU's
        ``qemu_chr_write_buffer`` does; a backend with a file descriptor
        overrides it with a ``select()``.
        """
        time.sleep(100e-6)

    def accept_input(self) -> None:
        """The frontend can take more input now (``chr_accept_input``)."""

    def update_read_handler(self) -> None:
        """The frontend's handlers changed (``chr_update_read_handler``)."""

    def set_fe_open(self, fe_open: bool) -> None:
        """The frontend opened or closed its side (``chr_set_fe_open``)."""

    def set_break(self, enable: bool) -> bool:
        """Start or stop a serial break; return False if not supported."""
        return False

    # -- called by the frontend --------------------------------------------------

    def write_all(self, data: bytes) -> int:
        """Write all of ``data``, waiting while the backend is full.

        The data is offered in slices of at most :data:`CHR_WRITE_CHUNK`
        bytes, so writing is linear in ``len(data)`` however little the
        backend takes at a time.

        Returns:
            ``len(data)``.
        """
        view = memoryview(data)
        total = len(view)
        done = 0
        waited = 0
        while done < total:
            if done == 0 and total <= CHR_WRITE_CHUNK:
                n = self.write(data)
            else:
                n = self.write(bytes(view[done : done + CHR_WRITE_CHUNK]))
            if n > 0:
                if self._logfd >= 0:
                    self.log_output(view[done : done + n])
                done += n
            else:
                start = time.monotonic_ns()
                self.wait_writable()
                waited += time.monotonic_ns() - start
        if waited:
            self.write_all_wait_ns += waited
            trace_qemu_chr_write_all_wait(self.label, waited, self.write_all_wait_ns)
        return done

    def open_log(self) -> None:
        """Open :attr:`logfile`, if one was given (QEMU's ``qemu_char_open``).

        The file is created with mode 0666 less the umask and truncated
        unless :attr:`logappend`.  Called by :func:`qemu_chr_new` before
        :meth:`open`.

        Raises:
            Error: the file cannot be created (``Could not create 'PATH': ...``).
        """
        if self.logfile is None or self._logfd >= 0:
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        flags |= os.O_APPEND if self.logappend else os.O_TRUNC
        try:
            self._logfd = os.open(self.logfile, flags, 0o666)
        except OSError as e:
            raise Error(f"Could not create '{self.logfile}': {e.strerror}") from None

    def close_log(self) -> None:
        """Close the log file, if open; called when the chardev is deleted."""
        if self._logfd >= 0:
            os.close(self._logfd)
            self._logfd = -1

    def log_output(self, data: bytes | memoryview) -> None:
        """Append output the backend accepted to the log (``qemu_chr_write_log``).

        A failing log write drops the rest of ``data``, as QEMU does: the log
        never stalls or stops the device.

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "serial.log")
        >>> ring = qemu_chr_new("logged", "ringbuf", {"size": 4, "logfile": path})
        >>> fe = CharBackend()
        >>> fe.connect(ring)
        >>> fe.write(b"hello, log")
        10
        >>> open(path, "rb").read()  # everything the backend took
        b'hello, log'
        >>> fe.disconnect()
        >>> qemu_chr_delete("logged")
        """
        if self._logfd < 0:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._logfd, view)
            except BlockingIOError:
                time.sleep(100e-6)
                continue
            except OSError:
                return
            if n <= 0:
                return
            view = view[n:]

    def add_write_watch(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` once, with the BQL held, when writing can resume.

        Returns:
            False if the backend cannot watch (``SUPPORTS_WRITE_WATCH`` is
            False); the caller must not wait then.
        """
        if not self.SUPPORTS_WRITE_WATCH:
            return False
        self._write_watches.append(callback)
        return True

    def remove_write_watch(self, callback: Callable[[], None]) -> None:
        """Forget a callback given to :meth:`add_write_watch` that has not run.

        Does nothing if it is not pending.  A backend that watches a host
        descriptor for writability stops when no watch is left.
        """
        for i, cb in enumerate(self._write_watches):
            if cb == callback:
                del self._write_watches[i]
                return

    @property
    def frontend(self) -> CharBackend | None:
        """The connected frontend, if any."""
        return self._fe

    @property
    def frontend_open(self) -> bool:
        """True if a frontend has handlers installed (``query-chardev``)."""
        return self._fe is not None and self._fe._fe_open

    # -- called by the backend ---------------------------------------------------

    def be_can_write(self) -> int:
        """Return how many bytes the frontend can take now (``qemu_chr_be_can_write``).

        0 when there is no frontend or it has no ``can_receive`` handler.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        bql_assert_locked("Chardev.be_can_write()")
        fe = self._fe
        if fe is None or fe._can_receive is None:
            return 0
        return max(fe._can_receive(), 0)

    def be_write(self, data: bytes) -> int:
        """Pass input to the frontend, never more than it can take.

        Delivers the first ``min(len(data), be_can_write())`` bytes to the
        frontend's ``receive`` handler in one call.  The backend keeps the
        rest and offers it again when :meth:`accept_input` is called.

        Returns:
            The number of bytes delivered.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        n = min(len(data), self.be_can_write())
        fe = self._fe
        if n <= 0 or fe is None or fe._receive is None:
            return 0
        fe._receive(data[:n] if n < len(data) else data)
        return n

    def be_event(self, event: ChrEvent) -> None:
        """Report ``event`` to the frontend and track the open state.

        QEMU's ``qemu_chr_be_event``.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        bql_assert_locked("Chardev.be_event()")
        if event is ChrEvent.OPENED:
            self.be_open = True
        elif event is ChrEvent.CLOSED:
            self.be_open = False
        fe = self._fe
        if fe is not None and fe._event is not None:
            fe._event(event)

    def be_writable(self) -> None:
        """Run the callbacks waiting for room to write (write watches).

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        bql_assert_locked("Chardev.be_writable()")
        watches, self._write_watches = self._write_watches, []
        for callback in watches:
            callback()

    @override
    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label!r} ({self.filename})>"


@final
class NullChardev(Chardev):
    """The ``null`` backend: output is discarded, there is never input.

    >>> null = qemu_chr_new("nothing", "null")
    >>> null.write(b"gone")
    4
    >>> qemu_chr_delete("nothing")
    """

    BACKEND = "null"
    OPTIONS = frozenset()


def _parse_size(name: str, value: str | int | bool) -> int:
    """Parse a size option like QEMU's ``qemu_strtosz`` (``64K``, ``1M``)."""
    if isinstance(value, bool):
        raise Error(f"Parameter '{name}' expects a size")
    if isinstance(value, int):
        if value < 0:
            raise Error(f"Parameter '{name}' expects a non-negative size")
        return value
    return parse_size(name, value)


@final
class RingBufChardev(Chardev):
    """The ``ringbuf`` backend: output is kept in a ring of ``size`` bytes.

    When the ring is full, new bytes overwrite the oldest.  The ring is read
    with :meth:`read` or QMP ``ringbuf-read`` (:func:`ringbuf_read`); there is
    never input for the frontend.

    Options: ``size``, a power of two (default 65536; ``0`` means the
    default; a string may have a ``K``/``M`` suffix).

    Raises:
        Error: ``size`` is not a power of two.

    >>> ring = RingBufChardev("r", {"size": 4})
    >>> ring.write(b"abcdef")
    6
    >>> ring.read(10)
    b'cdef'
    """

    BACKEND = "ringbuf"
    OPTIONS = frozenset({"size"})

    def __init__(self, label: str, options: ChardevOptions | None = None) -> None:
        super().__init__(label, options)
        size = _parse_size("size", (options or {}).get("size", 0)) or 65536
        if size & (size - 1):
            raise Error(
                "size of ringbuf chardev must be power of two",
                hint=f"Got {size}; try {1 << (size.bit_length() - 1)} or "
                f"{1 << size.bit_length()}.\n",
            )
        self.size = size
        try:
            self._buf = bytearray(size)
        except (MemoryError, OverflowError):
            raise Error(
                f"cannot allocate the {size} bytes of ringbuf chardev '{label}'"
            ) from None
        self._prod = 0
        self._cons = 0

    def count(self) -> int:
        """Return the number of unread bytes in the ring."""
        return self._prod - self._cons

    @override
    def write(self, data: bytes) -> int:
        """Store ``data`` in the ring, overwriting the oldest bytes; accept all."""
        size = self.size
        n = len(data)
        if n >= size:
            # Only the last `size` bytes survive.
            tail = data[n - size :]
            start = (self._prod + n - size) & (size - 1)
            self._buf[start:] = tail[: size - start]
            self._buf[:start] = tail[size - start :]
        else:
            start = self._prod & (size - 1)
            first = min(n, size - start)
            self._buf[start : start + first] = data[:first]
            self._buf[: n - first] = data[first:]
        self._prod += n
        if self._prod - self._cons > size:
            self._cons = self._prod - size
        return n

    def read(self, size: int) -> bytes:
        """Remove and return up to ``size`` of the oldest bytes."""
        n = min(size, self._prod - self._cons)
        if n <= 0:
            return b""
        mask = self.size - 1
        start = self._cons & mask
        first = min(n, self.size - start)
        out = bytes(self._buf[start : start + first]) + bytes(self._buf[: n - first])
        self._cons += n
        return out


# -- registry --------------------------------------------------------------------

_backends: dict[str, type[Chardev]] = {}
_chardevs: dict[str, Chardev] = {}


def register_chardev_backend(cls: type[Chardev], name: str | None = None) -> None:
    """Make a backend class available to :func:`qemu_chr_new`.

    Args:
        cls: the backend class.
        name: the driver name; ``cls.BACKEND`` by default.

    Raises:
        Error: the name is empty or already registered to another class.
    """
    name = name or cls.BACKEND
    if not name:
        raise Error(f"{cls.__name__} has no BACKEND name to register under")
    old = _backends.get(name)
    if old is not None and old is not cls:
        raise Error(f"chardev backend '{name}' is already registered by {old.__name__}")
    _backends[name] = cls


register_chardev_backend(NullChardev)
register_chardev_backend(RingBufChardev)
# QEMU's bug-compatible alias of ringbuf.
register_chardev_backend(RingBufChardev, "memory")


def qemu_chr_backends() -> list[str]:
    """Return the backend names, sorted (QMP ``query-chardev-backends``)."""
    return sorted(_backends)


def qemu_chr_new(
    label: str, backend: str, options: ChardevOptions | None = None
) -> Chardev:
    """Create, open and register a chardev (``-chardev``, QMP ``chardev-add``).

    Args:
        label: the new chardev's id.
        backend: the driver name, for example ``"ringbuf"``.
        options: the backend's options.

    Returns:
        The new backend; it is open unless the backend waits for a peer.

    Raises:
        Error: the label is taken, the backend is unknown, or the backend
            rejects its options or cannot open.

    >>> qemu_chr_new("c", "nul")
    Traceback (most recent call last):
      ...
    qemu_api.error.Error: Failed to add chardev 'c': 'nul' is not a valid char \
driver name
    """
    bql_assert_locked("qemu_chr_new()")
    if label in _chardevs:
        raise Error(f"Chardev with id '{label}' already exists")
    try:
        cls = _backends.get(backend)
        if cls is None:
            raise Error(
                f"'{backend}' is not a valid char driver name",
                hint="Available chardev backend types: "
                + " ".join(qemu_chr_backends())
                + "\n",
            )
        chr_ = cls(label, options)
        chr_.open_log()
        try:
            opened = chr_.open()
        except BaseException:
            chr_.close_log()
            raise
    except Error as err:
        raise err.prepend(f"Failed to add chardev '{label}': ") from None
    _chardevs[label] = chr_
    if opened:
        chr_.be_event(ChrEvent.OPENED)
    return chr_


def qemu_chr_find(label: str) -> Chardev | None:
    """Return the chardev called ``label``, or None."""
    return _chardevs.get(label)


def qemu_chr_list() -> list[Chardev]:
    """Return every chardev, in creation order (QMP ``query-chardev``)."""
    return list(_chardevs.values())


def qemu_chr_delete(label: str) -> None:
    """Close and unregister a chardev (QMP ``chardev-remove``).

    Raises:
        Error: no such chardev, or a frontend is connected to it.
    """
    bql_assert_locked("qemu_chr_delete()")
    chr_ = _chardevs.get(label)
    if chr_ is None:
        raise Error(f"Chardev '{label}' not found")
    if chr_._fe is not None:
        raise Error(
            f"Chardev '{label}' is busy",
            hint="Unplug the device that uses it first.\n",
        )
    del _chardevs[label]
    chr_.close()
    chr_.close_log()


def qemu_chr_reset() -> None:
    """Delete every chardev, detaching frontends first (tests, a new machine).

    Backends registered with :func:`register_chardev_backend` stay.

    Raises:
        BqlNotHeldError: the current thread does not hold the BQL.
    """
    bql_assert_locked("qemu_chr_reset()")
    chardevs = list(_chardevs.values())
    _chardevs.clear()
    for chr_ in chardevs:
        if chr_._fe is not None:
            chr_._fe._detach()
        chr_.close()
        chr_.close_log()


def _ringbuf(device: str) -> RingBufChardev:
    chr_ = _chardevs.get(device)
    if chr_ is None:
        raise Error(f"Device '{device}' not found")
    if not isinstance(chr_, RingBufChardev):
        raise Error(f"{device} is not a ringbuf device")
    return chr_


def ringbuf_write(
    device: str, data: str, data_format: DataFormat = DataFormat.UTF8
) -> None:
    """Write to a ringbuf chardev, as QMP ``ringbuf-write``.

    The data goes into the ring, like output from the frontend (it is not
    input for the device).

    Args:
        device: the chardev label.
        data: the text, or base64 data with :attr:`DataFormat.BASE64`.
        data_format: how ``data`` is encoded (QMP's ``format``).
            ``utf8`` writes the text's UTF-8 bytes, up to a NUL character
            (QEMU passes a C string).

    Raises:
        Error: no such chardev, not a ringbuf, or invalid base64.

    >>> _ = qemu_chr_new("rb", "ringbuf")
    >>> ringbuf_write("rb", "aGk=", DataFormat.BASE64)
    >>> ringbuf_read("rb", 10)
    'hi'
    >>> qemu_chr_delete("rb")
    """
    bql_assert_locked("ringbuf_write()")
    ring = _ringbuf(device)
    if data_format is DataFormat.BASE64:
        if "\0" in data:
            raise Error("Base64 data contains embedded NUL characters")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise Error("Base64 data is not valid") from None
    else:
        raw = data.split("\0", 1)[0].encode("utf-8", "surrogatepass")
    ring.write(raw)


def ringbuf_read(
    device: str, size: int, data_format: DataFormat = DataFormat.UTF8
) -> str:
    r"""Read and remove up to ``size`` bytes from a ringbuf (QMP ``ringbuf-read``).

    Args:
        device: the chardev label.
        size: the most bytes to read; at least 1.
        data_format: QMP's ``format``.  ``utf8`` returns the bytes as
            text, up to the first NUL byte, with invalid UTF-8 replaced by
            U+FFFD (QEMU returns a C string, which its JSON output
            sanitises); ``base64`` returns them exactly.

    Raises:
        Error: no such chardev, not a ringbuf, or ``size`` below 1.

    >>> _ = qemu_chr_new("rb", "ringbuf")
    >>> ringbuf_write("rb", "\x00")
    >>> ringbuf_read("rb", 0)
    Traceback (most recent call last):
      ...
    qemu_api.error.Error: size must be greater than zero
    >>> qemu_chr_delete("rb")
    """
    bql_assert_locked("ringbuf_read()")
    ring = _ringbuf(device)
    if size <= 0:
        raise Error("size must be greater than zero")
    raw = ring.read(size)
    if data_format is DataFormat.BASE64:
        return base64.b64encode(raw).decode("ascii")
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


# -- frontend --------------------------------------------------------------------


@final
class ChrWatch:
    """A write watch of a frontend: a callback waiting for room in the backend.

    Made by :meth:`CharBackend.add_write_watch` (QEMU's watch tag); it runs
    at most once.
    """

    __slots__ = ("_callback", "_fe")

    def __init__(self, fe: CharBackend, callback: Callable[[], None]) -> None:
        self._fe: CharBackend | None = fe
        self._callback = callback

    @property
    def pending(self) -> bool:
        """True until the callback runs or the watch is removed."""
        return self._fe is not None

    def remove(self) -> None:
        """Cancel the watch if it is pending (QEMU's ``g_source_remove``)."""
        bql_assert_locked("ChrWatch.remove()")
        fe = self._fe
        if fe is not None:
            self._fe = None
            fe._unwatch(self)

    @override
    def __repr__(self) -> str:
        return f"<ChrWatch {'pending' if self.pending else 'done'}>"


@final
class CharBackend:
    """A device's connection to a chardev (QEMU's ``CharBackend``).

    A device owns one, connects it to the chardev named by its ``chardev``
    property (or to None when it has none, so output is dropped) and
    installs its handlers when it is realized::

        self.chr = CharBackend()
        self.chr.connect(qemu_chr_find("serial0"))
        self.chr.set_handlers(self.can_receive, self.receive, self.event)

    ``can_receive()`` returns how many bytes the device can take now;
    ``receive(data)`` gets at most that many; ``event(ev)`` gets
    :class:`ChrEvent` notifications.  All run with the BQL held.

    The handlers belong to their owner, the device whose methods they are
    (or ``owner=``): unrealizing or finalizing it removes them, so no input
    or event reaches a device that is gone.  Install them in ``realize``;
    a device frontend declared with ``prop_chr`` is also disconnected from
    its backend when the device is finalized.

    >>> ring = qemu_chr_new("out", "ringbuf")
    >>> fe = CharBackend()
    >>> fe.connect(ring)
    >>> fe.write(b"ok")
    2
    >>> fe.disconnect()
    >>> fe.write(b"dropped")
    0
    >>> qemu_chr_delete("out")
    """

    __slots__ = (
        "_armed",
        "_can_receive",
        "_chr",
        "_event",
        "_fe_open",
        "_owner",
        "_poll_timer",
        "_receive",
        "_watches",
    )

    def __init__(self) -> None:
        self._owner: Object | None = None
        self._chr: Chardev | None = None
        self._can_receive: Callable[[], int] | None = None
        self._receive: Callable[[bytes], None] | None = None
        self._event: Callable[[ChrEvent], None] | None = None
        self._fe_open = False
        # Write watches waiting for the backend, and whether the backend (or
        # the polling timer of a backend that cannot watch) will call back.
        self._watches: list[ChrWatch] = []
        self._armed = False
        self._poll_timer: Timer | None = None

    @property
    def chr(self) -> Chardev | None:
        """The connected backend, or None."""
        return self._chr

    def connect(self, chardev: Chardev | None) -> None:
        """Connect to ``chardev`` (``qemu_chr_fe_init``); None for no backend.

        A frontend already connected elsewhere is disconnected first.

        Raises:
            Error: another frontend already uses ``chardev``.
        """
        bql_assert_locked("CharBackend.connect()")
        if chardev is self._chr:
            return
        if chardev is not None and chardev._fe is not None:
            raise Error(
                f"Device '{chardev.label}' is in use",
                hint="A chardev serves one device; create another chardev.\n",
            )
        self.disconnect()
        if chardev is not None:
            chardev._fe = self
            self._chr = chardev

    def disconnect(self) -> None:
        """Remove the handlers and detach from the backend (``qemu_chr_fe_deinit``)."""
        bql_assert_locked("CharBackend.disconnect()")
        if self._chr is None:
            return
        self.disable_handlers()
        self._detach()

    def _detach(self) -> None:
        self.remove_write_watches()
        if self._chr is not None and self._chr._fe is self:
            self._chr._fe = None
        self._chr = None

    def set_handlers(
        self,
        can_receive: Callable[[], int],
        receive: Callable[[bytes], None],
        event: Callable[[ChrEvent], None] | None = None,
        *,
        owner: Object | None = None,
    ) -> None:
        """Install the device's handlers (``qemu_chr_fe_set_handlers``).

        If the backend is already open, ``event`` gets
        :attr:`ChrEvent.OPENED` at once, as in QEMU.

        Args:
            can_receive: how many bytes the device can take now.
            receive: takes at most that many bytes.
            event: takes :class:`ChrEvent` notifications, or None.
            owner: the object the handlers call into; by default the QOM
                object whose method ``receive`` is. Unrealizing or
                finalizing it removes the handlers.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
            Error: the owner is already finalized.
        """
        bql_assert_locked("CharBackend.set_handlers()")
        if owner is None:
            owner = callback_owner(receive)
        if owner is not self._owner:
            if self._owner is not None:
                self._owner.disown_resource(self)
            if owner is not None:
                owner.own_resource(self)
            self._owner = owner
            self.remove_write_watches()
            if self._poll_timer is not None:
                self._poll_timer.delete()
                self._poll_timer = None
        self._can_receive = can_receive
        self._receive = receive
        self._event = event
        chr_ = self._chr
        if chr_ is None:
            return
        chr_.update_read_handler()
        self._set_open(True)
        if chr_.be_open:
            chr_.be_event(ChrEvent.OPENED)

    def disable_handlers(self) -> None:
        """Remove the handlers: no more input or events reach the device."""
        bql_assert_locked("CharBackend.disable_handlers()")
        if self._owner is not None:
            self._owner.disown_resource(self)
            self._owner = None
        self._clear_handlers()
        self._poll_timer = None

    def _clear_handlers(self) -> None:
        self.remove_write_watches()
        self._can_receive = None
        self._receive = None
        self._event = None
        if self._chr is not None:
            self._chr.update_read_handler()
            self._set_open(False)

    def owner_quiesce(self) -> None:
        """The owner was unrealized: remove the handlers (realize installs them)."""
        self.disable_handlers()

    def owner_release(self) -> None:
        """The owner is gone: remove the handlers."""
        self._owner = None
        self._clear_handlers()
        self._poll_timer = None

    def _set_open(self, fe_open: bool) -> None:
        if self._fe_open != fe_open:
            self._fe_open = fe_open
            if self._chr is not None:
                self._chr.set_fe_open(fe_open)

    def backend_connected(self) -> bool:
        """Return True if a backend is connected (``qemu_chr_fe_backend_connected``)."""
        return self._chr is not None

    def backend_open(self) -> bool:
        """Return True if the backend is open (``qemu_chr_fe_backend_open``)."""
        return self._chr is not None and self._chr.be_open

    def write(self, data: bytes) -> int:
        """Write without blocking (``qemu_chr_fe_write``).

        Returns:
            The number of bytes the backend accepted; 0 when it is full or
            when no backend is connected.  A device with a transmit FIFO keeps
            the rest and retries, for example from a write watch
            (:meth:`add_write_watch`).
        """
        chr_ = self._chr
        if chr_ is None:
            return 0
        n = chr_.write(data)
        if n > 0 and chr_.logfile is not None:
            chr_.log_output(data[:n])
        return n

    def write_all(self, data: bytes) -> int:
        """Write everything, blocking while the backend is full.

        QEMU's ``qemu_chr_fe_write_all``: simple devices without a transmit
        FIFO use it; it stalls the machine while the host side is not
        reading.

        Returns:
            ``len(data)``, or 0 when no backend is connected.
        """
        chr_ = self._chr
        if chr_ is None:
            return 0
        return chr_.write_all(data)

    def add_write_watch(self, callback: Callable[[], None]) -> ChrWatch | None:
        """Call ``callback`` once when the backend can take output again.

        QEMU's ``qemu_chr_fe_add_watch(G_IO_OUT | G_IO_HUP)``.  Call it after
        :meth:`write` took less than offered; the callback runs with the BQL
        held, from the main loop, when the backend has room or its host side
        went away.  It may find the backend still full: it then writes what
        it can and watches again.  A backend that cannot signal room
        (``SUPPORTS_WRITE_WATCH`` False) is asked again every
        :data:`CHR_WRITE_POLL_MS` ms of host time (:data:`CLOCK_REALTIME
        <qemu_api.timer.CLOCK_REALTIME>` timers, which the main loop runs).

        The watch is removed without running when the frontend is
        disconnected or its handlers are removed (the owner's unrealize
        does that), or by :meth:`ChrWatch.remove`.

        Returns:
            The watch; None when there is nothing to wait for: no backend is
            connected, or the backend discards output (a socket without a
            peer), so that writes never fall short.

        >>> fe = CharBackend()
        >>> fe.add_write_watch(lambda: None) is None  # no backend
        True
        """
        bql_assert_locked("CharBackend.add_write_watch()")
        chr_ = self._chr
        if chr_ is None:
            return None
        if not self._armed:
            if chr_.SUPPORTS_WRITE_WATCH:
                if not chr_.add_write_watch(self._writable):
                    return None
            else:
                timer = self._poll_timer
                if timer is None:
                    timer = Timer(
                        CLOCK_REALTIME, SCALE_MS, self._writable, owner=self._owner
                    )
                    self._poll_timer = timer
                timer.mod(qemu_clock_get_ms(CLOCK_REALTIME) + CHR_WRITE_POLL_MS)
            self._armed = True
        watch = ChrWatch(self, callback)
        self._watches.append(watch)
        return watch

    def remove_write_watches(self) -> None:
        """Remove every write watch of this frontend without running them."""
        for watch in self._watches:
            watch._fe = None
        self._watches.clear()
        self._disarm()

    def _disarm(self) -> None:
        if not self._armed:
            return
        self._armed = False
        if self._chr is not None:
            self._chr.remove_write_watch(self._writable)
        if self._poll_timer is not None:
            self._poll_timer.delete()

    def _unwatch(self, watch: ChrWatch) -> None:
        self._watches.remove(watch)
        if not self._watches:
            self._disarm()

    def _writable(self) -> None:
        """The backend has room (or lost its peer): run the watches."""
        self._armed = False
        watches, self._watches = self._watches, []
        for watch in watches:
            watch._fe = None
        for watch in watches:
            watch._callback()

    def accept_input(self) -> None:
        """Tell the backend the device can take more input now.

        QEMU's ``qemu_chr_fe_accept_input``: call it when ``can_receive``
        would return more than before (the guest read from the FIFO).
        """
        if self._chr is not None:
            self._chr.accept_input()

    def send_break(self, enable: bool) -> bool:
        """Start or stop a serial break on the backend.

        QEMU's ``qemu_chr_fe_ioctl(CHR_IOCTL_SERIAL_SET_BREAK)``.

        Returns:
            False if there is no backend or it does not support breaks.
        """
        if self._chr is None:
            return False
        return self._chr.set_break(enable)

    @override
    def __repr__(self) -> str:
        label = self._chr.label if self._chr is not None else None
        return f"<CharBackend chr={label!r} open={self._fe_open}>"
