r"""The human monitor on a chardev: ``-monitor``, ``-mon``, ``-serial mon:stdio``.

This module models QEMU's ``monitor/hmp.c`` (``monitor_init_hmp``,
``monitor_read``, ``monitor_event``), the output side of
``monitor/monitor.c`` (``monitor_puts``, ``monitor_flush``) and
``util/readline.c``: :class:`HMPMonitor` serves the commands of
:mod:`system.monitor.hmp` on a chardev, with QEMU's ``(qemu) `` prompt,
line editing and history (:class:`ReadLineState`).

Line editing keys, as QEMU's readline: printable characters insert,
Backspace/Delete (``^H``/``DEL``) erase to the left, ``^D`` and ``ESC [ 3 ~``
erase under the cursor, ``^A``/``Home`` and ``^E``/``End`` move to the ends,
the left and right arrows move, ``^W`` erases a word, the up and down arrows
walk the history (the last 64 lines), Tab completes command names, Enter runs
the line. Output uses ``\r\n`` line endings.

On a mux (``-nographic``), the monitor prints its banner and prompt when it
first gets the focus (``Ctrl-a c``) and holds its output while another
frontend has the focus, as QEMU does.

>>> from qemu_api.chardev import qemu_chr_new, ringbuf_read, qemu_chr_delete
>>> from system.main_loop import MainLoop
>>> mon = HMPMonitor(qemu_chr_new("hmp0", "ringbuf"), MainLoop())
>>> ringbuf_read("hmp0", 200)  # doctest: +ELLIPSIS
"pyqemu ... monitor - type 'help' for more information\r\n(qemu) "
>>> mon.receive(b"help qui\x7f\x7fuit\r")
>>> ringbuf_read("hmp0", 400).split("\r\n")[-2:]
['quit|q  -- quit the emulator', '(qemu) ']
>>> mon.close()
>>> qemu_chr_delete("hmp0")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, final

import pyqemu_config
from qemu_api.chardev import CHR_READ_BUF_LEN, CharBackend, Chardev, ChrEvent
from system.main_loop import MainLoop
from system.monitor.commands import MonitorCommands
from system.monitor.hmp import HMP_COMMANDS, HMP_INFO_COMMANDS, handle_hmp_command

__all__ = ["HMP_PROMPT", "READLINE_MAX_CMDS", "HMPMonitor", "ReadLineState"]

HMP_PROMPT: Final = "(qemu) "
"""QEMU's monitor prompt (kept: scripts wait for it)."""

READLINE_MAX_CMDS: Final = 64
"""History lines kept (QEMU's ``READLINE_MAX_CMDS``)."""

READLINE_CMD_BUF_SIZE: Final = 4095
"""The longest line (QEMU's ``READLINE_CMD_BUF_SIZE``)."""

_NORM, _ESC, _CSI, _SS3 = range(4)


@final
class ReadLineState:
    r"""QEMU's line editor (``util/readline.c``), terminal output included.

    Args:
        write: prints text (``\n`` is turned into ``\r\n`` by the monitor).
        on_line: called with each line entered.
        completions: returns the candidates for the text before the cursor
            and how much of the last word they replace.

    >>> out = []
    >>> lines = []
    >>> rs = ReadLineState(out.append, lines.append)
    >>> for ch in b"info\x1b[Dx\x01\x1b[3~\r":
    ...     rs.handle_byte(ch)
    >>> lines
    ['nfxo']
    """

    def __init__(
        self,
        write: Callable[[str], None],
        on_line: Callable[[str], None],
        completions: Callable[[str], tuple[list[str], int]] | None = None,
    ) -> None:
        self._write = write
        self._on_line = on_line
        self._completions = completions
        self.prompt = HMP_PROMPT
        self._buf: list[str] = []
        self._index = 0
        self._last_buf: list[str] = []
        self._last_index = 0
        self._esc_state = _NORM
        self._esc_param = 0
        self.history: list[str] = []
        """Lines entered, oldest first (at most :data:`READLINE_MAX_CMDS`)."""
        self._hist_entry = -1

    def show_prompt(self) -> None:
        """Print the prompt (``readline_show_prompt``)."""
        self._write(self.prompt)
        self._last_index = 0
        self._last_buf = []
        self._esc_state = _NORM

    def restart(self) -> None:
        """Forget the line being edited (``readline_restart``)."""
        self._buf = []
        self._index = 0

    def _update(self) -> None:
        """Redraw what changed (``readline_update``)."""
        out: list[str] = []
        if self._buf != self._last_buf:
            out.append("\033[D" * self._last_index)
            out.append("".join(self._buf))
            out.append("\033[K")
            self._last_buf = list(self._buf)
            self._last_index = len(self._buf)
        if self._index != self._last_index:
            delta = self._index - self._last_index
            out.append(("\033[C" if delta > 0 else "\033[D") * abs(delta))
            self._last_index = self._index
        if out:
            self._write("".join(out))

    def _insert(self, ch: str) -> None:
        if len(self._buf) < READLINE_CMD_BUF_SIZE:
            self._buf.insert(self._index, ch)
            self._index += 1

    def _delete(self) -> None:
        if self._index < len(self._buf):
            del self._buf[self._index]

    def _backspace(self) -> None:
        if self._index > 0:
            self._index -= 1
            self._delete()

    def _backword(self) -> None:
        if self._index == 0:
            return
        start = self._index - 1
        while start > 0 and self._buf[start].isspace():
            start -= 1
        while start > 0:
            if self._buf[start].isspace():
                start += 1
                break
            start -= 1
        del self._buf[start : self._index]
        self._index = start

    def _up(self) -> None:
        if self._hist_entry == 0 or not self.history:
            return
        if self._hist_entry == -1:
            self._hist_entry = len(self.history)
        self._hist_entry -= 1
        self._buf = list(self.history[self._hist_entry])
        self._index = len(self._buf)

    def _down(self) -> None:
        if self._hist_entry == -1:
            return
        self._hist_entry += 1
        if self._hist_entry < len(self.history):
            self._buf = list(self.history[self._hist_entry])
        else:
            self._buf = []
            self._hist_entry = -1
        self._index = len(self._buf)

    def _hist_add(self, line: str) -> None:
        if not line:
            return
        if line in self.history:
            self.history.remove(line)
        self.history.append(line)
        del self.history[:-READLINE_MAX_CMDS]
        self._hist_entry = -1

    def _complete(self) -> None:
        if self._completions is None:
            return
        text = "".join(self._buf[: self._index])
        found, start = self._completions(text)
        if not found:
            return
        if len(found) == 1:
            for ch in found[0][len(text) - start :]:
                self._insert(ch)
            if not found[0].endswith("/"):
                self._insert(" ")
            return
        prefix = found[0]
        for word in found[1:]:
            while not word.startswith(prefix):
                prefix = prefix[:-1]
        for ch in prefix[len(text) - start :]:
            self._insert(ch)
        width = min(max(max(len(w) for w in found) + 2, 10), 80)
        cols = 80 // width
        rows = [found[i : i + cols] for i in range(0, len(found), cols)]
        self._write(
            "\n" + "".join("".join(f"{w:<{width}}" for w in r) + "\n" for r in rows)
        )
        self.show_prompt()

    def handle_byte(self, ch: int) -> None:
        """Take one input byte (``readline_handle_byte``)."""
        state = self._esc_state
        if state == _NORM:
            if ch == 1:
                self._index = 0
            elif ch == 4:
                self._delete()
            elif ch == 5:
                self._index = len(self._buf)
            elif ch == 9:
                self._complete()
            elif ch in (10, 13):
                line = "".join(self._buf)
                self._hist_add(line)
                self._write("\n")
                self._buf = []
                self._index = 0
                self._last_buf = []
                self._last_index = 0
                self._on_line(line)
                return
            elif ch == 23:
                self._backword()
            elif ch == 27:
                self._esc_state = _ESC
            elif ch in (127, 8):
                self._backspace()
            elif ch == 155:
                self._esc_state = _CSI
            elif ch >= 32:
                self._insert(chr(ch))
        elif state == _ESC:
            if ch == ord("["):
                self._esc_state = _CSI
                self._esc_param = 0
            elif ch == ord("O"):
                self._esc_state = _SS3
                self._esc_param = 0
            else:
                self._esc_state = _NORM
        elif state == _CSI:
            key = chr(ch)
            if key.isdigit():
                self._esc_param = self._esc_param * 10 + int(key)
                self._update()
                return
            if key in "AF":
                self._up()
            elif key in "BE":
                self._down()
            elif key == "D":
                self._index = max(self._index - 1, 0)
            elif key == "C":
                self._index = min(self._index + 1, len(self._buf))
            elif key == "~":
                if self._esc_param == 1:
                    self._index = 0
                elif self._esc_param == 3:
                    self._delete()
                elif self._esc_param == 4:
                    self._index = len(self._buf)
            self._esc_state = _NORM
        else:
            if ch == ord("F"):
                self._index = len(self._buf)
            elif ch == ord("H"):
                self._index = 0
            self._esc_state = _NORM
        self._update()


def _hmp_completions(text: str) -> tuple[list[str], int]:
    """Command names (and ``info`` subcommands) starting with the last word."""
    words = text.split()
    if text.endswith(" ") or not words:
        words.append("")
    table = HMP_COMMANDS
    if len(words) == 2 and words[0] == "info":
        table = HMP_INFO_COMMANDS
    elif len(words) != 1:
        return ([], 0)
    word = words[-1]
    names = sorted(
        {n for cmd in table for n in cmd.name.split("|") if n.startswith(word)}
    )
    return (names, len(text) - len(word))


@final
class HMPMonitor:
    r"""A human monitor serving one chardev (QEMU's ``MonitorHMP``).

    Each line typed runs as an HMP command; its output follows, then the
    prompt. Input is read only while the monitor is not suspended (a mux
    frontend without the focus). Several monitors may serve at once.

    Args:
        chr_: the chardev (``-monitor``, ``-mon chardev=ID``).
        loop: the main loop.
        target: the target whose boards the commands know.

    Raises:
        Error: ``chr_`` already serves another frontend.
    """

    def __init__(
        self, chr_: Chardev, loop: MainLoop, *, target: str | None = None
    ) -> None:
        self._chr = chr_
        self._loop = loop
        self._handlers = MonitorCommands(None, target=target)
        self._rs = ReadLineState(self._print, self._run_line, _hmp_completions)
        self._outbuf = bytearray()
        self._mux_out = False
        self._reset_seen = False
        self._suspend_cnt = 0
        self._closed = False
        self._out_watch = False
        self._fe = CharBackend()
        self._fe.connect(chr_)
        self._fe.set_handlers(self._can_read, self.receive, self._chr_event)

    @property
    def chardev(self) -> Chardev:
        """The chardev the monitor serves."""
        return self._chr

    @property
    def history(self) -> list[str]:
        """The lines entered, oldest first."""
        return list(self._rs.history)

    def close(self) -> None:
        """Stop serving; free the chardev."""
        if self._closed:
            return
        self._flush()
        self._closed = True
        self._outbuf.clear()
        self._fe.disconnect()

    # -- chardev handlers -----------------------------------------------------------

    def _can_read(self) -> int:
        if self._closed or self._suspend_cnt:
            return 0
        return CHR_READ_BUF_LEN

    def receive(self, data: bytes) -> None:
        """Input bytes (QEMU's ``monitor_read``)."""
        for ch in data:
            if self._closed:
                return
            self._rs.handle_byte(ch)
        self._flush()

    def _chr_event(self, event: ChrEvent) -> None:
        """QEMU's ``monitor_event``."""
        if event is ChrEvent.MUX_IN:
            self._mux_out = False
            if self._reset_seen:
                self._rs.restart()
                self._suspend_cnt = 0
                self._rs.show_prompt()
                self._flush()
                self._fe.accept_input()
            else:
                self._suspend_cnt = 0
        elif event is ChrEvent.MUX_OUT:
            if self._reset_seen:
                if self._suspend_cnt == 0:
                    self._print("\n")
                self._flush()
                self._suspend_cnt += 1
            else:
                self._suspend_cnt += 1
            self._mux_out = True
        elif event is ChrEvent.OPENED:
            self._print(
                f"pyqemu {pyqemu_config.VERSION} monitor - type 'help' for more "
                "information\n"
            )
            if not self._mux_out:
                self._rs.restart()
                self._rs.show_prompt()
            self._reset_seen = True
            self._flush()

    # -- commands -------------------------------------------------------------------

    def _run_line(self, line: str) -> None:
        text = handle_hmp_command(self._handlers, line, history=self._rs.history)
        self._outbuf += text.encode("utf-8", "replace")
        if not self._closed:
            self._rs.show_prompt()

    # -- output ---------------------------------------------------------------------

    def _print(self, text: str) -> None:
        r"""``monitor_puts``: ``\n`` becomes ``\r\n``."""
        self._outbuf += text.replace("\n", "\r\n").encode("utf-8", "replace")

    def _flush(self) -> None:
        """``monitor_flush``: nothing is written while another frontend has focus."""
        while self._outbuf and not self._closed and not self._mux_out:
            n = self._fe.write(bytes(self._outbuf))
            if n <= 0:
                break
            del self._outbuf[:n]
        if not self._outbuf or self._out_watch or self._closed or self._mux_out:
            return
        if self._fe.add_write_watch(self._unblocked):
            self._out_watch = True
        else:
            self._fe.write_all(bytes(self._outbuf))
            self._outbuf.clear()

    def _unblocked(self) -> None:
        self._out_watch = False
        self._flush()
