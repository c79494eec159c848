"""Fuzz targets ``pl031`` and ``pl061``: a device driven through its register map.

Each input is a sequence of 8-byte operations on one device mapped in an
address space: reads and writes of 1, 2, 4 or 8 bytes anywhere in its 4 KiB
block, virtual time passing, GPIO input changes (PL061), resets, a save and
load round trip, and the load of a damaged copy of the device's own VMState
section.  Properties checked after every operation:

- no Python exception escapes the device (bad accesses are guest errors);
- a read returns no more bits than its size;
- the interrupt line is what the registers say (PL031: ``RIS & IMSC``;
  PL061: ``RIS & IE`` non-zero); as in QEMU, a reset or a load leaves the
  line alone, so after those the target writes the mask register back (an
  update) before checking;
- the state survives a save and load byte for byte, and a damaged section is
  loaded or refused with an :class:`~qemu_api.error.Error` in one line.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import ClassVar, Final, TypeVar

from hw.gpio.pl061.device import N_GPIOS, PL061State
from hw.rtc.pl031.device import PL031State
from qemu_api import bql
from qemu_api.error import Error
from qemu_api.irq import qemu_allocate_irq
from qemu_api.memory import AddressSpace, get_address_space_memory
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import (
    VMStateDescription,
    vmstate_load_state,
    vmstate_save_state,
)
from qemu_api.option import qemu_opts_parse
from qemu_api.qdev import device_cold_reset
from qemu_api.rtc import configure_rtc
from qemu_api.sysbus import SysBusDevice, sysbus_realize
from qemu_api.timer import clock_step
from tests.fuzz.engine import FuzzFailure, FuzzTarget, register
from tests.runtime import reset_runtime

BASE: Final = 0x0A00_0000
OP: Final = struct.Struct("<BBHI")
"""One operation: kind, size selector, offset, value."""
READ, WRITE, STEP, GPIO, RESET, ROUNDTRIP, DAMAGED = range(7)
SIZES: Final = (1, 2, 4, 8)
_POOL: Final = 200
T = TypeVar("T")


class DeviceTarget(FuzzTarget):
    """A device on a fresh runtime, its IRQ recorded; subclasses name the device."""

    protocol = "device"
    op_timeout = 10.0
    registers: ClassVar[tuple[int, ...]] = ()
    """Offsets the generator favours."""

    def setup(self, workdir: Path) -> None:
        if not bql.bql_locked():
            bql.bql_lock()
        self.pool: list[bytes] = []
        self._build()

    def teardown(self) -> None:
        reset_runtime()

    def _build(self) -> None:
        reset_runtime()
        configure_rtc(qemu_opts_parse("base=2020-01-01T00:00:00,clock=vm"))
        self.level = 0
        self.dev = self.make()
        sysbus_realize(self.dev)
        self.dev.mmio_map(0, BASE)
        self.dev.connect_irq(0, qemu_allocate_irq(self._irq, 0))
        device_cold_reset(self.dev)
        self.mem: AddressSpace = get_address_space_memory()

    def _irq(self, n: int, level: int) -> None:
        self.level = level

    # -- what subclasses give ------------------------------------------------------

    def make(self) -> SysBusDevice:
        raise NotImplementedError

    def save(self) -> bytes:
        """The device's VMState section."""
        raise NotImplementedError

    def load(self, data: bytes) -> None:
        """Load a section into the device."""
        raise NotImplementedError

    def expected_level(self) -> int:
        raise NotImplementedError

    def set_input(self, line: int, level: int) -> None:
        """Drive GPIO input ``line`` (devices without inputs ignore it)."""

    def resync(self) -> None:
        """Make the device drive its line again: write its mask register back."""
        raise NotImplementedError

    def reloaded(self, saved: bytes) -> bytes:
        """What a save after loading ``saved`` gives: ``saved`` itself."""
        return saved

    # -- generation and execution --------------------------------------------------

    def generate(self, rng: random.Random) -> bytes:
        if self.pool and rng.random() < 0.5:
            base = bytearray(rng.choice(self.pool))
            for _ in range(rng.randint(1, 4)):
                if base:
                    base[rng.randrange(len(base))] = rng.getrandbits(8)
            return bytes(base) + self._ops(rng, rng.randint(0, 4))
        return self._ops(rng, rng.randint(1, 24))

    def _ops(self, rng: random.Random, n: int) -> bytes:
        out = bytearray()
        for _ in range(n):
            kind = rng.choices(range(7), weights=(30, 40, 8, 10, 3, 5, 4))[0]
            if rng.random() < 0.8 and self.registers:
                offset = rng.choice(self.registers)
            else:
                offset = rng.randrange(0x1000)
            value = rng.choice((0, 1, 0xFF, 0xFFFF_FFFF, rng.getrandbits(32)))
            out += OP.pack(kind, rng.randrange(4), offset, value)
        return bytes(out)

    def keep(self, data: bytes) -> None:
        if len(data) > 4096:
            return
        if len(self.pool) < _POOL:
            self.pool.append(data)
        else:
            self.pool[hash(data) % _POOL] = data

    def execute(self, data: bytes) -> str:
        self._build()
        kinds: set[str] = set()
        for pos in range(0, len(data) - OP.size + 1, OP.size):
            kind, sel, offset, value = OP.unpack_from(data, pos)
            kind %= 7
            size = SIZES[sel % 4]
            offset &= 0xFFF
            self._one(kind, size, offset, value)
            if self.level != self.expected_level():
                raise FuzzFailure(
                    f"{type(self).name}: the IRQ is {self.level} after op {kind} at "
                    f"0x{offset:x}; the registers say {self.expected_level()}"
                )
            kinds.add(f"{kind}:{offset >> 2 if offset < 0x600 else 'id'}")
        return f"{len(kinds)} op kinds, irq {self.level}"

    def _one(self, kind: int, size: int, offset: int, value: int) -> None:
        if kind == READ:
            got = self.mem.read(BASE + offset, size)
            if not 0 <= got < 1 << (8 * size):
                raise FuzzFailure(f"read{size} at 0x{offset:x} returned {got:#x}")
        elif kind == WRITE:
            self.mem.write(BASE + offset, value & ((1 << (8 * size)) - 1), size)
        elif kind == STEP:
            clock_step((value & 0xFFFF) * 1_000_000)
        elif kind == GPIO:
            self.set_input(offset % N_GPIOS, value & 1)
        elif kind == RESET:
            device_cold_reset(self.dev)
            self.resync()
        elif kind == ROUNDTRIP:
            first = self.save()
            self.load(first)
            if self.save() != self.reloaded(first):
                raise FuzzFailure("the state does not survive a save and load")
            self.resync()
        else:
            damaged = bytearray(self.save())
            damaged[offset % len(damaged)] ^= value & 0xFF or 1
            try:
                self.load(bytes(damaged[: len(damaged) - (size - 1)]))
            except Error as err:
                if "\n" in str(err):
                    raise FuzzFailure(
                        f"a refusal of more than one line: {err!r}"
                    ) from None
            self.resync()


@register
class Pl031Target(DeviceTarget):
    """The PL031 RTC: registers, alarm, virtual time, VMState."""

    name = "pl031"
    summary = "PL031 registers, alarm timer, save/load and damaged sections"
    registers = (0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0xFE0, 0xFFC)

    def make(self) -> SysBusDevice:
        self.rtc = PL031State()
        return self.rtc

    def save(self) -> bytes:
        return _save(PL031State.vmsd, self.rtc)

    def load(self, data: bytes) -> None:
        _load(PL031State.vmsd, self.rtc, data)

    def expected_level(self) -> int:
        regs = self.rtc.regs
        return regs.is_ & regs.im

    def resync(self) -> None:
        self.mem.write(BASE + 0x10, self.rtc.regs.im, 4)

    def reloaded(self, saved: bytes) -> bytes:
        """``pl031_post_load`` re-arms the alarm: MR at the counter sets RIS."""
        if self.mem.read(BASE + 0x04, 4) != self.mem.read(BASE, 4):
            return saved
        return saved[:20] + struct.pack(">I", 1) + saved[24:]


@register
class Pl061Target(DeviceTarget):
    """The PL061 GPIO: data windows, interrupts, inputs, reset, VMState."""

    name = "pl061"
    summary = "PL061 registers, data windows, input lines, reset, save/load"
    registers = (
        0x3FC,
        0x004,
        0x020,
        0x400,
        0x404,
        0x408,
        0x40C,
        0x410,
        0x414,
        0x418,
        0x41C,
        0x420,
        0x500,
        0xFD0,
    )

    def make(self) -> SysBusDevice:
        self.gpio = PL061State()
        return self.gpio

    def save(self) -> bytes:
        return _save(PL061State.vmsd, self.gpio)

    def load(self, data: bytes) -> None:
        _load(PL061State.vmsd, self.gpio, data)

    def expected_level(self) -> int:
        regs = self.gpio.regs
        return 1 if regs.istate & regs.im else 0

    def resync(self) -> None:
        self.mem.write(BASE + 0x410, self.gpio.regs.im, 4)

    def set_input(self, line: int, level: int) -> None:
        self.gpio.get_gpio_in(line).set(level)


def _save(vmsd: VMStateDescription[T], dev: T) -> bytes:
    f = QEMUFileWriter()
    vmstate_save_state(f, vmsd, dev)
    return f.getvalue()


def _load(vmsd: VMStateDescription[T], dev: T, data: bytes) -> None:
    vmstate_load_state(QEMUFileReader(data), vmsd, dev, vmsd.version_id)
