"""Fuzz target ``cmdline``: command lines from the options' grammar, in process.

Each input is a command line (NUL-separated words) run through
:func:`system.main.launch`, the launchers' entry point, with the main loop
replaced by an immediate return: what is checked is start-up and the way
out.  Words come from the options pyqemu takes, with values from each
option's syntax at its edges (sizes, ids, paths, chardev and device option
lists) and byte-level damage.  The run happens in a scratch directory;
values that could reach outside it are disarmed (``exec:`` commands, TCP
addresses, socket servers that would wait for a client).

Properties, for every input:

- no exception escapes (a traceback is a failure);
- the exit status is 0 or 1; on 1, standard error starts with a line that
  starts with the program name (hint lines, and the second error line QEMU
  prints for some options, may follow it), or is empty after a help text
  QEMU ends with status 1 (``-d help``);
- no file appears outside the scratch directory's paths named by the
  command line, and every Unix socket created is gone afterwards.
"""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import stat
from pathlib import Path
from typing import Final

from accel import current_accel, set_current_accel
from qemu_api import bql
from system import vl
from system.main import launch
from tests.fuzz import mutate
from tests.fuzz.engine import FuzzFailure, FuzzTarget, register
from tests.runtime import reset_runtime

__all__ = ["CmdlineTarget", "check_error_output"]

PROG: Final = "pyqemu-system-aarch64"

_SIZES: Final = (
    "0",
    "1",
    "64M",
    "1.5",
    "1.0e400",
    "1e3",
    "nan",
    "-1",
    "0x10M",
    "16E",
    "9" * 5000,
    "64G",
    "4T",
    " 64M",
    "64M ",
    "1.M",
    "",
    "128k",
    "18446744073709551616",
)
_VALUES: Final = (
    "",
    "on",
    "off",
    "help",
    "?",
    "x",
    ",",
    ",,",
    "=",
    "\x00",
    "é",
    "a" * 300,
)


def _chardev(rng: random.Random) -> str:
    backend = rng.choice(
        ("null", "ringbuf", "file", "socket", "pty", "nope", "memory", "")
    )
    parts = [backend, f"id={rng.choice(('c0', 'c1', '', 'serial0', 'x,y'))}"]
    if backend in ("ringbuf", "memory"):
        parts.append(f"size={rng.choice(_SIZES)}")
    elif backend == "file":
        parts.append(f"path={rng.choice(('out.txt', '', 'nodir/x', '/nonexistent/x'))}")
    elif backend == "socket":
        if rng.random() < 0.5:
            parts.append(f"path={rng.choice(('s.sock', 'nodir/s.sock', 'x' * 200))}")
        else:
            parts += [
                f"host={rng.choice(('127.0.0.1', '', '::1', 'nosuchhost.invalid'))}",
                f"port={rng.choice(('0', '9', '', '99999', 'x'))}",
            ]
        parts += rng.sample(
            [
                "server=on",
                "server=off",
                "wait=off",
                "nodelay=on",
                "reconnect=1",
                "reconnect=" + "9" * 30,
                "ipv4=on",
                "ipv6=on",
                "delay=off",
            ],
            rng.randint(0, 3),
        )
    if rng.random() < 0.3:
        parts.append(f"{rng.choice(('bogus', 'size', 'path'))}={rng.choice(_VALUES)}")
    return ",".join(parts)


def _word_pair(rng: random.Random) -> list[str]:
    opt = rng.choice(
        (
            "-m",
            "-M",
            "-machine",
            "-chardev",
            "-serial",
            "-device",
            "-global",
            "-accel",
            "-d",
            "-D",
            "-trace",
            "-incoming",
            "-qmp",
            "-qtest",
            "-qtest-log",
            "-name",
            "-display",
            "-dump-vmstate",
            "-S",
            "-nodefaults",
            "-bogus",
            "--m",
            "-",
            "disk.img",
            "-mon",
        )
    )
    if opt in ("-S", "-nodefaults"):
        return [opt]
    if opt in ("-m",):
        value = rng.choice(_SIZES) + rng.choice(("", "", ",slots=2", ",maxmem=1G"))
    elif opt in ("-M", "-machine"):
        value = rng.choice(("virt", "none", "pc", "virt,x=1", "help", "virt-9.9", ""))
    elif opt == "-chardev":
        value = _chardev(rng)
    elif opt in ("-serial", "-qmp", "-qtest", "-mon"):
        value = rng.choice(
            (
                "null",
                "none",
                "chardev:c0",
                "chardev:nope",
                "file:out.txt",
                "unix:q.sock,server=on,wait=off",
                "unix:",
                "tcp:",
                "vc",
                "unix:nodir/x.sock,server=on,wait=off",
                "pty",
            )
        )
    elif opt == "-device":
        value = rng.choice(
            (
                "pl011",
                "pl011,chardev=c0",
                "pl011,bogus=1",
                "help",
                "pl011,help",
                "nope",
                "",
                "pl011,id=u0,id=u1",
                "pl011,migrate-clk=maybe",
            )
        )
    elif opt == "-global":
        value = rng.choice(("pl011.migrate-clk=off", "pl011.x=1", "x", "=", "a.b="))
    elif opt == "-accel":
        value = rng.choice(("qtest", "tcg", "kvm", "", "tcg,thread=single"))
    elif opt == "-d":
        value = rng.choice(("guest_errors", "help", "nope", "", "unimp,guest_errors"))
    elif opt in ("-D", "-qtest-log", "-dump-vmstate"):
        value = rng.choice(("log.txt", "nodir/log.txt", "", "/nonexistent/x"))
    elif opt == "-trace":
        value = rng.choice(
            ("pl011_*", "enable=nope", "events=nofile", "file=t.log", "")
        )
    elif opt == "-incoming":
        value = rng.choice(
            (
                "defer",
                "unix:in.sock",
                "file:nofile",
                "tcp:127.0.0.1:0",
                "rdma:x",
                "",
                "unix:nodir/in.sock",
                "file:/dev/null",
            )
        )
    else:
        value = rng.choice(_VALUES)
    if rng.random() < 0.1:
        value = mutate.mutate_bytes(rng, value.encode(), 1).decode("utf-8", "replace")
    return [opt, value]


def sanitize(words: list[str]) -> list[str]:
    """Disarm the values that could run commands, wait or reach outside."""
    out = []
    for original in words:
        word = original.replace("\x00", "")
        word = re.sub(r"exec\s*:", "exec;", word, flags=re.IGNORECASE)
        word = re.sub(r"tcp:[^,]*", "tcp:127.0.0.1:0", word)
        word = re.sub(r"host=[^,]*", "host=127.0.0.1", word)
        word = re.sub(r"port=[^,]*", "port=0", word)
        # Every path stays in the scratch directory, under a directory that
        # does not exist there unless the input names it.
        word = word.replace("..", "__")
        word = re.sub(r"(\A|,|:|=)/+", r"\1nodir/", word)
        if "server" in word and "wait=off" not in word:
            word += ",wait=off"
        out.append(word.replace("stdio", "null").replace("-nographic", "-S"))
    return out


def check_error_output(status: int, err: str) -> None:
    """Exit status 0 or 1; a failure says so in lines naming the program.

    Raises:
        FuzzFailure: the output breaks the rule.
    """
    if "Traceback" in err:
        raise FuzzFailure("a traceback on standard error:\n" + err[-1500:])
    if status not in (0, 1):
        raise FuzzFailure(f"exit status {status}")
    if status == 1 and err and not err.startswith(f"{PROG}: "):
        # One error line, or QEMU's two where it prints two (a backend's
        # error, then "could not connect serial device ..."); nothing for
        # the help texts QEMU 7.2 ends with status 1 (-d help, -rtc help).
        raise FuzzFailure(f"no error line naming the program: {err[:500]!r}")


@register
class CmdlineTarget(FuzzTarget):
    """The command line: start-up and exit of the launcher, in process."""

    name = "cmdline"
    protocol = "cmdline"
    summary = "options at their edges, through the launcher's entry point"
    op_timeout = 15.0
    # Each machine started in process keeps its RAM mapping (128 MiB of
    # address space, never touched) after the next start resets the
    # runtime: a leak of in-process relaunches only, so the resident size
    # is what is watched here.
    limit_address_space = False

    def setup(self, workdir: Path) -> None:
        if not bql.bql_locked():
            bql.bql_lock()
        # One per process: campaigns may run side by side.
        self.scratch = workdir / f"cmdline-scratch-{os.getpid()}"
        self.scratch.mkdir(parents=True, exist_ok=True)
        self._cwd = os.getcwd()
        os.chdir(self.scratch)
        self._run = vl.Emulator.run
        vl.Emulator.run = lambda self: 0  # type: ignore[method-assign]
        self.pool: list[bytes] = []

    def teardown(self) -> None:
        vl.Emulator.run = self._run  # type: ignore[method-assign]
        reset_runtime()
        os.chdir(self._cwd)
        shutil.rmtree(self.scratch, ignore_errors=True)

    def generate(self, rng: random.Random) -> bytes:
        if self.pool and rng.random() < 0.2:
            return mutate.mutate_bytes(rng, rng.choice(self.pool), rng.randint(1, 3))
        words = ["-display", "none"] if rng.random() < 0.8 else []
        for _ in range(rng.choice((1, 1, 2, 3, 5))):
            words += _word_pair(rng)
        return "\x00".join(words).encode("utf-8", "surrogateescape")

    def keep(self, data: bytes) -> None:
        if len(self.pool) < 200 and len(data) < 16 << 10:
            self.pool.append(data)

    def execute(self, data: bytes) -> str:
        words = sanitize(data.decode("utf-8", "replace").split("\x00"))
        reset_runtime()  # a process starts with no trace or log file set
        before = set(os.listdir("."))
        out, err = io.StringIO(), io.StringIO()
        status = launch("aarch64", [PROG, *words], out, err)
        accel = current_accel()
        if accel is not None:
            # End the vCPU threads, as the process's exit would: run() (which
            # shuts the accelerator down) is replaced here, and every start
            # would otherwise leave a vCPU thread and its engine behind.
            accel.shutdown()
            set_current_accel(None)
        check_error_output(status, err.getvalue())
        after = set(os.listdir("."))
        # Sockets, not names: "-D in.sock" names a log file.
        sockets = [n for n in after - before if stat.S_ISSOCK(os.lstat(n).st_mode)]
        if sockets:
            raise FuzzFailure(f"socket files left behind: {sockets}")
        for name in after - before:
            if name not in " ".join(words):
                raise FuzzFailure(f"a file nobody named was created: {name}")
            Path(name).unlink() if Path(name).is_file() else None
        first = err.getvalue().splitlines()[:1]
        return f"{status} " + (
            re.sub(r"'[^']*'|\d+", "#", first[0])[:90] if first else ""
        )
