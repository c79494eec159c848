"""libqtest for pyqemu: start the real launcher and drive it with qtest commands.

This is the Python counterpart of QEMU's ``tests/qtest/libqtest.c``. A test
creates a :class:`QTestState` with the launcher's extra arguments; the
helper listens on a unix socket, starts ``pyqemu-system-TARGET -qtest
unix:PATH ...`` (the emulator connects to the test, as with libqtest) and
then sends commands and parses their replies::

    with QTestState(["-M", "virt", "-nodefaults"]) as qts:
        qts.writel(0x40000000, 0x12345678)
        assert qts.readw(0x40000002) == 0x1234
        qts.irq_intercept_in("/machine/gic")
        qts.set_irq_in("/machine/gic", "unnamed-gpio-in", 1, 1)
        assert qts.get_irq(1)

Like libqtest it adds ``-display none -accel qtest -qtest-log /dev/null``
(``QTEST_LOG=1`` in the environment logs the protocol to standard error
instead), handles the asynchronous ``IRQ raise N``/``IRQ lower N`` lines
whenever they arrive, and kills the emulator when the test is done. Every
wait has a timeout: a hung or dead emulator makes the test fail with the
emulator's standard error in the message, never hang.

The launcher is ``$QTEST_QEMU_BINARY`` when set, else
``$PYQEMU_BUILD_ROOT/pyqemu-system-TARGET`` (``build/`` of the source tree
by default).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, TextIO, final

__all__ = [
    "DEFAULT_TIMEOUT",
    "QMPError",
    "QTestError",
    "QTestFailError",
    "QTestState",
    "QTestTimeoutError",
    "qemu_binary",
]

DEFAULT_TIMEOUT: Final = 30.0
"""Seconds to wait for the emulator to start, reply or exit."""

SOURCE_ROOT: Final = Path(__file__).resolve().parents[2]

_READS: Final = {1: "readb", 2: "readw", 4: "readl", 8: "readq"}
_WRITES: Final = {1: "writeb", 2: "writew", 4: "writel", 8: "writeq"}


class QTestError(Exception):
    """The root of the helper's errors: the emulator died, misbehaved or hung."""


class QTestFailError(QTestError):
    """The emulator answered a command with ``FAIL``/``ERR``.

    Attributes:
        command: the command line sent.
        reply: the reply line, without its newline.
    """

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"qtest command {command!r} failed: {reply}")
        self.command = command
        self.reply = reply


class QTestTimeoutError(QTestError):
    """The emulator did not start, answer or exit in time."""


class QMPError(QTestError):
    """A QMP command returned an error; ``error`` is QMP's error object."""

    def __init__(self, command: str, error: dict[str, object]) -> None:
        super().__init__(f"QMP {command} failed: {error.get('desc', error)}")
        self.error = error


def qemu_binary(target: str = "aarch64") -> Path:
    """The launcher to start: ``$QTEST_QEMU_BINARY`` or the build tree's."""
    env = os.environ.get("QTEST_QEMU_BINARY")
    if env:
        return Path(env)
    build = Path(os.environ.get("PYQEMU_BUILD_ROOT", SOURCE_ROOT / "build"))
    return build / f"pyqemu-system-{target}"


def _listen(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(1)
    return sock


@final
class QTestState:
    """One emulator process driven through qtest (libqtest's ``QTestState``).

    Args:
        args: the launcher's arguments besides the qtest plumbing (for
            example ``["-M", "virt", "-nodefaults"]``).
        target: ``aarch64`` or ``x86_64``: which launcher to start.
        transport: ``"unix"``: the emulator connects to a socket the
            helper listens on (as libqtest); ``"stdio"``: ``-qtest stdio``
            over the process's standard input and output.
        qmp: also connect a QMP monitor (``-qmp unix:PATH``) and do the
            capabilities handshake; see :meth:`qmp`.
        accel: the accelerator; ``None`` passes no ``-accel``.
        log: the ``-qtest-log`` file; ``""`` (the default) for
            ``/dev/null``, or standard error when ``QTEST_LOG`` is set; None
            passes no ``-qtest-log`` (the emulator then logs to standard
            error, as QEMU does).
        timeout: seconds to wait for each step.
        binary: the launcher; see :func:`qemu_binary`.
        env: extra environment variables for the emulator.

    Raises:
        QTestError: the emulator exited before connecting.
        QTestTimeoutError: it did not connect in time.
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        target: str = "aarch64",
        transport: Literal["unix", "stdio"] = "unix",
        qmp: bool = False,
        accel: str | None = "qtest",
        log: str | None = "",
        timeout: float = DEFAULT_TIMEOUT,
        binary: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self.irq_level: dict[int, bool] = {}
        """The level of each intercepted line, from the ``IRQ`` lines received."""
        self.irq_events: list[tuple[str, int]] = []
        """Every ``IRQ`` line received, in order: ``("raise", n)``/``("lower", n)``."""
        self.qmp_events: list[dict[str, object]] = []
        """QMP events received while waiting for replies."""
        self._rx = bytearray()
        self._qmp_rx = bytearray()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._qmp_sock: socket.socket | None = None
        self._tmpdir = tempfile.mkdtemp(prefix="pyqemu-qtest-")
        self._stderr_path = Path(self._tmpdir) / "stderr"
        self._stderr: TextIO = self._stderr_path.open("w")
        self._stderr_text: str | None = None
        self.returncode: int | None = None
        self.big_endian = False

        if log == "":
            log = "/dev/fd/2" if os.environ.get("QTEST_LOG") else "/dev/null"
        self.binary = binary if binary is not None else qemu_binary(target)
        cmd = [str(self.binary)]
        listeners: list[socket.socket] = []
        try:
            if transport == "unix":
                path = os.path.join(self._tmpdir, "qtest.sock")
                listeners.append(_listen(path))
                cmd += ["-qtest", f"unix:{path}"]
            else:
                cmd += ["-qtest", "stdio"]
            if qmp:
                qmp_path = os.path.join(self._tmpdir, "qmp.sock")
                listeners.append(_listen(qmp_path))
                cmd += ["-qmp", f"unix:{qmp_path}"]
            if log is not None:
                cmd += ["-qtest-log", log]
            cmd += ["-display", "none", *args]
            if accel is not None:
                cmd += ["-accel", accel]
            self.command = cmd
            """The emulator's command line."""
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE if transport == "stdio" else subprocess.DEVNULL,
                stdout=subprocess.PIPE if transport == "stdio" else subprocess.DEVNULL,
                stderr=self._stderr,
                env={**os.environ, **(env or {})},
            )
            if transport == "unix":
                self._sock = self._accept(listeners[0])
            if qmp:
                self._qmp_sock = self._accept(listeners[-1])
        except BaseException:
            self.kill()
            raise
        finally:
            for lst in listeners:
                lst.close()
        self.big_endian = self.command_ok("endianness") == "big"
        if qmp:
            greeting = self._qmp_read()
            if "QMP" not in greeting:
                raise QTestError(f"no QMP greeting, got {greeting!r}")
            self.qmp("qmp_capabilities")

    # -- process -----------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The emulator's process id."""
        assert self._proc is not None
        return self._proc.pid

    def _accept(self, listener: socket.socket) -> socket.socket:
        deadline = time.monotonic() + self.timeout
        listener.setblocking(False)
        while True:
            ready, _, _ = select.select([listener], [], [], 0.05)
            if ready:
                conn, _ = listener.accept()
                conn.setblocking(True)
                return conn
            if self.poll() is not None:
                raise QTestError(
                    f"the emulator exited with status {self.returncode} before "
                    f"connecting: {self.command}\n{self.stderr()}"
                )
            if time.monotonic() > deadline:
                raise QTestTimeoutError(
                    f"the emulator did not connect within {self.timeout} s: "
                    f"{self.command}\n{self.stderr()}"
                )

    def poll(self) -> int | None:
        """Return the exit status if the emulator has exited, else None."""
        if self._proc is not None and self.returncode is None:
            self.returncode = self._proc.poll()
        return self.returncode

    def stderr(self) -> str:
        """Everything the emulator wrote to standard error so far."""
        if self._stderr_text is not None:
            return self._stderr_text
        self._stderr.flush()
        return self._stderr_path.read_text(errors="replace")

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the emulator to exit and return its status.

        Raises:
            QTestTimeoutError: it is still running after ``timeout`` seconds.
        """
        assert self._proc is not None
        try:
            self.returncode = self._proc.wait(
                self.timeout if timeout is None else timeout
            )
        except subprocess.TimeoutExpired:
            raise QTestTimeoutError(
                f"the emulator did not exit: {self.command}\n{self.stderr()}"
            ) from None
        return self.returncode

    def quit(self) -> int:
        """Ask the emulator to end (SIGTERM, as ``qtest_quit``), then reap it.

        If it does not exit within the timeout it is killed (SIGKILL).

        Returns:
            The exit status (negative: the signal that ended it).
        """
        proc = self._proc
        if proc is not None and self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                self.wait()
            except QTestTimeoutError:
                self.kill()
        return self._close()

    def kill(self) -> int:
        """Kill the emulator at once (SIGKILL) and reap it."""
        proc = self._proc
        if proc is not None and self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            self.returncode = proc.wait()
        return self._close()

    def disconnect(self) -> None:
        """Close the qtest connection; the emulator keeps running, as QEMU's."""
        if self._sock is not None:
            self._sock.shutdown(socket.SHUT_RDWR)
        else:
            assert self._proc is not None
            assert self._proc.stdin is not None
            self._proc.stdin.close()

    def _close(self) -> int:
        for sock in (self._sock, self._qmp_sock):
            if sock is not None:
                sock.close()
        self._sock = self._qmp_sock = None
        proc = self._proc
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        self._stderr.flush()
        if self._stderr_text is None:
            # keep standard error readable after the end
            self._stderr_text = self.stderr()
            self._stderr.close()
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        return self.returncode if self.returncode is not None else 0

    def __enter__(self) -> QTestState:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.quit()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.kill()

    # -- the line protocol ---------------------------------------------------------

    def _out_fd(self) -> int:
        if self._sock is not None:
            return self._sock.fileno()
        assert self._proc is not None
        assert self._proc.stdin is not None
        return self._proc.stdin.fileno()

    def _in_fd(self) -> int:
        if self._sock is not None:
            return self._sock.fileno()
        assert self._proc is not None
        assert self._proc.stdout is not None
        return self._proc.stdout.fileno()

    def send(self, data: bytes) -> None:
        """Send raw bytes to the qtest server (no reply is read)."""
        view = memoryview(data)
        fd = self._out_fd()
        while view:
            try:
                n = os.write(fd, view)
            except BrokenPipeError:
                raise QTestError(
                    f"the emulator closed the qtest connection\n{self.stderr()}"
                ) from None
            view = view[n:]

    def _fill(self, buf: bytearray, fd: int, deadline: float, what: str) -> None:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(remaining, 0))
        if not ready:
            shown = bytes(buf[:200]) + (b"..." if len(buf) > 200 else b"")
            raise QTestTimeoutError(
                f"no {what} within {self.timeout} s ({len(buf)} bytes buffered: "
                f"{shown!r})\n{self.stderr()}"
            )
        chunk = os.read(fd, 65536)
        if not chunk:
            self.poll()
            raise QTestError(
                f"the emulator closed the {what} connection (status "
                f"{self.returncode})\n{self.stderr()}"
            )
        buf += chunk

    def recv_line(self) -> str:
        """Read the next line that is not an ``IRQ`` line (those are recorded)."""
        deadline = time.monotonic() + self.timeout
        rx = self._rx
        scanned = 0  # no newline before this offset: long replies stay linear
        while True:
            eol = rx.find(b"\n", scanned)
            if eol < 0:
                scanned = len(rx)
                self._fill(rx, self._in_fd(), deadline, "qtest reply")
                continue
            line = rx[:eol].decode("latin-1")
            del rx[: eol + 1]
            scanned = 0
            if line.startswith("IRQ "):
                self._irq_line(line)
                continue
            return line

    def _irq_line(self, line: str) -> None:
        words = line.split()
        if len(words) != 3 or words[1] not in ("raise", "lower"):
            raise QTestError(f"malformed asynchronous line {line!r}")
        n = int(words[2])
        self.irq_level[n] = words[1] == "raise"
        self.irq_events.append((words[1], n))

    def raw(self, line: str) -> str:
        """Send one command line and return its reply line (without newline).

        Nothing is checked: use it to test malformed commands.
        """
        self.send(line.encode("latin-1") + b"\n")
        return self.recv_line()

    def command_ok(self, line: str) -> str:
        """Send a command; return what follows ``OK`` (``""`` for a bare ``OK``).

        Raises:
            QTestFailError: the reply is not ``OK ...``.
        """
        reply = self.raw(line)
        if reply == "OK":
            return ""
        if reply.startswith("OK "):
            return reply[3:]
        raise QTestFailError(line, reply)

    # -- memory --------------------------------------------------------------------

    def _read(self, cmd: str, addr: int) -> int:
        return int(self.command_ok(f"{cmd} 0x{addr:x}"), 16)

    def readb(self, addr: int) -> int:
        """Read a byte from guest memory."""
        return self._read("readb", addr)

    def readw(self, addr: int) -> int:
        """Read 16 bits in the target's byte order."""
        return self._read("readw", addr)

    def readl(self, addr: int) -> int:
        """Read 32 bits in the target's byte order."""
        return self._read("readl", addr)

    def readq(self, addr: int) -> int:
        """Read 64 bits in the target's byte order."""
        return self._read("readq", addr)

    def read(self, addr: int, size: int) -> int:
        """Read ``size`` (1, 2, 4 or 8) bytes: ``readb`` ... ``readq``."""
        if size not in _READS:
            raise ValueError(f"access size {size}: expected 1, 2, 4 or 8 bytes")
        return self._read(_READS[size], addr)

    def write(self, addr: int, value: int, size: int) -> None:
        """Write ``size`` (1, 2, 4 or 8) bytes: ``writeb`` ... ``writeq``."""
        if size not in _WRITES:
            raise ValueError(f"access size {size}: expected 1, 2, 4 or 8 bytes")
        self.command_ok(f"{_WRITES[size]} 0x{addr:x} 0x{value:x}")

    def writeb(self, addr: int, value: int) -> None:
        """Write a byte to guest memory."""
        self.command_ok(f"writeb 0x{addr:x} 0x{value:x}")

    def writew(self, addr: int, value: int) -> None:
        """Write 16 bits in the target's byte order."""
        self.command_ok(f"writew 0x{addr:x} 0x{value:x}")

    def writel(self, addr: int, value: int) -> None:
        """Write 32 bits in the target's byte order."""
        self.command_ok(f"writel 0x{addr:x} 0x{value:x}")

    def writeq(self, addr: int, value: int) -> None:
        """Write 64 bits in the target's byte order."""
        self.command_ok(f"writeq 0x{addr:x} 0x{value:x}")

    def memread(self, addr: int, size: int) -> bytes:
        """Read ``size`` bytes (``read``: hex on the wire)."""
        hexdata = self.command_ok(f"read 0x{addr:x} 0x{size:x}")
        return bytes.fromhex(hexdata.removeprefix("0x"))

    def memwrite(self, addr: int, data: bytes) -> None:
        """Write ``data`` (``write``: hex on the wire)."""
        self.command_ok(f"write 0x{addr:x} 0x{len(data):x} 0x{data.hex()}")

    def bufread(self, addr: int, size: int) -> bytes:
        """Read ``size`` bytes (``b64read``: base64 on the wire)."""
        return base64.b64decode(self.command_ok(f"b64read 0x{addr:x} 0x{size:x}"))

    def bufwrite(self, addr: int, data: bytes) -> None:
        """Write ``data`` (``b64write``: base64 on the wire)."""
        b64 = base64.b64encode(data).decode("ascii")
        self.command_ok(f"b64write 0x{addr:x} 0x{len(data):x} {b64}")

    def memset(self, addr: int, pattern: int, size: int) -> None:
        """Fill ``size`` bytes with ``pattern`` (libqtest's argument order)."""
        self.command_ok(f"memset 0x{addr:x} 0x{size:x} 0x{pattern:02x}")

    def inb(self, port: int) -> int:
        """Read an 8-bit I/O port."""
        return self._read("inb", port)

    def inw(self, port: int) -> int:
        """Read a 16-bit I/O port."""
        return self._read("inw", port)

    def inl(self, port: int) -> int:
        """Read a 32-bit I/O port."""
        return self._read("inl", port)

    def outb(self, port: int, value: int) -> None:
        """Write an 8-bit I/O port."""
        self.command_ok(f"outb 0x{port:x} 0x{value:x}")

    def outw(self, port: int, value: int) -> None:
        """Write a 16-bit I/O port."""
        self.command_ok(f"outw 0x{port:x} 0x{value:x}")

    def outl(self, port: int, value: int) -> None:
        """Write a 32-bit I/O port."""
        self.command_ok(f"outl 0x{port:x} 0x{value:x}")

    # -- time and interrupts -----------------------------------------------------

    def clock_step(self, ns: int | None = None) -> int:
        """Advance the virtual clock (to the next deadline if ``ns`` is None).

        Returns:
            The new virtual time in ns.
        """
        cmd = "clock_step" if ns is None else f"clock_step {ns}"
        return int(self.command_ok(cmd))

    def clock_set(self, ns: int) -> int:
        """Advance the virtual clock to ``ns``; return the new virtual time."""
        return int(self.command_ok(f"clock_set {ns}"))

    def irq_intercept_in(self, path: str) -> None:
        """Report the level changes of the device's anonymous GPIO inputs."""
        self.command_ok(f"irq_intercept_in {path}")

    def irq_intercept_out(self, path: str, name: str | None = None) -> None:
        """Report the level changes of the device's GPIO outputs ``name[*]``.

        None intercepts the anonymous outputs; a name (``sysbus-irq`` for a
        sysbus device's IRQs) is QEMU 8.1's form of the command.
        """
        self.command_ok(f"irq_intercept_out {path}" + (f" {name}" if name else ""))

    def set_irq_in(self, path: str, name: str | None, n: int, level: int) -> None:
        """Drive GPIO input ``name[n]`` (None: the anonymous list) to ``level``."""
        self.command_ok(f"set_irq_in {path} {name or 'unnamed-gpio-in'} {n} {level}")

    def get_irq(self, n: int) -> bool:
        """The level of intercepted line ``n``, after a round trip.

        As libqtest, a dummy command first makes sure every ``IRQ`` line
        the emulator sent so far has been read.
        """
        self.command_ok("endianness")
        return self.irq_level.get(n, False)

    # -- QMP -----------------------------------------------------------------------

    def _qmp_read(self) -> dict[str, object]:
        assert self._qmp_sock is not None, "start QTestState with qmp=True"
        deadline = time.monotonic() + self.timeout
        rx = self._qmp_rx
        while True:
            eol = rx.find(b"\n")
            if eol < 0:
                self._fill(rx, self._qmp_sock.fileno(), deadline, "QMP reply")
                continue
            text = rx[:eol].decode("utf-8")
            del rx[: eol + 1]
            if text.strip():
                msg = json.loads(text)
                if not isinstance(msg, dict):
                    raise QTestError(f"QMP sent a non-object: {text!r}")
                return msg

    def qmp(self, command: str, **arguments: object) -> object:
        """Run a QMP command and return its ``return`` value.

        Events that arrive meanwhile go to :attr:`qmp_events`.

        Raises:
            QMPError: the command returned an error.
        """
        assert self._qmp_sock is not None, "start QTestState with qmp=True"
        msg: dict[str, object] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self._qmp_sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._qmp_read()
            if "event" in reply:
                self.qmp_events.append(reply)
                continue
            if "error" in reply:
                err = reply["error"]
                raise QMPError(command, err if isinstance(err, dict) else {})
            return reply.get("return")
