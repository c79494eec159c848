"""The ARM PrimeCell GPIO (PL061), register for register as QEMU models it.

This is QEMU's ``hw/gpio/pl061.c`` in Python, checked against QEMU 7.2:
eight GPIO lines with direction, data, edge or level interrupts, and the
Luminary Micro Stellaris variant (``pl061_luminary``) with its pad-control
registers.

- One MMIO region of 4 KiB, no ``impl`` sizes: QEMU's ``switch (offset)``
  reaches a register at its own offset only, with any access size
  (:attr:`Decode.EXACT <qemu_api.register.Decode.EXACT>`).
- GPIODATA is 256 windows over the data register (0x000-0x3FF): address
  bits [9:2] mask the access, so a read at ``0x3FC`` returns every line and a
  write at ``(1 << line) << 2`` changes that line only.  A write changes only
  the lines configured as outputs (GPIODIR).
- Interrupts: GPIOIS selects level (1) or edge (0) sensing per line, GPIOIBE
  both edges, GPIOIEV the level or edge (1 = high/rising); GPIORIS latches
  them (a level interrupt is re-latched while the level holds), GPIOIC
  clears, GPIOIE masks.  One sysbus IRQ, GPIOINTR: ``RIS & IE`` non-zero.
- GPIO inputs 0-7 set the level of lines configured as inputs; GPIO outputs
  0-7 carry each line's level: the data bit for an output line, the pull
  level for a pulled input, the last level for a floating input.
- Properties ``pullups`` (default 0xff) and ``pulldowns`` (default 0): which
  input lines are pulled to 1 or 0 (the Luminary variant has its GPIOPUR and
  GPIOPDR registers instead).  A line in neither floats.  At reset the pulled
  lines' outputs are driven to their pull level.

The guest's view through an address space:

>>> from qemu_api.memory import get_address_space_memory
>>> from qemu_api.qdev import device_cold_reset
>>> gpio = pl061_create(0x0903_0000, None)
>>> device_cold_reset(gpio)
>>> mem = get_address_space_memory()
>>> _ = mem.write(0x0903_0400, 0x0F, 4)  # GPIODIR: lines 0-3 are outputs
>>> _ = mem.write(0x0903_03FC, 0xA5, 4)  # GPIODATA, every line
>>> hex(mem.read(0x0903_03FC, 4)), hex(mem.read(0x0903_0004 << 2, 4))
('0x5', '0x0')
>>> [hex(mem.read(0x0903_0FE0 + 4 * i, 4)) for i in range(4)]
['0x61', '0x10', '0x4', '0x0']
"""

from __future__ import annotations

from typing import ClassVar, Final, final

from qemu_api.bql import BqlStruct
from qemu_api.error import Error
from qemu_api.irq import InterruptSource, IRQState
from qemu_api.log import LOG_GUEST_ERROR, qemu_log_mask
from qemu_api.memory import MemoryRegion, MemoryRegionOps
from qemu_api.migration.vmstate import VMStateDescription, vmstate_uint32
from qemu_api.qdev import ResetType, prop_u32
from qemu_api.qom import override
from qemu_api.register import (
    RO,
    RW,
    W1C,
    Decode,
    Register,
    RegisterArray,
    RegisterLog,
    RegisterMap,
)
from qemu_api.sysbus import SysBusDevice, sysbus_realize
from qemu_trace.pl061 import (
    trace_pl061_input_change,
    trace_pl061_read,
    trace_pl061_reset,
    trace_pl061_set_output,
    trace_pl061_update,
    trace_pl061_update_istate,
    trace_pl061_write,
)

__all__ = [
    "N_GPIOS",
    "PL061_ID",
    "PL061_ID_LUMINARY",
    "PL061_MMIO_SIZE",
    "TYPE_PL061",
    "TYPE_PL061_LUMINARY",
    "PL061Luminary",
    "PL061Registers",
    "PL061State",
    "pl061_create",
]

TYPE_PL061: Final = "pl061"
"""QOM type name of the ARM PL061 (:class:`PL061State`)."""
TYPE_PL061_LUMINARY: Final = "pl061_luminary"
"""QOM type name of the Luminary Micro variant (:class:`PL061Luminary`)."""

PL061_MMIO_SIZE: Final = 0x1000
"""Size of the register block (the ``"pl061"`` memory region)."""

N_GPIOS: Final = 8
"""GPIO lines (QEMU's ``N_GPIOS``): eight inputs, eight outputs."""

PL061_ID: Final = bytes(
    (0x00, 0x00, 0x00, 0x00, 0x61, 0x10, 0x04, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
)
"""The 12 ID bytes from 0xFD0 (QEMU's ``pl061_id``): four reserved words,
PeriphID0-3 (part 0x061, ARM) and PCellID0-3, as Linux's AMBA bus reads them."""
PL061_ID_LUMINARY: Final = bytes(
    (0x00, 0x00, 0x00, 0x00, 0x61, 0x00, 0x18, 0x01, 0x0D, 0xF0, 0x05, 0xB1)
)
"""The ID bytes of the ``pl061_luminary`` type (QEMU's ``pl061_id_luminary``)."""

PL061_ID_BASE: Final = 0xFD0
"""Offset of the first ID word; every byte up to 0xFFF reads its word's ID byte."""

LUMINARY_BASE: Final = 0x500
"""Offset of the Luminary pad-control registers (GPIODR2R ... GPIOAMSEL)."""
LUMINARY_REGS: Final = (
    "dr2r",
    "dr4r",
    "dr8r",
    "odr",
    "pur",
    "pdr",
    "slr",
    "den",
    "locked",
    "cr",
    "amsel",
)
"""The fields behind 0x500, 0x504, ... 0x528 on the Luminary variant:
GPIODR2R, GPIODR4R, GPIODR8R, GPIOODR, GPIOPUR, GPIOPDR, GPIOSLR, GPIODEN,
GPIOLOCK, GPIOCR, GPIOAMSEL."""

LOCK_KEY: Final = 0x0ACC_E551
"""The GPIOLOCK value that unlocks GPIOCR."""

_BYTE: Final = 0xFF


@final
class PL061Registers(BqlStruct):
    """The state of a PL061: QEMU's ``PL061State`` fields, all migrated.

    Attributes:
        locked: GPIOLOCK (Luminary): 1 until the key is written.
        data: GPIODATA.
        old_out_data: the levels last driven on the GPIO outputs.
        old_in_data: the data seen by the last input-edge check.
        dir: GPIODIR, 1 = output.
        isense: GPIOIS, 1 = level-sensitive.
        ibe: GPIOIBE, 1 = both edges.
        iev: GPIOIEV, 1 = high level or rising edge.
        im: GPIOIE, the interrupt mask.
        istate: GPIORIS, the raw interrupt status.
        afsel: GPIOAFSEL, alternate function select.
        dr2r: GPIODR2R (Luminary).
        dr4r: GPIODR4R (Luminary).
        dr8r: GPIODR8R (Luminary).
        odr: GPIOODR (Luminary).
        pur: GPIOPUR (Luminary): pull-ups.
        pdr: GPIOPDR (Luminary): pull-downs.
        slr: GPIOSLR (Luminary).
        den: GPIODEN (Luminary).
        cr: GPIOCR (Luminary): which AFSEL bits may change.
        amsel: GPIOAMSEL (Luminary).
    """

    locked: int
    data: int
    old_out_data: int
    old_in_data: int
    dir: int
    isense: int
    ibe: int
    iev: int
    im: int
    istate: int
    afsel: int
    dr2r: int
    dr4r: int
    dr8r: int
    odr: int
    pur: int
    pdr: int
    slr: int
    den: int
    cr: int
    amsel: int

    def __init__(self) -> None:
        self.old_out_data = 0
        self.reset()

    def reset(self) -> None:
        """The reset values of the PL061 TRM and the Stellaris data sheets.

        QEMU's ``pl061_enter_reset``: everything but ``old_out_data``, which
        the hold phase sets.
        """
        self.data = 0
        self.old_in_data = 0
        self.dir = 0
        self.isense = 0
        self.ibe = 0
        self.iev = 0
        self.im = 0
        self.istate = 0
        self.afsel = 0
        self.dr2r = 0xFF
        self.dr4r = 0
        self.dr8r = 0
        self.odr = 0
        self.pur = 0
        self.pdr = 0
        self.slr = 0
        self.den = 0
        self.locked = 1
        self.cr = 0xFF
        self.amsel = 0


class PL061State(SysBusDevice, type_name=TYPE_PL061):
    """The ARM PrimeCell GPIO, QEMU's ``TYPE_PL061``.

    Attributes:
        regs: the register state.
        iomem: the 4 KiB register region (sysbus MMIO 0).
        irq: GPIOINTR (sysbus IRQ 0).
        out: the eight GPIO outputs.
    """

    luminary: ClassVar[bool] = False
    """Whether this is the Luminary variant (pad-control registers, GPIOPUR/PDR)."""
    device_id: ClassVar[bytes] = PL061_ID
    """The 12 ID bytes from 0xFD0."""
    user_creatable = False

    regs: PL061Registers

    pullups = prop_u32(
        "pullups", default=0xFF, doc="input lines pulled up to 1 (bit n = line n)"
    )
    pulldowns = prop_u32(
        "pulldowns", default=0, doc="input lines pulled down to 0 (bit n = line n)"
    )

    @override
    def instance_init(self) -> None:
        self.regs = PL061Registers()
        self.iomem = MemoryRegion.io(self, "pl061", PL061_MMIO_SIZE, PL061_OPS, self)
        self.init_mmio(self.iomem)
        self.irq = InterruptSource()
        self.init_irq(self.irq)
        self.init_gpio_in(self.set_irq, N_GPIOS)
        self.out = tuple(InterruptSource() for _ in range(N_GPIOS))
        self.init_gpio_out(self.out)

    @override
    def realize(self) -> None:
        if self.pullups > _BYTE:
            raise Error("pullups property must be between 0 and 0xff")
        if self.pulldowns > _BYTE:
            raise Error("pulldowns property must be between 0 and 0xff")
        if self.pullups & self.pulldowns:
            raise Error("no bit may be set both in pullups and pulldowns")
        super().realize()

    def path(self) -> str:
        """The canonical QOM path that trace events print."""
        return self.canonical_path() or ""

    # -- line levels -----------------------------------------------------------

    def floating(self) -> int:
        """Input lines neither pulled up nor down (``pl061_floating``)."""
        regs = self.regs
        if self.luminary:
            floating = ~(regs.pur | regs.pdr)
        else:
            floating = ~(self.pullups | self.pulldowns)
        return floating & ~regs.dir & _BYTE

    def pulled_up(self) -> int:
        """Input lines pulled up to 1 (``pl061_pullups``)."""
        regs = self.regs
        pullups = regs.pur if self.luminary else self.pullups
        return pullups & ~regs.dir & _BYTE

    def update(self) -> None:
        """Drive the outputs, latch input edges and levels, drive GPIOINTR.

        QEMU's ``pl061_update``: output lines carry the data bits, pulled
        inputs their pull level, floating inputs the level they had (so the
        other end sees no change).  Each input line that changed since the
        last update latches an edge interrupt if its sense and event bits
        select that edge; level-sensitive lines latch while their level
        matches GPIOIEV.
        """
        path = self.path()
        pullups = self.pulled_up()
        floating = self.floating()
        with self.regs.borrow_mut() as regs:
            trace_pl061_update(path, regs.dir, regs.data, pullups, floating)
            out = (
                (regs.data & regs.dir) | pullups | (regs.old_out_data & floating)
            ) & (_BYTE)
            changed_out = (regs.old_out_data ^ out) & _BYTE
            if changed_out:
                regs.old_out_data = out
        if changed_out:
            for i in range(N_GPIOS):
                mask = 1 << i
                if changed_out & mask:
                    level = 1 if out & mask else 0
                    trace_pl061_set_output(path, i, level)
                    self.out[i].set(level)
        with self.regs.borrow_mut() as regs:
            changed_in = (regs.old_in_data ^ regs.data) & ~regs.dir & _BYTE
            if changed_in:
                regs.old_in_data = regs.data
                for i in range(N_GPIOS):
                    mask = 1 << i
                    if changed_in & mask:
                        trace_pl061_input_change(path, i, 1 if regs.data & mask else 0)
                        if not regs.isense & mask:
                            if regs.ibe & mask:
                                regs.istate |= mask  # any edge
                            else:
                                regs.istate |= ~(regs.data ^ regs.iev) & mask
            regs.istate |= ~(regs.data ^ regs.iev) & regs.isense
            level = 1 if regs.istate & regs.im else 0
            trace_pl061_update_istate(path, regs.istate, regs.im, level)
        self.irq.set(level)

    def set_irq(self, line: int, level: int) -> None:
        """A GPIO input: set the level of an input line (``pl061_set_irq``).

        Lines configured as outputs ignore their input.
        """
        mask = 1 << line
        regs = self.regs
        if regs.dir & mask == 0:
            regs.data = (regs.data & ~mask) | (mask if level else 0)
            self.update()

    # -- registers with side effects -------------------------------------------

    def read_data(self, window: int) -> int:
        """GPIODATA through window ``window``: address bits [9:2] are the mask."""
        return self.regs.data & (window >> 2)

    def write_data(self, window: int, value: int) -> None:
        """GPIODATA: change the output lines the window's address bits select."""
        regs = self.regs
        mask = (window >> 2) & regs.dir
        regs.data = (regs.data & ~mask) | (value & mask)
        self.update()

    def low_byte(self, value: int) -> int:
        """What QEMU stores of a write to a byte register: ``value & 0xff``."""
        return value & _BYTE

    def masked_interrupts(self) -> int:
        """GPIOMIS: GPIORIS & GPIOIE."""
        regs = self.regs
        return regs.istate & regs.im

    def write_afsel(self, value: int) -> None:
        """GPIOAFSEL: only the bits GPIOCR allows change."""
        regs = self.regs
        mask = regs.cr
        regs.afsel = (regs.afsel & ~mask) | (value & mask)

    def read_luminary(self, index: int) -> int:
        """A Luminary pad-control register; a bad offset on the ARM PL061."""
        if not self.luminary:
            qemu_log_mask(
                LOG_GUEST_ERROR,
                f"pl061_read: Bad offset {LUMINARY_BASE + 4 * index:x}\n",
            )
            return 0
        regs = self.regs
        match index:
            case 0:
                return regs.dr2r
            case 1:
                return regs.dr4r
            case 2:
                return regs.dr8r
            case 3:
                return regs.odr
            case 4:
                return regs.pur
            case 5:
                return regs.pdr
            case 6:
                return regs.slr
            case 7:
                return regs.den
            case 8:
                return regs.locked
            case 9:
                return regs.cr
            case _:
                return regs.amsel

    def write_luminary(self, index: int, value: int) -> None:
        """Write a Luminary pad-control register, then update the lines.

        GPIOLOCK locks (any value) or unlocks (:data:`LOCK_KEY`) GPIOCR;
        GPIOCR changes only while unlocked.  On the ARM PL061 these offsets
        are bad ones (logged, nothing updated).
        """
        if not self.luminary:
            qemu_log_mask(
                LOG_GUEST_ERROR,
                f"pl061_write: Bad offset {LUMINARY_BASE + 4 * index:x}\n",
            )
            return
        byte = value & _BYTE
        with self.regs.borrow_mut() as regs:
            match index:
                case 0:
                    regs.dr2r = byte
                case 1:
                    regs.dr4r = byte
                case 2:
                    regs.dr8r = byte
                case 3:
                    regs.odr = byte
                case 4:
                    regs.pur = byte
                case 5:
                    regs.pdr = byte
                case 6:
                    regs.slr = byte
                case 7:
                    regs.den = byte
                case 8:
                    regs.locked = 1 if value != LOCK_KEY else 0
                case 9:
                    if not regs.locked:
                        regs.cr = byte
                case _:
                    regs.amsel = byte
        self.update()

    def read_id(self, index: int) -> int:
        """A byte of the ID block: the ID byte of its word."""
        return self.device_id[index >> 2]

    def write_id(self, index: int, value: int) -> None:
        """The ID block is not writable: QEMU logs a bad offset."""
        qemu_log_mask(
            LOG_GUEST_ERROR, f"pl061_write: Bad offset {PL061_ID_BASE + index:x}\n"
        )

    # -- MMIO: the register map, traced with the device's path -----------------

    def mmio_read(self, offset: int, size: int) -> int:
        """``pl061_read``: decode through :attr:`registers`, then trace."""
        value = self.registers.read(self, offset, size)
        trace_pl061_read(self.path(), offset, value)
        return value

    def mmio_write(self, offset: int, value: int, size: int) -> None:
        """``pl061_write``: trace, then decode through :attr:`registers`."""
        trace_pl061_write(self.path(), offset, value)
        self.registers.write(self, offset, value, size)

    # -- reset -----------------------------------------------------------------

    @override
    def reset_enter(self, reset_type: ResetType) -> None:
        super().reset_enter(reset_type)
        trace_pl061_reset(self.path())
        with self.regs.borrow_mut() as regs:
            regs.reset()

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        """Drive the pulled lines to their pull level (``pl061_hold_reset``)."""
        super().reset_hold(reset_type)
        path = self.path()
        floating = self.floating()
        pullups = self.pulled_up()
        for i in range(N_GPIOS):
            if floating >> i & 1:
                continue
            level = pullups >> i & 1
            trace_pl061_set_output(path, i, level)
            self.out[i].set(level)
        self.regs.old_out_data = pullups

    # -- declarations ----------------------------------------------------------

    registers = RegisterMap["PL061State"](
        "pl061",
        PL061_MMIO_SIZE,
        [
            RegisterArray(
                "DATA",
                0x000,
                0x400,
                RW,
                width=8,
                read=read_data,
                write=write_data,
                doc="GPIODATA: address bits [9:2] mask the access",
            ),
            Register(
                "DIR",
                0x400,
                RW,
                field=lambda s: s.regs.dir,
                pre_write=low_byte,
                reset=None,
                post_write=update,
                doc="GPIODIR: 1 = output",
            ),
            Register(
                "IS",
                0x404,
                RW,
                field=lambda s: s.regs.isense,
                pre_write=low_byte,
                reset=None,
                post_write=update,
                doc="GPIOIS: 1 = level-sensitive",
            ),
            Register(
                "IBE",
                0x408,
                RW,
                field=lambda s: s.regs.ibe,
                pre_write=low_byte,
                reset=None,
                post_write=update,
                doc="GPIOIBE: 1 = both edges",
            ),
            Register(
                "IEV",
                0x40C,
                RW,
                field=lambda s: s.regs.iev,
                pre_write=low_byte,
                reset=None,
                post_write=update,
                doc="GPIOIEV: 1 = high level or rising edge",
            ),
            Register(
                "IE",
                0x410,
                RW,
                field=lambda s: s.regs.im,
                pre_write=low_byte,
                reset=None,
                post_write=update,
                doc="GPIOIE: interrupt mask",
            ),
            Register(
                "RIS",
                0x414,
                RO,
                field=lambda s: s.regs.istate,
                reset=None,
                doc="GPIORIS: raw interrupt status",
            ),
            Register("MIS", 0x418, RO, read=masked_interrupts, doc="GPIOMIS"),
            Register(
                "IC",
                0x41C,
                W1C,
                field=lambda s: s.regs.istate,
                reset=None,
                post_write=update,
                doc="GPIOIC: write 1 to clear (write-only)",
            ),
            Register(
                "AFSEL",
                0x420,
                RW,
                field=lambda s: s.regs.afsel,
                write=write_afsel,
                reset=None,
                post_write=update,
                doc="GPIOAFSEL: alternate function select, as GPIOCR allows",
            ),
            RegisterArray(
                "PAD",
                LUMINARY_BASE,
                len(LUMINARY_REGS),
                RW,
                read=read_luminary,
                write=write_luminary,
                doc="Luminary GPIODR2R ... GPIOAMSEL (bad offsets on the ARM PL061)",
            ),
            RegisterArray(
                "ID",
                PL061_ID_BASE,
                0x30,
                RW,
                width=8,
                read=read_id,
                write=write_id,
                trace_name="ID",
                doc="four reserved words, PeriphID0-3, PCellID0-3; any byte",
            ),
        ],
        decode=Decode.EXACT,
        log=RegisterLog.bad_offset(
            "pl061_read: Bad offset {addr:x}\n", "pl061_write: Bad offset {addr:x}\n"
        ),
        # Bound on the first access: a start that never touches it pays nothing.
        bind_on_first_use=True,
    )
    """QEMU's ``pl061_read``/``pl061_write`` as a table: the PL061's registers."""

    vmsd = VMStateDescription["PL061State"](
        "pl061",
        version_id=4,
        minimum_version_id=4,
        fields=[
            vmstate_uint32(lambda s: s.regs.locked),
            vmstate_uint32(lambda s: s.regs.data),
            vmstate_uint32(lambda s: s.regs.old_out_data),
            vmstate_uint32(lambda s: s.regs.old_in_data),
            vmstate_uint32(lambda s: s.regs.dir),
            vmstate_uint32(lambda s: s.regs.isense),
            vmstate_uint32(lambda s: s.regs.ibe),
            vmstate_uint32(lambda s: s.regs.iev),
            vmstate_uint32(lambda s: s.regs.im),
            vmstate_uint32(lambda s: s.regs.istate),
            vmstate_uint32(lambda s: s.regs.afsel),
            vmstate_uint32(lambda s: s.regs.dr2r),
            vmstate_uint32(lambda s: s.regs.dr4r),
            vmstate_uint32(lambda s: s.regs.dr8r),
            vmstate_uint32(lambda s: s.regs.odr),
            vmstate_uint32(lambda s: s.regs.pur),
            vmstate_uint32(lambda s: s.regs.pdr),
            vmstate_uint32(lambda s: s.regs.slr),
            vmstate_uint32(lambda s: s.regs.den),
            vmstate_uint32(lambda s: s.regs.cr),
            vmstate_uint32(lambda s: s.regs.amsel, version_id=2),
        ],
    )
    """QEMU's ``vmstate_pl061``, byte for byte: the section ``pl061``, version 4."""


PL061_OPS: Final = MemoryRegionOps[PL061State](
    read=PL061State.mmio_read,
    write=PL061State.mmio_write,
)
"""QEMU's ``pl061_ops``: native endian, every size, no ``impl`` sizes."""


@final
class PL061Luminary(PL061State, type_name=TYPE_PL061_LUMINARY):
    """The Luminary Micro Stellaris variant: pad-control registers, its own IDs.

    Its pull-ups and pull-downs are the guest's GPIOPUR and GPIOPDR, not the
    properties.
    """

    luminary = True
    device_id = PL061_ID_LUMINARY


def pl061_create(addr: int, irq: IRQState | None) -> PL061State:
    """Create, realize and map a PL061 with GPIOINTR connected.

    Args:
        addr: where to map the registers in system memory.
        irq: the input GPIOINTR drives, or None.

    Returns:
        The realized device; it is not reset yet.
    """
    dev = PL061State()
    sysbus_realize(dev)
    dev.mmio_map(0, addr)
    dev.connect_irq(0, irq)
    return dev
