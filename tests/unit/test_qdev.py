"""Tests of qemu_api.qdev: properties, realize, reset, GPIO, clocks, buses."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from qemu_api.chardev import Chardev, qemu_chr_find, qemu_chr_new, qemu_chr_reset
from qemu_api.clock import Clock, ClockEvent
from qemu_api.error import Error
from qemu_api.irq import InterruptSource, qemu_allocate_irq
from qemu_api.qdev import (
    BusState,
    DeviceState,
    ResetType,
    device_cold_reset,
    prop_array,
    prop_bool,
    prop_chr,
    prop_i32,
    prop_link,
    prop_size,
    prop_string,
    prop_u8,
    prop_u16,
    prop_u32,
    prop_u64,
    prop_usize,
    qbus_new,
    qdev_connect_clock_in,
    qdev_connect_gpio_out,
    qdev_connect_gpio_out_named,
    qdev_device_list_properties,
    qdev_get_gpio_in,
    qdev_get_gpio_in_named,
    qdev_init_clock_in,
    qdev_init_clock_out,
    qdev_init_gpio_in,
    qdev_init_gpio_in_named,
    qdev_init_gpio_out,
    qdev_init_gpio_out_named,
    qdev_new,
    qdev_realize,
    qdev_realize_and_unref,
    qdev_set_id,
    qdev_set_parent_bus,
    qdev_try_new,
    qdev_unrealize,
    resettable_assert_reset,
    resettable_is_in_reset,
    resettable_release_reset,
    resettable_reset,
)
from qemu_api.qom import (
    Container,
    object_get_root,
    object_resolve_path,
    object_tree_reset,
    override,
    qom_get,
    qom_set,
)


def realized(dev: DeviceState) -> bool:
    """Read the flag through a call, so mypy does not narrow it across calls."""
    return dev.realized


def chr_of(dev: "Widget") -> Chardev | None:
    return dev.chardev.chr


@pytest.fixture(autouse=True)
def _fresh_tree() -> Iterator[None]:
    object_tree_reset()
    qemu_chr_reset()
    yield
    object_tree_reset()
    qemu_chr_reset()


def _chardev(label: str) -> Chardev:
    chr_ = qemu_chr_find(label)
    return chr_ if chr_ is not None else qemu_chr_new(label, "null")


class Widget(DeviceState, type_name="test-qdev-widget"):
    desc = "a test widget"
    migrate_clk = prop_bool("migrate-clk", default=True, doc="migrate the clock")
    x = prop_u8("x", default=3, doc="an 8-bit knob")
    wide = prop_u16("wide")
    count = prop_u32("count", default=7)
    big = prop_u64("big")
    offset = prop_i32("offset", default=-1)
    mem = prop_size("mem", default=4096)
    timers = prop_usize("timers", default=3)
    label = prop_string("label")
    chardev = prop_chr()
    peer = prop_link("peer", Container)
    ids = prop_array("ids", "uint8")

    log: ClassVar[list[str]] = []

    @override
    def instance_init(self) -> None:
        self.fail_realize = False
        self.seen_x_at_init = self.x

    @override
    def realize(self) -> None:
        super().realize()
        if self.fail_realize:
            raise Error("widget: 'x' must not be 13", hint="pick another x")
        Widget.log.append("realize")

    @override
    def unrealize(self) -> None:
        Widget.log.append("unrealize")


class Bus(BusState, type_name="test-qdev-bus"):
    pass


class OtherBus(BusState, type_name="test-qdev-other-bus"):
    pass


class OnBus(DeviceState, type_name="test-qdev-onbus"):
    bus_type = "test-qdev-bus"


# -- properties ---------------------------------------------------------------


def test_defaults_and_typed_access() -> None:
    w = Widget()
    assert w.migrate_clk is True
    assert (w.x, w.wide, w.count, w.big, w.offset) == (3, 0, 7, 0, -1)
    assert (w.mem, w.timers) == (4096, 3)
    assert w.label is None
    assert chr_of(w) is None
    assert w.peer is None
    assert w.ids == ()
    assert w.seen_x_at_init == 3  # defaults are in place before instance_init
    w.x = 255
    w.migrate_clk = False
    w.label = "hello"
    w.ids = [1, 2, 3]
    assert (w.x, w.migrate_clk, w.label, w.ids) == (255, False, "hello", (1, 2, 3))
    # instances do not share values
    assert Widget().x == 3


def test_qom_view_of_properties() -> None:
    w = Widget()
    types = {p.name: p.type for p in w.properties()}
    assert types["migrate-clk"] == "bool"
    assert types["x"] == "uint8"
    assert types["wide"] == "uint16"
    assert types["count"] == "uint32"
    assert types["big"] == "uint64"
    assert types["offset"] == "int32"
    assert types["mem"] == "size"
    assert types["timers"] == "usize"
    assert types["label"] == "str"
    assert types["chardev"] == "str"
    assert types["peer"] == "link<container>"
    assert types["ids"] == "list"
    assert types["realized"] == "bool"
    assert types["parent_bus"] == "link<bus>"
    w.property_set("x", 200)
    assert w.x == 200
    assert w.property_get("x") == 200
    w.property_set("migrate-clk", False)
    assert w.property_get("migrate-clk") is False
    assert w.property_get("label") == ""
    w.property_set("label", "abc")
    assert w.label == "abc"
    w.property_set("ids", [4, 5])
    assert w.ids == (4, 5)
    assert w.property_get("ids") == [4, 5]


def test_int_range_errors() -> None:
    w = Widget()
    msg = (
        "Property 'test-qdev-widget.x' doesn't take value '300' "
        "(minimum: 0, maximum: 255)"
    )
    with pytest.raises(Error, match=re.escape(msg)):
        w.x = 300
    with pytest.raises(Error, match=re.escape(msg)):
        w.property_set("x", 300)
    with pytest.raises(
        Error, match=re.escape("value '-1' (minimum: 0, maximum: 65535)")
    ):
        w.wide = -1
    with pytest.raises(
        Error,
        match=re.escape(
            "value '2147483648' (minimum: -2147483648, maximum: 2147483647)"
        ),
    ):
        w.property_set("offset", 1 << 31)
    with pytest.raises(
        Error,
        match=re.escape("Property 'test-qdev-widget.ids[1]' doesn't take value '256'"),
    ):
        w.ids = [1, 256]
    assert w.x == 3
    assert w.ids == ()


def test_type_errors() -> None:
    w = Widget()
    with pytest.raises(
        Error, match="Invalid parameter type for 'x', expected: integer"
    ):
        w.property_set("x", "3")
    with pytest.raises(
        Error, match="Invalid parameter type for 'x', expected: integer"
    ):
        w.property_set("x", True)
    with pytest.raises(
        Error, match="Invalid parameter type for 'migrate-clk', expected: boolean"
    ):
        w.property_set("migrate-clk", 1)
    with pytest.raises(
        Error, match="Invalid parameter type for 'label', expected: string"
    ):
        w.property_set("label", 1)
    with pytest.raises(
        Error, match="Invalid parameter type for 'ids', expected: array"
    ):
        w.property_set("ids", 1)
    with pytest.raises(
        Error, match=re.escape("Invalid parameter type for 'ids[0]', expected: integer")
    ):
        w.property_set("ids", ["a"])


def test_chardev_property() -> None:
    w = Widget()
    serial = _chardev("test-qdev-serial0")
    w.property_set("chardev", "test-qdev-serial0")
    assert chr_of(w) is serial
    assert w.property_get("chardev") == "test-qdev-serial0"
    w.property_set("chardev", "")
    assert chr_of(w) is None
    assert w.property_get("chardev") == ""
    w.chardev = serial
    assert chr_of(w) is serial
    with pytest.raises(Error) as e:
        w.property_set("chardev", "foo")
    assert str(e.value) == "Property 'test-qdev-widget.chardev' can't find value 'foo'"
    assert e.value.hint is not None
    assert "-chardev" in e.value.hint


def test_chardev_in_use_and_release() -> None:
    serial = _chardev("test-qdev-serial1")
    first = Widget()
    object_get_root().property_add_child("first", first)
    first.chardev = serial
    second = Widget()
    with pytest.raises(Error) as e:
        second.property_set("chardev", "test-qdev-serial1")
    assert str(e.value) == (
        "Property 'test-qdev-widget.chardev' can't take value 'test-qdev-serial1': "
        "Device 'test-qdev-serial1' is in use"
    )
    assert chr_of(second) is None
    first.unparent()  # tearing the device down frees its chardev
    assert chr_of(first) is None
    second.chardev = serial
    assert chr_of(second) is serial


def test_link_property() -> None:
    root = object_get_root()
    target = root.property_add_child("target", Container())
    w = root.property_add_child("w", Widget())
    w.property_set("peer", "/target")
    assert w.peer is target
    assert w.property_get("peer") == "/target"
    w.peer = None
    assert w.peer is None
    w.peer = target
    assert qom_get("/w", "peer") == "/target"
    with pytest.raises(Error, match="Device '/nothing' not found"):
        qom_set("/w", "peer", "/nothing")
    with pytest.raises(Error, match="expected: container"):
        qom_set("/w", "peer", "/w")


def test_set_after_realize_errors() -> None:
    w = Widget()
    qdev_realize(w)
    msg = (
        "Attempt to set property 'x' on anonymous device (type 'test-qdev-widget') "
        "after it was realized"
    )
    with pytest.raises(Error, match=re.escape(msg)):
        w.x = 1
    with pytest.raises(Error, match=re.escape(msg)):
        w.property_set("x", 1)
    w.id = "w0"
    with pytest.raises(
        Error,
        match=re.escape(
            "Attempt to set property 'label' on device 'w0' (type 'test-qdev-widget') "
            "after it was realized"
        ),
    ):
        w.label = "late"
    with pytest.raises(
        Error,
        match=re.escape(
            "Attempt to set link property 'peer' on device 'w0' "
            "(type 'test-qdev-widget') after it was realized"
        ),
    ):
        w.peer = Container()
    with pytest.raises(Error, match="after it was realized"):
        w.chardev = None
    assert w.x == 3


def test_help_data() -> None:
    rows = {r.name: r for r in Widget.class_properties()}
    assert list(rows)[:3] == ["migrate-clk", "x", "wide"]
    assert rows["migrate-clk"].type == "bool"
    assert rows["migrate-clk"].default_value is True
    assert rows["migrate-clk"].description == "migrate the clock"
    assert rows["x"].default_value == 3
    assert rows["label"].default_value is None
    assert rows["chardev"].type == "str"
    assert rows["peer"].type == "link<container>"
    assert qdev_device_list_properties("test-qdev-widget") == Widget.class_properties()
    assert [r.name for r in qdev_device_list_properties("split-irq")] == ["num-lines"]
    with pytest.raises(Error, match="'container' is not a valid device model name"):
        qdev_device_list_properties("container")


def test_property_declaration_errors() -> None:
    with pytest.raises(TypeError, match="declares property 'x' twice"):

        class Twice(Widget, type_name="test-qdev-twice"):
            again = prop_u8("x")

    with pytest.raises(
        ValueError, match=re.escape("default 300 of property 'v' is outside 0..255")
    ):
        prop_u8("v", default=300)


def test_subclass_inherits_properties() -> None:
    class Sub(Widget, type_name="test-qdev-widget-sub"):
        extra = prop_bool("extra")

    s = Sub()
    assert s.x == 3
    assert not s.extra
    assert [p.name for p in Sub.class_properties()][-1] == "extra"


# -- creation and realize ---------------------------------------------------------


def test_qdev_new_and_errors() -> None:
    assert isinstance(qdev_new("test-qdev-widget"), Widget)
    assert qdev_try_new("no-such-device") is None
    assert qdev_try_new("container") is None
    assert isinstance(qdev_try_new("test-qdev-widget"), Widget)
    with pytest.raises(Error, match="'nope' is not a valid device model name"):
        qdev_new("nope")
    with pytest.raises(Error, match="'container' is not a valid device model name"):
        qdev_new("container")
    with pytest.raises(Error, match="'device' is an abstract device type"):
        qdev_new("device")


def test_realize_places_device_and_sets_flag() -> None:
    Widget.log.clear()
    w = Widget()
    assert not realized(w)
    assert w.property_get("realized") is False
    qdev_realize_and_unref(w)
    assert realized(w)
    assert w.property_get("realized") is True
    assert w.canonical_path() == "/machine/unattached/device[0]"
    assert Widget.log == ["realize"]
    with pytest.raises(Error, match="device 'test-qdev-widget' is already realized"):
        qdev_realize(w)


def test_failed_realize_leaves_usable_device() -> None:
    Widget.log.clear()
    w = Widget()
    w.fail_realize = True
    with pytest.raises(Error) as e:
        qdev_realize(w)
    assert str(e.value) == "widget: 'x' must not be 13"
    assert e.value.hint == "pick another x"
    assert not realized(w)
    assert w.parent is None
    assert object_resolve_path("/machine/unattached/device[0]") is None
    w.x = 12  # still configurable
    w.fail_realize = False
    qdev_realize(w)
    assert realized(w)
    assert Widget.log == ["realize"]


def test_realize_keeps_existing_parent() -> None:
    parent = object_get_root().property_add_child("soc", Container())
    w = parent.property_add_child("w", Widget())
    qdev_realize(w)
    assert w.canonical_path() == "/soc/w"


def test_realized_property_and_unrealize() -> None:
    Widget.log.clear()
    w = Widget()
    w.property_set("realized", True)
    assert realized(w)
    w.property_set("realized", True)  # no change
    qdev_unrealize(w)
    assert not realized(w)
    w.property_set("realized", False)
    assert Widget.log == ["realize", "unrealize"]
    w.x = 9  # settable again once unrealized
    assert w.x == 9


def test_unparent_unrealizes() -> None:
    Widget.log.clear()
    w = Widget()
    qdev_realize(w)
    w.unparent()
    assert not realized(w)
    assert Widget.log == ["realize", "unrealize"]


def test_set_id_places_in_peripheral() -> None:
    w = Widget()
    assert qdev_set_id(w, "uart0") == "uart0"
    assert w.id == "uart0"
    assert w.canonical_path() == "/machine/peripheral/uart0"
    anon = Widget()
    assert qdev_set_id(anon, None) == "device[0]"
    assert anon.canonical_path() == "/machine/peripheral-anon/device[0]"
    with pytest.raises(Error, match="Duplicate device ID 'uart0'"):
        qdev_set_id(Widget(), "uart0")
    qdev_realize(w)
    assert w.canonical_path() == "/machine/peripheral/uart0"
    with pytest.raises(Error, match="must be set before it is realized"):
        qdev_set_id(w, "again")


# -- buses -------------------------------------------------------------------


def test_bus_plugging() -> None:
    host = Widget()
    bus = qbus_new(Bus, host, "bus0")
    assert bus.parent_device is host
    assert bus.name_in_parent == "bus0"
    a, b = OnBus(), OnBus()
    qdev_realize(a, bus)
    qdev_realize(b, bus)
    assert bus.devices() == [b, a]
    assert a.parent_bus is bus
    with pytest.raises(
        Error, match="Device 'test-qdev-onbus' needs a bus of type 'test-qdev-bus'"
    ):
        qdev_realize(OnBus())
    with pytest.raises(
        Error, match="Device 'test-qdev-widget' does not plug into a bus"
    ):
        qdev_realize(Widget(), bus)
    other = qbus_new(OtherBus, None, "other")
    with pytest.raises(Error, match="it needs a 'test-qdev-bus' bus"):
        qdev_realize(OnBus(), other)
    c = OnBus()
    qdev_set_parent_bus(c, bus)
    with pytest.raises(Error, match="is already on bus 'bus0'"):
        qdev_set_parent_bus(c, qbus_new(Bus, None, "bus1"))


def test_failed_realize_unplugs_from_bus() -> None:
    class Picky(DeviceState, type_name="test-qdev-picky"):
        bus_type = "test-qdev-bus"

        @override
        def realize(self) -> None:
            raise Error("no")

    bus = qbus_new(Bus, None, "b")
    p = Picky()
    with pytest.raises(Error, match="no"):
        qdev_realize(p, bus)
    assert p.parent_bus is None
    assert bus.devices() == []


# -- reset ---------------------------------------------------------------------


class Phased(DeviceState, type_name="test-qdev-phased"):
    bus_type: ClassVar[str | None] = "test-qdev-bus"
    log: ClassVar[list[str]] = []

    @override
    def instance_init(self) -> None:
        self.tag = "?"

    @override
    def reset_enter(self, reset_type: ResetType) -> None:
        super().reset_enter(reset_type)
        Phased.log.append(f"enter {self.tag} {reset_type.value}")

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        Phased.log.append(f"hold {self.tag} in_reset={resettable_is_in_reset(self)}")

    @override
    def reset_exit(self, reset_type: ResetType) -> None:
        Phased.log.append(f"exit {self.tag}")


class PhasedHost(Phased, type_name="test-qdev-phased-host"):
    bus_type = None


def _tree() -> PhasedHost:
    host = PhasedHost()
    host.tag = "host"
    bus = qbus_new(Bus, host, "bus")
    for tag in ("a", "b"):
        d = Phased()
        d.tag = tag
        qdev_realize(d, bus)
    return host


def test_three_phase_reset_over_tree() -> None:
    host = _tree()
    Phased.log.clear()
    resettable_reset(host, ResetType.COLD)
    assert Phased.log == [
        "enter b cold",
        "enter a cold",
        "enter host cold",
        "hold b in_reset=True",
        "hold a in_reset=True",
        "hold host in_reset=True",
        "exit b",
        "exit a",
        "exit host",
    ]
    assert not resettable_is_in_reset(host)


def test_cold_reset_helpers() -> None:
    host = _tree()
    Phased.log.clear()
    device_cold_reset(host)
    assert Phased.log[0] == "enter b cold"
    Phased.log.clear()
    host.cold_reset()
    assert len(Phased.log) == 9


def test_nested_assert_release() -> None:
    host = _tree()
    Phased.log.clear()
    resettable_assert_reset(host, ResetType.SNAPSHOT_LOAD)
    resettable_assert_reset(host, ResetType.SNAPSHOT_LOAD)  # nested: no new phases
    assert len(Phased.log) == 6
    assert host.reset_state.count == 2
    resettable_release_reset(host, ResetType.SNAPSHOT_LOAD)
    assert resettable_is_in_reset(host)
    assert len(Phased.log) == 6
    resettable_release_reset(host, ResetType.SNAPSHOT_LOAD)
    assert not resettable_is_in_reset(host)
    assert Phased.log[-1] == "exit host"
    with pytest.raises(Error, match="without a matching assert"):
        resettable_release_reset(host, ResetType.COLD)


def test_reset_from_enter_phase_is_refused() -> None:
    class Reentrant(DeviceState, type_name="test-qdev-reentrant"):
        @override
        def reset_enter(self, reset_type: ResetType) -> None:
            resettable_reset(self, reset_type)

    with pytest.raises(Error, match="from inside an enter phase"):
        device_cold_reset(Reentrant())


# -- GPIO ----------------------------------------------------------------------


class Gpio(DeviceState, type_name="test-qdev-gpio"):
    @override
    def instance_init(self) -> None:
        self.events: list[tuple[str, int, int]] = []
        self.outs = [InterruptSource(), InterruptSource()]
        self.named_out = InterruptSource()
        self.init_gpio_in(self.on_in, 2)
        self.init_gpio_in_named(self.on_reset, "reset", 1)
        self.init_gpio_out(self.outs)
        self.init_gpio_out_named([self.named_out], "pit-enabled")

    def on_in(self, n: int, level: int) -> None:
        self.events.append(("in", n, level))

    def on_reset(self, n: int, level: int) -> None:
        self.events.append(("reset", n, level))


def test_gpio_inputs() -> None:
    g = object_get_root().property_add_child("g", Gpio())
    g.get_gpio_in(1).raise_()
    qdev_get_gpio_in(g, 0).set(1)
    qdev_get_gpio_in_named(g, "reset", 0).pulse()
    assert g.events == [("in", 1, 1), ("in", 0, 1), ("reset", 0, 1), ("reset", 0, 0)]
    assert g.property_get_type("unnamed-gpio-in[1]") == "child<irq>"
    assert g.property_get("reset[0]") == "/g/reset[0]"
    # more inputs continue the numbering
    qdev_init_gpio_in(g, g.on_in, 1)
    assert g.get_gpio_in(2).n == 2


def test_gpio_counts() -> None:
    g = Gpio()
    assert (g.num_gpio_in(), g.num_gpio_in("reset"), g.num_gpio_in("nothing")) == (
        2,
        1,
        0,
    )
    assert (g.num_gpio_out(), g.num_gpio_out("pit-enabled")) == (2, 1)
    assert (g.num_gpio_out("reset"), g.num_gpio_in("pit-enabled")) == (0, 0)
    qdev_init_gpio_in(g, g.on_in, 3)
    assert g.num_gpio_in() == 5


def test_gpio_outputs() -> None:
    root = object_get_root()
    g = root.property_add_child("g", Gpio())
    sink = Gpio()
    qdev_connect_gpio_out(g, 1, sink.get_gpio_in(0))
    g.outs[1].raise_()
    g.outs[0].raise_()  # unconnected
    assert sink.events == [("in", 0, 1)]
    levels: list[int] = []
    line = qemu_allocate_irq(lambda n, level: levels.append(level), 0)
    qdev_connect_gpio_out_named(g, "pit-enabled", 0, line)
    g.named_out.pulse()
    assert levels == [1, 0]
    # a line outside the tree is parked under /machine/unattached
    assert line.canonical_path() == "/machine/unattached/non-qdev-gpio[0]"
    assert g.property_get("pit-enabled[0]") == "/machine/unattached/non-qdev-gpio[0]"
    assert g.get_gpio_out_connector("pit-enabled", 0) is line
    assert g.property_get_type("unnamed-gpio-out[0]") == "link<irq>"
    g.connect_gpio_out(1, None)
    assert g.get_gpio_out_connector(None, 1) is None


def test_gpio_errors() -> None:
    g = Gpio()
    with pytest.raises(
        Error,
        match=re.escape(
            "device type 'test-qdev-gpio' has no GPIO input 'unnamed-gpio-in[2]' "
            "(it has 2)"
        ),
    ):
        g.get_gpio_in(2)
    with pytest.raises(Error, match=re.escape("no GPIO input 'nope[0]' (it has 0)")):
        g.get_gpio_in_named("nope", 0)
    with pytest.raises(
        Error, match=re.escape("has no GPIO output 'unnamed-gpio-out[5]' (it has 2)")
    ):
        g.connect_gpio_out(5, None)
    with pytest.raises(Error, match=re.escape("no GPIO output 'x[0]' (it has 0)")):
        g.get_gpio_out_connector("x", 0)
    with pytest.raises(
        Error, match="GPIO list 'reset' of 'test-qdev-gpio' is already an input"
    ):
        qdev_init_gpio_out_named(g, [InterruptSource()], "reset")
    with pytest.raises(
        Error, match="GPIO list 'pit-enabled' of 'test-qdev-gpio' is already an output"
    ):
        qdev_init_gpio_in_named(g, g.on_in, "pit-enabled", 1)
    qdev_init_gpio_out(g, [InterruptSource()])
    assert g.property_find("unnamed-gpio-out[2]") is not None


# -- clocks --------------------------------------------------------------------


class Clocked(DeviceState, type_name="test-qdev-clocked"):
    @override
    def instance_init(self) -> None:
        self.events: list[ClockEvent] = []
        self.clk = self.init_clock_in(
            "clk", self.clk_update, ClockEvent.UPDATE | ClockEvent.PRE_UPDATE
        )
        self.out = self.init_clock_out("clkout")

    def clk_update(self, event: ClockEvent) -> None:
        self.events.append(event)

    @override
    def realize(self) -> None:
        if not self.clk.has_source():
            raise Error("clock input 'clk' is not connected")


def test_clock_in_and_out() -> None:
    d = object_get_root().property_add_child("d", Clocked())
    assert d.get_clock_in("clk") is d.clk
    assert d.get_clock_out("clkout") is d.out
    assert d.clk.canonical_path() == "/d/clk"
    assert d.property_get_type("clk") == "child<clock>"
    src = Clock()
    src.set_hz(1000)
    qdev_connect_clock_in(d, "clk", src)
    assert d.clk.get_hz() == 1000
    assert d.events == []  # connecting does not call back
    qdev_realize(d)
    src.update_hz(2000)
    assert d.events == [ClockEvent.PRE_UPDATE, ClockEvent.UPDATE]
    assert d.clk.get_hz() == 2000


def test_clock_errors() -> None:
    d = Clocked()
    with pytest.raises(Error, match="clock input 'clk' is not connected"):
        qdev_realize(d)
    with pytest.raises(
        Error, match="Can not find clock-in 'nope' for device type 'test-qdev-clocked'"
    ):
        d.get_clock_in("nope")
    with pytest.raises(Error, match="Can not find clock-in 'clkout'"):
        d.connect_clock_in("clkout", Clock())
    with pytest.raises(Error, match="Can not find clock-out 'clk'"):
        d.get_clock_out("clk")
    with pytest.raises(Error, match="already has a clock 'clk'"):
        qdev_init_clock_in(d, "clk")
    d.connect_clock_in("clk", Clock())
    qdev_realize(d)
    with pytest.raises(Error, match="connected after realize"):
        d.connect_clock_in("clk", Clock())
    with pytest.raises(
        Error, match="added to device 'test-qdev-clocked' after realize"
    ):
        qdev_init_clock_out(d, "late")


# -- static typing ---------------------------------------------------------------

MISUSE = """
from qemu_api.clock import ClockEvent
from qemu_api.qdev import DeviceState, prop_bool, prop_chr, prop_link, prop_u8
from qemu_api.qom import Container, override


class Bad(DeviceState, type_name="misuse"):
    flag = prop_bool("flag")
    level = prop_u8("level")
    chardev = prop_chr()
    peer = prop_link("peer", Container)

    @override
    def instance_init(self) -> None:
        self.init_clock_in("clk", self.clock_cb, ClockEvent.UPDATE)
        self.init_gpio_in(self.gpio_cb, 2)

    def clock_cb(self) -> None:
        pass

    def gpio_cb(self, n: str, level: int) -> None:
        pass

    def use(self) -> None:
        self.flag = "yes"
        self.level = 1.5
        self.chardev = "serial0"
        self.peer = self
        ok: bool = self.flag
"""


def test_misused_device_fails_mypy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = pytest.importorskip("mypy.api")
    src = tmp_path / "misuse.py"
    src.write_text(MISUSE)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    out, err, _ = api.run(
        ["--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "c"), str(src)]
    )
    lines = [
        line.split(": error: ")[1] for line in out.splitlines() if ": error: " in line
    ]
    assert lines == [
        (
            'Argument 2 to "init_clock_in" of "DeviceState" has incompatible type '
            '"Callable[[], None]"; expected "Callable[[ClockEvent], None] | None"  '
            "[arg-type]"
        ),
        (
            'Argument 1 to "init_gpio_in" of "DeviceState" has incompatible type '
            '"Callable[[str, int], None]"; expected "Callable[[int, int], None]"  '
            "[arg-type]"
        ),
        (
            'Incompatible types in assignment (expression has type "str", variable has '
            'type "bool")  [assignment]'
        ),
        (
            'Incompatible types in assignment (expression has type "float", '
            'variable has type "int")  [assignment]'
        ),
        (
            'Incompatible types in assignment (expression has type "str", variable has '
            'type "Chardev | None")  [assignment]'
        ),
        (
            'Incompatible types in assignment (expression has type "Bad", variable has '
            'type "Container | None")  [assignment]'
        ),
    ], err


def test_command_line_parsing() -> None:
    root = object_get_root()
    target = root.property_add_child("target", Container())
    serial = _chardev("test-qdev-serial2")
    w = root.property_add_child("w", Widget())
    w.property_parse("migrate-clk", "off")
    w.property_parse("x", "0x10")
    w.property_parse("offset", "-5")
    w.property_parse("mem", "4K")
    w.property_parse("timers", "010")
    w.property_parse("label", "hello")
    w.property_parse("chardev", "test-qdev-serial2")
    w.property_parse("peer", "/target")
    assert (w.migrate_clk, w.x, w.offset, w.mem, w.timers) == (False, 16, -5, 4096, 8)
    assert (w.label, chr_of(w), w.peer) == ("hello", serial, target)
    w.property_parse("migrate-clk", "yes")
    w.property_parse("mem", "1.5M")
    assert (w.migrate_clk, w.mem) == (True, 1536 * 1024)


def test_command_line_parsing_errors() -> None:
    w = Widget()
    with pytest.raises(Error, match="Parameter 'migrate-clk' expects 'on' or 'off'"):
        w.property_parse("migrate-clk", "maybe")
    with pytest.raises(Error, match="Parameter 'x' expects an integer"):
        w.property_parse("x", "ten")
    with pytest.raises(Error, match="Parameter 'mem' expects a size value"):
        w.property_parse("mem", "lots")
    with pytest.raises(Error, match=re.escape("doesn't take value '256'")):
        w.property_parse("x", "256")
    with pytest.raises(Error, match=re.escape("Property 'test-qdev-widget.nope' not")):
        w.property_parse("nope", "1")


def test_global_properties_apply_to_later_devices() -> None:
    from qemu_api.qdev import qdev_prop_register_global, qdev_prop_reset_globals

    class GlobDev(DeviceState, type_name="test-glob-dev"):
        level = prop_u8("level", default=3)
        flag = prop_bool("flag", default=False)

    class GlobChild(GlobDev, type_name="test-glob-child"):
        pass

    try:
        qdev_prop_register_global("test-glob-dev", "level", "7")
        qdev_prop_register_global("test-glob-child", "flag", "on")
        base, child = GlobDev(), GlobChild()
        assert (base.level, base.flag) == (7, False)
        assert (child.level, child.flag) == (7, True)
        with pytest.raises(Error, match="property 'nope' not found in 'test-glob-dev'"):
            qdev_prop_register_global("test-glob-dev", "nope", "1")
        with pytest.raises(Error, match="'no-such' is not a valid device model name"):
            qdev_prop_register_global("no-such", "level", "1")
        qdev_prop_register_global("test-glob-dev", "level", "300")
        with pytest.raises(Error, match=r"-global test-glob-dev.level=300: "):
            GlobDev()
    finally:
        qdev_prop_reset_globals()
    assert GlobDev().level == 3
