"""Shared fixtures of the migration tests.

Each test runs with the BQL held and starts from a fresh runtime, as the unit
tests do (virtual clock at 0, no timers, no chardevs, an empty QOM tree and a
fresh system memory), with no state registered for migration and no
migration in progress.
"""

from collections.abc import Iterator

import pytest

from qemu_api import bql, chardev, log, memory, qdev, qom, timer
from qemu_api.migration import uri, vmstate


def reset_runtime() -> None:
    """Drop every machine, timer, chardev and registration; clock back to 0."""
    timer.virtual_clock_reset()
    timer.qemu_clock_set_notify(None)
    chardev.qemu_chr_reset()
    log.qemu_log_reset()
    qdev.qdev_prop_reset_globals()
    qom.object_tree_reset()
    memory.reset_system_memory()
    for entry in vmstate.savevm_entries():
        vmstate.vmstate_unregister(entry.opaque, entry.vmsd)
    uri.migrate_get_current().reset()
    uri.migration_incoming_get_current().reset()


@pytest.fixture(autouse=True)
def _qemu_runtime() -> Iterator[None]:
    """Hold the BQL during the test and reset the global runtime state after."""
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
