"""virt's device tree against QEMU 7.2's: ``-M virt,dumpdtb=FILE`` on both.

Debian's ``qemu-system-aarch64`` 7.2 is the oracle. Both emulators dump their
tree for the same ``-m`` and CPU (pyqemu describes a Cortex-A57, so QEMU runs
with ``-cpu cortex-a57``), with ``dtb-randomness=off`` so that nothing random
is in it. The trees are compared node by node and property by property, in
blob order (the order ``dtc -I dtb -O dts`` prints); every difference must be
one of :data:`KNOWN`, each with its reason, and every known difference must
still occur (so the list shrinks as pyqemu grows).

The CPU nodes for other CPU counts and models are compared with trees built
in this process, since the launcher has no ``-smp`` and ``-cpu`` yet.
"""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

import hw.char.pl011
import pyqemu_config
from hw.arm.virt import VirtMachine
from hw.core.machine import CpuTopology
from qemu_api.irq import InterruptSource
from qemu_api.memory import MemoryRegion
from qemu_api.qom import object_class_by_name, override
from qemu_api.sysbus import SysBusDevice
from system.device_tree import DtbDumped, Fdt
from tests.oracle import qemu72
from tests.qtest.libqtest import qemu_binary
from tests.runtime import fresh_runtime

assert hw.char.pl011.TYPE_PL011 == "pl011"


@dataclass(frozen=True)
class Known:
    """A difference: a node only QEMU has, or a property whose value differs.

    ``prop`` None means the whole node (and what is below it) is QEMU's alone.
    """

    path: str
    prop: str | None
    why: str


def known_differences(has_rtc: bool, has_gpio: bool) -> tuple[Known, ...]:
    """:data:`KNOWN` for a virt with or without the PL031 and the PL061."""
    nodes = [
        Known(
            "/flash@0", None, "QEMU's two CFI pflash banks; pyqemu maps -bios as ROM"
        ),
        Known("/fw-cfg@9020000", None, "no fw_cfg device"),
        Known("/pcie@10000000", None, "no PCIe host bridge"),
        Known("/intc@8000000/v2m@8020000", None, "no GICv2m MSI frame"),
        Known("/pmu", None, "pyqemu's CPU models no PMU"),
    ]
    nodes += [
        Known(f"/virtio_mmio@{0xA000000 + 0x200 * i:x}", None, "no virtio-mmio")
        for i in range(32)
    ]
    if not has_rtc:
        nodes.append(Known("/pl031@9010000", None, "the PL031 is not built"))
    if not has_gpio:
        nodes.append(Known("/pl061@9030000", None, "the PL061 is not built"))
        nodes.append(Known("/gpio-keys", None, "no PL061 for the poweroff key"))
    else:
        why = "QEMU gives phandle 0x8003 to the GICv2m frame; pyqemu's PL061 gets it"
        nodes.append(Known("/pl061@9030000", "phandle", why))
        nodes.append(Known("/gpio-keys/poweroff", "gpios", why))
    return tuple(nodes)


KNOWN: Final = known_differences(
    "pl031" in pyqemu_config.DEVICES, "pl061" in pyqemu_config.DEVICES
)
"""Every way pyqemu's virt tree may differ from QEMU 7.2's."""


def dump(cmd: list[str], path: Path) -> Fdt:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stderr.endswith(f"info: dtb dumped to {path}. Exiting.\n")
    return Fdt.from_bytes(path.read_bytes())


def qemu_dtb(tmp: Path, *args: str) -> Fdt:
    path = tmp / "qemu.dtb"
    cmd = [str(qemu72()), "-M", f"virt,dumpdtb={path},dtb-randomness=off", "-cpu"]
    return dump([*cmd, "cortex-a57", "-display", "none", *args], path)


def pyqemu_dtb(tmp: Path, *args: str) -> Fdt:
    path = tmp / "pyqemu.dtb"
    cmd = [str(qemu_binary()), "-M", f"virt,dumpdtb={path},dtb-randomness=off"]
    return dump([*cmd, "-display", "none", *args], path)


def nodes(fdt: Fdt) -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    for path in fdt.node_paths():
        yield path, fdt.properties(path)


def differences(qemu: Fdt, ours: Fdt) -> set[tuple[str, str | None]]:
    """The differences, as (path, property) or (path, None) for a whole node.

    A node that only one side has is reported at its top; a property
    difference is a value, presence or position difference.
    """
    q, o = dict(nodes(qemu)), dict(nodes(ours))
    out: set[tuple[str, str | None]] = set()
    for side, other in ((q, o), (o, q)):
        for path in side:
            if path not in other and not any(
                path.startswith(top + "/") for top, _ in out if top in side
            ):
                out.add((path, None))
    common = [p for p in q if p in o]
    assert common == [p for p in o if p in q], "the common nodes are in another order"
    for path in common:
        qp, op = dict(q[path]), dict(o[path])
        for name in qp.keys() | op.keys():
            if qp.get(name) != op.get(name):
                out.add((path, name))
        same = [n for n, _ in q[path] if n in op]
        assert same == [n for n, _ in o[path] if n in qp], f"{path}: property order"
    return out


def check(qemu: Fdt, ours: Fdt, known_list: tuple[Known, ...] = KNOWN) -> None:
    found = differences(qemu, ours)
    known = {(k.path, k.prop) for k in known_list}
    unexplained = sorted(found - known, key=str)
    assert not unexplained, f"differences from QEMU 7.2 not in KNOWN: {unexplained}"
    stale = sorted(known - found, key=str)
    assert not stale, f"KNOWN differences that no longer occur: {stale}"


def test_default_tree_is_qemus(tmp_path: Path) -> None:
    check(qemu_dtb(tmp_path, "-m", "128M"), pyqemu_dtb(tmp_path, "-m", "128M"))


def test_large_ram_and_a_kernel_command_line(tmp_path: Path) -> None:
    # A raw kernel and an initrd put bootargs and the initrd bounds in /chosen.
    kernel = tmp_path / "kernel.bin"
    kernel.write_bytes(b"\x1f\x20\x03\xd5" * 1024)
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"ramdisk" * 999)
    args = ["-m", "3G", "-kernel", str(kernel), "-initrd", str(initrd)]
    args += ["-append", "console=ttyAMA0 earlycon"]
    qemu, ours = qemu_dtb(tmp_path, *args), pyqemu_dtb(tmp_path, *args)
    check(qemu, ours)
    assert ours.getprop("/chosen", "bootargs") == b"console=ttyAMA0 earlycon\0"
    assert ours.getprop("/memory@40000000", "reg") == bytes.fromhex(
        "0000000040000000 00000000c0000000"
    )


def test_seeds_are_there_and_random(tmp_path: Path) -> None:
    path = tmp_path / "seeded.dtb"
    one = dump([str(qemu_binary()), "-M", f"virt,dumpdtb={path}"], path)
    two = dump([str(qemu_binary()), "-M", f"virt,dumpdtb={path}"], path)
    for name, size in (("rng-seed", 32), ("kaslr-seed", 8)):
        assert len(one.getprop("/chosen", name)) == size
        assert one.getprop("/chosen", name) != two.getprop("/chosen", name)


# -- CPUs: trees built in this process -------------------------------------------------


def in_process_known() -> tuple[Known, ...]:
    """:data:`KNOWN` for a tree built here (stand-ins may have been registered)."""
    return known_differences(
        object_class_by_name("pl031") is not None,
        object_class_by_name("pl061") is not None,
    )


def pyqemu_tree(
    tmp: Path, cpu_type: str = "cortex-a57", smp: CpuTopology | None = None
) -> Fdt:
    path = tmp / "inproc.dtb"
    with fresh_runtime():
        machine = VirtMachine()
        machine.cpu_type = cpu_type
        machine.smp = smp or CpuTopology()
        machine.dtb_randomness = False
        machine.dumpdtb = str(path)
        machine.attach()
        machine.machine_init()
        with pytest.raises(DtbDumped):
            machine.machine_done()
    return Fdt.from_bytes(path.read_bytes())


@pytest.mark.parametrize(
    ("cpu", "smp", "topology"),
    [
        ("cortex-a57", "2", CpuTopology(cpus=2, cores=2)),
        ("cortex-a57", "8", CpuTopology(cpus=8, cores=8)),
        ("cortex-a57", "4,sockets=2,cores=2", CpuTopology(cpus=4, sockets=2, cores=2)),
        ("cortex-a57", "4,cores=2,threads=2", CpuTopology(cpus=4, cores=2, threads=2)),
        ("cortex-a53", "1", CpuTopology()),
        ("cortex-a72", "2", CpuTopology(cpus=2, cores=2)),
        ("max", "1", CpuTopology()),
    ],
)
def test_cpu_nodes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cpu: str,
    smp: str,
    topology: CpuTopology,
) -> None:
    path = tmp_path / "qemu.dtb"
    cmd = [str(qemu72()), "-M", f"virt,dumpdtb={path},dtb-randomness=off", "-cpu", cpu]
    qemu = dump([*cmd, "-smp", smp, "-display", "none"], path)
    ours = pyqemu_tree(tmp_path, cpu, topology)
    capsys.readouterr()
    check(qemu, ours, in_process_known())
    assert len(ours.node_path("cpu")) == topology.cpus


def test_an_unlisted_difference_fails(tmp_path: Path) -> None:
    qemu = qemu_dtb(tmp_path, "-m", "128M")
    ours = pyqemu_dtb(tmp_path, "-m", "128M")
    ours.setprop_string("/chosen", "stdout-path", "/elsewhere")
    with pytest.raises(AssertionError, match=r"not in KNOWN: \[\('/chosen', 'stdout"):
        check(qemu, ours)
    ours = pyqemu_dtb(tmp_path, "-m", "128M")
    stale = (*KNOWN, Known("/uart@0", None, "a difference that does not occur"))
    with pytest.raises(AssertionError, match=r"no longer occur.*uart@0"):
        check(qemu, ours, stale)


# -- the RTC and GPIO nodes, with stand-ins until the devices exist ------------------


def stand_in(name: str) -> None:
    """Register a sysbus type *name* with one 4 KiB region and one IRQ, if missing."""
    if object_class_by_name(name) is not None:
        return

    class StandIn(SysBusDevice, type_name=name):
        @override
        def instance_init(self) -> None:
            self.init_mmio(MemoryRegion.container(self, name, 0x1000))
            self.init_irq(InterruptSource())

    assert name == StandIn.TYPE_NAME


def test_rtc_and_gpio_nodes(tmp_path: Path) -> None:
    # virt makes the PL031, the PL061 and gpio-keys nodes when the types exist:
    # the devices themselves when they are built, stand-ins otherwise.
    for name, module in (("pl031", "hw.rtc.pl031"), ("pl061", "hw.gpio.pl061")):
        if name in pyqemu_config.DEVICES:
            importlib.import_module(module)
        else:
            stand_in(name)
    qemu = qemu_dtb(tmp_path, "-m", "128M")
    ours = pyqemu_tree(tmp_path)
    check(qemu, ours, known_differences(has_rtc=True, has_gpio=True))
    assert ours.getprop("/gpio-keys/poweroff", "gpios") == bytes.fromhex(
        "00008003 00000003 00000000"
    )
