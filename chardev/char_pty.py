"""The ``pty`` chardev backend: a pseudo-terminal for a terminal program.

This module models QEMU's ``chardev/char-pty.c``: ``-chardev pty,id=ID``
opens a pseudo-terminal in raw mode, prints ``char device redirected to
/dev/pts/N (label ID)`` on standard output, and reports
``pty:/dev/pts/N`` as its ``query-chardev`` filename.  A terminal program
(``screen``, ``minicom``, ``picocom``) opens that path to talk to the device.

The chardev is open (:attr:`~qemu_api.chardev.ChrEvent.OPENED`) while a
program has the terminal open, and closed
(:attr:`~qemu_api.chardev.ChrEvent.CLOSED`) when the last one closes it.
While nobody has it open, output is discarded and the backend looks for a
program once a second, and whenever the device writes.

>>> import os
>>> from qemu_api.chardev import CharBackend, qemu_chr_delete, qemu_chr_new
>>> from system.main_loop import MainLoop
>>> from chardev.char_fd import set_main_loop
>>> set_main_loop(MainLoop())
>>> pty = qemu_chr_new("term", "pty")
char device redirected to /dev/pts/... (label term)
>>> pty.filename == "pty:" + pty.pty_name
True
>>> fe = CharBackend()
>>> fe.connect(pty)
>>> fe.write(b"nobody listens")
14
>>> terminal = os.open(pty.pty_name, os.O_RDWR | os.O_NOCTTY)
>>> fe.write(b"hi")
2
>>> os.read(terminal, 10), pty.be_open
(b'hi', True)
>>> os.close(terminal)
>>> fe.disconnect()
>>> qemu_chr_delete("term")
>>> set_main_loop(None)
"""

from __future__ import annotations

import os
import select
import sys
import termios
from typing import final

from qemu_api._compat import override
from qemu_api.chardev import ChardevOptions, ChrEvent
from qemu_api.error import Error
from qemu_api.timer import CLOCK_REALTIME, Timer, qemu_clock_get_ms, timer_new_ms

from .char_fd import FdChardev, _close_fd

__all__ = ["PtyChardev"]


def _cfmakeraw(fd: int) -> None:
    """Put the terminal ``fd`` in raw mode, as ``cfmakeraw``."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
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
    oflag &= ~termios.OPOST
    lflag &= ~(
        termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN
    )
    cflag &= ~(termios.CSIZE | termios.PARENB)
    cflag |= termios.CS8
    cc = list(cc)
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    termios.tcsetattr(
        fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]
    )


@final
class PtyChardev(FdChardev):
    """The ``pty`` backend (QEMU's ``TYPE_CHARDEV_PTY``).

    Options: ``path``, accepted and ignored as QEMU 7.2 does (QEMU 9.0 makes
    it a symbolic link to the terminal).  After it is opened,
    :attr:`pty_name` is the terminal's path and ``filename`` is ``"pty:" +
    pty_name``.

    Raises:
        Error: an unknown option was given.
    """

    BACKEND = "pty"
    OPTIONS = frozenset({"path"})
    POLL_INTERVAL_MS = 1000
    """How often to look for a program while nobody has the terminal open."""

    def __init__(self, label: str, options: ChardevOptions | None = None) -> None:
        super().__init__(label, options)
        self.pty_name = ""
        """The terminal's path, such as ``/dev/pts/3``."""
        self._master = -1
        self._connected = False
        self._timer: Timer | None = None

    @property
    def connected(self) -> bool:
        """True while a program has the terminal open."""
        return self._connected

    @override
    def open(self) -> bool:
        """Create the pseudo-terminal and print its name (``char_pty_open``).

        Raises:
            Error: no pseudo-terminal can be created.
        """
        self._bind_loop()
        try:
            master, slave = os.openpty()
        except OSError as exc:
            self.close()
            raise Error.from_os_error("Failed to create PTY", exc) from None
        try:
            _cfmakeraw(slave)
            name = os.ttyname(slave)
        except (OSError, termios.error) as exc:
            _close_fd(master)
            self.close()
            reason = exc.args[-1] if exc.args else str(exc)
            raise Error(f"Failed to create PTY: {reason}") from None
        finally:
            _close_fd(slave)
        os.set_blocking(master, False)
        self._master = master
        self.pty_name = name
        self.filename = f"pty:{name}"
        self._timer = timer_new_ms(CLOCK_REALTIME, self._poll_timer)
        sys.stdout.write(f"char device redirected to {name} (label {self.label})\n")
        sys.stdout.flush()
        return False

    def _peer_present(self) -> bool:
        """Poll the master: True unless it reports a hang-up (no program)."""
        poller = select.poll()
        poller.register(self._master, select.POLLOUT)
        events = poller.poll(0)
        revents = events[0][1] if events else 0
        return not revents & select.POLLHUP

    def _set_state(self, connected: bool) -> None:
        """QEMU's ``pty_chr_state``."""
        if not connected:
            if self._connected:
                self._connected = False
                self._clear_fds()
                self.be_event(ChrEvent.CLOSED)
            if self._timer is not None:
                now = qemu_clock_get_ms(CLOCK_REALTIME)
                self._timer.mod(now + self.POLL_INTERVAL_MS)
            return
        if self._timer is not None:
            self._timer.delete()
        if not self._connected:
            self._connected = True
            self._set_fds(self._master, self._master)
            self.be_event(ChrEvent.OPENED)
        else:
            self._update_watches()

    def _poll_timer(self) -> None:
        if not self._connected and self._master >= 0:
            self.update_read_handler()

    @override
    def update_read_handler(self) -> None:
        """Look for a program on the terminal, then re-evaluate the watches."""
        if self._master < 0:
            return
        self._set_state(self._peer_present())
        if self._connected:
            super().update_read_handler()

    @override
    def _write_disconnected(self, data: bytes) -> int:
        # The program may be back before the timer noticed (char_pty_chr_write).
        if self._master >= 0 and self._peer_present():
            self._set_state(True)
            return self.write(data)
        return len(data)

    @override
    def _input_eof(self) -> None:
        self._set_state(False)

    @override
    def _read_failed(self, exc: OSError) -> None:
        # EIO: the last program closed the terminal.
        self._set_state(False)

    @override
    def _write_failed(self, exc: OSError) -> None:
        self._set_state(False)

    @override
    def close(self) -> None:
        """Close the pseudo-terminal."""
        if self._timer is not None:
            self._timer.delete()
            self._timer = None
        self._release()
        self._connected = False
        _close_fd(self._master)
        self._master = -1
        if self.be_open:
            self.be_event(ChrEvent.CLOSED)
