"""Resets that modules outside the API register for :mod:`qemu_api.testing`.

QEMU has no counterpart: a QEMU process holds one machine, and libqtest starts
a new process per test.  pyqemu's tests share one process, and
:func:`qemu_api.testing.reset_runtime` returns it to an empty runtime; modules
of the runtime (``system/runstate``, for one) add their own resets here when
they are imported.  The registry lives apart from :mod:`qemu_api.testing` so
that the launcher, which registers but never resets, does not import the test
support (and the migration modules it pulls in) at start.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["runtime_reset_hooks", "runtime_reset_register"]

_hooks: list[Callable[[], None]] = []


def runtime_reset_register(hook: Callable[[], None]) -> None:
    """Have :func:`~qemu_api.testing.reset_runtime` call ``hook`` after its own resets.

    For modules outside ``qemu_api`` that keep per-machine state in globals
    (run state, handlers): they register when imported, so a module that was
    never imported has nothing to reset.  Hooks run in registration order;
    registering the same hook twice has no effect.

    Args:
        hook: a function that returns the module to its state at import.

    >>> calls = []
    >>> def hook() -> None:
    ...     calls.append(1)
    >>> runtime_reset_register(hook)
    >>> runtime_reset_register(hook)
    >>> runtime_reset_hooks().count(hook)
    1
    >>> _hooks.remove(hook)
    """
    if hook not in _hooks:
        _hooks.append(hook)


def runtime_reset_hooks() -> list[Callable[[], None]]:
    """The registered hooks, in registration order (a copy)."""
    return list(_hooks)
