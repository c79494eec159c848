"""Tests of qemu_api.irq and the IRQ splitter / OR gate devices."""

import re
from collections.abc import Iterator

import pytest

from qemu_api import bql
from qemu_api.error import Error
from qemu_api.irq import (
    InterruptSource,
    IRQState,
    qemu_allocate_irq,
    qemu_allocate_irqs,
    qemu_irq_intercept_in,
    qemu_irq_lower,
    qemu_irq_pulse,
    qemu_irq_raise,
    qemu_set_irq,
)
from qemu_api.qdev import (
    MAX_OR_LINES,
    MAX_SPLIT_LINES,
    OrIRQ,
    SplitIRQ,
    device_cold_reset,
    qdev_new,
    qdev_realize,
)
from qemu_api.qom import Container, Object, object_get_root, object_tree_reset, override


@pytest.fixture(autouse=True)
def _fresh_tree() -> Iterator[None]:
    object_tree_reset()
    yield
    object_tree_reset()


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[int, int]] = []

    def handler(self, n: int, level: int) -> None:
        self.events.append((n, level))


def test_intercept_in_diverts_and_forwards() -> None:
    dev = Recorder()
    lines = qemu_allocate_irqs(dev.handler, 3)
    seen: list[tuple[int, int]] = []

    def spy(original: IRQState, n: int, level: int) -> None:
        seen.append((n, level))
        if n != 2:
            original.set(level)

    qemu_irq_intercept_in(lines[1:], spy)
    lines[0].raise_()  # not intercepted
    lines[1].set(5)
    lines[2].pulse()  # intercepted and swallowed
    assert seen == [(1, 5), (2, 1), (2, 0)]
    assert dev.events == [(0, 1), (1, 5)]
    # a connected output reaches the interceptor too
    src = InterruptSource()
    src.connect(lines[1])
    src.lower()
    assert seen[-1] == (1, 0)
    assert dev.events[-1] == (1, 0)


def test_irqstate_methods() -> None:
    rec = Recorder()
    irq = qemu_allocate_irq(rec.handler, 7)
    assert irq.n == 7
    assert irq.typename() == "irq"
    irq.set(1)
    irq.raise_()
    irq.lower()
    irq.pulse()
    irq.set(5)
    assert rec.events == [(7, 1), (7, 1), (7, 0), (7, 1), (7, 0), (7, 5)]


def test_bare_irqstate_ignores_levels() -> None:
    irq = IRQState()
    irq.raise_()
    irq.pulse()
    assert irq.n == 0


def test_allocate_irqs_numbers_lines() -> None:
    rec = Recorder()
    irqs = qemu_allocate_irqs(rec.handler, 3)
    for irq in irqs:
        irq.raise_()
    assert rec.events == [(0, 1), (1, 1), (2, 1)]


def test_c_style_helpers_accept_none() -> None:
    rec = Recorder()
    irq = qemu_allocate_irq(rec.handler, 1)
    qemu_set_irq(irq, 1)
    qemu_irq_lower(irq)
    qemu_irq_raise(irq)
    qemu_irq_pulse(irq)
    for fn in (qemu_irq_raise, qemu_irq_lower, qemu_irq_pulse):
        fn(None)
    qemu_set_irq(None, 1)
    assert rec.events == [(1, 1), (1, 0), (1, 1), (1, 1), (1, 0)]


def test_interrupt_source_unconnected_is_noop() -> None:
    src = InterruptSource()
    assert not src.is_connected()
    assert src.irq is None
    src.set(1)
    src.raise_()
    src.lower()
    src.pulse()
    assert "None" in repr(src)


def test_interrupt_source_drives_connected_line() -> None:
    rec = Recorder()
    irq = qemu_allocate_irq(rec.handler, 2)
    src = InterruptSource()
    src.connect(irq)
    assert src.is_connected()
    assert src.irq is irq
    src.set(True)
    src.lower()
    src.raise_()
    src.pulse()
    assert rec.events == [(2, True), (2, 0), (2, 1), (2, 1), (2, 0)]
    src.connect(None)
    src.raise_()
    assert len(rec.events) == 5


def test_interrupt_source_needs_bql() -> None:
    src = InterruptSource()
    bql.bql_unlock()
    try:
        with pytest.raises(bql.BqlNotHeldError):
            src.raise_()
    finally:
        bql.bql_lock()


# -- splitter ------------------------------------------------------------------


def test_split_irq_copies_input() -> None:
    split = qdev_new("split-irq")
    assert isinstance(split, SplitIRQ)
    split.property_set("num-lines", 3)
    qdev_realize(split)
    recs = [Recorder() for _ in range(3)]
    for i, rec in enumerate(recs):
        split.connect_gpio_out(i, qemu_allocate_irq(rec.handler, i))
    split.get_gpio_in(0).set(1)
    split.get_gpio_in(0).set(0)
    assert [r.events for r in recs] == [
        [(0, 1), (0, 0)],
        [(1, 1), (1, 0)],
        [(2, 1), (2, 0)],
    ]
    assert split.property_get_type("unnamed-gpio-out[2]") == "link<irq>"


def test_split_irq_line_count_errors() -> None:
    split = SplitIRQ()
    split.num_lines = 0
    msg = f"IRQ splitter number of lines 0 is not between 1 and {MAX_SPLIT_LINES}"
    with pytest.raises(Error, match=re.escape(msg)):
        qdev_realize(split)
    assert not split.property_get("realized")
    split.num_lines = MAX_SPLIT_LINES + 1
    with pytest.raises(Error, match="is not between 1 and"):
        qdev_realize(split)
    split.num_lines = 2
    qdev_realize(split)
    assert split.property_get("realized")
    assert len(split.out_irq) == 2


# -- OR gate ---------------------------------------------------------------------


def test_or_irq_ors_inputs() -> None:
    gate = OrIRQ()
    gate.num_lines = 3
    qdev_realize(gate)
    rec = Recorder()
    gate.connect_gpio_out(0, qemu_allocate_irq(rec.handler, 0))
    gate.get_gpio_in(2).raise_()
    gate.get_gpio_in(1).raise_()
    gate.get_gpio_in(2).lower()
    gate.get_gpio_in(1).lower()
    assert [lvl for _, lvl in rec.events] == [1, 1, 1, 0]


def test_or_irq_reset_forgets_levels() -> None:
    gate = OrIRQ()
    gate.num_lines = 2
    qdev_realize(gate)
    gate.get_gpio_in(0).raise_()
    assert gate.levels == [True, False]
    device_cold_reset(gate)
    assert gate.levels == [False, False]


def test_or_irq_line_count_errors() -> None:
    gate = OrIRQ()
    gate.num_lines = MAX_OR_LINES + 1
    msg = (
        f"IRQ OR gate number of lines {MAX_OR_LINES + 1} is not between 1 and "
        f"{MAX_OR_LINES}"
    )
    with pytest.raises(Error, match=re.escape(msg)):
        qdev_realize(gate)
    assert not gate.property_get("realized")


class Controller(Object, type_name="test-irq-controller"):
    """A QOM object whose method handles a line."""

    @override
    def instance_init(self) -> None:
        self.events: list[tuple[int, int]] = []

    def handler(self, n: int, level: int) -> None:
        self.events.append((n, level))


def test_line_stops_delivering_when_its_owner_dies() -> None:
    ctl = object_get_root().property_add_child("ctl", Controller())
    lines = qemu_allocate_irqs(ctl.handler, 2)
    out = InterruptSource()
    out.connect(lines[1])
    out.raise_()
    ctl.unparent()
    out.lower()
    qemu_set_irq(lines[0], 1)
    assert ctl.events == [(1, 1)]


def test_line_owner_may_be_given() -> None:
    seen: list[int] = []
    holder = object_get_root().property_add_child("holder", Container())
    line = qemu_allocate_irq(lambda n, level: seen.append(level), 0, owner=holder)
    line.raise_()
    holder.unparent()
    line.lower()
    assert seen == [1]


def test_intercepted_input_of_a_dead_device_delivers_nothing() -> None:
    split = qdev_new("split-irq")
    qdev_realize(split)
    intercepted: list[int] = []

    def spy(original: IRQState, n: int, level: int) -> None:
        intercepted.append(level)
        original.set(level)

    line = split.get_gpio_in(0)
    qemu_irq_intercept_in([line], spy)
    line.raise_()
    split.unparent()
    line.lower()
    assert intercepted == [1]


def test_finalized_device_drives_no_line() -> None:
    gate = qdev_new("or-irq")
    qdev_realize(gate)
    rec = Recorder()
    gate.connect_gpio_out(0, qemu_allocate_irq(rec.handler, 0))
    assert isinstance(gate, OrIRQ)
    out = gate.out_irq
    gate.unparent()
    out.raise_()
    assert rec.events == []
    assert out.irq is None
