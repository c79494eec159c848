"""The boards through qtest: memory maps, RAM sizes and interrupt wiring.

Each test starts the real launcher (tests/qtest/libqtest.py). Devices that a
board creates only when they are built (pl011 on virt, hpet on pc) are
tested when ``pyqemu_config.DEVICES`` lists them.
"""

from __future__ import annotations

from typing import Final

import pytest

import pyqemu_config
from tests.qtest.libqtest import QTestFailError, QTestState

VIRT: Final = ["-M", "virt", "-nodefaults"]
PC: Final = ["-M", "pc", "-nodefaults"]
VIRT_RAM: Final = 0x40000000
MiB: Final = 1 << 20

needs_pl011 = pytest.mark.skipif(
    "pl011" not in pyqemu_config.DEVICES, reason="pl011 is not built"
)


# -- virt ------------------------------------------------------------------------


def test_virt_ram_every_access_size() -> None:
    with QTestState(VIRT) as qts:
        assert qts.big_endian is False
        qts.writeq(VIRT_RAM, 0x0123456789ABCDEF)
        assert qts.readq(VIRT_RAM) == 0x0123456789ABCDEF
        assert qts.readl(VIRT_RAM + 4) == 0x01234567
        assert qts.readw(VIRT_RAM + 2) == 0x89AB
        assert qts.readb(VIRT_RAM + 1) == 0xCD
        qts.writeb(VIRT_RAM + 3, 0x5A)
        qts.writew(VIRT_RAM + 6, 0xBEEF)
        qts.writel(VIRT_RAM + 8, 0xFEEDFACE)
        assert qts.memread(VIRT_RAM, 12) == bytes.fromhex("efcdab5a6745efbecefaedfe")
        qts.memwrite(VIRT_RAM + 0x100, b"pyqemu")
        assert qts.bufread(VIRT_RAM + 0x100, 6) == b"pyqemu"
        qts.bufwrite(VIRT_RAM + 0x200, bytes(range(200)))
        assert qts.memread(VIRT_RAM + 0x200, 200) == bytes(range(200))
        # The device tree lies at the start of RAM (as QEMU puts it without a
        # kernel): clear the bytes around the pattern first.
        qts.memset(VIRT_RAM + 0x2FF, 0, 66)
        qts.memset(VIRT_RAM + 0x300, 0xA5, 64)
        assert qts.bufread(VIRT_RAM + 0x2FF, 66) == b"\0" + b"\xa5" * 64 + b"\0"


def test_virt_default_ram_is_128m() -> None:
    end = VIRT_RAM + 128 * MiB
    with QTestState(VIRT) as qts:
        qts.writel(end - 4, 0x11223344)
        assert qts.readl(end - 4) == 0x11223344
        qts.writel(end, 0x55667788)  # unassigned: dropped
        assert qts.readl(end) == 0
        # an access that straddles the end keeps the RAM part
        assert qts.memread(end - 2, 4) == b"\x22\x11\0\0"


def test_virt_ram_size_option() -> None:
    end = VIRT_RAM + 256 * MiB
    with QTestState([*VIRT, "-m", "256M"]) as qts:
        qts.writeq(end - 8, 0xA5A5A5A5A5A5A5A5)
        assert qts.readq(end - 8) == 0xA5A5A5A5A5A5A5A5
        qts.writeb(end, 1)
        assert qts.readb(end) == 0


def test_virt_machine_alias() -> None:
    with QTestState(["-M", "virt-7.2", "-nodefaults", "-m", "64"]) as qts:
        qts.writel(VIRT_RAM + 64 * MiB - 4, 7)
        assert qts.readl(VIRT_RAM + 64 * MiB - 4) == 7
        assert qts.readl(VIRT_RAM + 64 * MiB) == 0


def test_virt_gic_inputs_through_qtest() -> None:
    with QTestState(VIRT) as qts:
        qts.irq_intercept_in("/machine/gic")
        for spi in (0, 1, 255):
            qts.set_irq_in("/machine/gic", None, spi, 1)
            assert qts.get_irq(spi)
        qts.set_irq_in("/machine/gic", None, 1, 0)
        assert not qts.get_irq(1)
        assert qts.irq_events == [
            ("raise", 0),
            ("raise", 1),
            ("raise", 255),
            ("lower", 1),
        ]
        # the GIC has 256 SPIs (num-irq 288 minus 32 private interrupts), then
        # the 32 private inputs of its one CPU
        with pytest.raises(QTestFailError, match=r"no GPIO input .*\[288\]"):
            qts.set_irq_in("/machine/gic", None, 288, 1)
        # partial paths resolve as in QEMU
        qts.irq_intercept_in("gic")


def test_virt_unassigned_reads_are_zero() -> None:
    with QTestState(VIRT) as qts:
        for addr in (0x0, 0x0C000000, 0x50000000, 0xFFFFFFFFFFFFFFF0):
            assert qts.readq(addr) == 0
            assert qts.memread(addr, 3) == b"\0\0\0"
        qts.writel(0x50000000, 0xFFFFFFFF)
        assert qts.readl(0x50000000) == 0


@needs_pl011
def test_virt_pl011_registers_and_interrupt() -> None:
    with QTestState([*VIRT, "-serial", "null"]) as qts:
        uart = 0x09000000
        ids = [qts.readl(uart + 0xFE0 + 4 * i) for i in range(8)]
        assert ids == [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]
        assert qts.readl(uart + 0x18) == 0x90  # FR: TXFE | RXFE
        assert qts.readl(uart + 0x30) == 0x300  # CR: TXE | RXE
        qts.irq_intercept_in("/machine/gic")
        qts.writel(uart + 0x30, 0x301)  # enable
        qts.writel(uart + 0x38, 0x20)  # IMSC: TX interrupt
        qts.writeb(uart, ord("A"))
        assert qts.get_irq(1)  # UART0 is SPI 1
        qts.writel(uart + 0x44, 0x20)  # ICR: clear TX
        assert not qts.get_irq(1)


# -- pc --------------------------------------------------------------------------


def test_pc_ram_from_zero() -> None:
    with QTestState(PC, target="x86_64") as qts:
        assert qts.big_endian is False
        qts.writel(0x0, 0xDEADBEEF)
        assert qts.readl(0x0) == 0xDEADBEEF
        assert qts.readw(0x2) == 0xDEAD
        top = 128 * MiB
        qts.writeq(top - 8, 0x1122334455667788)
        assert qts.readq(top - 8) == 0x1122334455667788
        assert qts.readq(top) == 0
        assert qts.raw("endianness") == "OK little"


def test_pc_ioapic_intercept() -> None:
    with QTestState([*PC, "-m", "64M"], target="x86_64") as qts:
        qts.irq_intercept_in("ioapic")  # as QEMU's PC tests spell it
        qts.set_irq_in("/machine/ioapic", None, 2, 1)
        qts.set_irq_in("/machine/ioapic", None, 23, 1)
        assert qts.get_irq(2)
        assert qts.get_irq(23)
        qts.set_irq_in("ioapic", None, 2, 0)
        assert not qts.get_irq(2)
        assert qts.raw("set_irq_in ioapic unnamed-gpio-in 24 1") == (
            "FAIL set_irq_in: device type 'ioapic' has no GPIO input "
            "'unnamed-gpio-in[24]' (it has 24)"
        )
        assert qts.raw("irq_intercept_in /machine/gic") == "FAIL Unknown device"


def test_pc_port_io_reads_as_unassigned() -> None:
    with QTestState(PC, target="x86_64") as qts:
        qts.outb(0x80, 0x12)
        assert (qts.inb(0x80), qts.inw(0x92), qts.inl(0xCFC)) == (
            0xFF,
            0xFFFF,
            0xFFFFFFFF,
        )


# -- none --------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["aarch64", "x86_64"])
def test_none_board_has_no_memory(target: str) -> None:
    with QTestState(["-M", "none"], target=target) as qts:
        qts.writel(0x0, 5)
        assert qts.readl(0x0) == 0
        assert qts.raw("irq_intercept_in /machine/gic") == "FAIL Unknown device"


def test_none_board_with_ram() -> None:
    with QTestState(["-M", "none", "-m", "16M"]) as qts:
        qts.writel(16 * MiB - 4, 0xABCD)
        assert qts.readl(16 * MiB - 4) == 0xABCD
        assert qts.readl(16 * MiB) == 0


def test_none_board_with_devices() -> None:
    args = [
        "-M",
        "none",
        "-device",
        "or-irq,num-lines=3,id=gate",
        "-device",
        "split-irq,num-lines=2",
    ]
    with QTestState(args) as qts:
        qts.irq_intercept_out("/machine/peripheral/gate")
        qts.set_irq_in("/machine/peripheral/gate", None, 2, 1)
        assert qts.get_irq(0)
        qts.set_irq_in("/machine/peripheral/gate", None, 0, 1)
        qts.set_irq_in("/machine/peripheral/gate", None, 2, 0)
        assert qts.get_irq(0)  # input 0 still high
        qts.set_irq_in("/machine/peripheral/gate", None, 0, 0)
        assert not qts.get_irq(0)
        assert qts.irq_events == [("raise", 0), ("lower", 0)]
        # one intercepted device per session, as in QEMU
        assert (
            qts.raw("irq_intercept_out /machine/peripheral-anon/device[0]")
            == "FAIL IRQ intercept already enabled"
        )


def test_none_board_split_irq_outputs() -> None:
    args = ["-M", "none", "-device", "split-irq,num-lines=3,id=split"]
    with QTestState(args) as qts:
        qts.irq_intercept_out("split")
        qts.set_irq_in("split", None, 0, 1)
        assert [qts.get_irq(i) for i in range(3)] == [True, True, True]
        assert qts.irq_events == [("raise", 0), ("raise", 1), ("raise", 2)]
