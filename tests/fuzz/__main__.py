"""Run fuzz campaigns: ``python -m tests.fuzz [--target NAME ...] [--ops N]``.

Prints, per target, the operations run, the distinct paths covered (branch
arcs and lines of the emulator's packages, with ``coverage`` installed), the
distinct outcomes and the failures found, then exits 1 if any failure was
found.  ``--replay FILE`` runs one saved input.  ``make fuzz`` runs every
target long; the ``fuzz`` meson suite runs each briefly.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.engine import Report, replay, run_campaign, targets


def _workdir() -> Path:
    build = os.environ.get("PYQEMU_BUILD_ROOT")
    if build:
        return Path(build) / "fuzz"
    return Path(tempfile.gettempdir()) / "pyqemu-fuzz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--target", action="append", help="a target (default: all)")
    parser.add_argument("--ops", type=int, default=1_000_000, help="per target")
    parser.add_argument(
        "--seconds", type=float, default=float("inf"), help="per target"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-coverage", action="store_true")
    parser.add_argument(
        "--coverage-every",
        type=int,
        default=8,
        metavar="N",
        help="trace one input in N for the paths figure (1: every input)",
    )
    parser.add_argument("--findings", type=Path, help="where failing inputs go")
    parser.add_argument("--replay", type=Path, help="run one saved input")
    parser.add_argument("--list", action="store_true", help="list the targets")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at once")
    args = parser.parse_args(argv)

    registry = targets()
    if args.list:
        for name, cls in registry.items():
            print(f"{name:<10} {cls.protocol:<10} {cls.summary}")
        return 0
    names = args.target or list(registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; try --list")
    workdir = _workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.replay is not None:
        if len(names) != 1:
            parser.error("--replay needs exactly one --target")
        failure = replay(registry[names[0]](), args.replay.read_bytes(), workdir)
        print(failure or "passes")
        return 1 if failure else 0

    findings = args.findings or workdir / "findings"
    if args.jobs > 1 and len(names) > 1:
        return _parallel(names, args, argv or sys.argv[1:])
    reports: list[Report] = []
    for name in names:
        report = run_campaign(
            registry[name](),
            ops=args.ops,
            seconds=args.seconds,
            seed=args.seed,
            workdir=workdir,
            findings_dir=findings,
            coverage=not args.no_coverage,
            coverage_every=args.coverage_every,
            progress=lambda r: print(f"  ... {r.line()}", flush=True),
        )
        reports.append(report)
        print(report.line(), flush=True)
        for finding in report.findings:
            print(f"  {finding.count} x {finding.message.splitlines()[0]}")
            if finding.path is not None:
                print(f"    input: {finding.path}")
    total = sum(r.failures for r in reports)
    print(
        f"fuzz: {sum(r.ops for r in reports)} operations over {len(reports)} "
        f"targets, {total} failures"
    )
    return 1 if total else 0


def _parallel(names: list[str], args: argparse.Namespace, argv: list[str]) -> int:
    """Run each target in its own process, ``--jobs`` at a time."""
    base = [a for a in argv if not a.startswith("--target") and a not in names]
    base = [
        a
        for i, a in enumerate(base)
        if not (a == "--jobs" or (i and base[i - 1] == "--jobs"))
    ]
    pending = list(names)
    running: list[tuple[str, subprocess.Popen[str]]] = []
    failed = 0
    while pending or running:
        while pending and len(running) < args.jobs:
            name = pending.pop(0)
            cmd = [sys.executable, "-m", "tests.fuzz", *base, "--target", name]
            running.append((name, subprocess.Popen(cmd, text=True)))
        for entry in list(running):
            if entry[1].poll() is not None:
                running.remove(entry)
                failed += entry[1].returncode != 0
        time.sleep(0.2)
    print(f"fuzz: {len(names)} targets, {failed} with failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
