#!/usr/bin/env python3
"""Run one quality gate over a package's files.

Usage: gate.py --name PKG --cache DIR --ruff RUFF [--stamp FILE] GATE -- FILES...

GATE is ``clippy`` (ruff check), ``pyfmt`` (ruff format --check), ``pyfmt-fix``
(ruff format) or ``mypy`` (mypy --strict, settings from pyproject.toml). The tools'
caches live under DIR in the build tree. On success the stamp file, if given, is
touched (the strict_gates build depends on it); on failure the package is named.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "pyproject.toml"


def command(gate: str, ruff: str, cache: Path, files: list[str]) -> list[str]:
    """Return the tool command line of *gate*; settings come from pyproject.toml."""
    rcache = ["--config", str(CONFIG), "--cache-dir", str(cache / "ruff")]
    if gate == "clippy":
        return [ruff, "check", "--quiet", *rcache, *files]
    if gate == "pyfmt":
        return [
            ruff,
            "format",
            "--check",
            "--quiet",
            *rcache,
            *files,
        ]
    if gate == "pyfmt-fix":
        return [ruff, "format", *rcache, *files]
    if gate == "mypy":
        return [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--config-file",
            str(CONFIG),
            "--cache-dir",
            str(cache / "mypy"),
            *files,
        ]
    raise SystemExit(f"gate.py: unknown gate {gate!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--cache", required=True, type=Path)
    parser.add_argument("--ruff", required=True)
    parser.add_argument("--stamp", type=Path)
    parser.add_argument("gate", choices=["clippy", "pyfmt", "pyfmt-fix", "mypy"])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    # Tools run from the source root, where pyproject.toml's relative patterns apply.
    files = [str(Path(f).resolve()) for f in args.files if f != "--"]
    if not files:
        print(f"{args.name}-{args.gate}: no files", file=sys.stderr)
        return 1
    args.cache.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        command(args.gate, args.ruff, args.cache.resolve(), files),
        cwd=CONFIG.parent,
        check=False,
    )
    if result.returncode != 0:
        print(
            f"{args.name}-{args.gate}: FAILED for package '{args.name}'",
            file=sys.stderr,
        )
        return 1
    if args.stamp is not None:
        args.stamp.write_text("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
