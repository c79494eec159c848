"""Run a corpus of command lines on QEMU 7.2 and on pyqemu; compare the results.

Each line of ``cmdline-corpus.txt`` is a command line (words split as a
shell splits them), optionally prefixed with ``x86_64:`` for the x86
launchers. Both emulators get it with standard input from ``/dev/null`` and,
so that a good line ends once the machine is built, ``-machine
dumpdtb=DIR/out.dtb`` on aarch64 lines (QEMU's "write the device tree and
exit") and ``-display none`` unless the line chooses a display.

QEMU runs as a subprocess (several at once); pyqemu runs in process through
the launcher's entry point (:func:`system.main.launch`), its main loop
replaced by an immediate exit, which keeps the corpus fast. The result of
each is the exit status, standard error and standard output, with the
program name (``qemu-system-`` / ``pyqemu-system-``), the scratch
directory and pseudo-terminal numbers normalized.

Run as a script to print the differences::

    python -m tests.qtest.cmdline_diff [LINE-SUBSTRING...]
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

CORPUS: Final = Path(__file__).resolve().parent / "cmdline-corpus.txt"
QEMU_TIMEOUT: Final = 20.0


@dataclass(frozen=True)
class Case:
    """One corpus line."""

    target: str
    line: str

    @property
    def key(self) -> str:
        """The line as written in the corpus."""
        return self.line if self.target == "aarch64" else f"{self.target}: {self.line}"

    def argv(self, scratch: Path) -> list[str]:
        """The words both emulators get (after the program name)."""
        words = shlex.split(self.line.replace("DIR", str(scratch)))
        extra: list[str] = []
        if not any(w in ("-display", "--display", "-nographic") for w in words):
            extra += ["-display", "none"]
        if self.target == "aarch64" and "help" not in self.line:
            extra += ["-machine", f"dumpdtb={scratch}/out.dtb"]
        return words + extra


@dataclass(frozen=True)
class Result:
    """What one emulator did with one line, normalized."""

    status: int
    stderr: str
    stdout: str

    def render(self) -> str:
        """A readable form for failure messages."""
        return (
            f"  status {self.status}\n"
            + "".join(f"  err| {line}\n" for line in self.stderr.splitlines())
            + "".join(f"  out| {line}\n" for line in self.stdout.splitlines()[:12])
        )


def load_corpus(path: Path = CORPUS) -> list[Case]:
    """The corpus lines, without comments and blank lines."""
    cases = []
    for raw in path.read_text().splitlines():
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        target = "aarch64"
        if text.startswith("x86_64:"):
            target, text = "x86_64", text.removeprefix("x86_64:").strip()
        cases.append(Case(target, text))
    return cases


def _normalize(text: str, scratch: Path) -> str:
    text = re.sub(r"/dev/pts/\d+", "/dev/pts/N", text.replace(str(scratch), "DIR"))
    return text.replace("pyqemu-system-", "qemu-system-")


def run_qemu(case: Case, root: Path) -> Result:
    """Run QEMU 7.2 on ``case`` in a scratch directory of ``root``."""
    scratch = Path(tempfile.mkdtemp(dir=root))
    binary = shutil.which(f"qemu-system-{case.target}")
    if binary is None:
        raise FileNotFoundError(f"qemu-system-{case.target} is not installed")
    try:
        res = subprocess.run(
            [binary, *case.argv(scratch)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=QEMU_TIMEOUT,
            cwd=scratch,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Result(-1, "(timed out)", "")
    return Result(
        res.returncode,
        _normalize(res.stderr, scratch),
        _normalize(res.stdout, scratch),
    )


def run_pyqemu(case: Case, root: Path) -> Result:
    """Run pyqemu on ``case`` in process (the BQL must be held)."""
    from qemu_api.testing import reset_runtime
    from system import vl
    from system.main import launch

    scratch = Path(tempfile.mkdtemp(dir=root))
    out, err = io.StringIO(), io.StringIO()
    saved_run = vl.Emulator.run
    setattr(vl.Emulator, "run", lambda self: 0)  # noqa: B010
    reset_runtime()
    try:
        with (
            contextlib.chdir(scratch),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                status = launch(
                    case.target,
                    [f"pyqemu-system-{case.target}", *case.argv(scratch)],
                    out,
                    err,
                )
            except SystemExit as e:
                status = e.code if isinstance(e.code, int) else 1
    finally:
        setattr(vl.Emulator, "run", saved_run)  # noqa: B010
        reset_runtime()
    return Result(
        status, _normalize(err.getvalue(), scratch), _normalize(out.getvalue(), scratch)
    )


def run_corpus(
    cases: list[Case], root: Path, jobs: int = 6
) -> Iterator[tuple[Case, Result, Result]]:
    """Yield each case with QEMU's and pyqemu's results."""
    from qemu_api import bql

    if not bql.bql_locked():
        bql.bql_lock()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures: list[Future[Result]] = [pool.submit(run_qemu, c, root) for c in cases]
        mine = [run_pyqemu(c, root) for c in cases]
        for case, fut, result in zip(cases, futures, mine, strict=True):
            yield case, fut.result(), result


def main(argv: list[str]) -> int:
    """Print the lines on which the two differ."""
    cases = [c for c in load_corpus() if not argv or any(a in c.key for a in argv)]
    differ = 0
    with tempfile.TemporaryDirectory() as root:
        for case, qemu, mine in run_corpus(cases, Path(root)):
            if qemu == mine:
                continue
            differ += 1
            print(
                f"== {case.key}\n-- QEMU 7.2\n{qemu.render()}-- pyqemu\n{mine.render()}"
            )
    print(f"{len(cases)} lines, {differ} differ")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
