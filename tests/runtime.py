"""The test runtime: every test holds the BQL and starts from a fresh emulator.

QEMU's Rust tests call ``bql_start_test()``; pyqemu's tests use the autouse
fixture :func:`qemu_runtime`, which conftest files re-export::

    from tests.runtime import qemu_runtime as qemu_runtime

Before and after each test it resets everything global: the virtual clock and
all timers, the chardev registry, the log (mask 0 plus the flags the trace backend
forces; the trace hook stays), trace event states, ``-global`` properties, the QOM
tree, the system memory, migration registrations and states, and the run state
(``prelaunch``, no event listeners). Borrow locations are recorded (QEMU's
``debug_cell``), so a borrow conflict names the first borrow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from qemu_api import bql, chardev, log, memory, qdev, qmp_event, qom, timer, trace
from qemu_api.migration import uri, vmstate
from system import runstate

__all__ = ["fresh_runtime", "qemu_runtime", "reset_runtime"]


def reset_runtime() -> None:
    """Drop every machine, timer, chardev, registration and event listener."""
    timer.virtual_clock_reset()
    timer.qemu_clock_set_notify(None)
    chardev.qemu_chr_reset()
    log.qemu_log_reset()
    trace.trace_reset()
    qdev.qdev_prop_reset_globals()
    qom.object_tree_reset()
    memory.reset_system_memory()
    for entry in vmstate.savevm_entries():
        vmstate.vmstate_unregister(entry.opaque, entry.vmsd)
    uri.migrate_get_current().reset()
    uri.migration_incoming_get_current().reset()
    runstate.runstate_init(runstate.RunState.PRELAUNCH)
    qmp_event.qapi_event_remove_all_listeners()
    runstate.qemu_system_reset_handler(None)


@contextlib.contextmanager
def fresh_runtime() -> Iterator[None]:
    """Hold the BQL and reset the runtime before and after the block."""
    bql.bql_set_debug_cell(True)
    if not bql.bql_locked():
        bql.bql_lock()
    reset_runtime()
    try:
        yield
    finally:
        if not bql.bql_locked():
            bql.bql_lock()
        try:
            reset_runtime()
        finally:
            bql.bql_unlock()


@pytest.fixture(autouse=True)
def qemu_runtime() -> Iterator[None]:
    """Hold the BQL during the test and reset the runtime before and after it."""
    with fresh_runtime():
        yield
