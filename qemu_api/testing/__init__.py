"""Tests of device models: a fresh emulator per test, with the BQL held.

QEMU runs one machine per process, and its Rust device tests start with
``bql_start_test()``.  pyqemu's tests share one process, so every test starts
from an empty runtime instead: :func:`fresh_runtime` takes the big lock and
resets everything global before and after its block, and the pytest fixture
:func:`qemu_api.testing.fixtures.qemu_runtime` does the same around each test.
A device package's ``tests/conftest.py`` needs one line::

    from qemu_api.testing.fixtures import qemu_runtime as qemu_runtime

The reset (:func:`reset_runtime`) covers the virtual clock and every timer, the
chardev registry, the log (mask 0 plus the flags a trace backend forces),
trace event states, ``-global`` properties, the QOM tree, the system memory,
the migration registrations and states, the QMP event listeners and the RTC
settings.  Modules outside ``qemu_api`` that keep per-machine state (the
runtime's ``system/runstate``, for one) register their own reset with
:func:`runtime_reset_register` when they are imported, so the reset stays
complete without the API importing the runtime.  Borrow locations are
recorded (QEMU's ``debug_cell``), so a borrow conflict names the first borrow.

Time moves only when a test moves it, as under QEMU's qtest accelerator:
:func:`clock_step`, :func:`clock_step_next` and :func:`clock_set` advance the
virtual clock and run the timers due on the way (libqtest's
``qtest_clock_step``, ``qtest_clock_step_next`` and ``qtest_clock_set``):

>>> from qemu_api.timer import CLOCK_VIRTUAL, SCALE_MS, Timer
>>> with fresh_runtime():
...     fired = []
...     t = Timer(CLOCK_VIRTUAL, SCALE_MS, lambda: fired.append(clock_get_ns()))
...     t.mod(5)
...     clock_step(1_000_000)
...     clock_step_next()
...     fired
1000000
5000000
[5000000]
>>> with fresh_runtime():
...     clock_get_ns(), t.pending()
(0, False)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from qemu_api import bql, chardev, log, memory, qdev, qmp_event, qom, rtc, timer, trace
from qemu_api._reset import runtime_reset_hooks, runtime_reset_register
from qemu_api.migration import uri, vmstate

__all__ = [
    "clock_get_ns",
    "clock_set",
    "clock_step",
    "clock_step_next",
    "fresh_runtime",
    "reset_runtime",
    "runtime_reset_register",
]


def reset_runtime() -> None:
    """Drop every machine, timer, chardev, registration and event listener.

    Raises:
        BqlNotHeldError: the current thread does not hold the BQL.
    """
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
    qmp_event.qapi_event_remove_all_listeners()
    rtc.configure_rtc()
    for hook in runtime_reset_hooks():
        hook()


@contextlib.contextmanager
def fresh_runtime() -> Iterator[None]:
    """Hold the BQL and reset the runtime before and after the block.

    The BQL is taken if the current thread does not hold it, and released
    afterwards only if it was taken here.
    """
    bql.bql_set_debug_cell(True)
    held = bql.bql_locked()
    if not held:
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
            if not held:
                bql.bql_unlock()


def clock_get_ns() -> int:
    """Return the virtual clock in nanoseconds (``QEMU_CLOCK_VIRTUAL``)."""
    return timer.qemu_clock_get_ns(timer.CLOCK_VIRTUAL)


def clock_step(ns: int) -> int:
    """Advance the virtual clock by ``ns``, running the timers due on the way.

    Each timer runs at its own deadline (inside its callback
    :func:`clock_get_ns` is its expiry); see :func:`qemu_api.timer.clock_step`.

    Returns:
        The new virtual time in ns.

    Raises:
        Error: ``ns`` is negative, or the call comes from a timer callback.
    """
    return timer.clock_step(ns)


def clock_step_next() -> int:
    """Advance the virtual clock to the next timer deadline and run its timers.

    Returns:
        The new virtual time in ns.

    Raises:
        Error: no virtual-clock timer is pending.
    """
    return timer.clock_step(None)


def clock_set(ns: int) -> int:
    """Advance the virtual clock to ``ns``, running the timers due on the way.

    Returns:
        The new virtual time in ns.

    Raises:
        Error: ``ns`` is before the current virtual time.
    """
    return timer.clock_set(ns)
