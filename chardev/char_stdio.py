"""The ``stdio`` chardev backend: the emulator's standard input and output.

This module models QEMU's ``chardev/char-stdio.c``: ``-chardev
stdio,id=ID[,signal=on|off]`` (and ``-serial stdio``).  Only one chardev
may use stdio.

When standard input is a terminal it is switched to raw mode (no echo, no
line editing, every key passed on) as QEMU's ``qemu_chr_set_echo_stdio``
does; with ``signal=on`` (the default) Ctrl-C still interrupts the emulator,
with ``signal=off`` it goes to the guest.  The terminal is restored when the
chardev is closed, at exit (an ``atexit`` handler) and re-applied after
the process is resumed (``SIGCONT``).  :func:`term_exit` restores it
explicitly; it only makes ``tcsetattr``/``fcntl`` calls, so a signal handler
may call it.

When standard input is not a terminal (a pipe, a file) it is read as is; at
its end the frontend gets :attr:`~qemu_api.chardev.ChrEvent.CLOSED`.

Unlike QEMU, the descriptors the emulator shares with its parent are not
switched to non-blocking mode when they can be reopened
(``/proc/self/fd/N``): the backend reads and writes private non-blocking
descriptions of the same terminal or pipe, so Python's own ``sys.stdout``
and ``sys.stderr`` stay blocking.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import stat
import termios
import threading
from types import FrameType
from typing import Any, final

from qemu_api._compat import override
from qemu_api.chardev import ChardevOptions
from qemu_api.error import Error

from .char_fd import FdChardev, _close_fd, _opt_bool

__all__ = ["StdioChardev", "term_exit"]


class _StdioState:
    """Process-wide stdio state (QEMU's file-scope statics)."""

    def __init__(self) -> None:
        self.owner: StdioChardev | None = None
        self.old_tty: list[Any] | None = None
        # (fd, old status flags) of shared descriptions made non-blocking.
        self.old_flags: list[tuple[int, int]] = []
        self.allow_signal = True
        self.echo = False
        self.atexit_registered = False
        self.sigcont_installed = False


_state = _StdioState()


def _set_echo(echo: bool) -> None:
    """Apply the terminal mode for ``echo`` (``qemu_chr_set_echo_stdio``)."""
    old = _state.old_tty
    if old is None:
        return
    _state.echo = echo
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = old
    cc = list(cc)
    if not echo:
        iflag &= ~(
            termios.IGNBRK
            | termios.BRKINT
            | termios.PARMRK
            | termios.ISTRIP
            | termios.INLCR
            | termios.IGNCR
            | termios.ICRNL
            | termios.IXON
        )
        oflag |= termios.OPOST
        lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN)
        cflag &= ~(termios.CSIZE | termios.PARENB)
        cflag |= termios.CS8
        cc[termios.VMIN] = 1
        cc[termios.VTIME] = 0
    if not _state.allow_signal:
        lflag &= ~termios.ISIG
    attrs = [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]
    with contextlib.suppress(termios.error):
        termios.tcsetattr(0, termios.TCSANOW, attrs)


def term_exit() -> None:
    """Restore standard input's terminal mode and descriptor flags.

    QEMU's ``term_exit``: safe to call any number of times, from an
    ``atexit`` handler or a signal handler; a no-op when no stdio
    chardev changed anything.
    """
    old = _state.old_tty
    _state.old_tty = None
    if old is not None:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(0, termios.TCSANOW, old)
    flags, _state.old_flags = _state.old_flags, []
    for fd, old_flags in flags:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETFL, old_flags)


def _term_stdio_handler(signum: int, frame: FrameType | None) -> None:
    """``SIGCONT``: restore the raw mode after the process was resumed."""
    _set_echo(_state.echo)


def _open_private(fd: int, flags: int) -> int:
    """Return a non-blocking descriptor for ``fd``'s file, or -1 if closed.

    Terminals and pipes are reopened through ``/proc/self/fd`` so that the
    description shared with the parent process keeps its flags; regular
    files never block and are duplicated.  Otherwise (a socket) the shared
    description is made non-blocking, as QEMU does, and restored by
    :func:`term_exit`.
    """
    try:
        st = os.fstat(fd)
    except OSError:
        return -1
    if stat.S_ISREG(st.st_mode):
        return os.dup(fd)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        try:
            return os.open(
                f"/proc/self/fd/{fd}",
                flags | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
            )
        except OSError:
            pass
    new = os.dup(fd)
    old_flags = fcntl.fcntl(new, fcntl.F_GETFL)
    if not old_flags & os.O_NONBLOCK:
        _state.old_flags.append((fd, old_flags))
        os.set_blocking(new, False)
    return new


@final
class StdioChardev(FdChardev):
    """The ``stdio`` backend (QEMU's ``TYPE_CHARDEV_STDIO``).

    Options: ``signal`` (``on``/``off``, default ``on``): whether the
    terminal's signal keys (Ctrl-C, Ctrl-Z) still signal the
    emulator in raw mode.

    Raises:
        Error: an option is invalid.

    >>> StdioChardev("console", {"signal": "maybe"})
    Traceback (most recent call last):
      ...
    qemu_api.error.Error: Parameter 'signal' expects 'on' or 'off'
    """

    BACKEND = "stdio"
    OPTIONS = frozenset({"signal"})

    def __init__(self, label: str, options: ChardevOptions | None = None) -> None:
        super().__init__(label, options)
        self.signal = _opt_bool(options or {}, "signal", True)
        """True if terminal signal keys still reach the emulator."""
        self._in = -1
        self._out = -1

    @override
    def open(self) -> bool:
        """Take over standard input and output (``qemu_chr_open_stdio``).

        Raises:
            Error: another chardev already uses stdio.
        """
        if _state.owner is not None:
            raise Error(
                "cannot use stdio by multiple character devices",
                hint=f"Chardev '{_state.owner.label}' already uses stdio; "
                "connect other devices to other backends.\n",
            )
        self._bind_loop()
        _state.owner = self
        try:
            self._in = _open_private(0, os.O_RDONLY)
            self._out = _open_private(1, os.O_WRONLY)
            if self._in >= 0 and os.isatty(0):
                try:
                    _state.old_tty = termios.tcgetattr(0)
                except termios.error:
                    _state.old_tty = None
            if not _state.atexit_registered:
                atexit.register(term_exit)
                _state.atexit_registered = True
            self._install_sigcont()
            _state.allow_signal = self.signal
            _set_echo(False)
        except BaseException:
            self.close()
            raise
        self._set_fds(self._in, self._out)
        return True

    def _install_sigcont(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if _state.old_tty is None or not hasattr(signal, "SIGCONT"):
            return
        if signal.getsignal(signal.SIGCONT) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGCONT, _term_stdio_handler)
        _state.sigcont_installed = True

    def set_echo(self, echo: bool) -> None:
        """Turn the terminal's echo and line editing on or off (``chr_set_echo``).

        Args:
            echo: True for the terminal's original (cooked) mode, False for
                raw mode.
        """
        _set_echo(echo)

    @override
    def close(self) -> None:
        """Restore the terminal and release standard input and output."""
        self._release()
        if _state.owner is self:
            term_exit()
            if (
                _state.sigcont_installed
                and threading.current_thread() is threading.main_thread()
            ):
                signal.signal(signal.SIGCONT, signal.SIG_DFL)
                _state.sigcont_installed = False
            _state.owner = None
        _close_fd(self._in)
        _close_fd(self._out)
        self._in = self._out = -1
