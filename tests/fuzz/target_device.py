"""Device campaigns: MMIO of every size at every offset, lines, clock, reset, save/load.

A device target is declared, not written: :class:`DeviceTarget` takes what a
device already declares -- its register maps (the offsets worth hitting), its
VMState (the round trip to check) and its GPIO inputs -- and drives the
device in process, through the system address space as a guest's accesses
reach it.  One input is a sequence of operations, each eight bytes:

- a read or write of 1, 2, 4 or 8 bytes at an offset of one of the device's
  regions (near a declared register most of the time, anywhere otherwise),
  with a random value;
- an input line raised or lowered;
- a step of the virtual clock;
- a device reset;
- a save/load round trip of the device's VMState (and one after the
  sequence; for a device whose state is large, after every
  ``round_trip_every``-th sequence only).

Checked for every operation: no exception escapes, a read returns a value
that fits its size, and the state a save/load round trip leaves saves to the
same bytes as before it (the stream is what the device is).  Guest-error log
lines are produced (their formatting is fuzzed too) and discarded.

The GIC, the PL011 and the HPET are registered here; a new device gets a campaign by
subclassing :class:`DeviceTarget` with its ``build``.
"""

from __future__ import annotations

import contextlib
import io
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from qemu_api import bql
from qemu_api.irq import IRQState
from qemu_api.log import LOG_GUEST_ERROR, LOG_UNIMP, qemu_set_log
from qemu_api.memory import get_address_space_memory
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import (
    VMStateDescription,
    vmstate_load_state,
    vmstate_save_state,
)
from qemu_api.qdev import DeviceState, device_cold_reset
from qemu_api.register import RegisterMap
from qemu_api.testing import clock_step, reset_runtime
from tests.fuzz.engine import FuzzFailure, FuzzTarget, register

__all__ = ["DeviceTarget", "Fixture", "GicTarget", "HpetTarget", "PL011Target"]

_OP: Final = struct.Struct("<BBHI")
_SIZES = (1, 2, 4, 8)
_REBUILD = 2000
"""Inputs between rebuilds of the device (a fresh runtime)."""


@dataclass
class Fixture:
    """What a device target drives: the device, its regions and its inputs.

    Attributes:
        dev: the realized, reset device.
        regions: per sysbus MMIO region, its base address, its size and the
            register map that decodes it (None: offsets are drawn uniformly).
        inputs: the input lines the campaign may raise and lower.
        vmsd: the device's VMState.
    """

    dev: DeviceState
    regions: list[tuple[int, int, RegisterMap[Any] | None]]
    inputs: list[IRQState]
    vmsd: VMStateDescription[Any]


class DeviceTarget(FuzzTarget):
    """A campaign for one device, built by :meth:`build`."""

    protocol = "device"
    op_timeout = 10.0
    max_ops: ClassVar[int] = 40
    """Operations per input, at most."""
    round_trip_every: ClassVar[int] = 1
    """Inputs between save/load round trips (a GIC's state is 20 KiB of
    stream, tens of milliseconds each way)."""

    def build(self) -> Fixture:
        """Create, realize, map and reset the device (in a fresh runtime)."""
        raise NotImplementedError

    def setup(self, workdir: Path) -> None:
        if not bql.bql_locked():
            bql.bql_lock()
        self._inputs_run = 0
        self._rebuild()

    def _rebuild(self) -> None:
        reset_runtime()
        qemu_set_log(LOG_GUEST_ERROR | LOG_UNIMP)
        self.fx = self.build()
        self._hot: list[list[int]] = []
        for _, size, regmap in self.fx.regions:
            offsets = sorted({r.offset for r in regmap}) if regmap is not None else []
            self._hot.append([o for o in offsets if o < size])

    def teardown(self) -> None:
        reset_runtime()

    def generate(self, rng: random.Random) -> bytes:
        ops = bytearray()
        for _ in range(rng.randint(1, self.max_ops)):
            kind = rng.choices(
                range(6),
                weights=(40, 40, 6, 4, 2, 3 if self.round_trip_every == 1 else 0),
            )[0]
            region = rng.randrange(len(self.fx.regions))
            _, size, _ = self.fx.regions[region]
            hot = self._hot[region]
            if hot and rng.random() < 0.85:
                offset = rng.choice(hot) + rng.choice((0, 0, 0, 1, 2, 3))
            else:
                offset = rng.randrange(size)
            value = rng.choice(
                (0, 1, 0xFF, 0xFFFF_FFFF, rng.getrandbits(32), 1 << rng.randrange(32))
            )
            ops += _OP.pack(
                kind, region | (rng.randrange(4) << 4), offset & 0xFFFF, value
            )
        return bytes(ops)

    def execute(self, data: bytes) -> str:
        self._inputs_run += 1
        if self._inputs_run % _REBUILD == 0:
            self._rebuild()
        fx = self.fx
        device_cold_reset(fx.dev)
        mem = get_address_space_memory()
        kinds: list[str] = []
        with contextlib.redirect_stderr(io.StringIO()):
            for pos in range(0, len(data) - _OP.size + 1, _OP.size):
                kind, where, offset, value = _OP.unpack_from(data, pos)
                region = (where & 0xF) % len(fx.regions)
                size = _SIZES[where >> 4 & 3]
                base, length, _ = fx.regions[region]
                offset %= length
                match kind % 6:
                    case 0:
                        got = mem.read(base + offset, size)
                        if not 0 <= got < 1 << (8 * size):
                            raise FuzzFailure(
                                f"{self.name}: a {size}-byte read at region "
                                f"{region} offset {offset:#x} gave {got:#x}"
                            )
                        kinds.append("r")
                    case 1:
                        mem.write(base + offset, value & ((1 << (8 * size)) - 1), size)
                        kinds.append("w")
                    case 2 if fx.inputs:
                        fx.inputs[value % len(fx.inputs)].set(offset & 1)
                        kinds.append("i")
                    case 3:
                        clock_step(value % 10_000_000)
                        kinds.append("c")
                    case 4:
                        device_cold_reset(fx.dev)
                        kinds.append("z")
                    case 5:
                        self._round_trip()
                        kinds.append("m")
                    case _:
                        kinds.append("-")
            if self._inputs_run % self.round_trip_every == 0:
                self._round_trip()
        return "".join(sorted(set(kinds)))

    def _round_trip(self) -> None:
        vmsd = self.fx.vmsd
        dev = self.fx.dev
        before = QEMUFileWriter()
        vmstate_save_state(before, vmsd, dev)
        saved = before.getvalue()
        vmstate_load_state(QEMUFileReader(saved), vmsd, dev, vmsd.version_id)
        after = QEMUFileWriter()
        vmstate_save_state(after, vmsd, dev)
        if after.getvalue() != saved:
            raise FuzzFailure(
                f"{self.name}: the state after a save/load round trip saves "
                f"differently ({len(saved)} bytes, first difference at "
                f"{_first_difference(saved, after.getvalue())})"
            )


def _first_difference(a: bytes, b: bytes) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


@register
class GicTarget(DeviceTarget):
    """virt's GICv2 (288 interrupts, one CPU): distributor, CPU interface, inputs."""

    name = "arm_gic"
    summary = "GICv2 registers, SPI/PPI inputs, reset and VMState round trips"
    round_trip_every = 20

    def build(self) -> Fixture:
        from hw.intc.arm_gic.device import GicCpuView, GICState, gic_create

        dev = gic_create(1, 288, 2, 0x0800_0000, 0x0801_0000)
        device_cold_reset(dev)
        # A few SPIs, both timer PPIs of CPU 0 and the UART's SPI.
        picks = (0, 1, 7, 255, 256 + 27, 256 + 30)
        return Fixture(
            dev,
            [
                (0x0800_0000, 0x1000, GICState.registers),
                (0x0801_0000, 0x2000, GicCpuView.registers),
            ],
            [dev.get_gpio_in(n) for n in picks],
            GICState.vmsd,
        )


@register
class PL011Target(DeviceTarget):
    """A PL011 with no chardev: registers, FIFO, reset and VMState round trips."""

    name = "pl011"
    summary = "PL011 registers, reset and VMState round trips"

    def build(self) -> Fixture:
        from hw.char.pl011.device import PL011State, pl011_create

        dev = pl011_create(0x0900_0000, None, None)
        device_cold_reset(dev)
        return Fixture(
            dev,
            [(0x0900_0000, 0x1000, PL011State.registers)],
            [],
            PL011State.vmsd,
        )


@register
class HpetTarget(DeviceTarget):
    """The pc board's HPET with 24 timers: registers, legacy inputs, clock, VMState."""

    name = "hpet"
    summary = "HPET registers, timers, legacy inputs, VMState round trips"

    def build(self) -> Fixture:
        from hw.timer.hpet.device import HPETState, hpet_create

        dev = hpet_create(0xFED0_0000, intcap=0x00FF_FFFF, num_timers=24)
        device_cold_reset(dev)
        return Fixture(
            dev,
            [(0xFED0_0000, 0x400, HPETState.registers)],
            [dev.get_gpio_in(0), dev.get_gpio_in(1)],
            HPETState.vmsd,
        )
