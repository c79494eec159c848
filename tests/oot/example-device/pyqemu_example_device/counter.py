"""``example-counter``: an event counter with a compare interrupt.

A 4 KiB window of 32-bit registers, declared once in a
:class:`~qemu_api.register.RegisterMap`:

====== ====== ======= ==================================================
offset name   access  meaning
====== ====== ======= ==================================================
0x00   ID     RO      ``0x45584301``: "EXC", version 1
0x04   COUNT  RW      the counter (``start`` at reset)
0x08   ADD    WO      adds the value written to COUNT (wraps at 32 bits)
0x0c   LIMIT  RW      COUNT reaching a nonzero LIMIT sets STATUS.MATCH
0x10   STATUS R, W1C  bit 0 MATCH; write 1 to clear
0x14   IRQEN  RW      bit 0: the IRQ follows STATUS.MATCH
====== ====== ======= ==================================================

>>> from qemu_api.sysbus import sysbus_realize
>>> dev = ExampleCounter()
>>> dev.property_set("start", 5)
>>> sysbus_realize(dev)
>>> dev.cold_reset()
>>> hex(dev.registers.read(dev, 0x00, 4)), dev.registers.read(dev, 0x04, 4)
('0x45584301', 5)
>>> dev.registers.write(dev, 0x0C, 7, 4)  # LIMIT
>>> dev.registers.write(dev, 0x08, 2, 4)  # ADD
>>> dev.registers.read(dev, 0x04, 4), dev.registers.read(dev, 0x10, 4)
(7, 1)
"""

from __future__ import annotations

from typing import Final

from hw.core.sysbus_fdt import PlatformBusFDTData
from qemu_api.bql import BqlStruct
from qemu_api.irq import InterruptSource
from qemu_api.memory import MemoryRegion, MemoryRegionOps, OpsImpl
from qemu_api.migration.vmstate import VMStateDescription, vmstate_uint32
from qemu_api.qdev import ResetType, prop_u32
from qemu_api.qom import override
from qemu_api.register import RO, RW, W1C, WO, R, Register, RegisterMap
from qemu_api.sysbus import DynamicSysBusDevice

__all__ = ["EXAMPLE_COUNTER_ID", "TYPE_EXAMPLE_COUNTER", "ExampleCounter"]

TYPE_EXAMPLE_COUNTER: Final = "example-counter"
"""The QOM type name (and the entry point's name)."""
EXAMPLE_COUNTER_ID: Final = 0x4558_4301
"""The ID register's value."""
MMIO_SIZE: Final = 0x1000
STATUS_MATCH: Final = 1 << 0


class CounterRegs(BqlStruct):
    """The registers' state."""

    count: int
    limit: int
    status: int
    irqen: int

    def __init__(self) -> None:
        self.count = self.limit = self.status = self.irqen = 0


class ExampleCounter(DynamicSysBusDevice, type_name=TYPE_EXAMPLE_COUNTER):
    """An event counter with a compare interrupt (sysbus MMIO 0, IRQ 0)."""

    desc = "example event counter (out-of-tree device package)"

    regs: CounterRegs

    start = prop_u32("start", default=0, doc="the counter's value at reset")

    @override
    def instance_init(self) -> None:
        """Create the registers, the MMIO window and the IRQ."""
        self.regs = CounterRegs()
        self.iomem = MemoryRegion.io(self, "example-counter", MMIO_SIZE, OPS, self)
        self.init_mmio(self.iomem)
        self.irq = InterruptSource()
        self.init_irq(self.irq)

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        """Reset the registers; COUNT starts at the ``start`` property."""
        super().reset_hold(reset_type)
        self.registers.reset(self)
        self.regs.count = self.start
        self.update()

    def add_fdt_node(self, data: PlatformBusFDTData) -> None:
        """Describe the device on a platform bus (``-device`` on virt)."""
        node = data.node_path(self, "example-counter")
        data.fdt.add_subnode(node)
        data.fdt.setprop_string(node, "compatible", "pyqemu,example-counter")
        data.fdt.setprop_cells(node, "reg", *data.reg(self, 0))
        data.fdt.setprop_cells(node, "interrupts", *data.interrupts(self, 0))

    def update(self) -> None:
        """Set STATUS.MATCH when COUNT reached LIMIT; drive the IRQ."""
        regs = self.regs
        if regs.limit and regs.count == regs.limit:
            regs.status |= STATUS_MATCH
        self.irq.set(1 if regs.status & regs.irqen & STATUS_MATCH else 0)

    def read_id(self) -> int:
        """An ID read."""
        return EXAMPLE_COUNTER_ID

    def write_add(self, value: int) -> None:
        """An ADD write: count up."""
        self.regs.count = (self.regs.count + value) & 0xFFFF_FFFF
        self.update()

    def post_write(self) -> None:
        """After a register write: the match and the IRQ may change."""
        self.update()

    registers = RegisterMap["ExampleCounter"](
        "example-counter",
        MMIO_SIZE,
        [
            Register("ID", 0x00, RO, read=read_id),
            Register(
                "COUNT", 0x04, RW, field=lambda s: s.regs.count, post_write=post_write
            ),
            Register("ADD", 0x08, WO, write=write_add),
            Register(
                "LIMIT", 0x0C, RW, field=lambda s: s.regs.limit, post_write=post_write
            ),
            Register(
                "STATUS",
                0x10,
                R | W1C,
                field=lambda s: s.regs.status,
                write_mask=STATUS_MATCH,
                post_write=post_write,
            ),
            Register(
                "IRQEN",
                0x14,
                RW,
                field=lambda s: s.regs.irqen,
                write_mask=STATUS_MATCH,
                post_write=post_write,
            ),
        ],
    )
    """The device's registers."""

    vmsd = VMStateDescription["ExampleCounter"](
        "example-counter",
        version_id=1,
        minimum_version_id=1,
        fields=[
            vmstate_uint32(lambda s: s.regs.count),
            vmstate_uint32(lambda s: s.regs.limit),
            vmstate_uint32(lambda s: s.regs.status),
            vmstate_uint32(lambda s: s.regs.irqen),
        ],
    )
    """The migration state: section ``example-counter``, version 1."""


OPS: Final = MemoryRegionOps[ExampleCounter](
    read=ExampleCounter.registers.read,
    write=ExampleCounter.registers.write,
    impl=OpsImpl(min_access_size=4, max_access_size=4),
)
"""32-bit callbacks; every access size is valid."""
