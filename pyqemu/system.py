"""Run a board: ``python -m pyqemu.system [--target=TARGET] ARGS...``.

The console scripts ``pyqemu-system-aarch64`` and ``pyqemu-system-x86_64`` of
an installed pyqemu call :func:`main_aarch64` and :func:`main_x86_64`;
``python -m pyqemu.system`` runs the aarch64 emulator unless the first
argument is ``--target=x86_64``. The options are QEMU's (``-M virt -qtest
...``), as with the launchers of a build tree.
"""

from __future__ import annotations

import gc
import sys

__all__ = ["TARGETS", "main", "main_aarch64", "main_x86_64"]

TARGETS = ("aarch64", "x86_64")
"""The emulator targets."""


def main(target: str, argv: list[str] | None = None) -> int:
    """Run the emulator for *target* with *argv* (default ``sys.argv``).

    Returns the exit status (QEMU's: 0, or 1 after an error message).

    >>> import contextlib, io
    >>> out = io.StringIO()
    >>> with contextlib.redirect_stdout(out):
    ...     status = main("aarch64", ["pyqemu-system-aarch64", "-version"])
    >>> status, out.getvalue().startswith("pyqemu emulator version")
    (0, True)
    """
    if target not in TARGETS:
        print(
            f"pyqemu: unknown target '{target}'; expected one of {', '.join(TARGETS)}",
            file=sys.stderr,
        )
        return 1
    args = list(sys.argv if argv is None else argv)
    args[0] = f"pyqemu-system-{target}"
    from system.main import launch  # the emulator: imported when it runs

    return launch(target, args)


def _console(target: str, argv: list[str] | None = None) -> int:
    # As the build tree's launchers (scripts/make-launcher.py): no cycle
    # collection during start-up; the main loop turns it on (system.vl).
    gc.disable()
    return main(target, argv)


def main_aarch64() -> int:
    """The ``pyqemu-system-aarch64`` console script."""
    return _console("aarch64")


def main_x86_64() -> int:
    """The ``pyqemu-system-x86_64`` console script."""
    return _console("x86_64")


def _module_main() -> int:
    args = sys.argv[1:]
    target = "aarch64"
    if args and args[0].startswith("--target="):
        target = args.pop(0).removeprefix("--target=")
    return _console(target, ["pyqemu.system", *args])


if __name__ == "__main__":
    sys.exit(_module_main())
