"""The GIC as a device: properties, realize checks, lines, regions, reset, the board."""

from __future__ import annotations

import re

import pytest

from hw.intc.arm_gic.device import GICState
from hw.intc.arm_gic.tests.conftest import Gic, make_gic
from qemu_api.error import Error
from qemu_api.log import LOG_GUEST_ERROR, qemu_set_log
from qemu_api.qdev import device_cold_reset
from qemu_api.sysbus import sysbus_realize


def test_qemu_property_defaults() -> None:
    dev = GICState()
    defaults = {p.name: p.default_value for p in GICState.class_properties()}
    assert defaults == {
        "num-cpu": 1,
        "num-irq": 32,
        "revision": 1,
        "has-security-extensions": False,
        "has-virtualization-extensions": False,
        "num-priority-bits": 8,
    }
    sysbus_realize(dev)
    assert dev.num_gpio_in() == 32  # no SPIs, 32 private inputs
    assert dev.num_irq == 32


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"num-cpu": 9}, "requested 9 CPUs"),
        ({"num-cpu": 0}, "requested 0 CPUs"),
        ({"num-irq": 1024}, "requested 1024 interrupt lines exceeds GIC maximum 1020"),
        ({"num-irq": 40}, "40 interrupt lines unsupported: not divisible by 32"),
        ({"num-irq": 0}, "0 interrupt lines unsupported"),
        ({"revision": 0}, "revision 0 (the 11MPCore GIC) is not implemented"),
        ({"revision": 3}, "revision 3 (no GIC revision) is not implemented"),
        ({"has-security-extensions": True}, "has-security-extensions is not"),
        (
            {"revision": 2, "has-virtualization-extensions": True},
            "has-virtualization-extensions is not",
        ),
        (
            {"has-virtualization-extensions": True},
            "only supported by revision 2",
        ),
        ({"num-priority-bits": 3}, "num-priority-bits cannot be greater than 8"),
        ({"num-priority-bits": 9}, "or less than 4"),
    ],
)
def test_realize_errors(props: dict[str, int | bool], message: str) -> None:
    dev = GICState()
    for name, value in props.items():
        dev.property_set(name, value)
    with pytest.raises(Error, match=re.escape(message)):
        sysbus_realize(dev)
    assert not dev.realized


def test_lines_and_regions_follow_the_properties() -> None:
    gic = make_gic(num_irq=288, num_cpu=2)
    dev = gic.dev
    assert dev.num_gpio_in() == 256 + 2 * 32
    assert dev.num_irq == 288
    assert dev.num_cpu == 2
    assert dev.num_gpio_out("sysbus-irq") == 4 * 2  # IRQ, FIQ, VIRQ, VFIQ
    assert dev.num_mmio == 2 + 2
    sizes = [dev.mmio_get_region(i).size for i in range(dev.num_mmio)]
    assert sizes == [0x1000, 0x2000, 0x100, 0x100]
    names = [dev.mmio_get_region(i).name for i in range(dev.num_mmio)]
    assert names == ["gic_dist", "gic_cpu", "gic_cpu", "gic_cpu"]
    assert make_gic(revision=1).dev.mmio_get_region(1).size == 0x100


def test_sysbus_irq_order_irq_then_fiq() -> None:
    gic = make_gic(num_cpu=2)
    gic.enable_all(cpu=0)
    gic.cwrite(0x00, 0xB, cpu=0)  # FIQEn
    gic.dwrite(0x820, 0x1, 1)  # interrupt 32 to CPU 0
    gic.dwrite(0x204, 0x1)
    assert gic.levels == {"irq0": 0, "irq1": 0, "fiq0": 1, "fiq1": 0}


def test_reset_restores_the_reset_state(gic: Gic) -> None:
    gic.enable_all()
    gic.dwrite(0x420, 0x8080_8080)
    gic.dwrite(0x204, 0x3)
    assert gic.cread(0x0C) == 32
    device_cold_reset(gic.dev)
    assert gic.dread(0x000) == 0
    assert gic.dread(0x100) == 0xFFFF
    assert gic.dread(0x104) == 0
    assert gic.dread(0x204) == 0
    assert gic.dread(0x304) == 0
    assert gic.dread(0x420) == 0
    assert gic.dread(0xC00) == 0xAAAA_AAAA
    assert gic.cread(0x00) == 0
    assert gic.cread(0x14) == 0xFF
    assert gic.cread(0xD0) == 0


def test_sgi_input_lines_are_refused(
    gic: Gic, capsys: pytest.CaptureFixture[str]
) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    gic.line(64 + 3, 1)  # the first 16 private inputs would be SGIs
    assert gic.dread(0x200) == 0
    assert "would be SGI 3, which has no input line" in capsys.readouterr().err


def test_unchanged_level_does_nothing(gic: Gic) -> None:
    gic.enable_all()
    gic.line(0, 1)
    calls = len(gic.calls)
    gic.line(0, 1)
    assert len(gic.calls) == calls


def test_not_user_creatable() -> None:
    assert GICState.user_creatable is False


def test_virt_board_wires_the_gic_as_qemu() -> None:
    from hw.arm.virt import VIRT_MEMMAP, VirtMachine

    machine = VirtMachine()
    machine.attach()
    machine.machine_init()
    gic = machine.gic
    assert gic.revision == 2
    assert gic.num_irq == 288
    assert gic.num_cpu == 1
    assert gic.mmio_addr(0) == VIRT_MEMMAP["gic-dist"][0] == 0x0800_0000
    assert gic.mmio_addr(1) == VIRT_MEMMAP["gic-cpu"][0] == 0x0801_0000
    assert gic.num_gpio_in() == 256 + 32
