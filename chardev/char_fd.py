"""Chardevs on host file descriptors: the main-loop plumbing of host backends.

This module models QEMU's ``chardev/char-fd.c`` (``FDChardev``: a chardev
reading one descriptor and writing another) and the watch logic of
``chardev/char-io.c`` (``io_add_watch_poll``, ``io_channel_send``).  The
``file``, ``stdio``, ``pty`` and ``socket`` backends build on
:class:`FdChardev`.

Host chardevs register their descriptors with the emulator's
``system.main_loop.MainLoop``, set once with :func:`set_main_loop`
before any of them is created.

Flow control follows QEMU:

- Input: a descriptor is watched for reading only while the frontend's
  ``can_receive()`` is above zero, and a read takes at most that many bytes
  (and at most :data:`~qemu_api.chardev.CHR_READ_BUF_LEN`).  When the
  frontend is full the descriptor is left alone, so the data waits in the
  operating system, until the device calls
  :meth:`~qemu_api.chardev.CharBackend.accept_input`.
- Output: descriptors are non-blocking; :meth:`FdChardev.write` returns how
  many bytes the host took, and a write watch
  (:meth:`~qemu_api.chardev.CharBackend.add_write_watch`) runs once the
  descriptor is writable again.

Descriptors that the selector cannot watch (regular files, ``/dev/null``)
are always ready, as ``poll()`` reports them; they are served from bottom
halves instead.

>>> from system.main_loop import MainLoop
>>> loop = MainLoop()
>>> set_main_loop(loop)
>>> get_main_loop() is loop
True
>>> set_main_loop(None)
"""

from __future__ import annotations

import contextlib
import os
import select
import weakref
from collections.abc import Callable

from qemu_api._compat import override
from qemu_api.chardev import CHR_READ_BUF_LEN, Chardev, ChardevOptions, ChrEvent
from qemu_api.error import Error
from qemu_api.option import parse_bool
from system.main_loop import MainLoop

__all__ = ["FdChardev", "get_main_loop", "set_main_loop"]

_main_loop: MainLoop | None = None
_live: weakref.WeakSet[FdChardev] = weakref.WeakSet()


def set_main_loop(loop: MainLoop | None) -> None:
    """Set the main loop that host chardevs created from now on use.

    The emulator calls this once at start-up with its loop, before the
    command line's ``-chardev`` options are processed; tests call it with
    their own loop.  None forgets the loop (chardevs that exist keep theirs).

    Args:
        loop: the loop, or None.

    Raises:
        Error: open host chardevs already use a different loop.
    """
    global _main_loop
    if loop is not None:
        busy = sorted(
            c.label
            for c in _live
            if c._loop is not None and c._loop is not loop and not c._closed
        )
        if busy:
            raise Error(
                "Chardevs " + ", ".join(f"'{b}'" for b in busy) + " use another "
                "main loop",
                hint="Set the main loop before creating host chardevs, or "
                "delete them first.\n",
            )
    _main_loop = loop


def get_main_loop() -> MainLoop:
    """Return the main loop set with :func:`set_main_loop`.

    Raises:
        Error: no loop was set.
    """
    if _main_loop is None:
        raise Error(
            "Host chardevs need a main loop, and none is set",
            hint="Call chardev.set_main_loop(loop) with the emulator's MainLoop "
            "before creating socket, file, stdio or pty chardevs.\n",
        )
    return _main_loop


# -- option parsing (QEMU's qemu_opt_get_bool / qemu_opt_get_number) -------------


def _opt_bool(options: ChardevOptions, name: str, default: bool) -> bool:
    value = options.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return parse_bool(name, value)
    raise Error(f"Parameter '{name}' expects 'on' or 'off'")


def _opt_str(options: ChardevOptions, name: str) -> str | None:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise Error(f"Parameter '{name}' expects a string")
    return str(value)


def _opt_number(options: ChardevOptions, name: str, default: int) -> int:
    value = options.get(name)
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            number = int(value, 0)
        except ValueError:
            number = -1
        if number >= 0:
            return number
    raise Error(f"Parameter '{name}' expects a number")


# -- descriptors -----------------------------------------------------------------


def _open_file(path: str, flags: int, mode: int = 0o666) -> int:
    """Open ``path`` like ``qmp_chardev_open_file_source``."""
    try:
        return os.open(path, flags | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise Error.from_os_error(f"Could not open '{path}'", exc) from None


class FdChardev(Chardev):
    """A chardev that reads one host descriptor and writes another.

    QEMU's abstract ``FDChardev``.  A subclass opens its descriptors in
    :meth:`~qemu_api.chardev.Chardev.open` and hands them over with
    ``_set_fds`` (``-1`` for a side it does not have); a connection-based
    backend calls it again on each connection and ``_clear_fds`` when it
    ends.  The descriptors stay owned by the subclass, which closes them.

    Hooks a subclass may override: ``_raw_read``/``_raw_write`` (the system
    calls), ``_input_eof`` (end of input: by default stop reading and send
    :attr:`~qemu_api.chardev.ChrEvent.CLOSED`, as ``fd_chr_read``),
    ``_read_failed``/``_write_failed`` (I/O errors) and
    ``_write_disconnected`` (output while there is no descriptor).

    Raises:
        Error: an option is unknown or invalid.
    """

    SUPPORTS_WRITE_WATCH = True
    """Always True here, as write watches run when the output is writable."""

    def __init__(self, label: str, options: ChardevOptions | None = None) -> None:
        super().__init__(label, options)
        self._loop: MainLoop | None = None
        self._fd_in = -1
        self._fd_out = -1
        self._input_open = True
        self._pending = b""
        self._closed = False
        # fd -> (read watched, write watched), as registered with the loop.
        self._watched: dict[int, tuple[bool, bool]] = {}
        # Descriptors the selector cannot watch: always ready, served by a BH.
        self._always_ready: set[int] = set()
        self._bh_scheduled = False
        self._read_cb: Callable[[], None] = self._fd_read
        self._write_cb: Callable[[], None] = self._fd_writable

    # -- for subclasses ------------------------------------------------------------

    def _bind_loop(self) -> MainLoop:
        """Take the current main loop for this chardev (at open time)."""
        loop = get_main_loop()
        self._loop = loop
        _live.add(self)
        return loop

    def _set_fds(self, fd_in: int, fd_out: int) -> None:
        """Start serving ``fd_in`` (input) and ``fd_out`` (output)."""
        self._clear_fds()
        self._fd_in = fd_in
        self._fd_out = fd_out
        self._input_open = fd_in >= 0
        self._update_watches()

    def _clear_fds(self) -> None:
        """Stop watching the descriptors and forget them (does not close)."""
        for fd in list(self._watched):
            self._watch(fd, False, False)
        self._always_ready.clear()
        self._fd_in = -1
        self._fd_out = -1
        self._pending = b""

    def _raw_read(self, size: int) -> bytes:
        return os.read(self._fd_in, size)

    def _raw_write(self, data: bytes) -> int:
        return os.write(self._fd_out, data)

    def _input_eof(self) -> None:
        """The input reached its end: stop reading, report CLOSED."""
        self._input_open = False
        self._update_watches()
        self.be_event(ChrEvent.CLOSED)

    def _read_failed(self, exc: OSError) -> None:
        """Reading failed with ``exc``; by default, treated as end of input."""
        self._input_eof()

    def _write_failed(self, exc: OSError) -> None:
        """Writing failed with ``exc``; the data was discarded."""

    def _write_disconnected(self, data: bytes) -> int:
        """Output while there is no output descriptor: discarded."""
        return len(data)

    # -- watches (io_add_watch_poll) -------------------------------------------------

    def _update_watches(self) -> None:
        """Watch for input only while the frontend can take some."""
        if self._loop is None:
            return
        fd_in, fd_out = self._fd_in, self._fd_out
        want_read = (
            fd_in >= 0
            and self._input_open
            and not self._pending
            and self.be_can_write() > 0
        )
        want_write = fd_out >= 0 and bool(self._write_watches)
        if fd_in == fd_out:
            if fd_in >= 0:
                self._watch(fd_in, want_read, want_write)
            return
        if fd_in >= 0:
            self._watch(fd_in, want_read, False)
        if fd_out >= 0:
            self._watch(fd_out, False, want_write)

    def _watch(self, fd: int, read: bool, write: bool) -> None:
        state = (read, write)
        if self._watched.get(fd, (False, False)) == state:
            if fd in self._always_ready and (read or write):
                self._schedule_ready_bh()
            return
        loop = self._loop
        if loop is None:
            return
        if fd not in self._always_ready:
            try:
                loop.set_fd_handler(
                    fd,
                    self._read_cb if read else None,
                    self._write_cb if write else None,
                    f"chardev '{self.label}'",
                )
            except PermissionError:
                # epoll refuses regular files and /dev/null: always ready.
                self._always_ready.add(fd)
        if read or write:
            self._watched[fd] = state
            if fd in self._always_ready:
                self._schedule_ready_bh()
        else:
            self._watched.pop(fd, None)

    def _schedule_ready_bh(self) -> None:
        if not self._bh_scheduled and self._loop is not None:
            self._bh_scheduled = True
            self._loop.bh_schedule(self._ready_bh, f"chardev '{self.label}'")

    def _ready_bh(self) -> None:
        self._bh_scheduled = False
        for fd in list(self._always_ready):
            read, write = self._watched.get(fd, (False, False))
            if read and fd == self._fd_in:
                self._fd_read()
            if write and fd == self._fd_out and fd in self._watched:
                self._fd_writable()

    def _fd_read(self) -> None:
        """The input descriptor is readable (``fd_chr_read``)."""
        size = min(CHR_READ_BUF_LEN, self.be_can_write())
        if size <= 0 or self._fd_in < 0:
            self._update_watches()
            return
        try:
            data = self._raw_read(size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._read_failed(exc)
            return
        if not data:
            self._input_eof()
            return
        self._deliver(data)
        self._update_watches()

    def _deliver(self, data: bytes) -> None:
        """Hand ``data`` to the frontend; keep what it does not take."""
        done = 0
        while done < len(data):
            n = self.be_write(data[done:] if done else data)
            if n <= 0:
                break
            done += n
        if done < len(data):
            self._pending = data[done:]

    def _fd_writable(self) -> None:
        """The output descriptor is writable: run the write watches."""
        self.be_writable()
        self._update_watches()

    # -- Chardev hooks ---------------------------------------------------------------

    @override
    def write(self, data: bytes) -> int:
        """Write without blocking; return how many bytes the host took.

        Without an output descriptor (no peer) the data is discarded and
        reported as written, as QEMU's backends do.
        """
        if self._fd_out < 0:
            return self._write_disconnected(data)
        if not data:
            return 0
        try:
            return self._raw_write(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._write_failed(exc)
            return len(data)

    @override
    def wait_writable(self) -> None:
        """Block until the output descriptor is writable (or gone)."""
        fd = self._fd_out
        if fd < 0 or fd in self._always_ready:
            return
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        with contextlib.suppress(InterruptedError):
            poller.poll(1000)

    @override
    def add_write_watch(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` once when the output descriptor is writable.

        Returns:
            True if the watch is set.  False when there is no output
            descriptor (writes are discarded then, so there is nothing to
            wait for) or no main loop.
        """
        if self._fd_out < 0 or self._loop is None:
            return False
        super().add_write_watch(callback)
        self._update_watches()
        return True

    @override
    def remove_write_watch(self, callback: Callable[[], None]) -> None:
        """Forget a pending write watch; stop watching the output if none is left."""
        super().remove_write_watch(callback)
        self._update_watches()

    @override
    def accept_input(self) -> None:
        """Offer kept input again and resume watching the input descriptor."""
        if self._pending:
            data, self._pending = self._pending, b""
            self._deliver(data)
        self._update_watches()

    @override
    def update_read_handler(self) -> None:
        """The frontend's handlers changed: offer kept input, re-evaluate watches."""
        self.accept_input()

    def _release(self) -> None:
        """Stop watching and mark the chardev closed (for ``close``)."""
        self._clear_fds()
        self._closed = True
        _live.discard(self)


def _close_fd(fd: int) -> None:
    """Close ``fd`` if valid, ignoring errors (the descriptor is gone anyway)."""
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)
