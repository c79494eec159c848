"""CPU-driven campaigns: bare-metal guests that hammer the devices or fault.

Two targets run a guest from ``tests/fuzz/guest`` on the real launcher
(``pyqemu-system-aarch64 -M virt``), one emulator process per input:

- ``guest_hammer``: random loads and stores of 1, 2, 4 and 8 bytes, aligned
  or not, at random offsets of the PL011, PL031, PL061, the GIC's
  distributor and CPU interface and unmapped holes, from a generator the
  guest seeds with the PL031's count, which the input chooses with
  ``-rtc base=...,clock=vm``;
- ``guest_faults``: a guest taking data aborts, undefined instructions,
  BRKs, alignment faults and SVCs in a loop, each resumed by its vector.

While the guest runs, QMP ``query-status`` and HMP ``info status`` (through
``human-monitor-command``) are sent over and over: each must be answered,
within :data:`MAX_REPLY_SECONDS`, with the machine running.  Then the test
reads the guest's progress from its serial output (the guest prints the
seed, then the round count and the faults so far after every round) and
quits through QMP.  Checked: the guest printed the seed it was given and
made progress, the monitor answered throughout, the process exits 0 on
``quit``, its standard error holds nothing but the no-DTB warning (no
traceback), and the guest errors went to the ``-d guest_errors`` log.

An operation is one guest access (the hammer: rounds times 4096) or one
exception taken (the fault loop).
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar, Final

from tests.fuzz.engine import FuzzFailure, FuzzTarget, register

__all__ = ["GuestTarget", "guest_elf", "launcher"]

MAX_REPLY_SECONDS: Final = 10.0
"""The longest a monitor reply may take while the guest runs."""
MAX_RUN_SECONDS: Final = 60.0
"""How much longer a run may last when the guest has finished no round yet."""
_DTB_WARNING: Final = "warning: the DTB"
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_HEX: Final = re.compile(r"(seed|round|faults)=([0-9a-f]{16})$", re.M)
"""A progress line; the hammer's random stores to UARTDR may put bytes before it."""


def _build_root() -> Path:
    return Path(os.environ.get("PYQEMU_BUILD_ROOT", "build"))


def launcher() -> Path:
    """The built ``pyqemu-system-aarch64``."""
    return _build_root() / "pyqemu-system-aarch64"


def guest_elf(name: str) -> Path:
    """A fuzz guest built by ``tests/fuzz/meson.build``."""
    return _build_root() / "tests" / "fuzz" / f"{name}.elf"


def _progressed(serial: Path) -> bool:
    """Whether the guest has printed a round."""
    try:
        return b"round=" in serial.read_bytes()
    except FileNotFoundError:
        return False


class _Monitor:
    """A QMP client on a Unix socket: one command at a time, events skipped."""

    def __init__(self, path: Path, deadline: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        while True:
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise FuzzFailure(
                        "the QMP socket did not come up in time"
                    ) from None
                time.sleep(0.05)
        self.sock.settimeout(MAX_REPLY_SECONDS)
        self.file = self.sock.makefile("rw")
        self._line()  # the greeting
        self.command("qmp_capabilities")

    def _line(self) -> dict[str, object]:
        try:
            line = self.file.readline()
        except TimeoutError:
            raise FuzzFailure(
                f"the monitor did not answer within {MAX_REPLY_SECONDS} s"
            ) from None
        if not line:
            raise FuzzFailure("the monitor closed the connection")
        msg = json.loads(line)
        if not isinstance(msg, dict):
            raise FuzzFailure(f"the monitor sent {line!r}")
        return msg

    def command(self, name: str, **arguments: object) -> object:
        """Run one command; return its ``return`` value."""
        request: dict[str, object] = {"execute": name}
        if arguments:
            request["arguments"] = arguments
        self.file.write(json.dumps(request) + "\n")
        self.file.flush()
        while True:
            msg = self._line()
            if "event" in msg:
                continue
            if "return" not in msg:
                raise FuzzFailure(f"{name}: {msg}")
            return msg["return"]

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class GuestTarget(FuzzTarget):
    """One guest run per input; subclasses name the guest and its operations."""

    protocol = "guest"
    limit_address_space = False
    in_process = False
    guest: ClassVar[str] = ""
    run_seconds: ClassVar[float] = 2.0
    """How long each input lets the guest run (``FUZZ_GUEST_SECONDS``)."""

    op_timeout = 900.0

    @property
    def seconds(self) -> float:
        """This run's length: ``FUZZ_GUEST_SECONDS`` or :attr:`run_seconds`."""
        return float(os.environ.get("FUZZ_GUEST_SECONDS", self.run_seconds))

    def setup(self, workdir: Path) -> None:
        self.elf = guest_elf(self.guest)
        if not self.elf.exists():
            raise FileNotFoundError(f"{self.elf} is missing: build it with make")
        self.workdir = workdir
        self.last_ops = 0

    def generate(self, rng: random.Random) -> bytes:
        return rng.getrandbits(32).to_bytes(4, "little")

    def cost(self, data: bytes) -> int:
        """The guest's operations in the run :meth:`execute` just made."""
        return self.last_ops

    def operations(self, rounds: int, faults: int) -> int:
        """The operations done in ``rounds`` rounds with ``faults`` exceptions."""
        raise NotImplementedError

    def execute(self, data: bytes) -> str:
        self.last_ops = 0
        seed = int.from_bytes(data[:4].ljust(4, b"\0"), "little") % 500_000_000
        base = (_EPOCH + timedelta(seconds=seed)).strftime("%Y-%m-%dT%H:%M:%S")
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            run = Path(tmp)
            qmp, serial, log = run / "qmp.sock", run / "serial.txt", run / "log.txt"
            proc = subprocess.Popen(
                [
                    str(launcher()),
                    "-M",
                    "virt",
                    "-display",
                    "none",
                    "-kernel",
                    str(self.elf),
                    "-serial",
                    f"file:{serial}",
                    "-qmp",
                    f"unix:{qmp},server=on,wait=off",
                    "-rtc",
                    f"base={base},clock=vm",
                    "-d",
                    "guest_errors,unimp",
                    "-D",
                    str(log),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                replies = self._watch(proc, qmp, serial)
                out = serial.read_text(errors="replace")
                proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                stdout, stderr = proc.communicate()
            self._check_exit(proc.returncode, stdout, stderr)
            logged = log.read_text(errors="replace") if log.exists() else ""
        values: dict[str, int] = {}
        for key, value in _HEX.findall(out):
            values[key] = int(value, 16)
        if (
            values.get("seed") is None
            or not seed <= values["seed"] - (int(_EPOCH.timestamp())) <= seed + 5
        ):
            raise FuzzFailure(
                f"the guest read seed {values.get('seed')} from the PL031; the "
                f"run set it to {int(_EPOCH.timestamp()) + seed} (-rtc base={base})"
            )
        rounds = values.get("round", 0)
        if rounds == 0:
            raise FuzzFailure(
                f"the guest finished no round in {self.seconds} s; its output: "
                f"{out[-300:]!r}"
            )
        faults = values.get("faults", 0)
        if faults and not logged:
            raise FuzzFailure("the guest faulted but nothing went to the -d log")
        if "Traceback" in logged:
            raise FuzzFailure(f"a traceback in the log: {logged[-1000:]}")
        self.last_ops = self.operations(rounds, faults)
        return f"{replies // 10} x10 monitor replies, faults {faults > 0}"

    def _watch(self, proc: subprocess.Popen[str], qmp: Path, serial: Path) -> int:
        """Query the monitor while the guest runs; quit; return the replies.

        The run lasts :attr:`seconds`, and on a slow host up to
        :data:`MAX_RUN_SECONDS` more until the guest has finished a round.
        """
        start = time.monotonic()
        mon = _Monitor(qmp, start + 30)
        replies = 0
        try:
            end = time.monotonic() + self.seconds
            last = end + MAX_RUN_SECONDS
            while time.monotonic() < end or (
                time.monotonic() < last and not _progressed(serial)
            ):
                status = mon.command("query-status")
                if not isinstance(status, dict) or status.get("status") != "running":
                    raise FuzzFailure(f"query-status says {status} mid-run")
                hmp = mon.command(
                    "human-monitor-command", **{"command-line": "info status"}
                )
                if hmp != "VM status: running\r\n":
                    raise FuzzFailure(f"HMP info status says {hmp!r} mid-run")
                replies += 2
                if proc.poll() is not None:
                    raise FuzzFailure(
                        f"the emulator exited ({proc.returncode}) mid-run"
                    )
                time.sleep(0.1)
            mon.command("quit")
        finally:
            mon.close()
        return replies

    def _check_exit(self, code: int, stdout: str, stderr: str) -> None:
        noise = [ln for ln in stderr.splitlines() if _DTB_WARNING not in ln]
        if code != 0 or noise:
            raise FuzzFailure(
                f"the emulator exited {code} after quit; standard error: "
                f"{chr(10).join(noise)[-1500:]!r}"
            )


@register
class GuestHammerTarget(GuestTarget):
    """Random device accesses from the CPU."""

    name = "guest_hammer"
    summary = "a guest's random MMIO to PL011/PL031/PL061/GIC/holes, monitor live"
    guest = "hammer"

    def operations(self, rounds: int, faults: int) -> int:
        return rounds * 4096


@register
class GuestFaultsTarget(GuestTarget):
    """A guest faulting in a loop."""

    name = "guest_faults"
    summary = "a guest taking aborts, UNDEFs, BRKs, alignment faults in a loop"
    guest = "faultloop"

    def operations(self, rounds: int, faults: int) -> int:
        return faults
