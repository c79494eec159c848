"""pyqemu's gates, for device packages outside the tree.

``python -m pyqemu.gate GATE [--root DIR] [--cache DIR] FILES...`` runs on a
device package the same gates this project runs on its own packages, with the
same settings (the project's ``pyproject.toml``, installed with pyqemu):

- ``clippy``: ``ruff check``;
- ``pyfmt``: ``ruff format --check`` (``pyfmt-fix`` reformats);
- ``mypy``: ``mypy --strict``;
- ``doctest``: the ``>>>`` examples of each module, imported as the package
  module it is (its dotted name is its path relative to ``--root``, the
  current directory by default), with the big lock held as the tree's
  doctests run;
- ``all``: clippy, pyfmt, mypy and doctest (not on ``test_*`` files) in turn.

A device package calls it from its ``meson.build`` (one ``test()`` per gate)
or from its CI next to ``pyproject.toml``. ruff and mypy come from the
environment (``pip install ruff mypy``, or the pins of pyqemu's
``subprojects/lint.txt``). The exit status is 0 when every gate passes.
"""

from __future__ import annotations

import argparse
import doctest
import importlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from qemu_api import bql

__all__ = ["GATES", "config_file", "main", "run_gate"]

GATES = ("clippy", "pyfmt", "pyfmt-fix", "mypy", "doctest")
"""The gates :func:`run_gate` knows."""

_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def config_file() -> Path:
    """The project's gate settings: installed with pyqemu, or the tree's own.

    >>> config_file().name
    'pyproject.toml'
    """
    here = Path(__file__).resolve().parent
    installed = here / "gates" / "pyproject.toml"
    if installed.is_file():
        return installed
    return here.parent / "pyproject.toml"


def _ruff() -> str:
    beside = Path(sys.executable).parent / "ruff"
    if beside.is_file():
        return str(beside)
    found = shutil.which("ruff")
    if found is None:
        raise SystemExit(
            "pyqemu.gate: ruff not found: pip install ruff (pyqemu pins it in "
            "subprojects/lint.txt)"
        )
    return found


def _module_name(path: Path, root: Path) -> str:
    rel = path.resolve().relative_to(root.resolve()).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _doctest(files: Sequence[Path], root: Path) -> int:
    sys.path.insert(0, str(root))
    failed = attempted = 0
    for path in files:
        if not bql.bql_locked():
            bql.bql_lock()
        name = _module_name(path, root)
        try:
            module = importlib.import_module(name)
            res = doctest.testmod(module, optionflags=_FLAGS)
        except ImportError as e:
            print(
                f"{path}: cannot import it as module {name} from {root}: {e} "
                "(run from the directory the package imports from, or give --root)"
            )
            failed += 1
            continue
        finally:
            if bql.bql_locked():
                bql.bql_unlock()
        failed += res.failed
        attempted += res.attempted
        print(f"{path}: {res.attempted} examples, {res.failed} failed")
    return 1 if failed else 0


def run_gate(gate: str, files: Sequence[Path], root: Path, cache: Path) -> int:
    """Run one gate over *files*; return its exit status.

    Args:
        gate: one of :data:`GATES`.
        files: the package's Python files.
        root: the directory the package's modules import from (doctests).
        cache: where ruff and mypy keep their caches.
    """
    config = str(config_file())
    names = [str(f.resolve()) for f in files]
    ruff = ["--config", config, "--cache-dir", str(cache / "ruff")]
    if gate == "doctest":
        return _doctest(files, root)
    if gate == "clippy":
        cmd = [_ruff(), "check", "--quiet", *ruff, *names]
    elif gate == "pyfmt":
        cmd = [_ruff(), "format", "--check", "--quiet", *ruff, *names]
    elif gate == "pyfmt-fix":
        cmd = [_ruff(), "format", *ruff, *names]
    elif gate == "mypy":
        cmd = [
            sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
            "--config-file", config, "--cache-dir", str(cache / "mypy"), *names,
        ]  # fmt: skip
    else:
        raise SystemExit(f"pyqemu.gate: unknown gate {gate!r}; expected {GATES}")
    return subprocess.run(cmd, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    """The ``python -m pyqemu.gate`` command line."""
    parser = argparse.ArgumentParser(
        prog="python -m pyqemu.gate", description="Run pyqemu's gates on files."
    )
    parser.add_argument("gate", choices=[*GATES, "all"])
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--cache", type=Path, default=Path(".pyqemu-gate-cache"))
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    gates = (
        ("clippy", "pyfmt", "mypy", "doctest") if args.gate == "all" else (args.gate,)
    )
    status = 0
    for gate in gates:
        files = args.files
        if gate == "doctest" and args.gate == "all":
            # tests are checked, not doctested
            files = [f for f in files if not f.name.startswith("test_")]
        if run_gate(gate, files, args.root, args.cache) != 0:
            print(f"pyqemu.gate: {gate} FAILED", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
