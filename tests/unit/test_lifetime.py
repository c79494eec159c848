"""Object lifetimes: what a device owns dies with it, and construction is atomic.

A device's timers, interrupt inputs, chardev handlers, clock callbacks,
memory regions and address spaces must not call into it once it is gone;
an object whose construction (or realize) fails must leave nothing armed or
registered; a chained hook may not call its parent's version; and a DMA
master reaches memory through a typed ``link<memory-region>``.
"""

from __future__ import annotations

import gc
import weakref
from typing import ClassVar

import pytest

from qemu_api.chardev import Chardev, ChrEvent, qemu_chr_delete, qemu_chr_new
from qemu_api.clock import Clock, ClockEvent
from qemu_api.error import Error
from qemu_api.irq import InterruptSource, IRQState, qemu_allocate_irq
from qemu_api.log import LOG_INVALID_MEM, qemu_set_log
from qemu_api.memory import (
    MEMTX_DECODE_ERROR,
    MEMTX_OK,
    AddressSpace,
    GuestAddress,
    GuestMemory,
    MemoryRegion,
    MemoryRegionOps,
    MemTxResultSlot,
    OpsImpl,
    get_address_space_memory,
    get_system_memory,
    mtree_info,
)
from qemu_api.qdev import (
    DeviceState,
    prop_chr,
    prop_link,
    qdev_get_machine,
    qdev_realize,
    qdev_unrealize,
)
from qemu_api.qom import (
    Container,
    Object,
    callback_owner,
    object_get_root,
    object_new,
    object_property_add_child,
    override,
    qom_get,
    qom_list,
)
from qemu_api.sysbus import SysBusDevice, sysbus_realize
from qemu_api.timer import (
    CLOCK_VIRTUAL,
    SCALE_NS,
    Timer,
    clock_step,
    qemu_clock_get_ns,
    timer_new_ns,
)

PERIOD_NS = 100
PROBE_BASE = 0x1000_0000


@pytest.fixture(autouse=True)
def _log_invalid_mem() -> None:
    qemu_set_log(LOG_INVALID_MEM)


def invalid_read(addr: int, size: int) -> str:
    """QEMU 7.2's log line for a read of an unassigned address."""
    return (
        f"Invalid read at addr 0x{addr:X}, size {size}, region '(null)', "
        "reason: rejected\n"
    )


# ---------------------------------------------------------------------------
# A device with one of everything that calls into it


class Probe(SysBusDevice, type_name="test-life-probe"):
    """A periodic timer, a GPIO input, a chardev, a register and a clock."""

    chardev = prop_chr("chardev")
    calls: ClassVar[list[str]] = []

    @override
    def instance_init(self) -> None:
        self.iomem = MemoryRegion.io(self, "probe", 0x100, PROBE_OPS, self)
        self.init_mmio(self.iomem)
        self.tick_timer = Timer(CLOCK_VIRTUAL, SCALE_NS, self.tick)
        self.init_gpio_in(self.set_in, 1)
        self.clk = self.init_clock_in("clk", self.clock_update, ClockEvent.UPDATE)
        self.realize_timer: Timer | None = None

    @override
    def realize(self) -> None:
        super().realize()
        self.chardev.set_handlers(self.can_receive, self.receive, self.event)
        self.realize_timer = Timer(CLOCK_VIRTUAL, SCALE_NS, self.tick)

    def tick(self) -> None:
        Probe.calls.append("tick")
        self.tick_timer.mod_ns(qemu_clock_get_ns(CLOCK_VIRTUAL) + PERIOD_NS)

    def set_in(self, n: int, level: int) -> None:
        Probe.calls.append(f"irq {n}={level}")

    def can_receive(self) -> int:
        return 16

    def receive(self, data: bytes) -> None:
        Probe.calls.append(f"rx {data!r}")

    def event(self, event: ChrEvent) -> None:
        Probe.calls.append(f"event {event.name}")

    def clock_update(self, event: ClockEvent) -> None:
        Probe.calls.append(f"clock {self.clk.get_hz()}")

    def read(self, offset: int, size: int) -> int:
        Probe.calls.append(f"read {offset:#x}")
        return 0x5A

    def write(self, offset: int, value: int, size: int) -> None:
        Probe.calls.append(f"write {offset:#x}")


PROBE_OPS = MemoryRegionOps[Probe](
    read=Probe.read,
    write=Probe.write,
    impl=OpsImpl(min_access_size=4, max_access_size=4),
)


@pytest.fixture
def wired() -> tuple[Probe, InterruptSource, Chardev, Clock]:
    """A realized, mapped probe with a ticking timer, a driven input and input."""
    Probe.calls.clear()
    feed = qemu_chr_new("feed", "null")
    dev = Probe()
    object_property_add_child(qdev_get_machine(), "probe", dev)
    dev.chardev = feed
    src_clk = Clock()
    dev.connect_clock_in("clk", src_clk)
    sysbus_realize(dev)
    dev.mmio_map(0, PROBE_BASE)
    line = InterruptSource()
    line.connect(dev.get_gpio_in(0))
    dev.tick_timer.mod_ns(qemu_clock_get_ns(CLOCK_VIRTUAL) + PERIOD_NS)
    # Everything reaches the device while it is alive.
    clock_step(PERIOD_NS)
    line.raise_()
    assert feed.be_write(b"a") == 1
    assert get_address_space_memory().read(PROBE_BASE, 4) == 0x5A
    src_clk.update_hz(1000)
    assert Probe.calls == [
        "event OPENED",
        "tick",
        "irq 0=1",
        "rx b'a'",
        "read 0x0",
        "clock 1000",
    ]
    Probe.calls.clear()
    return dev, line, feed, src_clk


def test_nothing_reaches_an_unparented_device(
    wired: tuple[Probe, InterruptSource, Chardev, Clock],
    capsys: pytest.CaptureFixture[str],
) -> None:
    dev, line, feed, src_clk = wired
    timer = dev.tick_timer
    capsys.readouterr()
    dev.unparent()
    assert dev.is_finalized()
    # The periodic timer is gone, not just disarmed.
    assert not timer.pending()
    assert timer.released
    clock_step(10 * PERIOD_NS)
    # The input line stays connected on the driver's side, but delivers nothing.
    line.lower()
    line.raise_()
    # The chardev has no frontend any more: the input stays in the backend,
    # and the backend can be deleted.
    assert feed.frontend is None
    assert feed.be_write(b"b") == 0
    feed.be_event(ChrEvent.CLOSED)
    qemu_chr_delete("feed")
    # The region left the memory map: the address is unassigned.
    slot = MemTxResultSlot()
    assert get_address_space_memory().read(PROBE_BASE, 4, result=slot) == 0
    assert slot.value is MEMTX_DECODE_ERROR
    assert get_address_space_memory().write(PROBE_BASE, 1, 4) is MEMTX_DECODE_ERROR
    assert capsys.readouterr().err == invalid_read(PROBE_BASE, 4) + (
        f"Invalid write at addr 0x{PROBE_BASE:X}, size 4, region '(null)', "
        "reason: rejected\n"
    )
    assert "probe" not in mtree_info()
    # Clock changes no longer reach it.
    src_clk.update_hz(2000)
    assert Probe.calls == []


def test_an_unparented_device_with_a_chardev_is_collected() -> None:
    # Its CharBackend refers to the device (owner, handlers): that must not
    # keep it alive once nothing else does, nor keep the backend's frontend.
    feed = qemu_chr_new("feed", "null")
    dev = Probe()
    object_property_add_child(qdev_get_machine(), "probe", dev)
    dev.chardev = feed
    src_clk = Clock()
    dev.connect_clock_in("clk", src_clk)
    sysbus_realize(dev)
    dev.mmio_map(0, PROBE_BASE)
    line = InterruptSource()
    line.connect(dev.get_gpio_in(0))
    dev.tick_timer.mod_ns(qemu_clock_get_ns(CLOCK_VIRTUAL) + PERIOD_NS)
    assert feed.be_write(b"a") == 1
    ref = weakref.ref(dev)
    dev.unparent()
    del dev
    gc.collect()
    assert ref() is None
    assert feed.frontend is None
    qemu_chr_delete("feed")


def test_a_chardev_device_never_realized_is_collected() -> None:
    feed = qemu_chr_new("feed2", "null")
    dev = Probe()
    dev.chardev = feed
    dev.chardev.set_handlers(dev.can_receive, dev.receive, dev.event)
    ref = weakref.ref(dev)
    dev.unparent()
    del dev
    gc.collect()
    assert ref() is None
    assert feed.frontend is None
    qemu_chr_delete("feed2")


def test_an_unparented_device_without_a_backend_is_collected() -> None:
    # The PL011 on a board without -serial: handlers on a CharBackend that
    # has no chardev.
    dev = Probe()
    object_property_add_child(qdev_get_machine(), "probe", dev)
    sysbus_realize(dev)
    ref = weakref.ref(dev)
    dev.unparent()
    del dev
    gc.collect()
    assert ref() is None


def test_a_dropped_device_with_chardev_handlers_is_collected() -> None:
    # Never in the tree nor finalized: garbage once unreferenced, although its
    # CharBackend (no backend connected, as a UART without -serial) holds the
    # device's handlers and names it as their owner.
    dev = Probe()
    dev.chardev.set_handlers(dev.can_receive, dev.receive, dev.event)
    ref = weakref.ref(dev)
    del dev
    gc.collect()
    assert ref() is None


def test_dropping_a_device_that_never_joined_the_tree_releases_it() -> None:
    # What -device does when a property is refused: the new device is dropped.
    Probe.calls.clear()
    dev = Probe()
    dev.tick_timer.mod_ns(PERIOD_NS)
    line = dev.get_gpio_in(0)
    dev.unparent()
    assert dev.is_finalized()
    assert dev.tick_timer.released
    clock_step(10 * PERIOD_NS)
    line.raise_()
    assert Probe.calls == []


def test_dead_region_is_not_reachable_through_an_alias() -> None:
    Probe.calls.clear()
    dev = Probe()
    object_property_add_child(qdev_get_machine(), "probe", dev)
    view = MemoryRegion.alias(None, "probe-alias", dev.iomem, 0, 0x100)
    get_system_memory().add_subregion(0x2000_0000, view)
    mem = get_address_space_memory()
    assert mem.read(0x2000_0000, 4) == 0x5A
    dev.unparent()
    assert mem.read(0x2000_0000, 4) == 0
    assert Probe.calls == ["read 0x0"]


def test_callbacks_on_other_clocks_die_with_their_owner() -> None:
    Probe.calls.clear()
    dev = Probe()
    object_property_add_child(qdev_get_machine(), "probe", dev)
    src, free = Clock(), Clock()
    free.set_source(src)
    free.set_callback(dev.clock_update, ClockEvent.UPDATE)
    src.update_hz(10)
    dev.unparent()
    src.update_hz(20)
    assert Probe.calls == ["clock 0"]
    assert free.get_hz() == 20


def test_a_released_timer_refuses_to_be_armed(
    wired: tuple[Probe, InterruptSource, Chardev, Clock],
) -> None:
    dev = wired[0]
    dev.unparent()
    with pytest.raises(Error, match="released with its owner") as err:
        dev.tick_timer.mod_ns(0)
    assert err.value.hint is not None
    assert "instance_init" in err.value.hint
    assert "released" in repr(dev.tick_timer)


def test_unrealize_quiesces_and_realize_restores(
    wired: tuple[Probe, InterruptSource, Chardev, Clock],
) -> None:
    dev, line, feed, _ = wired
    init_timer = dev.tick_timer
    realize_timer = dev.realize_timer
    assert realize_timer is not None
    realize_timer.mod_ns(qemu_clock_get_ns(CLOCK_VIRTUAL) + 5)
    qdev_unrealize(dev)
    # Timers are disarmed; the one made by realize died with the realized phase.
    assert not init_timer.pending()
    assert not init_timer.released
    assert realize_timer.released
    # Chardev handlers are removed: the backend keeps its input.
    assert feed.be_write(b"x") == 0
    assert not feed.frontend_open
    clock_step(10 * PERIOD_NS)
    assert Probe.calls == []
    # The device is still alive: inputs and registers still work (as in QEMU).
    line.lower()
    assert Probe.calls == ["irq 0=0"]
    Probe.calls.clear()
    # Realizing again installs the handlers again; the init timer is reusable.
    sysbus_realize(dev)
    assert dev.realize_timer is not realize_timer
    assert feed.be_write(b"y") == 1
    init_timer.mod_ns(qemu_clock_get_ns(CLOCK_VIRTUAL) + PERIOD_NS)
    clock_step(PERIOD_NS)
    assert Probe.calls == ["event OPENED", "rx b'y'", "tick"]


class FailingRealize(SysBusDevice, type_name="test-life-failing-realize"):
    """Arms a timer, installs handlers and builds a view, then refuses."""

    chardev = prop_chr("chardev")
    memory = prop_link("memory", MemoryRegion)
    fired: ClassVar[list[str]] = []

    @override
    def realize(self) -> None:
        super().realize()
        self.timer = Timer(CLOCK_VIRTUAL, SCALE_NS, self.fire)
        self.timer.mod_ns(10)
        self.chardev.set_handlers(self.can_receive, self.receive)
        assert self.memory is not None
        self.view = AddressSpace(self.memory, "failing-dma", owner=self)
        raise Error("refusing the configuration")

    def fire(self) -> None:
        FailingRealize.fired.append("fire")

    def can_receive(self) -> int:
        return 1

    def receive(self, data: bytes) -> None:
        FailingRealize.fired.append("rx")


def test_failed_realize_undoes_what_it_started() -> None:
    feed = qemu_chr_new("feed", "null")
    dev = FailingRealize()
    dev.chardev = feed
    dev.memory = get_system_memory()
    with pytest.raises(Error, match="refusing the configuration"):
        sysbus_realize(dev)
    assert not dev.realized
    assert dev.timer.released
    clock_step(100)
    assert feed.be_write(b"x") == 0
    assert "failing-dma" not in mtree_info()
    assert FailingRealize.fired == []


# ---------------------------------------------------------------------------
# Construction is all or nothing


class Base(Object, type_name="test-life-base"):
    log: ClassVar[list[str]] = []

    @override
    def instance_init(self) -> None:
        Base.log.append("init base")
        self.base_timer = Timer(CLOCK_VIRTUAL, SCALE_NS, self.fire)
        self.base_timer.mod_ns(10)

    @override
    def instance_finalize(self) -> None:
        Base.log.append("finalize base")

    def fire(self) -> None:
        Base.log.append("fire")


class Mid(Base, type_name="test-life-mid"):
    @override
    def instance_init(self) -> None:
        Base.log.append("init mid")
        # A lambda names no owner: it is given explicitly.
        self.mid_timer = timer_new_ns(
            CLOCK_VIRTUAL, lambda: Base.log.append("fire mid"), owner=self
        )
        self.mid_timer.mod_ns(10)
        self.line = qemu_allocate_irq(self.on_irq, 0)
        self.child = self.property_add_child("part", Container())

    @override
    def instance_finalize(self) -> None:
        Base.log.append("finalize mid")

    def on_irq(self, n: int, level: int) -> None:
        Base.log.append("irq")


class Broken(Mid, type_name="test-life-broken"):
    @override
    def instance_init(self) -> None:
        Base.log.append("init broken")
        raise Error("cannot build this")

    @override
    def instance_finalize(self) -> None:
        Base.log.append("finalize broken")


class BrokenLate(Mid, type_name="test-life-broken-late"):
    @override
    def instance_post_init(self) -> None:
        raise Error("post-init refuses")


def test_failed_construction_leaves_nothing_armed() -> None:
    Base.log.clear()
    created: list[Base] = []

    def make() -> None:
        created.append(Broken())

    with pytest.raises(Error, match="cannot build this"):
        make()
    assert created == []
    # The classes whose instance_init completed are finalized, most derived
    # first; the class that failed is not.
    assert Base.log == [
        "init base",
        "init mid",
        "init broken",
        "finalize mid",
        "finalize base",
    ]
    Base.log.clear()
    clock_step(1000)
    assert Base.log == []


def test_failed_post_init_finalizes_every_class() -> None:
    Base.log.clear()
    with pytest.raises(Error, match="post-init refuses"):
        BrokenLate()
    assert Base.log == ["init base", "init mid", "finalize mid", "finalize base"]
    Base.log.clear()
    clock_step(1000)
    assert Base.log == []


def test_a_half_built_object_releases_lines_and_children() -> None:
    Base.log.clear()
    lines: list[IRQState] = []
    children: list[Object] = []

    class Spy(Mid, type_name="test-life-spy"):
        @override
        def instance_init(self) -> None:
            lines.append(self.line)
            children.append(self.child)
            raise Error("spied")

    with pytest.raises(Error, match="spied"):
        Spy()
    assert children[0].is_finalized()
    lines[0].raise_()
    assert "irq" not in Base.log


def test_a_finalized_object_cannot_own_or_rejoin() -> None:
    root = object_get_root()
    c = root.property_add_child("c", Container())
    c.unparent()
    with pytest.raises(Error, match="is finalized and cannot own"):
        Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: None, owner=c)
    with pytest.raises(Error, match="was finalized"):
        root.property_add_child("again", c)


def test_callback_owner() -> None:
    c = Container()
    dev = Probe()
    assert callback_owner(dev.tick) is dev
    assert callback_owner(c.typename) is c
    assert callback_owner(lambda: None) is None
    assert callback_owner(print) is None


def test_undo_failure_is_noted_on_the_original_error() -> None:
    class Grumpy(Object, type_name="test-life-grumpy"):
        @override
        def instance_init(self) -> None:
            pass

        @override
        def instance_finalize(self) -> None:
            raise RuntimeError("cannot finalize either")

    class Worse(Grumpy, type_name="test-life-worse"):
        @override
        def instance_init(self) -> None:
            raise Error("first failure")

    with pytest.raises(Error, match="first failure") as err:
        Worse()
    assert err.value.__notes__ == [
        (
            "while undoing the construction of 'test-life-worse': "
            "RuntimeError: cannot finalize either"
        )
    ]


# ---------------------------------------------------------------------------
# Chained hooks must not call their parent's version


@pytest.mark.parametrize("hook", ["instance_init", "instance_post_init"])
def test_super_call_of_a_chained_hook_is_refused(hook: str) -> None:
    name = f"test-life-twice-{hook}"
    source = (
        f"class Twice(Base, type_name='{name}'):\n"
        f"    def {hook}(self):\n"
        f"        super().{hook}()\n"
    )
    with pytest.raises(TypeError, match=rf"Twice\.{hook} calls {hook}") as err:
        exec(source, {"Base": Base})
    assert "would run twice; remove the call" in str(err.value)
    # The refused class did not take the type name.
    exec(f"class Twice(Base, type_name='{name}'): pass", {"Base": Base})


def test_explicit_parent_call_and_nested_calls_are_refused() -> None:
    with pytest.raises(TypeError, match=r"Direct\.instance_init calls"):

        class Direct(Base, type_name="test-life-direct"):
            @override
            def instance_init(self) -> None:
                Base.instance_init(self)

    with pytest.raises(TypeError, match=r"Nested\.instance_finalize calls"):

        class Nested(Base, type_name="test-life-nested"):
            @override
            def instance_finalize(self) -> None:
                def later() -> None:
                    super(Base, self).instance_finalize()

                later()


def test_super_calls_of_other_hooks_are_fine() -> None:
    class Fine(SysBusDevice, type_name="test-life-fine"):
        @override
        def realize(self) -> None:
            super().realize()

        @override
        def instance_unparent(self) -> None:
            super().instance_unparent()

    sysbus_realize(Fine())


# ---------------------------------------------------------------------------
# Memory regions are QOM objects


def test_region_is_a_child_of_its_owner() -> None:
    dev = Probe()
    object_property_add_child(qdev_get_machine(), "probe", dev)
    props = {p.name: p.type for p in qom_list("/machine/probe")}
    # QEMU 7.2's PL011 lists its region as "pl011[0]": child<memory-region>.
    assert props["probe[0]"] == "child<memory-region>"
    assert [(p.name, p.type) for p in qom_list("/machine/probe/probe[0]")] == [
        ("container", "link<memory-region>"),
        ("addr", "uint64"),
        ("priority", "uint32"),
        ("size", "uint64"),
    ]
    assert dev.iomem.owner is dev
    assert qom_get("/machine/probe/probe[0]", "size") == 0x100
    assert qom_get("/machine/probe/probe[0]", "container") == ""
    owned = MemoryRegion.container(dev, "bus", 0x1000)
    owned.add_subregion_overlap(0x40, MemoryRegion.ram(dev, "ram", 0x10), -2)
    assert qom_get("/machine/probe/ram[0]", "container") == "/machine/probe/bus[0]"
    assert qom_get("/machine/probe/ram[0]", "addr") == 0x40
    assert qom_get("/machine/probe/ram[0]", "priority") == -2
    with pytest.raises(Error, match="not writable"):
        owned.property_set("size", 4)


def test_region_names_are_escaped_in_the_tree() -> None:
    owner = object_get_root().property_add_child("board", Container())
    a = MemoryRegion.ram(owner, "a/b[0]", 0x10)
    b = MemoryRegion.ram(owner, "a/b[0]", 0x10)
    # memory_region_escape_name: '/', '[', '\\' and ']' become \xNN.
    assert a.name_in_parent == "a\\x2fb\\x5b0\\x5d[0]"
    assert b.name_in_parent == "a\\x2fb\\x5b0\\x5d[1]"
    assert a.name == "a/b[0]"


def test_region_type_and_owner_checks() -> None:
    mr = object_new("memory-region")
    assert isinstance(mr, MemoryRegion)
    assert (mr.name, mr.size, mr.parent) == ("", 0, None)
    with pytest.raises(Error, match="owner is a str; expected the QOM object"):
        MemoryRegion.ram(untyped("dev"), "r", 0x10)


def untyped(value):
    """Pass a value of the wrong type, to test the run-time checks."""
    return value


# ---------------------------------------------------------------------------
# A DMA master with a memory link

A_ADDR, A_DATA, A_GO = 0x0, 0x4, 0x8


class DmaTest(SysBusDevice, type_name="test-life-dma"):
    """Writes DATA to ADDR in its ``memory`` when the guest writes GO."""

    memory = prop_link("memory", MemoryRegion, required=True, doc="DMA target")

    @override
    def instance_init(self) -> None:
        self.addr = 0
        self.data = 0
        self.dma: GuestMemory | None = None
        self.iomem = MemoryRegion.io(self, "dma-test", 0x10, DMA_OPS, self)
        self.init_mmio(self.iomem)

    @override
    def realize(self) -> None:
        super().realize()
        assert self.memory is not None  # required=True
        space = AddressSpace(self.memory, self.memory.name, owner=self)
        self.dma = GuestMemory(space)

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, value: int, size: int) -> None:
        if offset == A_ADDR:
            self.addr = value
        elif offset == A_DATA:
            self.data = value
        elif offset == A_GO and self.dma is not None:
            self.dma.write_u32_le(GuestAddress(self.addr), self.data)


DMA_OPS = MemoryRegionOps[DmaTest](
    read=DmaTest.read,
    write=DmaTest.write,
    impl=OpsImpl(min_access_size=4, max_access_size=4),
)


@pytest.fixture
def dma_bus() -> MemoryRegion:
    """A bus only the DMA master sees: 4 KiB of SRAM at 0x100, owned by a board."""
    board = object_property_add_child(qdev_get_machine(), "board", Container())
    bus = MemoryRegion.container(board, "dma-bus", 0x10000)
    bus.add_subregion(0x100, MemoryRegion.ram(board, "sram", 0x1000))
    return bus


def guest_write(addr: int, value: int) -> None:
    assert get_address_space_memory().write(addr, value, 4) is MEMTX_OK


def test_dma_master_writes_through_its_memory_link(dma_bus: MemoryRegion) -> None:
    dev = DmaTest()
    dev.property_set_link("memory", dma_bus)
    sysbus_realize(dev)
    dev.mmio_map(0, 0x0900_0000)
    guest_write(0x0900_0000 + A_ADDR, 0x110)
    guest_write(0x0900_0000 + A_DATA, 0xCAFEF00D)
    guest_write(0x0900_0000 + A_GO, 1)
    sram = dma_bus.subregions[0]
    assert bytes(sram.get_ram_ptr()[0x10:0x14]) == b"\x0d\xf0\xfe\xca"
    # The DMA view shows in info mtree while the device lives, then leaves.
    assert "address-space: dma-bus\n" in mtree_info()
    assert qom_get(dev.canonical_path() or "", "memory") == (
        "/machine/board/dma-bus[0]"
    )
    dev.unparent()
    assert "address-space: dma-bus\n" not in mtree_info()


def test_memory_link_is_set_by_qom_path(dma_bus: MemoryRegion) -> None:
    dev = DmaTest()
    dev.property_set("memory", "/machine/board/dma-bus[0]")
    assert dev.memory is dma_bus
    # A partial path works as well, when it is unambiguous.
    dev.property_set("memory", "dma-bus[0]")
    assert dev.memory is dma_bus


def test_memory_link_refuses_a_wrong_type(dma_bus: MemoryRegion) -> None:
    dev = DmaTest()
    other = DmaTest()
    object_property_add_child(qdev_get_machine(), "other", other)
    expected = "Invalid parameter type for 'memory', expected: memory-region"
    with pytest.raises(Error, match=expected) as err:
        dev.property_set_link("memory", other)
    assert err.value.hint == (
        "The target is a test-life-dma; link<memory-region> takes a MemoryRegion.\n"
    )
    with pytest.raises(Error, match=expected) as err:
        dev.property_set("memory", "/machine/other")
    assert err.value.hint == (
        "'/machine/other' is a test-life-dma; link<memory-region> takes the path "
        "of a memory-region.\n"
    )
    assert dev.memory is None


def test_memory_link_must_be_set_before_realize() -> None:
    dev = DmaTest()
    with pytest.raises(Error, match="'memory' link is not set") as err:
        sysbus_realize(dev)
    assert err.value.hint is not None
    assert "property_set_link('memory', target)" in err.value.hint
    assert not dev.realized


def test_memory_link_cannot_change_after_realize(dma_bus: MemoryRegion) -> None:
    dev = DmaTest()
    dev.memory = dma_bus
    sysbus_realize(dev)
    other = MemoryRegion.container(None, "other-bus", 0x100)
    with pytest.raises(Error, match="Attempt to set link property 'memory'"):
        dev.property_set_link("memory", other)
    with pytest.raises(Error, match="after it was realized"):
        dev.memory = other
    assert dev.memory is dma_bus


def test_device_link_to_any_object_type_still_works() -> None:
    class Holder(DeviceState, type_name="test-life-holder"):
        target = prop_link("target", Probe)

    probe = Probe()
    holder = Holder()
    holder.target = probe
    qdev_realize(holder)
    assert holder.target is probe
