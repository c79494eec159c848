"""The qtest accelerator (QEMU's ``accel/qtest/qtest.c``): no CPU runs.

The machine is driven only by the qtest protocol: memory accesses come from the
test, and the virtual clock moves only on ``clock_step`` and ``clock_set``.
"""

from __future__ import annotations

from typing import final

from accel import AccelState

__all__ = ["QtestAccel", "accel_factory"]


@final
class QtestAccel(AccelState):
    """``-accel qtest``: no CPUs; the virtual clock belongs to the test."""

    name = "qtest"
    has_cpus = False


def accel_factory(opts: dict[str, str]) -> QtestAccel:
    """Create the qtest accelerator (it has no options)."""
    return QtestAccel()
