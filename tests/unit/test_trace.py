"""qemu_api.trace: event registry, patterns, -trace/-d parsing, QMP, backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qemu_api import trace
from qemu_api.error import Error
from qemu_api.log import (
    LOG_TRACE,
    qemu_get_log_mask,
    qemu_log_set_trace_hook,
    qemu_str_to_log_mask,
)


def make(name: str, *, static: bool = True) -> trace.TraceEvent:
    return trace.TraceEvent(
        name,
        "v %d",
        "v %d",
        (("int", "v"),),
        group="t",
        location="t:1",
        static_state=static,
    )


EVENTS = (
    make("t_dev_read"),
    make("t_dev_write"),
    make("t_timer_fire"),
    make("t_static", static=False),
)


@pytest.fixture(autouse=True)
def events() -> Iterator[None]:
    trace.register_group("t", EVENTS)
    trace.trace_reset()
    qemu_log_set_trace_hook(trace.trace_enable_events)
    yield
    trace.trace_reset()


def states() -> dict[str, bool]:
    return {ev.name: ev.state for ev in EVENTS}


def test_registration_assigns_ids_and_rejects_duplicates() -> None:
    ids = [ev.id for ev in EVENTS]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4
    assert trace.trace_event_name("t_dev_read") is EVENTS[0]
    assert trace.trace_event_name("nope") is None
    with pytest.raises(
        Error, match="'t_dev_read' of group 'u' is already defined at t:1"
    ):
        trace.register_group("u", (make("t_dev_read"),))


def test_glob_patterns_and_negation() -> None:
    trace.trace_enable_events("t_dev_*")
    assert states() == {
        "t_dev_read": True,
        "t_dev_write": True,
        "t_timer_fire": False,
        "t_static": False,
    }
    trace.trace_enable_events("-t_dev_w?ite")
    assert states()["t_dev_write"] is False
    trace.trace_enable_events("t_*")
    assert states()["t_static"] is False  # never traceable


def test_unknown_and_static_names_warn(capsys: pytest.CaptureFixture[str]) -> None:
    trace.trace_enable_events("t_nothing")
    trace.trace_enable_events("t_static")
    err = capsys.readouterr().err
    assert "warning: trace event 't_nothing' does not exist" in err
    assert "warning: trace event 't_static' is not traceable" in err
    assert not any(states().values())


def test_help_lists_events(capsys: pytest.CaptureFixture[str]) -> None:
    trace.trace_enable_events("help")
    out = capsys.readouterr().out.splitlines()
    assert {"t_dev_read", "t_static"} <= set(out)


def test_patterns_apply_to_groups_registered_later() -> None:
    trace.trace_enable_events("late_*")
    late = make("late_event")
    trace.register_group("late", (late,))
    assert late.state is True


def test_d_trace_items_enable_events() -> None:
    mask = qemu_str_to_log_mask("guest_errors,trace:t_timer_*")
    assert states()["t_timer_fire"] is True
    assert states()["t_dev_read"] is False
    assert mask & LOG_TRACE
    assert qemu_get_log_mask() & LOG_TRACE  # the log backend keeps LOG_TRACE on


def test_trace_opt_parse(tmp_path: Path) -> None:
    events_file = tmp_path / "events"
    events_file.write_text("# comment\n\nt_dev_read\n-t_dev_write\nt_timer_fire\n")
    trace.trace_opt_parse(f"enable=t_dev_write,events={events_file}")
    assert states() == {
        "t_dev_read": True,
        "t_dev_write": False,
        "t_timer_fire": True,
        "t_static": False,
    }
    trace.trace_reset()
    trace.trace_opt_parse("t_dev_*")  # implied enable=
    assert states()["t_dev_read"] is True


def test_trace_opt_parse_errors_change_nothing(tmp_path: Path) -> None:
    with pytest.raises(Error, match=r"^Invalid parameter 'colour'$"):
        trace.trace_opt_parse("t_dev_read,colour=red")
    missing = tmp_path / "missing"
    with pytest.raises(
        Error,
        match=f"could not read trace events file '{missing}': No such file",
    ):
        trace.trace_opt_parse(f"enable=t_dev_read,events={missing}")
    assert not any(states().values())


def test_qmp_get_and_set_state() -> None:
    trace.qmp_trace_event_set_state("t_dev_*", True)
    got = trace.qmp_trace_event_get_state("t_*")
    assert {"name": "t_dev_read", "state": "enabled"} in got
    assert {"name": "t_timer_fire", "state": "disabled"} in got
    assert {"name": "t_static", "state": "unavailable"} in got
    with pytest.raises(Error, match=r'^unknown event "t_nope"$'):
        trace.qmp_trace_event_get_state("t_nope")
    with pytest.raises(Error, match=r'^unknown event "t_nope"$'):
        trace.qmp_trace_event_set_state("t_nope", True)
    assert trace.qmp_trace_event_get_state("zz*") == []


def test_qmp_set_static_is_checked_before_any_change() -> None:
    with pytest.raises(
        Error, match='cannot set dynamic tracing state for static event "t_static"'
    ):
        trace.qmp_trace_event_set_state("t_*", True)
    assert not any(states().values())
    trace.qmp_trace_event_set_state("t_*", True, ignore_unavailable=True)
    assert states()["t_timer_fire"] is True
    assert states()["t_static"] is False


def test_log_backend_output(capsys: pytest.CaptureFixture[str]) -> None:
    ev = EVENTS[0]
    trace.trace_enable_events("t_dev_read")
    ev.emit((42,))
    line = capsys.readouterr().err
    assert line.endswith(":t_dev_read v 42\n")
    pid, _, rest = line.partition("@")
    assert pid.isdigit()
    assert rest.split(":", 1)[0].replace(".", "").isdigit()


def test_pointer_arguments_format_as_hex() -> None:
    ev = trace.TraceEvent(
        "t_ptr",
        "p %p",
        "p 0x%x",
        (("void *", "p"),),
        group="p",
        location="p:1",
        static_state=True,
    )
    obj = object()
    assert ev.format_args((obj,)) == f"p 0x{id(obj):x}"
    assert ev.format_args((0x1000,)) == "p 0x1000"


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(Error, match="unknown trace backend 'ftrace'"):
        trace.set_configured_backends(("ftrace",))


def test_core_trace_module_is_generated() -> None:
    from qemu_trace import qemu_api as core

    assert "trace_memory_region_ops_read" in core.__all__
    ev = trace.trace_event_name("memory_region_ops_read")
    assert ev is not None
    assert ev.group == "qemu_api"


def test_mmio_dispatch_trace_events(capsys: pytest.CaptureFixture[str]) -> None:
    from qemu_api.memory import AddressSpace, MemoryRegion, MemoryRegionOps, OpsImpl

    class Dev:
        def __init__(self) -> None:
            self.written: list[tuple[int, int]] = []

        def read(self, addr: int, size: int) -> int:
            return 0x40 + addr

        def write(self, addr: int, value: int, size: int) -> None:
            self.written.append((addr, value))

    dev = Dev()
    ops = MemoryRegionOps[Dev](
        read=Dev.read,
        write=Dev.write,
        impl=OpsImpl(min_access_size=4, max_access_size=4),
    )
    root = MemoryRegion.container(None, "root", 0x10000)
    mr = MemoryRegion.io(None, "uart", 0x1000, ops, dev)
    root.add_subregion(0x9000, mr)
    space = AddressSpace(root, "t")
    assert space.read(0x9004, 4) == 0x44  # warms the fast path, untraced
    assert capsys.readouterr().err == ""
    trace.trace_enable_events("memory_region_ops_*")
    assert space.read(0x9004, 4) == 0x44
    space.write(0x9008, 0xAB, 4)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].split(":", 1)[1] == (
        f"memory_region_ops_read cpu -1 mr 0x{id(mr):x} addr 0x9004 value 0x44 "
        "size 4 name 'uart'"
    )
    assert lines[1].endswith(
        f"memory_region_ops_write cpu -1 mr 0x{id(mr):x} addr 0x9008 value 0xab "
        "size 4 name 'uart'"
    )
    trace.trace_enable_events("-memory_region_ops_*")
    assert space.read(0x9004, 4) == 0x44
    assert capsys.readouterr().err == ""
    assert dev.written == [(8, 0xAB)]


def test_mmio_trace_events_of_resolved_accesses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A device that resolves its accesses: while the MMIO tracepoints are on,
    # the address space calls the traced read and write instead.
    from collections.abc import Callable

    from qemu_api.memory import AddressSpace, MemoryRegion, MemoryRegionOps, OpsImpl

    class Dev:
        def read(self, addr: int, size: int) -> int:
            return 0x40 + addr

        def write(self, addr: int, value: int, size: int) -> None:
            pass

        def resolve_read(
            self, addr: int, size: int
        ) -> Callable[[int, int], int] | None:
            return self.read

        def resolve_write(
            self, addr: int, size: int
        ) -> Callable[[int, int, int], None] | None:
            return self.write

    ops = MemoryRegionOps[Dev](
        read=Dev.read,
        write=Dev.write,
        resolve_read=Dev.resolve_read,
        resolve_write=Dev.resolve_write,
        impl=OpsImpl(min_access_size=4, max_access_size=4),
    )
    root = MemoryRegion.container(None, "root", 0x10000)
    root.add_subregion(0x9000, MemoryRegion.io(None, "uart", 0x1000, ops, Dev()))
    space = AddressSpace(root, "t")
    assert space.read(0x9004, 4) == 0x44
    space.write(0x9008, 1, 4)
    trace.trace_enable_events("memory_region_ops_*")
    assert space.read(0x9004, 4) == 0x44
    space.write(0x9008, 1, 4)
    trace.trace_enable_events("-memory_region_ops_*")
    assert space.read(0x9004, 4) == 0x44
    events = [
        line.split(":", 1)[1].split()[0]
        for line in capsys.readouterr().err.splitlines()
    ]
    assert events == ["memory_region_ops_read", "memory_region_ops_write"]


def test_trace_event_of_generated_tracepoints() -> None:
    from qemu_trace.pl011 import trace_pl011_read

    ev = trace.trace_event_of(trace_pl011_read)
    assert ev is trace.trace_event_name("pl011_read")

    def trace_pl011_write(addr: int, value: int, regname: str) -> None:
        pass

    # The name alone does not make a tracepoint.
    assert trace.trace_event_of(trace_pl011_write) is None


def test_set_state_tells_the_listeners() -> None:
    seen: list[bool] = []
    ev = trace.trace_event_name("pl011_read")
    assert ev is not None

    def listener() -> None:
        seen.append(ev.state)

    trace.add_state_listener(listener)
    try:
        ev.set_state(True)
        ev.set_state(False)
    finally:
        trace._state_listeners.remove(listener)
    assert seen == [True, False]


def test_irq_and_timer_trace_events(capsys: pytest.CaptureFixture[str]) -> None:
    from qemu_api.irq import InterruptSource, qemu_allocate_irq
    from qemu_api.timer import CLOCK_VIRTUAL, SCALE_NS, Timer, clock_step

    levels: list[int] = []
    irq = qemu_allocate_irq(lambda n, level: levels.append(level), 3)
    src = InterruptSource()
    src.connect(irq)
    trace.trace_enable_events("qemu_irq_set")
    trace.trace_enable_events("timer_*")
    src.raise_()
    fired: list[int] = []
    t = Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: fired.append(1))
    t.mod_ns(100)
    clock_step(150)
    t.mod_ns(500)
    t.delete()
    err = capsys.readouterr().err.splitlines()
    names = [line.split(":", 1)[1].split(" ")[0] for line in err]
    assert names == [
        "qemu_irq_set",
        "timer_mod",
        "timer_fire",
        "timer_mod",
        "timer_del",
    ]
    assert err[0].endswith(f"qemu_irq_set irq 0x{id(irq):x} n 3 level 1")
    assert err[1].endswith(f"timer_mod timer 0x{id(t):x} expire_ns 100 now_ns 0")
    assert err[2].endswith(f"timer_fire timer 0x{id(t):x} expire_ns 100 now_ns 100")
    assert levels == [1]
    assert fired == [1]
