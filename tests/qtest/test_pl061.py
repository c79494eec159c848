"""The virt board's PL061 through the real launcher: lines, SPI 7, the power key.

Each test starts ``pyqemu-system-aarch64 -M virt`` under qtest and drives the
GPIO at 0x09030000, wired to shared peripheral interrupt 7 of ``/machine/gic``,
with virt's pulls (``pullups=0``, ``pulldowns=0xff``) and the ``gpio-key`` on
GPIO 3 that ``system_powerdown`` presses for 100 ms of virtual time, as QEMU
7.2's virt without ACPI.  Expected values are QEMU's (hw/gpio/pl061.c,
hw/gpio/gpio_key.c).
"""

from __future__ import annotations

from tests.qtest.libqtest import QTestState

BASE = 0x0903_0000
GPIO_SPI = 7
DATA_ALL = 0x3FC
DIR, IS, IBE, IEV, IE, RIS, MIS, IC = (
    0x400,
    0x404,
    0x408,
    0x40C,
    0x410,
    0x414,
    0x418,
    0x41C,
)
MS = 1_000_000


def launch(*args: str, qmp: bool = False) -> QTestState:
    return QTestState(["-M", "virt", "-nodefaults", "-S", *args], qmp=qmp)


def test_virt_pulls_and_ids() -> None:
    with launch(qmp=True) as qts:
        assert qts.qmp("qom-get", path="/machine/pl061", property="pullups") == 0
        assert qts.qmp("qom-get", path="/machine/pl061", property="pulldowns") == 0xFF
        ids = [qts.readl(BASE + 0xFE0 + 4 * i) for i in range(8)]
        assert ids == [0x61, 0x10, 0x04, 0x00, 0x0D, 0xF0, 0x05, 0xB1]


def test_system_powerdown_presses_gpio_3_for_100_ms() -> None:
    with launch(qmp=True) as qts:
        qts.irq_intercept_in("/machine/gic")
        # What Linux's gpio-pl061 does for gpio-keys: both edges on line 3.
        qts.writel(BASE + IBE, 0x08)
        qts.writel(BASE + IE, 0x08)
        qts.qmp("system_powerdown")
        assert [e["event"] for e in qts.qmp_events] == ["POWERDOWN"]
        assert qts.readl(BASE + DATA_ALL) == 0x08
        assert qts.readl(BASE + MIS) == 0x08
        assert qts.get_irq(GPIO_SPI)
        qts.writel(BASE + IC, 0x08)
        assert not qts.get_irq(GPIO_SPI)
        qts.clock_step(100 * MS - 1)
        assert qts.readl(BASE + DATA_ALL) == 0x08
        qts.clock_step(1)
        assert qts.readl(BASE + DATA_ALL) == 0
        assert qts.get_irq(GPIO_SPI)  # the release edge
        assert qts.readl(BASE + RIS) == 0x08


def test_output_lines_and_masked_data() -> None:
    with launch() as qts:
        qts.writel(BASE + DIR, 0xF0)
        qts.writel(BASE + DATA_ALL, 0xFF)
        assert qts.readl(BASE + DATA_ALL) == 0xF0
        assert qts.readl(BASE + (0x30 << 2)) == 0x30
        qts.writeb(BASE + (0x10 << 2), 0)
        assert qts.readl(BASE + DATA_ALL) == 0xE0


def test_level_interrupt_on_a_low_line() -> None:
    with launch() as qts:
        qts.irq_intercept_in("/machine/gic")
        qts.writel(BASE + IE, 0x01)
        qts.writel(BASE + IS, 0x01)  # low level, and the line is pulled down
        assert qts.get_irq(GPIO_SPI)
        qts.writel(BASE + IC, 0x01)  # re-latched while the level holds
        assert qts.get_irq(GPIO_SPI)
        qts.writel(BASE + IEV, 0x01)
        qts.writel(BASE + IC, 0x01)
        assert not qts.get_irq(GPIO_SPI)


def test_system_reset_clears_data_even_with_the_key_held() -> None:
    with launch(qmp=True) as qts:
        qts.writel(BASE + DIR, 0x0F)
        qts.writel(BASE + DATA_ALL, 0x0F)
        qts.qmp("system_powerdown")
        assert qts.readl(BASE + DATA_ALL) == 0x0F | 0x08
        qts.qmp("system_reset")
        # pl061_enter_reset clears GPIODATA; the input is not sampled again.
        assert (qts.readl(BASE + DIR), qts.readl(BASE + DATA_ALL)) == (0, 0)
