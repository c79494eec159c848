"""A Linux guest on a serial console: boot it, type at its shell, power it off.

The console driver of the ``linux`` test suite and of the boot benchmark. It starts
any launcher that takes QEMU's command line (Debian's ``qemu-system-aarch64``, or
pyqemu's ``build/pyqemu-system-aarch64``) on the ``virt`` board with the kernel and
initramfs of ``scripts/fetch-guest.py``, the serial port on its standard streams (a
pseudo-terminal that pexpect reads and writes) and QMP on a Unix socket, then
follows the boot to the shell prompt and runs commands there, as a person at the
console would.

The guest's ``/init`` (``scripts/guest/rootfs/init``) prints ``init:`` lines with
its kernel uptime at each step; :meth:`LinuxGuest.boot` records them next to the
host's clock, so a boot says where its time went.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final

import pexpect
from qemu.qmp.legacy import QEMUMonitorProtocol

SOURCE_ROOT: Final = Path(
    os.environ.get("PYQEMU_SOURCE_ROOT", Path(__file__).parents[2])
)
BUILD_ROOT: Final = Path(os.environ.get("PYQEMU_BUILD_ROOT", SOURCE_ROOT / "build"))

QEMU: Final = "qemu-system-aarch64"
PYQEMU: Final = str(BUILD_ROOT / "pyqemu-system-aarch64")
MACHINE: Final = ("-M", "virt", "-cpu", "cortex-a57", "-accel", "tcg")
APPEND: Final = "console=ttyAMA0 quiet"
MEMORY: Final = "256M"

PROMPT: Final = re.compile(r"root@pyqemu:[^\r\n#]*# ")
INIT_RAN: Final = re.compile(r"init: kernel (\S+) ran /init at ([0-9.]+) s")
INIT_MODULES: Final = re.compile(r"init: modules loaded at ([0-9.]+) s")
INIT_SHELL: Final = re.compile(r"init: starting the shell at ([0-9.]+) s")
PANIC: Final = re.compile(r"Kernel panic - not syncing[^\r\n]*")

# What pexpect's expect() takes in its list (its stubs' list type, which is invariant).
Pattern = (
    re.Pattern[str]
    | re.Pattern[bytes]
    | str
    | bytes
    | type[pexpect.EOF]
    | type[pexpect.TIMEOUT]
)


class GuestError(Exception):
    """The guest or its launcher did not do what was expected; says what it printed."""


@dataclass(frozen=True)
class GuestFiles:
    """The kernel and initramfs ``scripts/fetch-guest.py`` made, and their release."""

    kernel: Path
    initrd: Path
    release: str


def fetch_guest(directory: Path | None = None) -> GuestFiles:
    """Run the fetcher (a no-op with a warm cache) and return the guest's files.

    Parallel callers wait for each other (the fetcher locks its directory). A
    failure raises: a test that needs the guest fails, it is never skipped.
    """
    directory = directory or BUILD_ROOT / "guest"
    cmd = [
        sys.executable,
        str(SOURCE_ROOT / "scripts" / "fetch-guest.py"),
        "--dir",
        str(directory),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise GuestError(
            "fetching the Linux guest failed:\n" + result.stdout + result.stderr
        )
    manifest = json.loads((directory / "guest.json").read_text())
    release = str(manifest.get("release") or "")
    return GuestFiles(directory / "Image", directory / "initramfs.cpio", release)


def launcher_path(name: str) -> str:
    """``qemu`` and ``pyqemu`` name the two launchers; anything else is a command."""
    return {"qemu": QEMU, "pyqemu": PYQEMU}.get(name, name)


def launcher_cpu_probe(launcher: str) -> str | None:
    """Why ``launcher`` cannot run an AArch64 guest, or None when it can.

    The launcher must list the ``tcg`` accelerator under ``-accel help`` and the
    ``cortex-a57`` CPU under ``-M virt -cpu help``.
    """
    if shutil.which(launcher) is None:
        return f"{launcher} is not installed or not executable"
    for args, want in (
        (["-accel", "help"], "tcg"),
        (["-M", "virt", "-cpu", "help"], "cortex-a57"),
    ):
        try:
            result = subprocess.run(
                [launcher, *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"{launcher} {' '.join(args)} did not answer within 60 s"
        if result.returncode != 0 or want not in result.stdout.split():
            answer = (result.stdout + result.stderr).strip().splitlines()
            return (
                f"{launcher} {' '.join(args)} does not list {want} "
                f"(exit {result.returncode}: {answer[-1] if answer else 'no output'})"
            )
    return None


@dataclass
class BootTimes:
    """Where a boot's time went.

    Host seconds since the launcher started, and the kernel's uptime that ``/init``
    printed at its steps.
    """

    first_output: float | None = None
    init_host: float | None = None
    init_uptime: float | None = None
    modules_uptime: float | None = None
    shell_uptime: float | None = None
    prompt: float | None = None
    release: str = ""

    def describe(self) -> str:
        """One line for a log or a benchmark."""

        def s(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f} s"

        return (
            f"prompt after {s(self.prompt)} (first output {s(self.first_output)}, "
            f"/init at {s(self.init_host)}; "
            f"kernel uptime: /init {s(self.init_uptime)}, "
            f"modules loaded {s(self.modules_uptime)}, shell {s(self.shell_uptime)})"
        )


class Transcript:
    """Everything a console printed: kept in memory and written to a log file."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("w", encoding="utf-8", errors="replace")
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.file.write(text)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def text(self) -> str:
        return "".join(self.parts)


@dataclass
class LinuxGuest:
    """One launcher process running the guest, its console and its QMP socket.

    Use it as a context manager: leaving the block ends the process if it still
    runs. ``timeout_scale`` multiplies every timeout (a slower launcher).
    """

    launcher: str
    files: GuestFiles
    name: str = "guest"
    extra_args: tuple[str, ...] = ()
    memory: str = MEMORY
    append: str = APPEND
    timeout_scale: float = 1.0
    log_dir: Path = field(default_factory=lambda: BUILD_ROOT / "tests" / "linux")
    child: pexpect.spawn[str] | None = None
    started: float = 0.0
    tmpdir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="pyqemu-linux-"))
    )
    transcript: Transcript | None = None
    _qmp: QEMUMonitorProtocol | None = None
    _serial: int = 0

    @property
    def qmp_path(self) -> Path:
        return self.tmpdir / "qmp.sock"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def command(self) -> list[str]:
        """The launcher's command line."""
        return [
            self.launcher,
            *MACHINE,
            "-m",
            self.memory,
            "-nographic",
            # Ctrl-C goes to the guest, as a key on its console.
            "-chardev",
            "stdio,id=console,signal=off",
            "-serial",
            "chardev:console",
            "-kernel",
            str(self.files.kernel),
            "-initrd",
            str(self.files.initrd),
            "-append",
            self.append,
            "-qmp",
            f"unix:{self.qmp_path},server=on,wait=off",
            *self.extra_args,
        ]

    def start(self) -> None:
        """Start the launcher with the console on a pseudo-terminal."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        self.transcript = Transcript(self.log_path)
        self.transcript.file.write("$ " + " ".join(cmd) + "\n")
        self.started = time.monotonic()
        self.child = pexpect.spawn(
            cmd[0],
            cmd[1:],
            encoding="utf-8",
            codec_errors="replace",
            timeout=30,
            dimensions=(50, 200),
        )
        self.child.logfile_read = self.transcript

    @property
    def console(self) -> pexpect.spawn[str]:
        if self.child is None:
            raise GuestError(f"{self.name}: the launcher was not started")
        return self.child

    def elapsed(self) -> float:
        """Host seconds since the launcher started."""
        return time.monotonic() - self.started

    def fail(self, what: str) -> GuestError:
        """An error that quotes the end of the console output."""
        tail = ""
        if self.child is not None:
            tail = str(self.child.before or "")[-1500:]
        return GuestError(
            f"{self.name} ({os.path.basename(self.launcher)}): {what} "
            f"after {self.elapsed():.1f} s; console log {self.log_path}; "
            f"last output:\n{tail}"
        )

    def expect(self, patterns: list[Pattern], timeout: float) -> int:
        """Wait for one of the patterns; EOF and timeouts raise unless asked for."""
        try:
            index: int = self.console.expect(
                patterns, timeout=timeout * self.timeout_scale
            )
        except pexpect.EOF:
            raise self.fail("the launcher exited") from None
        except pexpect.TIMEOUT:
            raise self.fail(
                f"no {patterns[0]!r} within {timeout * self.timeout_scale:.0f} s"
            ) from None
        return index

    def boot(self, timeout: float = 120) -> BootTimes:
        """Start (unless started) and follow the boot to the first shell prompt."""
        if self.child is None:
            self.start()
        times = BootTimes()
        patterns: list[Pattern] = [
            PROMPT,
            INIT_RAN,
            INIT_MODULES,
            INIT_SHELL,
            PANIC,
            re.compile(r"(?=\S)"),
        ]
        deadline = time.monotonic() + timeout * self.timeout_scale
        while True:
            left = max(0.1, deadline - time.monotonic()) / self.timeout_scale
            i = self.expect(patterns, left)
            match = self.console.match
            assert isinstance(match, re.Match)
            now = self.elapsed()
            if times.first_output is None:
                times.first_output = now
            if i == 0:
                times.prompt = now
                break
            if i == 1:
                times.init_host = now
                times.release = match.group(1)
                times.init_uptime = float(match.group(2))
            elif i == 2:
                times.modules_uptime = float(match.group(1))
            elif i == 3:
                times.shell_uptime = float(match.group(1))
            elif i == 4:
                raise self.fail(match.group(0))
            if len(patterns) == 6:
                patterns.pop()  # the first output was seen: stop looking for it
        # A wide terminal: the shell's line editor does not wrap the commands.
        self.run("stty cols 1000 rows 50")
        return times

    def expect_prompt(self, timeout: float = 30) -> None:
        self.expect([PROMPT], timeout)

    def run_rc(self, command: str, timeout: float = 30) -> tuple[int, str]:
        r"""Run a shell command; return its exit status and output (``\\n`` lines)."""
        self._serial += 1
        marker = f"@{self._serial}@"
        self.console.sendline(f"{command}; echo {marker}$?@")
        # The echoed line shows "$?"; only the command's own output has digits there.
        self.expect([re.compile(re.escape(marker) + r"(\d+)@")], timeout)
        match = self.console.match
        assert isinstance(match, re.Match)
        before = str(self.console.before).replace("\r", "")
        output = before.split("\n", 1)[1] if "\n" in before else ""
        self.expect_prompt(timeout)
        return int(match.group(1)), output

    def run(self, command: str, timeout: float = 30) -> str:
        """Run a shell command that must succeed; return its output."""
        rc, output = self.run_rc(command, timeout)
        if rc != 0:
            raise self.fail(f"{command!r} exited with status {rc}:\n{output}")
        return output

    @property
    def qmp(self) -> QEMUMonitorProtocol:
        """The QMP connection (made on first use)."""
        if self._qmp is None:
            deadline = time.monotonic() + 30 * self.timeout_scale
            while not self.qmp_path.exists():
                if time.monotonic() > deadline:
                    raise self.fail(f"no QMP socket {self.qmp_path}")
                time.sleep(0.05)
            self._qmp = QEMUMonitorProtocol(str(self.qmp_path))
            self._qmp.connect()
        return self._qmp

    def output(self) -> str:
        """All that the console printed so far (what expect has read)."""
        return self.transcript.text() if self.transcript is not None else ""

    def drain(self, quiet: float = 1.0) -> None:
        """Read the console until it printed nothing for ``quiet`` seconds."""
        while True:
            try:
                self.console.read_nonblocking(65536, timeout=quiet)
            except (pexpect.TIMEOUT, pexpect.EOF):
                return

    def wait_exit(self, timeout: float = 60) -> int:
        """Wait for the launcher to exit; return its exit status."""
        self.expect([pexpect.EOF], timeout)
        child = self.console
        child.wait()
        if child.signalstatus is not None:
            raise self.fail(f"the launcher was killed by signal {child.signalstatus}")
        assert child.exitstatus is not None
        return child.exitstatus

    def close(self) -> None:
        """End the launcher if it still runs and drop the temporary directory."""
        if self._qmp is not None:
            with contextlib.suppress(OSError):
                self._qmp.close()
            self._qmp = None
        if self.child is not None:
            if self.child.isalive():
                self.child.terminate(force=True)
            self.child.close()
        if self.transcript is not None:
            self.transcript.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> LinuxGuest:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def wait_for_path(path: Path, timeout: float) -> None:
    """Wait until a launcher created a socket (an ``-incoming`` URI listens there).

    Connecting to see whether it listens would start the migration itself.
    """
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise GuestError(f"no {path} after {timeout:.0f} s")
        time.sleep(0.05)
