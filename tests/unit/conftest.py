"""Shared fixtures of the unit tests.

Every test runs with the BQL held by the test's thread, as QEMU's
``bql_start_test()`` arranges for its Rust tests, with borrow locations
recorded (``debug_cell``), and starts from a fresh runtime:

- log: mask 0 (plus the flags the trace backend forces), standard error
  (:func:`qemu_api.log.qemu_log_reset`; the trace hook stays installed);
- timers: virtual clock at 0, no timer armed on any clock, no notifier;
- chardevs: an empty registry (every chardev closed and deleted);
- objects: an empty QOM tree, a fresh system memory, no ``-global`` properties.

The state is reset after each test, so a test may leave it changed.
"""

from collections.abc import Iterator

import pytest

from qemu_api import bql, chardev, log, memory, qdev, qom, timer


def _reset_runtime() -> None:
    timer.virtual_clock_reset()
    timer.qemu_clock_set_notify(None)
    chardev.qemu_chr_reset()
    log.qemu_log_reset()
    qdev.qdev_prop_reset_globals()
    qom.object_tree_reset()
    memory.reset_system_memory()


@pytest.fixture(autouse=True)
def _qemu_runtime() -> Iterator[None]:
    """Hold the BQL during the test and reset the global runtime state after."""
    bql.bql_set_debug_cell(True)
    if not bql.bql_locked():
        bql.bql_lock()
    _reset_runtime()
    try:
        yield
    finally:
        if not bql.bql_locked():
            bql.bql_lock()
        try:
            _reset_runtime()
        finally:
            bql.bql_unlock()
