"""The fuzzing engine: a registry of targets and the loop that runs a campaign.

A target is a :class:`FuzzTarget` subclass registered with :func:`register`.
It generates inputs (bytes, so that any input can be saved and replayed),
executes one and checks the properties that must hold for every input,
raising :class:`FuzzFailure` when one does not.  The engine runs
``generate``/``execute`` in a loop and treats as failures:

- :class:`FuzzFailure` (a property did not hold);
- any other exception escaping ``execute`` (a crash of the code under test);
- an operation that runs longer than the target's ``op_timeout`` (a hang);
- ``MemoryError`` under the campaign's address-space limit (a runaway
  allocation);
- a Python traceback written to standard error during the operation (an
  exception that the code under test caught and reported as an internal
  error: a bug all the same).

Each distinct failure is saved once under the findings directory with a
command to replay it; inputs that reach a new *outcome* (the target's
summary of what happened: an error class, a reply kind) are offered back
to the target as seeds (``keep``), a cheap form of feedback.  With
``coverage`` installed, the engine also measures branch coverage of the
emulator's packages: the "paths" figure is the number of distinct arcs
(line-to-line transitions) executed.

Adding a target, for a protocol or later for one device (stateful MMIO,
clock, IRQ, reset and save/load interleavings driven by its register map),
is one class::

    @register
    class MyDeviceTarget(FuzzTarget):
        name = "pl011"
        protocol = "device"
        summary = "PL011 registers, FIFOs and migration"

        def setup(self, workdir): ...
        def generate(self, rng): ...
        def execute(self, data): ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import random
import re
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, ClassVar, Final, TypeVar

if TYPE_CHECKING:
    import coverage

try:
    import coverage as _coverage_mod
except ImportError:  # the figures then say so
    _coverage_mod = None  # type: ignore[assignment]

__all__ = [
    "SOURCE_ROOT",
    "FuzzFailure",
    "FuzzTarget",
    "Report",
    "register",
    "run_campaign",
    "targets",
]

SOURCE_ROOT: Final = Path(__file__).resolve().parents[2]
_MEASURED: Final = ("qemu_api", "system", "chardev", "hw", "qapi")
_MAX_OUTCOMES: Final = 100_000
MIB: Final = 1 << 20


class FuzzFailure(Exception):  # noqa: N818 (a finding, not an error of ours)
    """A property that must hold for every input did not."""


class _Timeout(BaseException):
    """An operation ran past its time limit.

    Not an ``Exception``: code under test that catches ``Exception`` cannot
    swallow it.
    """


class FuzzTarget:
    """One input class to fuzz; subclass and :func:`register` it.

    Class attributes: ``name`` (the CLI's ``--target``), ``protocol`` (the
    input class: ``migration``, ``qmp``, ``qtest``, ``cmdline``, ``device``),
    ``summary`` (one line for ``--list``), ``op_timeout`` (seconds one
    operation may take before it counts as a hang), ``limit_address_space``
    (False when the target maps memory it does not touch).
    """

    name: ClassVar[str] = ""
    protocol: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    op_timeout: ClassVar[float] = 10.0
    limit_address_space: ClassVar[bool] = True
    """Cap the address space (else only the resident size is watched)."""
    in_process: ClassVar[bool] = True
    """Whether the code under test runs in this process (else coverage,
    which sees only this process, is not measured)."""

    def setup(self, workdir: Path) -> None:
        """Prepare: build the machine, load seeds.  ``workdir`` is scratch space."""

    def generate(self, rng: random.Random) -> bytes:
        """Return a new input (usually a mutation of a seed)."""
        raise NotImplementedError

    def execute(self, data: bytes) -> str:
        """Run one input; return its outcome; raise :class:`FuzzFailure`."""
        raise NotImplementedError

    def keep(self, data: bytes) -> None:
        """``data`` reached a new outcome: keep it as a seed if useful."""

    def time_limit(self, data: bytes) -> float:
        """Seconds ``data`` may take before it counts as a hang.

        ``op_timeout`` by default; a target whose inputs can ask for work in
        proportion to a number they carry (a transfer size) adds to it.
        """
        return self.op_timeout

    def cost(self, data: bytes) -> int:
        """Return how many operations ``data`` holds.

        A protocol input (a line, a command line, a stream) is one; a device
        input is a sequence of operations.
        """
        return 1

    def teardown(self) -> None:
        """Release what :meth:`setup` acquired."""


_REGISTRY: dict[str, type[FuzzTarget]] = {}


_T = TypeVar("_T", bound=type[FuzzTarget])


def register(cls: _T) -> _T:
    """Class decorator: make ``cls`` available as ``--target cls.name``."""
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"fuzz target name {cls.name!r} is empty or taken")
    _REGISTRY[cls.name] = cls
    return cls


def targets() -> dict[str, type[FuzzTarget]]:
    """Every registered target, by name (importing the built-in ones)."""
    import tests.fuzz.target_cmdline
    import tests.fuzz.target_device
    import tests.fuzz.target_guest
    import tests.fuzz.target_migration
    import tests.fuzz.target_qmp
    import tests.fuzz.target_qtest  # noqa: F401

    return dict(_REGISTRY)


@dataclasses.dataclass
class Finding:
    """One distinct failure and the first input that showed it."""

    key: str
    message: str
    count: int
    path: Path | None


@dataclasses.dataclass
class Report:
    """What a campaign did."""

    target: str
    ops: int = 0
    inputs: int = 0
    seconds: float = 0.0
    outcomes: int = 0
    arcs: int | None = None
    lines: int | None = None
    failures: int = 0
    findings: list[Finding] = dataclasses.field(default_factory=list)
    peak_rss_mib: float = 0.0
    coverage_every: int = 1
    tracing: bool = False

    def line(self) -> str:
        """One line of figures, as ``make fuzz`` prints them."""
        sample = (
            f" (1 input in {self.coverage_every} traced)"
            if self.coverage_every > 1
            else ""
        )
        if self.arcs is not None:
            paths = f"{self.arcs} branch arcs / {self.lines} lines{sample}"
        elif self.tracing:
            paths = "counted at the end"
        else:
            paths = "not measured"
        rate = self.ops / self.seconds if self.seconds else 0.0
        return (
            f"{self.target:<10} {self.ops:>9} ops ({self.inputs} inputs) in "
            f"{self.seconds:7.1f} s ({rate:7.0f} ops/s)  paths: {paths}  "
            f"outcomes: {self.outcomes}  "
            f"failures: {self.failures} ({len(self.findings)} distinct)  "
            f"peak RSS {self.peak_rss_mib:.0f} MiB"
        )


_SKELETON: Final = re.compile(r"0x[0-9a-fA-F]+|\d+|'[^']*'")


def skeleton(message: str) -> str:
    """``message`` with its numbers and quoted names blanked: an outcome key.

    >>> skeleton("section 'pl011' at offset 0x1f: needed 3 more bytes")
    "section '' at offset #: needed # more bytes"
    """
    return _SKELETON.sub(lambda m: "''" if m.group().startswith("'") else "#", message)


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def expired(signum: int, frame: FrameType | None) -> None:
        raise _Timeout

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def _memory_limit(extra: int) -> Iterator[None]:
    """Cap the address space at its current size plus ``extra`` bytes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        size = int(fh.read().split()[0]) * resource.getpagesize()
    limit = size + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _coverage(enabled: bool) -> coverage.Coverage | None:
    if not enabled or _coverage_mod is None:
        return None
    return _coverage_mod.Coverage(
        data_file=None,
        branch=True,
        config_file=False,
        source=[str(SOURCE_ROOT / d) for d in _MEASURED],
    )


def _coverage_figures(cov: coverage.Coverage) -> tuple[int, int]:
    data = cov.get_data()
    arcs = lines = 0
    for name in data.measured_files():
        arcs += len(data.arcs(name) or ())
        lines += len(data.lines(name) or ())
    return arcs, lines


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_campaign(
    target: FuzzTarget,
    *,
    ops: int,
    seconds: float,
    seed: int,
    workdir: Path,
    findings_dir: Path | None = None,
    coverage: bool = True,
    coverage_every: int = 1,
    memory_limit: int = 3 << 30,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Run ``target`` for ``ops`` operations or ``seconds``, whichever ends first.

    With ``coverage``, one input in ``coverage_every`` runs traced (the
    tracer slows an input about sixfold); the paths figure is what those
    inputs reached.
    """
    report = Report(target.name, coverage_every=max(coverage_every, 1))
    coverage_every = report.coverage_every
    rng = random.Random(seed)
    outcomes: set[str] = set()
    found: dict[str, Finding] = {}
    cov = _coverage(coverage and target.in_process)
    report.tracing = cov is not None
    target.setup(workdir)
    start = time.monotonic()
    next_progress = start + 30
    try:
        limit = memory_limit if target.limit_address_space else 1 << 46
        with _memory_limit(limit):
            while report.ops < ops and time.monotonic() - start < seconds:
                data = target.generate(rng)
                tracer = cov if report.inputs % coverage_every == 0 else None
                if tracer is not None:
                    tracer.start()
                try:
                    failure = _run_one(target, data, outcomes)
                finally:
                    if tracer is not None:
                        tracer.stop()
                if failure is None and _peak_rss_mib() > memory_limit / MIB:
                    failure = f"memory: the resident size passed {memory_limit} bytes"
                if len(outcomes) > _MAX_OUTCOMES:
                    outcomes.clear()  # keep measuring novelty, in bounded memory
                report.ops += target.cost(data)
                report.inputs += 1
                if failure is not None:
                    report.failures += 1
                    _record(found, failure, data, target, findings_dir, seed)
                if progress is not None and time.monotonic() > next_progress:
                    next_progress += 30
                    report.seconds = time.monotonic() - start
                    report.outcomes = len(outcomes)
                    report.findings = list(found.values())
                    report.peak_rss_mib = _peak_rss_mib()
                    progress(report)
    finally:
        target.teardown()
    report.seconds = time.monotonic() - start
    report.outcomes = len(outcomes)
    report.findings = list(found.values())
    report.peak_rss_mib = _peak_rss_mib()
    if cov is not None:
        report.arcs, report.lines = _coverage_figures(cov)
    return report


def _run_one(target: FuzzTarget, data: bytes, outcomes: set[str]) -> str | None:
    """Execute one input; return the failure's description, or None."""
    err = io.StringIO()
    failure: str | None = None
    try:
        with (
            contextlib.redirect_stderr(err),
            contextlib.redirect_stdout(io.StringIO()),
            _time_limit(limit := target.time_limit(data)),
        ):
            outcome = target.execute(data)
    except FuzzFailure as exc:
        failure = f"property: {exc}"
    except _Timeout:
        failure = f"hang: the operation ran past {limit:.1f} s"
    except MemoryError:
        failure = "memory: MemoryError under the campaign's address-space limit"
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        failure = (
            f"crash: {type(exc).__name__}: {str(exc)[:200]} "
            f"(at {Path(where.filename).name}:{where.lineno})"
        )
    else:
        if "Traceback (most recent call last)" in err.getvalue():
            failure = "traceback on standard error:\n" + err.getvalue()[-2000:]
        elif outcome not in outcomes:
            outcomes.add(outcome)
            target.keep(data)
    return failure


def _record(
    found: dict[str, Finding],
    failure: str,
    data: bytes,
    target: FuzzTarget,
    findings_dir: Path | None,
    seed: int,
) -> None:
    key = skeleton(failure.splitlines()[0])[:160]
    finding = found.get(key)
    if finding is not None:
        finding.count += 1
        return
    path = None
    if findings_dir is not None:
        findings_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(data).hexdigest()[:12]
        path = findings_dir / f"{target.name}-{digest}.bin"
        path.write_bytes(data)
        path.with_suffix(".txt").write_text(
            f"{failure}\n\nseed {seed}; replay with:\n"
            f"  python -m tests.fuzz --target {target.name} --replay {path}\n"
        )
    found[key] = Finding(key, failure, 1, path)
    print(f"fuzz: {target.name}: FAILURE: {failure.splitlines()[0]}", file=sys.stderr)
    if path is not None:
        print(f"fuzz: {target.name}: input saved to {path}", file=sys.stderr)


def replay(target: FuzzTarget, data: bytes, workdir: Path) -> str | None:
    """Execute one saved input; return the failure, or None if it passes."""
    target.setup(workdir)
    try:
        return _run_one(target, data, set())
    finally:
        target.teardown()
