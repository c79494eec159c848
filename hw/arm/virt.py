"""The ``virt`` board for aarch64 (QEMU's ``hw/arm/virt.c``).

It follows QEMU 7.2's memory map and interrupt numbers for what it models:

============  ===========  ==========  ==============================================
region        base         size        what
============  ===========  ==========  ==============================================
flash0        0x00000000   64 MiB      ``-bios`` firmware, read-only (see below)
gic           0x08000000   128 KiB     GICv2 (``arm_gic``): distributor, CPU interface
uart          0x09000000   4 KiB       PL011 UART0, SPI 1, first serial port
rtc           0x09010000   4 KiB       PL031 RTC, SPI 2 (when the type is built)
gpio          0x09030000   4 KiB       PL061 GPIO, SPI 7 (when the type is built)
platform bus  0x0c000000   32 MiB      ``-device`` sysbus devices, SPIs 112-175
mem           0x40000000   ``-m``      RAM ``mach-virt.ram``, 128 MiB by default
============  ===========  ==========  ==============================================

The board builds QEMU's device tree as it creates its devices: each device
has its node maker (:meth:`VirtMachine.create_uart` and the others), with
QEMU's node names, properties, interrupt specifiers and phandles, in QEMU's
order, so ``dtc`` shows the same text for the nodes both have. The CPU
nodes (``/cpus``, ``/timer``, ``/psci``) describe the CPUs the board is
configured for (:attr:`VirtMachine.cpu_type`, the machine's ``smp``).

Guests are loaded by :mod:`hw.arm.boot` (``-kernel``, ``-initrd``,
``-append``, ``-dtb``) and ``-bios``, and ``-machine dumpdtb=FILE`` writes the
final tree and exits, as in QEMU. QEMU's flash0 is a CFI pflash device; here
``-bios`` is a read-only ROM (``virt.flash0``) at address 0 that holds the
firmware (guest writes are refused, flash commands are not modelled), and
there is no flash node in the tree.

``-device pl011`` adds a UART on the platform bus (:data:`VIRT_DYNAMIC_SYSBUS`):
it gets a 4 KiB window and an SPI there and a node under ``/platform-bus``.

With an accelerator that runs CPUs (``-accel tcg``, the default) the board
creates its CPU (``-cpu``, ``cortex-a57`` by default) and wires it as QEMU
7.2's ``create_gic()`` does: the CPU's generic-timer output *i* goes to the
interrupt controller's input ``ppibase + timer_irq[i]`` (the physical timer on
PPI 14, INTID 30; the virtual timer on PPI 11, INTID 27) and the controller's
sysbus IRQ outputs go to the CPU's IRQ, FIQ, VIRQ and VFIQ inputs. PSCI calls
arrive over HVC, as on QEMU's ``virt`` without EL2 and EL3.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, final

from accel import current_accel
from hw.arm.boot import (
    ArmBootCpu,
    ArmBootInfo,
    PsciConduit,
    arm_load_dtb,
    arm_load_kernel,
)
from hw.core.loader import read_image
from hw.core.machine import MachineState
from hw.core.platform_bus import TYPE_PLATFORM_BUS_DEVICE, PlatformBusDevice
from hw.core.sysbus_fdt import platform_bus_add_all_fdt_nodes
from hw.intc.arm_gic import GICState
from qemu_api.error import Error
from qemu_api.memory import MemoryRegion, get_system_memory
from qemu_api.qdev import DeviceState, qdev_get_gpio_in, qdev_new, qdev_realize
from qemu_api.qom import (
    Object,
    object_class_by_name,
    object_property_add_child,
    override,
)
from qemu_api.sysbus import SysBusDevice, sysbus_new, sysbus_realize
from system.device_tree import Fdt, create_device_tree
from system.runstate import qemu_register_powerdown_notifier
from target.arm.cpu import arm_cpu_type_name

__all__ = [
    "GIC_FDT_IRQ_FLAGS_LEVEL_HI",
    "GIC_FDT_IRQ_TYPE_PPI",
    "GIC_FDT_IRQ_TYPE_SPI",
    "PLATFORM_BUS_NUM_IRQS",
    "VIRT_CPU_MODELS",
    "VIRT_DYNAMIC_SYSBUS",
    "VIRT_FLASH_BANK_SIZE",
    "VIRT_IRQMAP",
    "VIRT_MEMMAP",
    "VirtCpuModel",
    "VirtMachine",
    "gic_interrupt_cells",
]

MiB: Final = 1 << 20

VIRT_MEMMAP: Final = {
    "flash": (0x00000000, 0x08000000),
    "gic-dist": (0x08000000, 0x00010000),
    "gic-cpu": (0x08010000, 0x00010000),
    "uart": (0x09000000, 0x00001000),
    "rtc": (0x09010000, 0x00001000),
    "gpio": (0x09030000, 0x00001000),
    "platform-bus": (0x0C000000, 0x02000000),
    "mem": (0x40000000, 0),
}
"""QEMU's virt addresses (``base_memmap``) for the parts the board models."""

VIRT_IRQMAP: Final = {"uart": 1, "rtc": 2, "gpio": 7, "platform-bus": 112}
"""QEMU's virt SPI numbers (``a15irqmap``)."""

UART_SPI: Final = VIRT_IRQMAP["uart"]
"""QEMU's ``VIRT_UART`` interrupt: SPI 1."""

NUM_IRQS: Final = 256
"""QEMU's ``NUM_IRQS``: the SPIs of the GIC (``num-irq`` adds the 32 private ones)."""
GIC_INTERNAL: Final = 32
GIC_NR_SGIS: Final = 16

ARCH_TIMER_VIRT_IRQ: Final = 11
ARCH_TIMER_S_EL1_IRQ: Final = 13
ARCH_TIMER_NS_EL1_IRQ: Final = 14
ARCH_TIMER_NS_EL2_IRQ: Final = 10
VIRTUAL_PMU_IRQ: Final = 7

TIMER_IRQ: Final = (
    ARCH_TIMER_NS_EL1_IRQ,  # GTIMER_PHYS
    ARCH_TIMER_VIRT_IRQ,  # GTIMER_VIRT
    ARCH_TIMER_NS_EL2_IRQ,  # GTIMER_HYP
    ARCH_TIMER_S_EL1_IRQ,  # GTIMER_SEC
)
"""PPI of each generic-timer output, in QEMU's ``GTIMER_*`` order (GICv2)."""

QEMU_PSCI_CONDUIT_HVC: Final = 2

ARM_CPU_IRQ: Final = 0
ARM_CPU_FIQ: Final = 1
ARM_CPU_VIRQ: Final = 2
ARM_CPU_VFIQ: Final = 3

VIRT_FLASH_BANK_SIZE: Final = 64 * MiB
"""Each of QEMU's two flash banks; ``-bios`` fills the first."""

PLATFORM_BUS_NUM_IRQS: Final = 64
"""Interrupt lines of the platform bus (QEMU's ``PLATFORM_BUS_NUM_IRQS``)."""

VIRT_DYNAMIC_SYSBUS: Final[tuple[str, ...]] = ("pl011",)
"""The sysbus types ``-device`` may add to virt's platform bus.

QEMU 7.2 allows VFIO platform devices, ``ramfb`` and ``tpm-tis-device``, none
of which exists here. A second PL011 is allowed instead: a complete device
with an MMIO window and an interrupt, which a Linux guest binds from the
device tree as ``ttyAMA1`` (its node comes from :meth:`add_fdt_node
<hw.char.pl011.device.PL011State.add_fdt_node>`).
"""

GIC_FDT_IRQ_TYPE_SPI: Final = 0
GIC_FDT_IRQ_TYPE_PPI: Final = 1
GIC_FDT_IRQ_FLAGS_EDGE_LO_HI: Final = 1
GIC_FDT_IRQ_FLAGS_LEVEL_HI: Final = 4
GIC_FDT_IRQ_PPI_CPU_START: Final = 8
GIC_TARGETLIST_BITS: Final = 8
ARM_AFF1_SHIFT: Final = 8
ARM_AFF3_SHIFT: Final = 32
KEY_POWER: Final = 116
"""Linux's ``KEY_POWER``, the code of virt's poweroff key."""


def gic_interrupt_cells(irq: int, irq_type: int) -> tuple[int, ...]:
    """The GIC's three-cell interrupt specifier for SPI *irq*.

    >>> gic_interrupt_cells(1, GIC_FDT_IRQ_FLAGS_LEVEL_HI)
    (0, 1, 4)
    """
    return (GIC_FDT_IRQ_TYPE_SPI, irq, irq_type)


@final
@dataclass(frozen=True)
class VirtCpuModel:
    """What the device tree says about a CPU model.

    Attributes:
        dtb_compatible: the ``compatible`` of its ``/cpus/cpu@N`` nodes.
        pmu: the CPU models the PMU (then virt adds a ``/pmu`` node).
        aarch64: an Armv8 CPU (the timer and PMU nodes say so).
    """

    dtb_compatible: str
    pmu: bool = False
    aarch64: bool = True


VIRT_CPU_MODELS: Final = {
    "cortex-a53": VirtCpuModel("arm,cortex-a53"),
    "cortex-a57": VirtCpuModel("arm,cortex-a57"),
    "cortex-a72": VirtCpuModel("arm,cortex-a72"),
    "max": VirtCpuModel("arm,cortex-a57"),
}
"""The CPU models the board describes, by ``-cpu`` name (QEMU 7.2's compatibles).

QEMU's models have a PMU; pyqemu's CPU does not model one, so ``pmu`` is off.
"""


class VirtMachine(MachineState, type_name="virt-machine"):
    """QEMU's ARM virtual machine.

    Attributes:
        fdt: the device tree, built as the devices are created.
        boot_info: what :mod:`hw.arm.boot` loads, and where it put it.
        cpu_type: the CPU model the tree describes.
        gic: the interrupt controller.
        platform_bus: the platform bus for ``-device`` sysbus devices.
    """

    machine_name = "virt"
    desc = "QEMU 7.2 ARM Virtual Machine"
    aliases = ("virt-7.2",)
    targets = ("aarch64",)
    ram_name = "mach-virt.ram"
    ram_base = VIRT_MEMMAP["mem"][0]
    loads_guests = True
    allowed_dynamic_sysbus_devices = VIRT_DYNAMIC_SYSBUS
    default_cpu_model = "cortex-a57"

    @override
    def instance_init(self) -> None:
        self.cpu_type = "cortex-a57"
        self.dtb_randomness = True
        self.psci_conduit = PsciConduit.HVC
        self.clock_phandle = 0
        self.gic_phandle = 0
        self.fdt: Fdt | None = None
        self.boot_info: ArmBootInfo | None = None
        self.platform_bus: PlatformBusDevice | None = None
        self.gpio_key: SysBusDevice | None = None
        self.property_add_bool(
            "dtb-randomness",
            lambda: self.dtb_randomness,
            self._set_dtb_randomness,
            "Set off to disable passing random or non-deterministic dtb nodes to guest",
        )

        self.property_add_str(
            "gic-version",
            lambda: "2",
            self._set_gic_version,
            "Set GIC version. Valid values are 2, 3, host and max",
        )

    def _set_dtb_randomness(self, value: bool) -> None:
        self.dtb_randomness = value

    def _set_gic_version(self, value: str) -> None:
        """``gic-version``: QEMU's values; pyqemu's virt has a GICv2 only."""
        if value == "2":
            return
        if value in ("3", "host", "max"):
            raise Error(
                f"gic-version={value} is not supported by pyqemu's virt yet",
                hint="pyqemu models the GICv2 only: use gic-version=2.\n",
            )
        raise Error(
            "Invalid gic-version value", hint="Valid values are 3, 2, host, max.\n"
        )

    def _fdt(self) -> Fdt:
        if self.fdt is None:
            raise Error("virt: the device tree is made by machine_init()")
        return self.fdt

    @override
    def machine_init(self) -> None:
        super().machine_init()
        self.cpus: list[DeviceState] = []
        if self.cpu_model is not None:
            self.cpu_type = self.cpu_model
        accel = current_accel()
        runs_cpus = accel is not None and accel.has_cpus
        if runs_cpus:
            self._check_cpu_class()
        self.cpu_model_info()
        firmware_loaded = self.firmware_init()
        self.create_fdt()
        self.fdt_add_timer_nodes()
        self.fdt_add_cpu_nodes()
        if runs_cpus:
            self._create_cpus()
        gic = self.create_gic()
        self.fdt_add_pmu_nodes()
        if object_class_by_name("pl011") is not None:
            self.create_uart(gic)
        if object_class_by_name("pl031") is not None:
            self.create_rtc(gic)
        if object_class_by_name("pl061") is not None:
            self.create_gpio_devices(gic)
        self.create_platform_bus(gic)

        self.boot_info = ArmBootInfo(
            ram_size=self.ram_size,
            loader_start=VIRT_MEMMAP["mem"][0],
            kernel_filename=self.kernel_filename,
            initrd_filename=self.initrd_filename,
            dtb_filename=self.dtb,
            kernel_cmdline=self.kernel_cmdline,
            dumpdtb=self.dumpdtb,
            get_dtb=self._fdt,
            skip_dtb_autoload=True,
            firmware_loaded=firmware_loaded,
            psci_conduit=self.psci_conduit,
        )
        arm_load_kernel(list(self.boot_cpus()), self.boot_info, self.roms)

    @override
    def machine_done(self) -> None:
        """Describe ``-device`` devices, load the device tree (``virt_machine_done``).

        A ``-dtb`` file is used as given: its author describes the dynamic
        devices, as in QEMU.
        """
        info = self.boot_info
        pbus = self.platform_bus
        if info is None or pbus is None:
            raise Error("virt: machine_done() before machine_init()")
        if info.dtb_filename is None:
            base, size = VIRT_MEMMAP["platform-bus"]
            platform_bus_add_all_fdt_nodes(
                self._fdt(),
                "/intc",
                base,
                size,
                VIRT_IRQMAP["platform-bus"],
                pbus,
                gic_interrupt_cells,
                self.clock_phandle,
            )
        arm_load_dtb(info.dtb_start, info, info.dtb_limit, self.roms)
        super().machine_done()

    @override
    def device_plug_cb(self, dev: DeviceState) -> None:
        if self.platform_bus is not None and self.device_is_dynamic_sysbus(type(dev)):
            sbd = dev.dynamic_cast(SysBusDevice)
            if sbd is not None:
                self.platform_bus.link_device(sbd)

    def boot_cpus(self) -> Iterator[ArmBootCpu]:
        """The CPUs that take the boot entry state, CPU 0 first.

        Every object below ``/machine`` that implements
        :class:`~hw.arm.boot.ArmBootCpu`, in creation order; none under the
        qtest accelerator.
        """
        yield from _find_cpus(self)

    # -- firmware -------------------------------------------------------------------

    def firmware_init(self) -> bool:
        """Map flash0 with the ``-bios`` image (``virt_firmware_init``).

        Returns:
            Whether firmware was loaded.

        Raises:
            Error: the file is missing or larger than the flash bank.
        """
        if self.firmware is None:
            return False
        name = self.firmware
        try:
            data = read_image(name, "bios")
        except Error:
            raise Error(
                f"Could not find ROM image '{name}'",
                hint="-bios takes a firmware image file (EDK2's QEMU_EFI.fd, "
                "U-Boot's u-boot.bin).\n",
            ) from None
        if len(data) > VIRT_FLASH_BANK_SIZE:
            raise Error(
                f"Could not load ROM image '{name}': it is {len(data)} bytes, "
                f"flash0 holds {VIRT_FLASH_BANK_SIZE}"
            )
        flash0 = MemoryRegion.rom(self, "virt.flash0", VIRT_FLASH_BANK_SIZE)
        get_system_memory().add_subregion(VIRT_MEMMAP["flash"][0], flash0)
        self.roms.add_file_mr(name, data, flash0)
        return True

    # -- the device tree (create_fdt and the fdt_add_* functions) ---------------------

    def create_fdt(self) -> None:
        """Start the tree: root, ``/chosen`` (with seeds) and ``/apb-pclk``."""
        fdt = create_device_tree(phandle_start=self.phandle_start or 0x8000)
        self.fdt = fdt
        fdt.setprop_string("/", "compatible", "linux,dummy-virt")
        fdt.setprop_cell("/", "#address-cells", 0x2)
        fdt.setprop_cell("/", "#size-cells", 0x2)
        fdt.setprop_string("/", "model", "linux,dummy-virt")
        # /chosen must exist for the loader to fill in later.
        fdt.add_subnode("/chosen")
        if self.dtb_randomness:
            fdt.setprop_u64("/chosen", "kaslr-seed", int.from_bytes(os.urandom(8)))
            fdt.setprop("/chosen", "rng-seed", os.urandom(32))
        # The PL011 binding says its clocks are optional; Linux does not
        # probe the UART without them.
        self.clock_phandle = fdt.alloc_phandle()
        fdt.add_subnode("/apb-pclk")
        fdt.setprop_string("/apb-pclk", "compatible", "fixed-clock")
        fdt.setprop_cell("/apb-pclk", "#clock-cells", 0x0)
        fdt.setprop_cell("/apb-pclk", "clock-frequency", 24000000)
        fdt.setprop_string("/apb-pclk", "clock-output-names", "clk24mhz")
        fdt.setprop_cell("/apb-pclk", "phandle", self.clock_phandle)

    def cpu_model_info(self) -> VirtCpuModel:
        """The device tree facts of :attr:`cpu_type`.

        Raises:
            Error: the board does not know the model.
        """
        model = VIRT_CPU_MODELS.get(self.cpu_type)
        if model is None:
            raise Error(
                f"mach-virt: CPU type {arm_cpu_type_name(self.cpu_type)} not supported",
                hint=f"Supported: {', '.join(sorted(VIRT_CPU_MODELS))}.\n",
            )
        return model

    def _ppi_flags(self, flags: int) -> int:
        # GICv2: the CPU mask of a PPI lives in bits [15:8] of its flags.
        mask = (1 << self.smp.cpus) - 1
        return flags | (mask & 0xFF) << GIC_FDT_IRQ_PPI_CPU_START

    def fdt_add_timer_nodes(self) -> None:
        """Add ``/timer``: the generic timer's four PPIs (``fdt_add_timer_nodes``)."""
        fdt = self._fdt()
        flags = self._ppi_flags(GIC_FDT_IRQ_FLAGS_LEVEL_HI)
        fdt.add_subnode("/timer")
        if self.cpu_model_info().aarch64:
            compat = ["arm,armv8-timer", "arm,armv7-timer"]
            fdt.setprop_string_array("/timer", "compatible", compat)
        else:
            fdt.setprop_string("/timer", "compatible", "arm,armv7-timer")
        fdt.setprop("/timer", "always-on", b"")
        ppi = GIC_FDT_IRQ_TYPE_PPI
        fdt.setprop_cells(
            "/timer",
            "interrupts",
            *(ppi, ARCH_TIMER_S_EL1_IRQ, flags),
            *(ppi, ARCH_TIMER_NS_EL1_IRQ, flags),
            *(ppi, ARCH_TIMER_VIRT_IRQ, flags),
            *(ppi, ARCH_TIMER_NS_EL2_IRQ, flags),
        )

    def cpu_mp_affinity(self, idx: int) -> int:
        """CPU *idx*'s MPIDR affinity: 8 CPUs per cluster for GICv2."""
        aff1, aff0 = divmod(idx, GIC_TARGETLIST_BITS)
        return aff1 << ARM_AFF1_SHIFT | aff0

    def fdt_add_cpu_nodes(self) -> None:
        """Add ``/cpus`` with a node per CPU and ``cpu-map`` (``fdt_add_cpu_nodes``)."""
        fdt = self._fdt()
        smp = self.smp
        model = self.cpu_model_info()
        affinities = [self.cpu_mp_affinity(i) for i in range(smp.cpus)]
        addr_cells = 2 if any(a >> ARM_AFF3_SHIFT & 0xFF for a in affinities) else 1
        fdt.add_subnode("/cpus")
        fdt.setprop_cell("/cpus", "#address-cells", addr_cells)
        fdt.setprop_cell("/cpus", "#size-cells", 0x0)
        for cpu in range(smp.cpus - 1, -1, -1):
            node = f"/cpus/cpu@{cpu}"
            fdt.add_subnode(node)
            fdt.setprop_string(node, "device_type", "cpu")
            fdt.setprop_string(node, "compatible", model.dtb_compatible)
            if self.psci_conduit is not PsciConduit.DISABLED and smp.cpus > 1:
                fdt.setprop_string(node, "enable-method", "psci")
            if addr_cells == 2:
                fdt.setprop_u64(node, "reg", affinities[cpu])
            else:
                fdt.setprop_cell(node, "reg", affinities[cpu])
            fdt.setprop_cell(node, "phandle", fdt.alloc_phandle())
        # The topology: socket, cluster, core (and thread) nodes.
        fdt.add_subnode("/cpus/cpu-map")
        per_socket = smp.clusters * smp.cores * smp.threads
        for cpu in range(smp.cpus - 1, -1, -1):
            socket = cpu // per_socket
            cluster = cpu // (smp.cores * smp.threads) % smp.clusters
            core = cpu // smp.threads % smp.cores
            path = f"/cpus/cpu-map/socket{socket}/cluster{cluster}/core{core}"
            if smp.threads > 1:
                path += f"/thread{cpu % smp.threads}"
            fdt.add_path(path)
            fdt.setprop_phandle(path, "cpu", f"/cpus/cpu@{cpu}")

    def fdt_add_gic_node(self) -> None:
        """Add the GICv2 node ``/intc@8000000`` (``fdt_add_gic_node``)."""
        fdt = self._fdt()
        self.gic_phandle = fdt.alloc_phandle()
        fdt.setprop_cell("/", "interrupt-parent", self.gic_phandle)
        dist_base, dist_size = VIRT_MEMMAP["gic-dist"]
        cpu_base, cpu_size = VIRT_MEMMAP["gic-cpu"]
        node = f"/intc@{dist_base:x}"
        fdt.add_subnode(node)
        fdt.setprop_cell(node, "#interrupt-cells", 3)
        fdt.setprop(node, "interrupt-controller", b"")
        fdt.setprop_cell(node, "#address-cells", 0x2)
        fdt.setprop_cell(node, "#size-cells", 0x2)
        fdt.setprop(node, "ranges", b"")
        # 'cortex-a15-gic' means GICv2.
        fdt.setprop_string(node, "compatible", "arm,cortex-a15-gic")
        fdt.setprop_sized_cells(
            node, "reg", (2, dist_base), (2, dist_size), (2, cpu_base), (2, cpu_size)
        )
        fdt.setprop_cell(node, "phandle", self.gic_phandle)

    def fdt_add_pmu_nodes(self) -> None:
        """Add ``/pmu`` when the CPU models the PMU (``fdt_add_pmu_nodes``)."""
        model = self.cpu_model_info()
        if not model.pmu:
            return
        fdt = self._fdt()
        fdt.add_subnode("/pmu")
        if model.aarch64:
            fdt.setprop_string("/pmu", "compatible", "arm,armv8-pmuv3")
            fdt.setprop_cells(
                "/pmu",
                "interrupts",
                GIC_FDT_IRQ_TYPE_PPI,
                VIRTUAL_PMU_IRQ,
                self._ppi_flags(GIC_FDT_IRQ_FLAGS_LEVEL_HI),
            )

    # -- devices --------------------------------------------------------------------

    def _check_cpu_class(self) -> None:
        # QEMU's parse_cpu_option: the model must name a CPU class.
        if object_class_by_name(arm_cpu_type_name(self.cpu_type)) is None:
            raise Error(
                f"unable to find CPU model '{self.cpu_type}'",
                hint="Use -cpu help to list the CPU models.\n",
            )

    def _create_cpus(self) -> None:
        typename = arm_cpu_type_name(self.cpu_type)
        for n in range(self.smp.cpus):
            cpu = qdev_new(typename)
            cpu.property_set("psci-conduit", QEMU_PSCI_CONDUIT_HVC)
            # virt_cpu_mp_affinity: 8 CPUs per cluster with GICv2.
            cpu.property_set("mp-affinity", (n // 8) << 8 | n % 8)
            if n > 0:
                cpu.property_set("start-powered-off", True)
            qdev_realize(cpu)
            self.cpus.append(cpu)

    def create_gic(self) -> GICState:
        """Create the GICv2 and its node (QEMU's ``create_gic()`` for one CPU).

        256 SPIs, revision 2, no security or virtualization extensions; the
        distributor at 0x08000000, the CPU interface at 0x08010000. Sysbus
        IRQ 0 is the CPU's IRQ, 1 its FIQ, 2 its VIRQ and 3 its VFIQ; GPIO
        input *n* is SPI *n* and input ``256 + id`` the CPU's PPI ``id``.
        """
        gic = GICState()
        gic.revision = 2
        gic.num_cpu = max(1, len(self.cpus))
        gic.num_irq = NUM_IRQS + GIC_INTERNAL
        object_property_add_child(self, "gic", gic)
        sysbus_realize(gic)
        gic.mmio_map(0, VIRT_MEMMAP["gic-dist"][0])
        gic.mmio_map(1, VIRT_MEMMAP["gic-cpu"][0])
        self.gic = gic
        self.fdt_add_gic_node()
        smp = len(self.cpus)
        for i, cpu in enumerate(self.cpus):
            ppibase = NUM_IRQS + i * GIC_INTERNAL + GIC_NR_SGIS
            for irq, ppi in enumerate(TIMER_IRQ):
                cpu.connect_gpio_out(irq, qdev_get_gpio_in(gic, ppibase + ppi))
            cpu.connect_gpio_out_named(
                "pmu-interrupt", 0, qdev_get_gpio_in(gic, ppibase + VIRTUAL_PMU_IRQ)
            )
            gic.connect_irq(i, qdev_get_gpio_in(cpu, ARM_CPU_IRQ))
            gic.connect_irq(i + smp, qdev_get_gpio_in(cpu, ARM_CPU_FIQ))
            gic.connect_irq(i + 2 * smp, qdev_get_gpio_in(cpu, ARM_CPU_VIRQ))
            gic.connect_irq(i + 3 * smp, qdev_get_gpio_in(cpu, ARM_CPU_VFIQ))
        return gic

    def _spi_node(self, node: str, compat: list[str], region: str) -> None:
        fdt = self._fdt()
        base, size = VIRT_MEMMAP[region]
        fdt.setprop_string_array(node, "compatible", compat)
        fdt.setprop_sized_cells(node, "reg", (2, base), (2, size))
        fdt.setprop_cells(
            node,
            "interrupts",
            *gic_interrupt_cells(VIRT_IRQMAP[region], GIC_FDT_IRQ_FLAGS_LEVEL_HI),
        )

    def create_uart(self, gic: GICState) -> None:
        """Create UART0 on the first serial port, and its node (``create_uart``).

        ``/chosen`` ``stdout-path`` points at it.
        """
        base = VIRT_MEMMAP["uart"][0]
        uart = sysbus_new("pl011")
        object_property_add_child(self, "pl011", uart)
        serial = self.serial_hd(0)
        if serial is not None:
            uart.property_set("chardev", serial.label)
        sysbus_realize(uart)
        uart.mmio_map(0, base)
        uart.connect_irq(0, qdev_get_gpio_in(gic, VIRT_IRQMAP["uart"]))

        fdt = self._fdt()
        node = f"/pl011@{base:x}"
        fdt.add_subnode(node)
        self._spi_node(node, ["arm,pl011", "arm,primecell"], "uart")
        fdt.setprop_cells(node, "clocks", self.clock_phandle, self.clock_phandle)
        fdt.setprop_string_array(node, "clock-names", ["uartclk", "apb_pclk"])
        fdt.setprop_string("/chosen", "stdout-path", node)

    def create_rtc(self, gic: GICState) -> None:
        """Create the PL031 RTC and its node (``create_rtc``)."""
        base = VIRT_MEMMAP["rtc"][0]
        rtc = sysbus_new("pl031")
        object_property_add_child(self, "pl031", rtc)
        sysbus_realize(rtc)
        rtc.mmio_map(0, base)
        rtc.connect_irq(0, qdev_get_gpio_in(gic, VIRT_IRQMAP["rtc"]))

        fdt = self._fdt()
        node = f"/pl031@{base:x}"
        fdt.add_subnode(node)
        self._spi_node(node, ["arm,pl031", "arm,primecell"], "rtc")
        fdt.setprop_cell(node, "clocks", self.clock_phandle)
        fdt.setprop_string(node, "clock-names", "apb_pclk")

    def create_gpio_devices(self, gic: GICState) -> None:
        """Create the PL061 GPIO, its node and ``/gpio-keys`` (``create_gpio_devices``).

        The poweroff key is GPIO 3 (Linux's ``KEY_POWER``): a ``gpio-key``
        device drives it, pressed for 100 ms of virtual time by each
        ``system_powerdown`` (the machine has no ACPI, as QEMU's ``virt``
        without firmware).
        """
        base, size = VIRT_MEMMAP["gpio"]
        gpio = sysbus_new("pl061")
        object_property_add_child(self, "pl061", gpio)
        # Lines the PL061 does not drive read as 0, as QEMU sets them.
        for prop, value in (("pullups", 0), ("pulldowns", 0xFF)):
            if gpio.property_find(prop) is not None:
                gpio.property_set(prop, value)
        sysbus_realize(gpio)
        gpio.mmio_map(0, base)
        gpio.connect_irq(0, qdev_get_gpio_in(gic, VIRT_IRQMAP["gpio"]))

        fdt = self._fdt()
        phandle = fdt.alloc_phandle()
        node = f"/pl061@{base:x}"
        fdt.add_subnode(node)
        fdt.setprop_sized_cells(node, "reg", (2, base), (2, size))
        fdt.setprop_string_array(node, "compatible", ["arm,pl061", "arm,primecell"])
        fdt.setprop_cell(node, "#gpio-cells", 2)
        fdt.setprop(node, "gpio-controller", b"")
        fdt.setprop_cells(
            node,
            "interrupts",
            *gic_interrupt_cells(VIRT_IRQMAP["gpio"], GIC_FDT_IRQ_FLAGS_LEVEL_HI),
        )
        fdt.setprop_cell(node, "clocks", self.clock_phandle)
        fdt.setprop_string(node, "clock-names", "apb_pclk")
        fdt.setprop_cell(node, "phandle", phandle)

        fdt.add_subnode("/gpio-keys")
        fdt.setprop_string("/gpio-keys", "compatible", "gpio-keys")
        fdt.add_subnode("/gpio-keys/poweroff")
        fdt.setprop_string("/gpio-keys/poweroff", "label", "GPIO Key Poweroff")
        fdt.setprop_cell("/gpio-keys/poweroff", "linux,code", KEY_POWER)
        fdt.setprop_cells("/gpio-keys/poweroff", "gpios", phandle, 3, 0)

        if object_class_by_name("gpio-key") is not None:
            # The power button: system_powerdown presses the key on GPIO 3.
            key = sysbus_new("gpio-key")
            object_property_add_child(self, "gpio-key", key)
            sysbus_realize(key)
            key.connect_irq(0, qdev_get_gpio_in(gpio, 3))
            self.gpio_key = key
            qemu_register_powerdown_notifier(self.powerdown_req)

    def powerdown_req(self) -> None:
        """Press the power key (``virt_powerdown_req`` without ACPI)."""
        if self.gpio_key is not None:
            qdev_get_gpio_in(self.gpio_key, 0).set(1)

    def create_platform_bus(self, gic: GICState) -> None:
        """Create the bus for ``-device`` sysbus devices (``create_platform_bus``).

        Its window is mapped directly in system memory, as QEMU does (so
        ``info qtree`` shows the region unmapped, as QEMU's does).
        """
        base, size = VIRT_MEMMAP["platform-bus"]
        pbus = PlatformBusDevice()
        object_property_add_child(self, TYPE_PLATFORM_BUS_DEVICE, pbus)
        pbus.id = TYPE_PLATFORM_BUS_DEVICE
        pbus.num_irqs = PLATFORM_BUS_NUM_IRQS
        pbus.mmio_size = size
        sysbus_realize(pbus)
        for i in range(PLATFORM_BUS_NUM_IRQS):
            pbus.connect_irq(i, qdev_get_gpio_in(gic, VIRT_IRQMAP["platform-bus"] + i))
        get_system_memory().add_subregion(base, pbus.mmio_get_region(0))
        self.platform_bus = pbus


def _find_cpus(obj: Object) -> Iterator[ArmBootCpu]:
    for child in obj.children():
        if isinstance(child, ArmBootCpu):
            yield child
        yield from _find_cpus(child)
