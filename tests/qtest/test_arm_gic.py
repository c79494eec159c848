"""virt's GIC through the launcher and the qtest protocol.

The board maps QEMU's GICv2 at QEMU's addresses; these tests drive it as a
guest would (register accesses) and as the board's devices do (input lines),
and watch the CPU interrupt lines with ``irq_intercept_out`` on the GIC's
``sysbus-irq`` outputs.
"""

from __future__ import annotations

import pytest

from tests.qtest.libqtest import QTestFailError, QTestState

DIST = 0x0800_0000
CPU = 0x0801_0000
UART = 0x0900_0000
VIRT = ["-M", "virt", "-nodefaults", "-S"]


def test_identification_registers() -> None:
    with QTestState(VIRT) as qts:
        assert qts.readl(DIST + 0x004) == 8  # 288 interrupts, one CPU
        assert qts.readl(DIST + 0x008) == 0x43B
        assert qts.readl(DIST + 0xFE8) == 0x2B  # GICv2
        assert qts.readl(CPU + 0xFC) == 0x2043B
        assert qts.readl(CPU + 0x14) == 0xFF


def test_uart_interrupt_reaches_the_cpu_line() -> None:
    with QTestState([*VIRT, "-serial", "null"]) as qts:
        qts.irq_intercept_out("/machine/gic", "sysbus-irq")
        qts.writel(DIST, 1)
        qts.writel(DIST + 0x104, 1 << 1)  # interrupt 33: UART0
        qts.writel(CPU, 1)
        qts.writel(CPU + 0x04, 0xFF)
        qts.writel(UART + 0x30, 0x301)
        qts.writel(UART + 0x38, 0x20)  # TX interrupt
        qts.writeb(UART, ord("A"))
        assert qts.get_irq(0)  # the CPU's IRQ
        assert qts.readl(CPU + 0x0C) == 33
        assert not qts.get_irq(0)
        qts.writel(UART + 0x44, 0x20)  # clear it at the UART
        qts.writel(CPU + 0x10, 33)
        assert not qts.get_irq(0)
        assert qts.readl(CPU + 0x0C) == 1023


def test_timer_ppi_input_and_fiq() -> None:
    with QTestState(VIRT) as qts:
        qts.irq_intercept_out("/machine/gic", "sysbus-irq")
        qts.writel(DIST, 3)
        qts.writel(DIST + 0x100, 1 << 27)  # the virtual timer PPI
        qts.writel(CPU, 0xB)  # both groups, Group 0 on FIQ
        qts.writel(CPU + 0x04, 0xFF)
        qts.set_irq_in("/machine/gic", None, 256 + 27, 1)
        assert qts.get_irq(1)
        assert not qts.get_irq(0)
        assert qts.readl(CPU + 0x0C) == 27


def test_sgi_inputs_do_not_exist_as_lines() -> None:
    with QTestState(VIRT) as qts:
        qts.set_irq_in("/machine/gic", None, 256 + 3, 1)  # ignored, logged
        assert qts.readl(DIST + 0x200) == 0
        with pytest.raises(QTestFailError, match=r"no GPIO input .*\[288\]"):
            qts.set_irq_in("/machine/gic", None, 288, 1)


def test_intercepting_a_missing_output_list_fails() -> None:
    with QTestState(VIRT) as qts:
        assert qts.raw("irq_intercept_out /machine/gic nothing") == (
            "FAIL No intercepts installed"
        )
