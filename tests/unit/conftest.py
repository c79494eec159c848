"""Shared fixtures of the unit tests.

Every test runs with the BQL held by the test's thread, as QEMU's
``bql_start_test()`` arranges for its Rust tests, and starts from a clean
runtime: log mask 0 on standard error, no open log file.
"""

from collections.abc import Iterator

import pytest

from qemu_api import bql, log


@pytest.fixture(autouse=True)
def _qemu_runtime() -> Iterator[None]:
    """Hold the BQL during the test and reset the global runtime state after."""
    bql.bql_set_debug_cell(True)
    if not bql.bql_locked():
        bql.bql_lock()
    try:
        yield
    finally:
        log.qemu_log_reset()
        if bql.bql_locked():
            bql.bql_unlock()
