r"""The ``mux`` chardev: several frontends share one backend, Ctrl-a switches.

This module models QEMU's ``chardev/char-mux.c``: ``-chardev
BACKEND,id=ID,mux=on``, ``-serial mon:stdio`` and ``-nographic`` put a
:class:`MuxChardev` (labelled ``ID``) in front of the real backend
(labelled ``ID-base``). Output from every frontend goes to the backend;
input goes to the frontend that has the *focus*, the one that installed its
handlers last, until the user switches with the escape keys:

==============  ====================================================
``Ctrl-a h``    print the key help (also ``Ctrl-a ?``)
``Ctrl-a x``    print ``QEMU: Terminated`` and quit the emulator
``Ctrl-a s``    save disk data (pyqemu has no disks: nothing to do)
``Ctrl-a t``    toggle time stamps at the start of output lines
``Ctrl-a b``    send a break to the frontend that has the focus
``Ctrl-a c``    switch the focus to the next frontend (serial port,
                monitor, ...)
``Ctrl-a Ctrl-a``  send one Ctrl-a to the frontend that has the focus
==============  ====================================================

The first frontend connects to the mux chardev itself, as any chardev
(``-device pl011,chardev=ID``, a board's serial port); each further one
gets a :class:`MuxPort` from :meth:`MuxChardev.new_port` (the monitor of
``-serial mon:stdio``, ``-mon chardev=ID``). As in QEMU, the frontends get
:attr:`~qemu_api.chardev.ChrEvent.OPENED` only once the command line has
been processed (:func:`open_muxes`), so that only the focused frontend's
banner is shown; they get ``MUX_IN``/``MUX_OUT`` when the focus moves.

Each frontend keeps up to :data:`MUX_BUFFER_SIZE` bytes the device could not
take yet; the backend stops reading when the focused frontend's buffer is
full.

>>> from qemu_api.chardev import CharBackend, qemu_chr_new, ringbuf_read
>>> from qemu_api.chardev import qemu_chr_delete
>>> _ = qemu_chr_new("con-base", "ringbuf")
>>> mux = qemu_chr_new("con", "mux", {"chardev": "con-base"})
>>> got = []
>>> serial, monitor = CharBackend(), CharBackend()
>>> serial.connect(mux)
>>> serial.set_handlers(lambda: 16, lambda b: got.append(("serial", b)))
>>> monitor.connect(mux.new_port())
>>> monitor.set_handlers(lambda: 16, lambda b: got.append(("monitor", b)))
>>> mux.switch_focus()
>>> mux.focus is mux
True
>>> mux.receive(b"ab\x01cxy\x01\x01")
>>> [who for who, _ in got], b"".join(data for _, data in got)
(['serial', 'serial', 'monitor', 'monitor', 'monitor'], b'abxy\x01')
>>> monitor.write(b"out")
3
>>> ringbuf_read("con-base", 10)
'out'
>>> serial.disconnect()
>>> monitor.disconnect()
>>> qemu_chr_delete("con")
>>> qemu_chr_delete("con-base")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, final

from qemu_api._compat import override
from qemu_api.chardev import (
    CharBackend,
    Chardev,
    ChardevOptions,
    ChrEvent,
    ChrWatch,
    qemu_chr_find,
    qemu_chr_list,
)
from qemu_api.error import Error
from system import runstate

__all__ = [
    "MAX_MUX",
    "MUX_BUFFER_SIZE",
    "TERM_ESCAPE_CHAR",
    "MuxChardev",
    "MuxPort",
    "mux_help_text",
    "open_muxes",
    "set_quit_handler",
]

MAX_MUX: Final = 4
"""The most frontends one mux serves (QEMU's ``MAX_MUX``)."""

MUX_BUFFER_SIZE: Final = 32
"""Bytes a frontend may have pending before the backend stops reading."""

TERM_ESCAPE_CHAR: Final = 0x01
"""The escape key, Ctrl-a (QEMU's ``term_escape_char``)."""

_HELP: Final = (
    "% h    print this help\n\r",
    "% x    exit emulator\n\r",
    "% s    save disk data back to file (if -snapshot)\n\r",
    "% t    toggle console timestamps\n\r",
    "% b    send break (magic sysrq)\n\r",
    "% c    switch between console and monitor\n\r",
    "% %  sends %\n\r",
)

_TERMINATED: Final = b"QEMU: Terminated\n\r"


def mux_help_text(escape: int = TERM_ESCAPE_CHAR) -> bytes:
    r"""The ``Ctrl-a h`` text (QEMU's ``mux_print_help``), byte for byte.

    >>> mux_help_text().split(b"\n\r")[1]
    b'C-a h    print this help'
    """
    if 0 < escape < 26:
        head, name = "\n\r", f"C-{chr(escape - 1 + ord('a'))}"
    else:
        head = f"\n\rEscape-Char set to Ascii: 0x{escape:02x}\n\r\n\r"
        name = "Escape-Char"
    return (head + "".join(line.replace("%", name) for line in _HELP)).encode()


def _default_quit() -> None:
    runstate.qemu_system_shutdown_request(runstate.ShutdownCause.HOST_QMP_QUIT)


_quit_handler: list[Callable[[], None]] = [_default_quit]


def set_quit_handler(handler: Callable[[], None] | None) -> None:
    """Set what ``Ctrl-a x`` does after printing (default: QMP ``quit``)."""
    _quit_handler[0] = handler if handler is not None else _default_quit


@final
class MuxPort(Chardev):
    """A further frontend's connection to a :class:`MuxChardev`.

    Not registered under a label: it is the mux's, and shows in
    ``query-chardev`` as the mux does. Created by :meth:`MuxChardev.new_port`.
    """

    BACKEND = "mux"

    def __init__(self, mux: MuxChardev) -> None:
        super().__init__(mux.label)
        self.mux = mux
        self.filename = "mux"

    @override
    def write(self, data: bytes) -> int:
        """Output goes to the mux's backend."""
        return self.mux.write(data)

    @override
    def wait_writable(self) -> None:
        """Wait as the backend waits."""
        self.mux.wait_writable()

    @override
    def add_write_watch(self, callback: Callable[[], None]) -> bool:
        """Watch the backend for room."""
        return self.mux.add_write_watch(callback)

    @override
    def accept_input(self) -> None:
        """The frontend can take input: hand it what waits, read again."""
        self.mux.accept_input_for(self)

    @override
    def set_fe_open(self, fe_open: bool) -> None:
        """Handlers installed (or removed): the focus follows the last one."""
        self.mux.frontend_changed(self, fe_open)


@final
class MuxChardev(Chardev):
    """The ``mux`` backend (QEMU's ``TYPE_CHARDEV_MUX``).

    Options: ``chardev``, the label of the backend to share. The backend's
    input is read by the mux; frontends connect to the mux itself (the
    first) or to ports from :meth:`new_port`.

    Raises:
        Error: no ``chardev`` option, or no chardev with that label.
    """

    BACKEND = "mux"
    OPTIONS = frozenset({"chardev"})

    def __init__(self, label: str, options: ChardevOptions | None = None) -> None:
        super().__init__(label, options)
        base = (options or {}).get("chardev")
        if base is None:
            raise Error("chardev: mux: no chardev given")
        self.base_label = str(base)
        self.filename = "mux"
        self.timestamps = False
        """True while ``Ctrl-a t`` time stamps are on."""
        self._timestamps_start = -1.0
        self._linestart = False
        self._got_escape = False
        self._be = CharBackend()
        self._watches: list[tuple[Callable[[], None], ChrWatch]] = []
        self._ports: list[MuxPort] = []
        # Endpoints in attach order: the mux itself for its direct frontend,
        # then the ports. Each keeps the input its frontend could not take.
        self._endpoints: list[Chardev] = []
        self._pending: dict[int, bytearray] = {}
        self._focus: Chardev | None = None
        self._opened = False

    # -- set-up ------------------------------------------------------------------

    @override
    def open(self) -> bool:
        """Take the base chardev as the mux's own frontend; open later.

        Raises:
            Error: the base chardev does not exist or is in use.
        """
        base = qemu_chr_find(self.base_label)
        if base is None:
            raise Error(f"mux: base chardev {self.base_label} not found")
        self._be.connect(base)
        self._be.set_handlers(
            self._can_read, self.receive, self._base_event, owner=None
        )
        return False

    @override
    def close(self) -> None:
        """Release the base chardev."""
        self._be.disconnect()

    def new_port(self) -> MuxPort:
        """A connection for one more frontend.

        Raises:
            Error: the mux already serves :data:`MAX_MUX` frontends.
        """
        if len(self._ports) + 1 >= MAX_MUX:
            raise Error(
                f"too many uses of multiplexed chardev '{self.label}' "
                f"(maximum is {MAX_MUX})"
            )
        port = MuxPort(self)
        self._ports.append(port)
        if self._opened:
            port.be_open = True
        return port

    def frontend_changed(self, endpoint: Chardev, fe_open: bool) -> None:
        """A frontend installed its handlers (the focus moves to it) or left."""
        if fe_open:
            if endpoint not in self._endpoints:
                self._endpoints.append(endpoint)
            self._set_focus(endpoint)
            return
        if endpoint in self._endpoints:
            self._endpoints.remove(endpoint)
        self._pending.pop(id(endpoint), None)
        if self._focus is endpoint:
            self._focus = None
            if self._endpoints:
                self._set_focus(self._endpoints[-1])

    @override
    def set_fe_open(self, fe_open: bool) -> None:
        """The direct frontend installed or removed its handlers."""
        self.frontend_changed(self, fe_open)

    def open_frontends(self) -> None:
        """Send ``OPENED`` to every frontend (QEMU's ``open_muxes``)."""
        if self._opened:
            return
        self._opened = True
        for ep in list(self._endpoints):
            ep.be_event(ChrEvent.OPENED)
        self.be_open = True
        for port in self._ports:
            port.be_open = True

    # -- focus ---------------------------------------------------------------------

    @property
    def focus(self) -> Chardev | None:
        """The endpoint (the mux or a port) whose frontend gets the input."""
        return self._focus

    def _set_focus(self, endpoint: Chardev) -> None:
        if self._focus is not None and self._focus is not endpoint:
            self._send_event(self._focus, ChrEvent.MUX_OUT)
        self._focus = endpoint
        self._send_event(endpoint, ChrEvent.MUX_IN)

    def _send_event(self, endpoint: Chardev, event: ChrEvent) -> None:
        if endpoint is self:
            Chardev.be_event(self, event)
        else:
            endpoint.be_event(event)

    def switch_focus(self) -> None:
        """``Ctrl-a c``: the focus moves to the next frontend."""
        live = self._endpoints
        if not live:
            return
        i = live.index(self._focus) + 1 if self._focus in live else 0
        self._set_focus(live[i % len(live)])

    # -- output --------------------------------------------------------------------

    @override
    def write(self, data: bytes) -> int:
        """Output to the backend, time-stamped while ``Ctrl-a t`` is on."""
        if not self.timestamps:
            return self._be.write(data)
        done = 0
        for i in range(len(data)):
            if self._linestart:
                now = time.monotonic() * 1000.0
                if self._timestamps_start < 0:
                    self._timestamps_start = now
                ms = int(now - self._timestamps_start)
                secs = ms // 1000
                stamp = (
                    f"[{secs // 3600:02d}:{(secs // 60) % 60:02d}:"
                    f"{secs % 60:02d}.{ms % 1000:03d}] "
                )
                self._be.write_all(stamp.encode())
                self._linestart = False
            done += self._be.write(data[i : i + 1])
            if data[i] == 0x0A:
                self._linestart = True
        return done

    @override
    def wait_writable(self) -> None:
        """Wait until the backend can take output."""
        base = self._be.chr
        if base is not None:
            base.wait_writable()
        else:
            super().wait_writable()

    @override
    def add_write_watch(self, callback: Callable[[], None]) -> bool:
        """Watch the backend for room (a frontend's watch on the mux's backend).

        Returns:
            False when the backend has nothing to wait for (none connected,
            or it discards output): the caller must not wait then.
        """
        watch = self._be.add_write_watch(callback)
        if watch is None:
            return False
        self._watches = [(cb, w) for cb, w in self._watches if w.pending]
        self._watches.append((callback, watch))
        return True

    @override
    def remove_write_watch(self, callback: Callable[[], None]) -> None:
        """Cancel a pending watch made by :meth:`add_write_watch`."""
        for i, (cb, watch) in enumerate(self._watches):
            if cb == callback:
                del self._watches[i]
                watch.remove()
                return

    # -- input ---------------------------------------------------------------------

    def _buffer(self, endpoint: Chardev) -> bytearray:
        return self._pending.setdefault(id(endpoint), bytearray())

    def _can_read(self) -> int:
        focus = self._focus
        if focus is None:
            return 1
        if len(self._buffer(focus)) < MUX_BUFFER_SIZE:
            return 1
        return self._deliverable(focus)

    def _deliverable(self, endpoint: Chardev) -> int:
        if endpoint is self:
            return Chardev.be_can_write(self)
        return endpoint.be_can_write()

    def _deliver(self, endpoint: Chardev, data: bytes) -> int:
        if endpoint is self:
            return Chardev.be_write(self, data)
        return endpoint.be_write(data)

    def _flush(self, endpoint: Chardev) -> None:
        buf = self._buffer(endpoint)
        while buf and self._deliverable(endpoint) > 0:
            if self._deliver(endpoint, bytes(buf[:1])) <= 0:
                break
            del buf[:1]

    @override
    def accept_input(self) -> None:
        """The direct frontend can take input."""
        self.accept_input_for(self)

    def accept_input_for(self, endpoint: Chardev) -> None:
        """A frontend can take input: hand it what waits, then read again."""
        if endpoint is self._focus:
            self._flush(endpoint)
        self._be.accept_input()

    def receive(self, data: bytes) -> None:
        """Bytes from the backend (QEMU's ``mux_chr_read``)."""
        focus = self._focus
        if focus is not None:
            self._flush(focus)
        for ch in data:
            if not self._process_byte(ch):
                continue
            focus = self._focus
            if focus is None:
                continue
            buf = self._buffer(focus)
            if not buf and self._deliverable(focus) > 0:
                self._deliver(focus, bytes((ch,)))
            else:
                buf.append(ch)

    def _process_byte(self, ch: int) -> bool:
        """Handle the escape keys; True if ``ch`` goes to the frontend."""
        if self._got_escape:
            self._got_escape = False
            if ch == TERM_ESCAPE_CHAR:
                return True
            key = chr(ch)
            if key in ("?", "h"):
                self._be.write_all(mux_help_text())
            elif key == "x":
                self._be.write_all(_TERMINATED)
                _quit_handler[0]()
            elif key == "b":
                if self._focus is not None:
                    self._send_event(self._focus, ChrEvent.BREAK)
            elif key == "c":
                self.switch_focus()
            elif key == "t":
                self.timestamps = not self.timestamps
                self._timestamps_start = -1.0
                self._linestart = False
            return False
        if ch == TERM_ESCAPE_CHAR:
            self._got_escape = True
            return False
        return True

    def _base_event(self, event: ChrEvent) -> None:
        """Backend events go to every frontend (``mux_chr_event``)."""
        if not self._opened:
            return
        for ep in list(self._endpoints):
            self._send_event(ep, event)

    @override
    def be_event(self, event: ChrEvent) -> None:
        """An event for the mux goes to the focused frontend."""
        if event in (ChrEvent.OPENED, ChrEvent.CLOSED):
            self.be_open = event is ChrEvent.OPENED
        if self._focus is not None:
            self._send_event(self._focus, event)


def open_muxes() -> None:
    """Open every mux's frontends once the command line is processed.

    QEMU's ``resume_mux_open``: each frontend gets ``OPENED`` now, so that
    the monitor's banner waits until the user switches to it.
    """
    for chr_ in qemu_chr_list():
        if isinstance(chr_, MuxChardev):
            chr_.open_frontends()
