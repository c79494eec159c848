"""Tests of qemu_api.clock: periods, propagation, callbacks, tick arithmetic."""

from collections.abc import Iterator

import pytest

from qemu_api.clock import (
    CLOCK_PERIOD_1SEC,
    Clock,
    ClockEvent,
    ClockPreUpdate,
    ClockUpdate,
    clock_display_freq,
    clock_has_source,
    clock_is_enabled,
    clock_new,
    clock_ns_to_ticks,
    clock_period_from_hz,
    clock_period_from_ns,
    clock_period_to_hz,
    clock_period_to_ns,
    clock_set_source,
    clock_ticks_to_ns,
    freq_to_str,
)
from qemu_api.error import Error
from qemu_api.qom import Container, container_get, object_get_root, object_tree_reset

INT64_MAX = (1 << 63) - 1


@pytest.fixture(autouse=True)
def _fresh_tree() -> Iterator[None]:
    object_tree_reset()
    yield
    object_tree_reset()


def test_constants_and_event_bits() -> None:
    assert CLOCK_PERIOD_1SEC == 1_000_000_000 << 32
    assert int(ClockEvent.UPDATE) == 1
    assert int(ClockEvent.PRE_UPDATE) == 2
    assert ClockUpdate is ClockEvent.UPDATE
    assert ClockPreUpdate is ClockEvent.PRE_UPDATE


def test_period_conversions() -> None:
    assert clock_period_from_ns(1) == 1 << 32
    assert clock_period_from_hz(0) == 0
    assert clock_period_from_hz(1) == CLOCK_PERIOD_1SEC
    assert clock_period_to_hz(0) == 0
    assert clock_period_to_hz(CLOCK_PERIOD_1SEC) == 1
    # C "unsigned": very fast clocks wrap at 32 bits
    assert clock_period_to_hz(1) == (CLOCK_PERIOD_1SEC // 1) & 0xFFFF_FFFF
    assert clock_period_to_ns(clock_period_from_ns(7)) == 7


def test_new_clock_is_stopped() -> None:
    clk = Clock()
    assert clk.period() == 0
    assert clk.get_hz() == 0
    assert clk.get_ns() == 0
    assert not clk.is_enabled()
    assert not clock_is_enabled(clk)
    assert not clk.has_source()
    assert clk.typename() == "clock"


def test_set_reports_change() -> None:
    clk = Clock()
    assert clk.set_hz(100)
    assert not clk.set_hz(100)
    assert clk.get_hz() == 100
    assert clk.set_ns(10)
    assert clk.period() == 10 << 32
    assert clk.get_ns() == 10
    assert clk.get_hz() == 100_000_000
    assert clk.set(0)
    assert not clk.is_enabled()


def test_set_range_errors() -> None:
    clk = Clock()
    with pytest.raises(ValueError, match="hz must fit in 32 bits"):
        clk.set_hz(1 << 32)
    with pytest.raises(ValueError, match="ns must fit in 32 bits"):
        clk.set_ns(-1)
    with pytest.raises(ValueError, match="64 bits unsigned"):
        clk.set(1 << 64)
    with pytest.raises(ValueError, match="divider of 0"):
        clk.set_mul_div(1, 0)


def test_source_copies_period_without_callbacks() -> None:
    src, mid, leaf = Clock(), Clock(), Clock()
    events: list[ClockEvent] = []
    leaf.set_callback(events.append, ClockEvent.UPDATE | ClockEvent.PRE_UPDATE)
    src.set_hz(1000)
    leaf.set_source(mid)
    clock_set_source(mid, src)
    assert mid.get_hz() == 1000
    assert leaf.get_hz() == 1000
    assert events == []
    assert clock_has_source(leaf)


def test_propagation_calls_callbacks_in_order() -> None:
    src, child = Clock(), Clock()
    log: list[tuple[ClockEvent, int]] = []
    child.set_callback(
        lambda ev: log.append((ev, child.get_hz())),
        ClockEvent.UPDATE | ClockEvent.PRE_UPDATE,
    )
    child.set_source(src)
    src.update_hz(50)
    assert log == [(ClockEvent.PRE_UPDATE, 0), (ClockEvent.UPDATE, 50)]
    log.clear()
    src.update_hz(50)  # no change: nothing propagates
    assert log == []


def test_callback_event_mask() -> None:
    src, child = Clock(), Clock()
    log: list[ClockEvent] = []
    child.set_callback(log.append, ClockEvent.PRE_UPDATE)
    child.set_source(src)
    src.update_ns(10)
    assert log == [ClockEvent.PRE_UPDATE]
    child.clear_callback()
    src.update_ns(20)
    assert log == [ClockEvent.PRE_UPDATE]
    assert child.get_ns() == 20


def test_propagate_reaches_grandchildren_and_siblings() -> None:
    root, a, b, c = Clock(), Clock(), Clock(), Clock()
    seen: list[str] = []
    a.set_callback(lambda ev: seen.append("a"), ClockEvent.UPDATE)
    b.set_callback(lambda ev: seen.append("b"), ClockEvent.UPDATE)
    c.set_callback(lambda ev: seen.append("c"), ClockEvent.UPDATE)
    a.set_source(root)
    b.set_source(root)
    c.set_source(a)
    root.set_hz(10)
    root.propagate()
    # QEMU keeps children newest first (QLIST_INSERT_HEAD)
    assert seen == ["b", "a", "c"]
    assert c.get_hz() == 10


def test_mul_div_scales_children() -> None:
    parent, child = Clock(), Clock()
    child.set_source(parent)
    parent.set_hz(8_000_000)
    assert parent.set_mul_div(2, 3)
    assert not parent.set_mul_div(2, 3)
    parent.propagate()
    assert child.period() == parent.period() * 2 // 3
    assert child.get_hz() == 12_000_000
    parent.set_mul_div(0, 1)
    parent.propagate()
    assert not child.is_enabled()


def test_source_errors() -> None:
    src, other, clk = Clock(), Clock(), Clock()
    clk.set_source(src)
    with pytest.raises(Error, match="already has a source"):
        clk.set_source(other)
    with pytest.raises(Error, match="clock_propagate\\(\\) called on a clock that has"):
        clk.propagate()
    with pytest.raises(Error, match="would create a loop"):
        src.set_source(clk)


def test_ticks_to_ns_rounding_and_saturation() -> None:
    clk = Clock()
    clk.set_hz(24_000_000)
    assert clk.period() == CLOCK_PERIOD_1SEC // 24_000_000
    assert clk.ticks_to_ns(24_000_000) == 999_999_999  # rounded down
    assert clock_ticks_to_ns(clk, 1) == 41
    assert clk.ticks_to_ns(0) == 0
    slow = Clock()
    slow.set((1 << 64) - 1)
    assert slow.ticks_to_ns((1 << 64) - 1) == INT64_MAX
    # the largest product that still fits: high word below bit 31
    slow.set(1 << 32)  # 1 ns per tick
    assert slow.ticks_to_ns(1 << 62) == 1 << 62
    assert slow.ticks_to_ns(1 << 63) == INT64_MAX


def test_ns_to_ticks_rounding_and_truncation() -> None:
    clk = Clock()
    assert clk.ns_to_ticks(1000) == 0  # stopped clock
    clk.set_hz(24_000_000)
    assert clk.ns_to_ticks(1_000_000_000) == 24_000_000
    assert clock_ns_to_ticks(clk, 41) == 0
    assert clk.ns_to_ticks(42) == 1
    fast = Clock()
    fast.set(1)  # 2^-32 ns per tick
    # (ns << 32) / 1 overflows 64 bits: truncated as in QEMU
    assert fast.ns_to_ticks(1 << 40) == ((1 << 72) & ((1 << 64) - 1))
    assert fast.ns_to_ticks(3) == 3 << 32


def test_display_freq() -> None:
    assert freq_to_str(0) == "0 Hz"
    assert freq_to_str(999) == "999 Hz"
    assert freq_to_str(1000) == "1 KHz"
    assert freq_to_str(33_333_333) == "33.3 MHz"
    assert freq_to_str(2_500_000_000) == "2.5 GHz"
    clk = Clock()
    clk.set_hz(100_000_000)
    assert clock_display_freq(clk) == "100 MHz"


def test_clock_new_is_a_child() -> None:
    dev = container_get(object_get_root(), "/machine").property_add_child(
        "dev", Container()
    )
    clk = clock_new(dev, "clk")
    assert clk.canonical_path() == "/machine/dev/clk"
    assert dev.property_get_type("clk") == "child<clock>"
    assert "/machine/dev/clk" in repr(clk)


def test_finalize_disconnects() -> None:
    parent = container_get(object_get_root(), "/machine")
    src = clock_new(parent, "src")
    dst = clock_new(parent, "dst")
    dst.set_source(src)
    src.unparent()
    assert not dst.has_source()
    src.update_hz(5)  # no longer reaches dst
    assert dst.get_hz() == 0


def test_callback_dies_with_its_owner_and_changing_owner_moves_it() -> None:
    first = object_get_root().property_add_child("first", Container())
    second = object_get_root().property_add_child("second", Container())
    src, clk = Clock(), Clock()
    clk.set_source(src)
    events: list[str] = []
    clk.set_callback(lambda e: events.append("first"), ClockEvent.UPDATE, owner=first)
    src.update_hz(1)
    clk.set_callback(lambda e: events.append("second"), ClockEvent.UPDATE, owner=second)
    # The first owner no longer holds the clock: its death changes nothing.
    first.unparent()
    src.update_hz(2)
    second.unparent()
    src.update_hz(3)
    assert events == ["first", "second"]
    assert clk.get_hz() == 3


def test_finalized_clock_leaves_its_tree() -> None:
    holder = object_get_root().property_add_child("holder", Container())
    src = clock_new(holder, "src")
    mid = clock_new(holder, "mid")
    leaf = Clock()
    mid.set_source(src)
    leaf.set_source(mid)
    src.update_hz(100)
    holder.unparent()
    assert not leaf.has_source()
    assert not mid.has_source()
    src.update_hz(5)
    assert leaf.get_hz() == 100
