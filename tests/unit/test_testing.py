"""qemu_api.testing: the fresh runtime device tests stand on."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from qemu_api import _reset, bql, log, qdev, rtc, trace
from qemu_api.bits import u32
from qemu_api.chardev import qemu_chr_find, qemu_chr_new
from qemu_api.memory import MemoryRegion, get_system_memory
from qemu_api.migration.uri import MigrationStatus, migrate_get_current
from qemu_api.migration.vmstate import (
    VMStateDescription,
    savevm_entries,
    vmstate_register,
    vmstate_uint32,
)
from qemu_api.option import qemu_opts_parse
from qemu_api.qmp_event import qapi_event_add_listener, qapi_event_emit
from qemu_api.qom import Container, object_get_root, object_property_add_child
from qemu_api.testing import (
    clock_get_ns,
    clock_set,
    clock_step,
    clock_step_next,
    fresh_runtime,
    reset_runtime,
    runtime_reset_register,
)
from qemu_api.timer import CLOCK_HOST, CLOCK_VIRTUAL, SCALE_NS, Timer
from system import runstate
from system.runstate import RunState, ShutdownCause


@dataclass
class Regs:
    ctrl: u32 = field(default_factory=u32)


class Knob(qdev.DeviceState, type_name="test-testing-knob"):
    user_creatable = False
    x = qdev.prop_u8("x", default=3)


def test_reset_runtime_drops_everything() -> None:
    # Leave some state in every part of the runtime...
    timer = Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: None)
    timer.mod_ns(1000)
    clock_step(10)
    notified: list[object] = []
    from qemu_api.timer import qemu_clock_set_notify

    qemu_clock_set_notify(notified.append)
    qemu_chr_new("test-testing-chr", "null")
    log.qemu_set_log(log.LOG_GUEST_ERROR)
    (event, *_) = trace.trace_events()
    trace.trace_enable_events(event.name)
    qdev.qdev_prop_register_global("test-testing-knob", "x", "5")
    knob = qdev.qdev_new("test-testing-knob")
    assert isinstance(knob, Knob)
    assert knob.x == 5
    object_property_add_child(object_get_root(), "leftover", Container())
    get_system_memory().add_subregion(0x1000, MemoryRegion.ram(None, "r", 0x1000))
    vmstate_register(
        Regs(),
        VMStateDescription["Regs"]("regs", fields=[vmstate_uint32(lambda s: s.ctrl)]),
    )
    migrate_get_current().status = MigrationStatus.COMPLETED
    events: list[str] = []
    qapi_event_add_listener(lambda name, data: events.append(name))
    rtc.configure_rtc(qemu_opts_parse("base=2006-06-17,clock=vm"))
    runstate.vm_start()
    runstate.qemu_system_reset_handler(lambda cause: None)
    runstate.qemu_register_powerdown_notifier(lambda: events.append("button"))
    assert events == ["RESUME"]

    reset_runtime()

    # ...and find none of it.
    assert (clock_get_ns(), timer.pending()) == (0, False)
    Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: None).mod_ns(5)
    assert notified == []
    assert qemu_chr_find("test-testing-chr") is None
    assert log.qemu_get_log_mask() & log.LOG_GUEST_ERROR == 0
    assert not event.state
    assert list(object_get_root().children()) == []
    knob = qdev.qdev_new("test-testing-knob")
    assert isinstance(knob, Knob)
    assert knob.x == 3
    assert get_system_memory().subregions == ()
    assert savevm_entries() == []
    assert migrate_get_current().status is MigrationStatus.NONE
    assert (rtc.rtc_base(), rtc.rtc_clock()) == (rtc.RtcBase.UTC, CLOCK_HOST)
    assert runstate.runstate_get() is RunState.PRELAUNCH
    runstate.qemu_system_reset(ShutdownCause.HOST_QMP_SYSTEM_RESET)
    runstate.qemu_system_powerdown_request()
    qapi_event_emit("PING", {})
    assert events == ["RESUME"]  # no listener, no notifier left


def test_registered_hooks_run_after_the_api_in_order() -> None:
    calls: list[str] = []

    def first() -> None:
        calls.append(f"first, clock {clock_get_ns()}")

    def second() -> None:
        calls.append("second")

    clock_step(7)
    runtime_reset_register(first)
    runtime_reset_register(second)
    runtime_reset_register(first)  # once only
    try:
        reset_runtime()
    finally:
        _reset._hooks.remove(first)
        _reset._hooks.remove(second)
    assert calls == ["first, clock 0", "second"]


def test_the_run_state_registers_itself() -> None:
    assert runstate._runtime_reset in _reset.runtime_reset_hooks()


def test_fresh_runtime_takes_and_gives_back_the_bql() -> None:
    assert bql.bql_locked()  # the fixture holds it
    bql.bql_unlock()
    try:
        with fresh_runtime():
            assert bql.bql_locked()
        assert not bql.bql_locked()  # taken here: released here
    finally:
        bql.bql_lock()
    with fresh_runtime():
        assert bql.bql_locked()
    assert bql.bql_locked()  # held before: still held


def test_fresh_runtime_resets_after_a_failing_block() -> None:
    def failing_test() -> None:
        with fresh_runtime():
            clock_step(5)
            raise RuntimeError("test failed")

    with pytest.raises(RuntimeError, match="test failed"):
        failing_test()
    assert clock_get_ns() == 0


def test_clock_helpers() -> None:
    fired: list[int] = []
    t = Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: fired.append(clock_get_ns()))
    t.mod_ns(300)
    assert clock_step(100) == 100
    assert clock_step_next() == 300
    assert fired == [300]
    assert clock_set(1000) == 1000
    with pytest.raises(Exception, match="no pending deadline"):
        clock_step_next()
    with pytest.raises(Exception, match="cannot go backwards"):
        clock_set(10)


def test_the_fixture_is_what_device_tests_import() -> None:
    from qemu_api.testing.fixtures import qemu_runtime
    from tests.runtime import qemu_runtime as old_name

    assert old_name is qemu_runtime


def test_the_api_imports_neither_pytest_nor_the_runtime() -> None:
    code = (
        "import sys, qemu_api.testing\n"
        "print(sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('system', 'pytest', 'tests')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (run.returncode, run.stdout) == (0, "[]\n"), run.stderr
