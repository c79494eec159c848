"""Accelerators: what runs the guest (QEMU's ``accel/`` and ``AccelClass``).

An accelerator decides whether the machine has CPUs that execute guest code and
who moves the virtual clock:

- ``qtest`` (:mod:`accel.qtest`): no CPU runs; the virtual clock moves only on the
  qtest ``clock_step``/``clock_set`` commands. ``-qtest`` implies it.
- ``tcg`` (:mod:`accel.tcg`): each vCPU runs guest code in its own thread on the
  unicorn engine, with the big lock dropped while guest code runs; the virtual
  clock follows host time while the machine runs, or executed instructions with
  ``-icount``.

Boards never learn which accelerator runs them beyond :meth:`AccelState.has_cpus`:
they create their CPUs when it is true, and each CPU asks the current accelerator
for its engine when it is realized.

>>> accel = accel_new("qtest")
>>> accel.name, accel.has_cpus
('qtest', False)
>>> accel_new("kvm")
Traceback (most recent call last):
  ...
qemu_api.error.Error: invalid accelerator kvm
"""

from __future__ import annotations

import importlib
from typing import ClassVar

from qemu_api.error import Error

__all__ = [
    "ACCEL_NAMES",
    "AccelState",
    "accel_new",
    "current_accel",
    "set_current_accel",
]

ACCEL_NAMES = ("qtest", "tcg")
"""The ``-accel`` names pyqemu knows, in QEMU's ``-accel help`` order."""


class AccelState:
    """One accelerator instance (QEMU's ``AccelState``).

    Subclasses set :attr:`name` and :attr:`has_cpus` and override the hooks.
    """

    name: ClassVar[str] = ""
    has_cpus: ClassVar[bool] = False
    """Whether boards create CPUs that this accelerator runs."""

    def setup_post(self) -> None:
        """Start the vCPU threads once the machine is built and reset."""

    def shutdown(self) -> None:
        """Stop and join the vCPU threads (the run ends)."""

    def describe(self) -> str:
        """Return a one-line summary for ``info accel``-like output."""
        return self.name


_current: AccelState | None = None


def current_accel() -> AccelState | None:
    """Return the accelerator of the running machine, or None before one is chosen."""
    return _current


def set_current_accel(accel: AccelState | None) -> None:
    """Make *accel* the running machine's accelerator (None to forget it)."""
    global _current
    _current = accel


def accel_new(name: str, opts: dict[str, str] | None = None) -> AccelState:
    """Create the accelerator called *name* (QEMU's ``-accel NAME``).

    Args:
        name: ``qtest`` or ``tcg``.
        opts: the accelerator's options (``-icount`` is passed here as
            ``icount-shift``, ``icount-sleep``).

    Raises:
        Error: an unknown accelerator or a bad option.
    """
    if name not in ACCEL_NAMES:
        raise Error(f"invalid accelerator {name}")
    # Imported on demand: only tcg loads the engine.
    module = importlib.import_module(f"accel.{name}")
    factory = module.accel_factory
    accel = factory(opts or {})
    if not isinstance(accel, AccelState):
        raise Error(f"accel.{name}.accel_factory did not return an AccelState")
    return accel
