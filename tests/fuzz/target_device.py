"""Device campaigns: one harness, driven by what a device declares.

A device gets a campaign by being declared with :func:`declare`: its name,
and a function that creates, realizes and maps it.  Everything else comes
from the device itself:

- its MMIO regions (``num_mmio``/``mmio_addr``), and for each the register
  map of the region's opaque (``registers``), whose offsets are the ones
  worth hitting;
- its input lines (``num_gpio_in``) and output lines (sysbus IRQs, each
  connected to a recorder);
- its VMState (the class's ``vmsd``).

One input is a sequence of operations of eight bytes (kind, region and size,
offset, value); one operation is one of:

- a read or write of 1, 2, 4 or 8 bytes at an offset of one of the regions
  (near a declared register most of the time, anywhere otherwise), through
  the system address space as a guest's access reaches it;
- an input line raised or lowered;
- a step of the virtual clock;
- a device reset;
- a save/load round trip of the device's VMState;
- the load of a damaged copy (one byte changed, possibly truncated) of the
  device's own VMState.

Checked after every operation: no exception escapes (bad accesses are guest
errors, logged and discarded here), a read returns a value that fits its
size, the state a save/load round trip leaves saves to the same bytes as
before it, a damaged copy either loads or is refused with a one-line
:class:`~qemu_api.error.Error` leaving the state as it was, and, where the
declaration says what the registers imply for the output line, the line
agrees.  The engine counts operations (an input holds 1 to 40 of them).
"""

from __future__ import annotations

import contextlib
import io
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from qemu_api import bql
from qemu_api.error import Error
from qemu_api.irq import IRQState, qemu_allocate_irq
from qemu_api.log import LOG_GUEST_ERROR, LOG_UNIMP, qemu_set_log
from qemu_api.memory import AddressSpace, get_address_space_memory
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import (
    VMStateDescription,
    vmstate_load_state,
    vmstate_save_state,
)
from qemu_api.option import qemu_opts_parse
from qemu_api.qdev import device_cold_reset
from qemu_api.register import RegisterMap
from qemu_api.rtc import configure_rtc
from qemu_api.sysbus import SYSBUS_DEVICE_GPIO_IRQ, SysBusDevice
from qemu_api.testing import clock_step, reset_runtime
from tests.fuzz.engine import FuzzFailure, FuzzTarget, register

__all__ = ["DeviceCampaign", "DeviceTarget", "campaign_target", "declare"]

OP: Final = struct.Struct("<BBHI")
"""One operation: kind, region and size selector, offset, value."""
READ, WRITE, INPUT, STEP, RESET, ROUNDTRIP, DAMAGED = range(7)
KINDS: Final = 7
WEIGHTS: Final = (40, 40, 6, 6, 2, 2, 1)
"""Relative frequencies of the kinds: MMIO most, state round trips rarely."""
SIZES: Final = (1, 2, 4, 8)
_REBUILD: Final = 2000
"""Inputs between rebuilds of the device (in a fresh runtime)."""
_POOL: Final = 200
"""Inputs kept for mutation (those that reached a new outcome)."""


@dataclass(frozen=True)
class DeviceCampaign:
    """The declaration of a device's campaign (see :func:`declare`).

    Attributes:
        name: the target's name (``--target``).
        summary: one line for ``--list``.
        create: makes, realizes and maps the device (in a fresh runtime).
        max_step_ns: the longest step of the virtual clock.
        expected_level: what the registers say the output line 0 is, if
            the device keeps such an invariant.
        resync: makes the device drive its lines again (after a reset or a
            load, which leave the lines alone as in QEMU).
        reloaded: what a save after loading ``saved`` gives, for a device
            whose ``post_load`` changes its state (default: ``saved``).
    """

    name: str
    summary: str
    create: Callable[[], SysBusDevice]
    max_step_ns: int = 10_000_000
    expected_level: Callable[[SysBusDevice], int] | None = None
    resync: Callable[[SysBusDevice, AddressSpace], None] | None = None
    reloaded: Callable[[SysBusDevice, AddressSpace, bytes], bytes] | None = None


@dataclass
class _Region:
    base: int
    size: int
    hot: list[int]


class DeviceTarget(FuzzTarget):
    """The harness; :func:`declare` makes one subclass per device."""

    protocol = "device"
    op_timeout = 10.0
    campaign: ClassVar[DeviceCampaign]
    max_ops: ClassVar[int] = 40
    """Operations per input, at most."""

    def setup(self, workdir: Path) -> None:
        if not bql.bql_locked():
            bql.bql_lock()
        self.pool: list[bytes] = []
        self._inputs_run = 0
        self._build()

    def teardown(self) -> None:
        reset_runtime()

    def _build(self) -> None:
        reset_runtime()
        qemu_set_log(LOG_GUEST_ERROR | LOG_UNIMP)
        configure_rtc(qemu_opts_parse("base=2020-01-01T00:00:00,clock=vm"))
        self.dev = self.campaign.create()
        dev = self.dev
        # Not dev.num_irq: a device may have a property of that name (the GIC).
        outputs = dev.num_gpio_out(SYSBUS_DEVICE_GPIO_IRQ)
        self.levels = [0] * outputs
        for n in range(outputs):
            dev.connect_irq(n, qemu_allocate_irq(self._irq, n))
        self.inputs: list[IRQState] = [
            dev.get_gpio_in(n) for n in range(dev.num_gpio_in())
        ]
        self.regions: list[_Region] = []
        for n in range(dev.num_mmio):
            base = dev.mmio_addr(n)
            if base is None:
                continue
            mr = dev.mmio_get_region(n)
            regmap = getattr(type(mr.opaque), "registers", None)
            offsets = (
                sorted({r.offset for r in regmap})
                if isinstance(regmap, RegisterMap)
                else []
            )
            self.regions.append(
                _Region(base, mr.size, [o for o in offsets if o < mr.size])
            )
        if not self.regions:
            raise FuzzFailure(f"{self.name}: the device maps no MMIO region")
        self.describe = ", ".join(
            f"{r.base:#x}+{r.size:#x} ({len(r.hot)} registers)" for r in self.regions
        )
        vmsd = getattr(type(dev), "vmsd", None)
        self.vmsd: VMStateDescription[Any] | None = (
            vmsd if isinstance(vmsd, VMStateDescription) else None
        )
        self.mem: AddressSpace = get_address_space_memory()
        device_cold_reset(dev)
        self._resync()

    def _irq(self, n: int, level: int) -> None:
        self.levels[n] = level

    def _resync(self) -> None:
        if self.campaign.resync is not None:
            self.campaign.resync(self.dev, self.mem)

    def cost(self, data: bytes) -> int:
        return max(len(data) // OP.size, 1)

    # -- generation ----------------------------------------------------------------

    def generate(self, rng: random.Random) -> bytes:
        if self.pool and rng.random() < 0.5:
            base = bytearray(rng.choice(self.pool))
            for _ in range(rng.randint(1, 4)):
                base[rng.randrange(len(base))] = rng.getrandbits(8)
            extra = self._ops(rng, rng.randint(0, 4))
            return bytes(base[: (self.max_ops - 4) * OP.size]) + extra
        return self._ops(rng, rng.randint(1, self.max_ops))

    def _ops(self, rng: random.Random, n: int) -> bytes:
        out = bytearray()
        for _ in range(n):
            kind = rng.choices(range(KINDS), weights=WEIGHTS)[0]
            region = rng.randrange(len(self.regions))
            hot = self.regions[region].hot
            if hot and rng.random() < 0.85:
                offset = rng.choice(hot) + rng.choice((0, 0, 0, 1, 2, 3))
            else:
                offset = rng.randrange(self.regions[region].size)
            value = rng.choice(
                (0, 1, 0xFF, 0xFFFF_FFFF, rng.getrandbits(32), 1 << rng.randrange(32))
            )
            out += OP.pack(kind, region | rng.randrange(4) << 4, offset, value)
        return bytes(out)

    def keep(self, data: bytes) -> None:
        if not data or len(data) > self.max_ops * OP.size:
            return
        if len(self.pool) < _POOL:
            self.pool.append(data)
        else:
            self.pool[hash(data) % _POOL] = data

    # -- execution -----------------------------------------------------------------

    def execute(self, data: bytes) -> str:
        self._inputs_run += 1
        if self._inputs_run % _REBUILD == 0:
            self._build()
        device_cold_reset(self.dev)
        self._resync()
        self._check_level("a reset")
        kinds: set[int] = set()
        with contextlib.redirect_stderr(io.StringIO()) as log:
            for pos in range(0, len(data) - OP.size + 1, OP.size):
                kind, where, offset, value = OP.unpack_from(data, pos)
                kind %= KINDS
                region = self.regions[(where & 0xF) % len(self.regions)]
                offset %= region.size
                size = SIZES[where >> 4 & 3]
                self._one(kind, region, size, offset, value)
                self._check_level(f"op {kind} at {region.base + offset:#x}")
                kinds.add(kind)
        logged = "logged" if log.getvalue() else "quiet"
        return f"{len(kinds)} kinds, lines {self.levels}, {logged}"

    def _one(
        self, kind: int, region: _Region, size: int, offset: int, value: int
    ) -> None:
        addr = region.base + offset
        if kind == READ:
            got = self.mem.read(addr, size)
            if not 0 <= got < 1 << (8 * size):
                raise FuzzFailure(
                    f"{self.name}: a {size}-byte read at {addr:#x} gave {got:#x}"
                )
        elif kind == WRITE:
            self.mem.write(addr, value & ((1 << (8 * size)) - 1), size)
        elif kind == INPUT:
            if self.inputs:
                self.inputs[value % len(self.inputs)].set(offset & 1)
        elif kind == STEP:
            clock_step(value % self.campaign.max_step_ns)
        elif kind == RESET:
            device_cold_reset(self.dev)
            self._resync()
        elif kind == ROUNDTRIP:
            self._round_trip()
        else:
            self._damaged(offset, value, size)

    def _check_level(self, after: str) -> None:
        expected = self.campaign.expected_level
        if expected is None:
            return
        want = expected(self.dev)
        if self.levels[0] != want:
            raise FuzzFailure(
                f"{self.name}: the IRQ is {self.levels[0]} after {after}; the "
                f"registers say {want}"
            )

    def _save(self) -> bytes:
        assert self.vmsd is not None
        f = QEMUFileWriter()
        vmstate_save_state(f, self.vmsd, self.dev)
        return f.getvalue()

    def _load(self, data: bytes) -> None:
        assert self.vmsd is not None
        vmstate_load_state(
            QEMUFileReader(data), self.vmsd, self.dev, self.vmsd.version_id
        )

    def _round_trip(self) -> None:
        if self.vmsd is None:
            return
        saved = self._save()
        reloaded = self.campaign.reloaded
        expected = saved if reloaded is None else reloaded(self.dev, self.mem, saved)
        self._load(saved)
        again = self._save()
        if again != expected:
            raise FuzzFailure(
                f"{self.name}: the state after a save/load round trip saves "
                f"differently ({len(saved)} bytes, first difference at "
                f"{_first_difference(expected, again)})"
            )
        self._resync()

    def _damaged(self, offset: int, value: int, size: int) -> None:
        if self.vmsd is None:
            return
        before = self._save()
        damaged = bytearray(before)
        damaged[offset % len(damaged)] ^= value & 0xFF or 1
        try:
            self._load(bytes(damaged[: len(damaged) - (size - 1)]))
        except Error as err:
            if "\n" in str(err):
                raise FuzzFailure(
                    f"{self.name}: a refusal of more than one line: {err!r}"
                ) from None
            after = self._save()
            if after != before:
                raise FuzzFailure(
                    f"{self.name}: a refused load changed the state (first "
                    f"difference at {_first_difference(before, after)}): {err}"
                ) from None
        self._resync()


def _first_difference(a: bytes, b: bytes) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def campaign_target(campaign: DeviceCampaign) -> type[DeviceTarget]:
    """The target class of ``campaign``, not registered (see :func:`declare`)."""
    attrs: dict[str, object] = {
        "name": campaign.name,
        "summary": campaign.summary,
        "campaign": campaign,
        "__doc__": f"The {campaign.name} campaign: {campaign.summary}.",
    }
    name = f"{campaign.name.title().replace('_', '')}Target"
    return type(name, (DeviceTarget,), attrs)


def declare(campaign: DeviceCampaign) -> type[DeviceTarget]:
    """Register a device campaign: the whole of what a new device needs.

    For example::

        declare(DeviceCampaign("pl031", "PL031 registers ...", make_pl031))

    Returns:
        The target class, registered as ``--target campaign.name``.
    """
    return register(campaign_target(campaign))


# -- the declarations ---------------------------------------------------------------


def _gic() -> SysBusDevice:
    from hw.intc.arm_gic.device import gic_create

    return gic_create(1, 288, 2, 0x0800_0000, 0x0801_0000)


def _pl011() -> SysBusDevice:
    from hw.char.pl011.device import pl011_create

    return pl011_create(0x0900_0000, None, None)


def _hpet() -> SysBusDevice:
    from hw.timer.hpet.device import hpet_create

    return hpet_create(0xFED0_0000, intcap=0x00FF_FFFF, num_timers=24)


def _pl031() -> SysBusDevice:
    from hw.rtc.pl031.device import pl031_create

    return pl031_create(0x0901_0000, None)


def _pl031_level(dev: SysBusDevice) -> int:
    from hw.rtc.pl031.device import PL031State

    assert isinstance(dev, PL031State)
    return dev.regs.is_ & dev.regs.im


def _pl031_resync(dev: SysBusDevice, mem: AddressSpace) -> None:
    from hw.rtc.pl031.device import PL031State

    assert isinstance(dev, PL031State)
    mem.write(0x0901_0010, dev.regs.im, 4)


def _pl031_reloaded(dev: SysBusDevice, mem: AddressSpace, saved: bytes) -> bytes:
    """``pl031_post_load`` re-arms the alarm: MR at the counter sets RIS."""
    if mem.read(0x0901_0004, 4) != mem.read(0x0901_0000, 4):
        return saved
    return saved[:20] + struct.pack(">I", 1) + saved[24:]


def _pl061() -> SysBusDevice:
    from hw.gpio.pl061.device import pl061_create

    return pl061_create(0x0903_0000, None)


def _pl061_level(dev: SysBusDevice) -> int:
    from hw.gpio.pl061.device import PL061State

    assert isinstance(dev, PL061State)
    return 1 if dev.regs.istate & dev.regs.im else 0


def _pl061_resync(dev: SysBusDevice, mem: AddressSpace) -> None:
    from hw.gpio.pl061.device import PL061State

    assert isinstance(dev, PL061State)
    mem.write(0x0903_0410, dev.regs.im, 4)


declare(
    DeviceCampaign(
        "arm_gic",
        "GICv2 distributor and CPU interface, SPI/PPI inputs, VMState",
        _gic,
    )
)
declare(DeviceCampaign("pl011", "PL011 registers, FIFO, reset, VMState", _pl011))
declare(
    DeviceCampaign(
        "pl031",
        "PL031 registers, alarm timer, virtual time, VMState",
        _pl031,
        max_step_ns=100_000_000_000,
        expected_level=_pl031_level,
        resync=_pl031_resync,
        reloaded=_pl031_reloaded,
    )
)
declare(
    DeviceCampaign(
        "pl061",
        "PL061 data windows, interrupts, input lines, reset, VMState",
        _pl061,
        expected_level=_pl061_level,
        resync=_pl061_resync,
    )
)
declare(
    DeviceCampaign(
        "hpet", "HPET with 24 timers, legacy inputs, virtual time, VMState", _hpet
    )
)
