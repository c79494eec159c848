"""virt's platform bus through the launcher: ``-device pl011`` as a dynamic device.

QEMU 7.2 allows only VFIO, ``ramfb`` and TPM devices on virt's platform bus,
none of which pyqemu has; pyqemu's virt allows a second PL011 instead. The
bus itself is compared with QEMU 7.2's (``info qtree``); the device gets its
window and interrupt by QEMU's rules (first free naturally aligned slot from
0x0c000000, first free line from SPI 112) and a node under
``/platform-bus@c000000``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import Final

import pytest

from system.device_tree import Fdt
from tests.qtest.libqtest import QTestState, qemu_binary

PBUS: Final = 0x0C00_0000
PBUS_SPI: Final = 112
DR, FR, IMSC, ICR = 0x00, 0x18, 0x38, 0x44
INT_TX: Final = 0x20


def qtree_block(text: str, dev: str) -> list[str]:
    """The lines of ``info qtree`` for device *dev* (up to the next device)."""
    lines = text.replace("\r\n", "\n").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(dev))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if line.strip().startswith(("dev:", "bus:")):
            break
        block.append(line)
    return block


def test_platform_bus_device_is_qemus() -> None:
    qemu_exe = shutil.which("qemu-system-aarch64")
    if qemu_exe is None:
        pytest.fail("qemu-system-aarch64 not found: apt-get install qemu-system-arm")
    head = 'dev: platform-bus-device, id "platform-bus-device"'
    with QTestState(
        ["-M", "virt", "-nodefaults", "-S", "-cpu", "cortex-a57"],
        binary=Path(qemu_exe),
        accel=None,
        qmp=True,
    ) as qemu:
        theirs = qemu.qmp("human-monitor-command", **{"command-line": "info qtree"})
    with QTestState(["-M", "virt", "-nodefaults", "-S"], qmp=True) as qts:
        ours = qts.qmp("human-monitor-command", **{"command-line": "info qtree"})
    assert isinstance(theirs, str)
    assert isinstance(ours, str)
    assert qtree_block(ours, head) == qtree_block(theirs, head)
    assert qtree_block(ours, head) == [
        '  dev: platform-bus-device, id "platform-bus-device"',
        '    gpio-out "sysbus-irq" 64',
        "    num_irqs = 64 (0x40)",
        "    mmio_size = 33554432 (0x2000000)",
        "    mmio ffffffffffffffff/0000000002000000",
    ]


def test_a_second_uart_works_on_the_bus(tmp_path: Path) -> None:
    path = tmp_path / "uart1.sock"
    args = [
        "-M", "virt", "-nodefaults", "-S",
        "-chardev", f"socket,id=c1,path={path},server=on,wait=off",
        "-device", "pl011,id=uart1,chardev=c1",
    ]  # fmt: skip
    with QTestState(args, qmp=True) as qts:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(path))
        client.settimeout(30)
        qts.irq_intercept_in("/machine/gic")
        qts.writel(PBUS + IMSC, INT_TX)
        qts.writel(PBUS + DR, ord("B"))
        assert client.recv(1) == b"B"
        assert qts.get_irq(PBUS_SPI)
        qts.writel(PBUS + ICR, INT_TX)
        assert not qts.get_irq(PBUS_SPI)
        assert qts.readl(PBUS + 0xFE0) == 0x11  # PeriphID0 of an ARM PL011
        tree = qts.qmp("human-monitor-command", **{"command-line": "info qtree"})
        client.close()
    assert isinstance(tree, str)
    block = qtree_block(tree, 'dev: pl011, id "uart1"')
    assert '    chardev = "c1"' in block
    # Mapped in the bus's window, not by the board: shown unmapped, as QEMU does.
    assert "    mmio ffffffffffffffff/0000000000001000" in block


def dump(tmp: Path, *args: str) -> Fdt:
    out = tmp / "pbus.dtb"
    res = subprocess.run(
        [str(qemu_binary()), "-M", f"virt,dumpdtb={out},dtb-randomness=off", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return Fdt.from_bytes(out.read_bytes())


def test_each_device_gets_a_node_under_the_bus(tmp_path: Path) -> None:
    fdt = dump(tmp_path, "-device", "pl011", "-device", "pl011,id=named")
    bus = "/platform-bus@c000000"
    assert fdt.getprop(bus, "ranges") == bytes.fromhex(
        "00000000 00000000 0c000000 02000000"
    )
    assert fdt.getprop_cell(bus, "interrupt-parent") == fdt.get_phandle("/intc")
    # The first -device gets offset 0 and lines 0-5 (a PL011 has six IRQs);
    # the second the next 4 KiB and lines 6-11. QEMU adds the devices with
    # an id first, so the anonymous one is printed first.
    children = [p for p in fdt.node_paths() if p.startswith(bus + "/")]
    assert children == [f"{bus}/pl011@0", f"{bus}/pl011@1000"]
    clk = fdt.get_phandle("/apb-pclk")
    for path, offset, spi in (
        (children[0], 0, PBUS_SPI),
        (children[1], 0x1000, PBUS_SPI + 6),
    ):
        assert fdt.properties(path) == [
            ("clock-names", b"uartclk\0apb_pclk\0"),
            ("clocks", clk.to_bytes(4, "big") * 2),
            ("interrupts", bytes.fromhex(f"00000000 {spi:08x} 00000004")),
            ("reg", bytes.fromhex(f"{offset:08x} 00001000")),
            ("compatible", b"arm,pl011\0arm,primecell\0"),
        ]


def test_a_user_dtb_is_left_to_its_author(tmp_path: Path) -> None:
    first = dump(tmp_path)
    user = tmp_path / "user.dtb"
    user.write_bytes(first.packed())
    fdt = dump(tmp_path, "-device", "pl011", "-dtb", str(user))
    assert [p for p in fdt.node_paths() if p.startswith("/platform-bus")] == [
        "/platform-bus@c000000"
    ]


def launch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(qemu_binary()), "-display", "none", "-S", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-M", "virt", "-device", "arm_gic"],
            "-device arm_gic: Parameter 'driver' expects a pluggable device type",
        ),
        (
            ["-M", "virt", "-device", "platform-bus-device"],
            (
                "-device platform-bus-device: Parameter 'driver' expects a "
                "pluggable device type"
            ),
        ),
        (
            ["-M", "virt", *(["-device", "pl011"] * 11)],
            "-device pl011: Platform Bus: Can not fit IRQ line",
        ),
    ],
)
def test_refused_devices(args: list[str], message: str) -> None:
    res = launch(*args)
    assert res.returncode == 1
    # QEMU's location: the option and its argument (the last -device).
    assert res.stderr.startswith(f"pyqemu-system-aarch64: {message}\n")
    assert "Traceback" not in res.stderr
