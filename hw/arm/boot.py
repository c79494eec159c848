r"""Loading an AArch64 guest: kernel, initrd, DTB and firmware (``hw/arm/boot.c``).

QEMU 7.2's ARM boot path, for the boards of this tree. The board fills an
:class:`ArmBootInfo` (RAM base and size, and the machine's ``-kernel``,
``-initrd``, ``-append`` and ``-dtb``) and calls :func:`arm_load_kernel` while
it builds itself; once its devices exist it calls :func:`arm_load_dtb`. Every
image becomes a ROM blob of the machine's :class:`~hw.core.loader.RomLoader`,
copied into guest memory at each reset, exactly where QEMU 7.2 puts it:

- ``-kernel`` takes, in QEMU's order, an ELF file (``EM_AARCH64``, loaded at
  its physical addresses, started at its entry point), else an arm64 Linux
  ``Image`` (optionally gzip-compressed), else a raw binary. An ``Image``
  goes ``text_offset`` above the start of RAM (2 MiB higher when that offset
  is below 4 KiB, as for every kernel since 5.10, whose ``text_offset`` is
  0); a file without the ``ARM\x64`` magic goes 0x80000 above it. Both are
  Linux kernels: QEMU's 40-byte boot loader goes to the start of RAM, loads
  the DTB address into ``x0`` and jumps to the kernel.
- ``-initrd`` goes at half of RAM, at most 128 MiB above its start, and
  never below the end of the kernel (page aligned); the DTB's ``/chosen``
  gets ``linux,initrd-start`` and ``linux,initrd-end``.
- the DTB (the board's, or the ``-dtb`` file patched: ``/memory``,
  ``/chosen`` ``bootargs`` and the initrd, ``/psci``) goes on the next 2 MiB
  boundary after the initrd; with no kernel it goes to the start of RAM for
  the firmware.
- with no ``-kernel`` the CPU starts at address 0, where the board maps the
  ``-bios`` firmware.

The CPU takes its entry state through :class:`ArmBootCpu`; with no CPU (the
qtest accelerator) the images are loaded all the same.

Images the loader refuses get one line that says why, never a traceback: a
missing file, an ELF file for another machine, a gzip file that does not
decompress, an ``Image`` header that is cut short or big-endian, a kernel for
another architecture (32-bit ARM ``zImage``, x86 ``bzImage``, RISC-V
``Image``) or a U-Boot ``uImage``, and images that do not fit in RAM.

>>> import tempfile, os
>>> from hw.core.loader import RomLoader
>>> from system.device_tree import create_device_tree
>>> header = bytearray(64)
>>> header[0x08:0x18] = (0).to_bytes(8, "little") + (0x10000).to_bytes(8, "little")
>>> header[0x38:0x3C] = ARM64_MAGIC
>>> with tempfile.NamedTemporaryFile(suffix=".Image", delete=False) as f:
...     _ = f.write(header)
>>> info = ArmBootInfo(
...     ram_size=128 << 20,
...     loader_start=0x4000_0000,
...     kernel_filename=f.name,
...     get_dtb=create_device_tree,
...     skip_dtb_autoload=True,
... )
>>> roms = RomLoader()
>>> arm_load_kernel([], info, roms)
>>> hex(info.entry), info.is_linux, hex(info.dtb_start)
('0x40200000', True, '0x44000000')
>>> [(r.name, hex(r.addr)) for r in roms.roms if r.name == "bootloader"]
[('bootloader', '0x40000000')]
>>> os.unlink(f.name)
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, final, runtime_checkable

from hw.core.loader import (
    EM_AARCH64,
    ElfImage,
    ElfLoadError,
    Rom,
    RomLoader,
    is_elf,
    load_elf,
    load_image_gzipped_buffer,
    read_image,
)
from qemu_api.error import Error, warn_report
from system.device_tree import Fdt, load_device_tree, qemu_fdt_dumpdtb

__all__ = [
    "ARM64_MAGIC",
    "ARM64_MAGIC_OFFSET",
    "ARM64_TEXT_OFFSET_OFFSET",
    "BOOTLOADER_AARCH64",
    "BOOTLOADER_MAX_SIZE",
    "KERNEL64_LOAD_ADDR",
    "PSCI_0_2_FN64_CPU_ON",
    "TARGET_PAGE_SIZE",
    "ArmBootCpu",
    "ArmBootInfo",
    "PsciConduit",
    "arm_boot_entry",
    "arm_load_dtb",
    "arm_load_kernel",
    "fdt_add_memory_node",
    "fdt_add_psci_node",
    "load_aarch64_image",
]

KiB: Final = 1 << 10
MiB: Final = 1 << 20
GiB: Final = 1 << 30

KERNEL64_LOAD_ADDR: Final = 0x0008_0000
"""Where a raw AArch64 kernel goes, above the start of RAM."""
BOOTLOADER_MAX_SIZE: Final = 4 * KiB
"""Room kept for the boot loader at the start of RAM."""
ARM64_TEXT_OFFSET_OFFSET: Final = 8
"""Offset of ``text_offset`` (then ``image_size``) in an arm64 ``Image``."""
ARM64_MAGIC_OFFSET: Final = 0x38
"""Offset of the arm64 ``Image`` magic."""
ARM64_MAGIC: Final = b"ARM\x64"
"""The arm64 ``Image`` magic (``0x644d5241`` little-endian)."""
ARM64_HEADER_SIZE: Final = 64
ARM64_FLAG_BE: Final = 1
TARGET_PAGE_SIZE: Final = 4 * KiB
"""The AArch64 target page size: the initrd goes on a page boundary."""

# QEMU's bootloader_aarch64, with the fixups as None.
BOOTLOADER_AARCH64: Final[tuple[int | str, ...]] = (
    0x580000C0,  # ldr x0, arg ; load the lower 32 bits of the DTB address
    0xAA1F03E1,  # mov x1, xzr
    0xAA1F03E2,  # mov x2, xzr
    0xAA1F03E3,  # mov x3, xzr
    0x58000084,  # ldr x4, entry ; load the lower 32 bits of the kernel entry
    0xD61F0080,  # br x4 ; jump to the kernel entry point
    "argptr_lo",  # arg: .word @DTB lower 32 bits
    "argptr_hi",  # .word @DTB higher 32 bits
    "entry_lo",  # entry: .word @kernel entry lower 32 bits
    "entry_hi",  # .word @kernel entry higher 32 bits
)
"""QEMU's AArch64 boot loader: instruction words and the names of its fixups."""

PSCI_0_2_FN_CPU_OFF: Final = 0x8400_0002
PSCI_0_2_FN64_CPU_SUSPEND: Final = 0xC400_0001
PSCI_0_2_FN64_CPU_ON: Final = 0xC400_0003
"""PSCI 0.2 function IDs, as the ``/psci`` node names them."""
PSCI_0_2_FN64_MIGRATE: Final = 0xC400_0005
PSCI_0_1_FN_BASE: Final = 0x95C1_BA5E

_GZIP_MAGIC: Final = b"\x1f\x8b"
_UIMAGE_MAGIC: Final = 0x2705_1956
_ZIMAGE_MAGIC: Final = 0x016F_2818
_RISCV_MAGIC: Final = b"RSC\x05"
_RISCV_MAGIC_OLD: Final = b"RISCV\0\0\0"
_BZIMAGE_MAGIC: Final = b"HdrS"


@runtime_checkable
class ArmBootCpu(Protocol):
    """What the boot loader needs from a CPU: its entry state.

    ``set_boot_entry(pc, regs)`` records the program counter and the
    general-purpose registers (``x`` register number to value) that the CPU
    takes at every machine reset, after its own reset.
    """

    def set_boot_entry(self, pc: int, regs: Mapping[int, int]) -> None:
        """Start at *pc* with *regs* after every reset."""


@final
class PsciConduit(enum.Enum):
    """How the guest calls PSCI (QEMU's ``QEMU_PSCI_CONDUIT_*``)."""

    DISABLED = "disabled"
    SMC = "smc"
    HVC = "hvc"


@dataclass
class ArmBootInfo:
    """QEMU's ``struct arm_boot_info``: what the board tells the loader, and back.

    Attributes:
        ram_size: RAM in bytes.
        loader_start: the guest address of the start of RAM.
        kernel_filename: ``-kernel``, or None.
        initrd_filename: ``-initrd``, or None.
        dtb_filename: ``-dtb``, or None (then :attr:`get_dtb` makes the tree).
        kernel_cmdline: ``-append``.
        dumpdtb: ``-machine dumpdtb=FILE``: write the final DTB and stop.
        get_dtb: the board's device tree, made on demand.
        skip_dtb_autoload: the board calls :func:`arm_load_dtb` itself, once
            its dynamic devices exist (virt does).
        firmware_loaded: ``-bios`` (or flash) holds firmware: it is the
            firmware's job to load a kernel.
        psci_conduit: how the guest reaches PSCI (a ``/psci`` node is made
            unless disabled).
        psci_version: the PSCI version the CPU implements, as (major, minor).
        cpu_has_el2: the CPU implements EL2 (Linux then starts there).
        cpu_has_el3: the CPU implements EL3.
        entry: (out) where the kernel or ELF image starts.
        is_linux: (out) the kernel is a Linux kernel (``Image`` or raw).
        initrd_start: (out) where the initrd is.
        initrd_size: (out) its size (0: no initrd).
        dtb_start: (out) where the DTB goes.
        dtb_limit: (out) where it must end (0: no limit).
    """

    ram_size: int
    loader_start: int
    kernel_filename: str | None = None
    initrd_filename: str | None = None
    dtb_filename: str | None = None
    kernel_cmdline: str = ""
    dumpdtb: str | None = None
    get_dtb: Callable[[], Fdt] | None = None
    skip_dtb_autoload: bool = False
    firmware_loaded: bool = False
    psci_conduit: PsciConduit = PsciConduit.DISABLED
    psci_version: tuple[int, int] = (1, 1)
    cpu_has_el2: bool = False
    cpu_has_el3: bool = False
    entry: int = 0
    is_linux: bool = False
    initrd_start: int = 0
    initrd_size: int = 0
    dtb_start: int = 0
    dtb_limit: int = 0

    def have_dtb(self) -> bool:
        """Whether there is a DTB to load (``have_dtb``)."""
        return self.dtb_filename is not None or self.get_dtb is not None


def _u64(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("<Q", data, offset)[0]
    return value


def _foreign_kernel(data: bytes) -> str | None:
    """Name the kernel format *data* is in, when it is not for AArch64."""
    if len(data) >= 4 and struct.unpack_from(">I", data)[0] == _UIMAGE_MAGIC:
        return (
            "a U-Boot uImage, which this loader does not unwrap; pass the Image "
            "or Image.gz inside it"
        )
    if len(data) >= 0x28 and struct.unpack_from("<I", data, 0x24)[0] == _ZIMAGE_MAGIC:
        return "a 32-bit ARM zImage; the virt board runs AArch64 kernels (Image)"
    if len(data) >= 0x206 and data[0x202:0x206] == _BZIMAGE_MAGIC:
        return "an x86 bzImage; the virt board runs AArch64 kernels (Image)"
    if (len(data) >= 0x3C and data[0x38:0x3C] == _RISCV_MAGIC) or data[
        0x30:0x38
    ] == _RISCV_MAGIC_OLD:
        return "a RISC-V Linux Image; the virt board runs AArch64 kernels"
    return None


def load_aarch64_image(
    filename: str, data: bytes, mem_base: int, roms: RomLoader
) -> tuple[int, int]:
    """Load an arm64 Linux ``Image`` or a raw binary (QEMU's ``load_aarch64_image``).

    Args:
        filename: the file's name (it names the ROM blob).
        data: its contents, gzip-compressed or not.
        mem_base: the start of RAM.
        roms: where the blob is registered.

    Returns:
        ``(kernel_size, entry)``: the size the kernel occupies (the header's
        ``image_size``, else the file size) and its load address.

    Raises:
        Error: the file does not decompress, is empty, is a kernel for
            another architecture, or has a truncated or big-endian header.
    """
    unzipped = load_image_gzipped_buffer(data, filename)
    buffer = data if unzipped is None else unzipped
    what = "the decompressed kernel" if unzipped is not None else "it"
    if not buffer:
        raise Error(f"could not load kernel '{filename}': {what} is empty")
    foreign = _foreign_kernel(buffer)
    if foreign is not None:
        raise Error(f"could not load kernel '{filename}': {what} is {foreign}")
    load_offset = KERNEL64_LOAD_ADDR
    kernel_size = 0
    if buffer[ARM64_MAGIC_OFFSET : ARM64_MAGIC_OFFSET + 4] == ARM64_MAGIC:
        if len(buffer) < ARM64_HEADER_SIZE:
            raise Error(
                f"could not load kernel '{filename}': truncated arm64 Image header "
                f"({len(buffer)} bytes; the header alone is {ARM64_HEADER_SIZE})"
            )
        text_offset = _u64(buffer, ARM64_TEXT_OFFSET_OFFSET)
        kernel_size = _u64(buffer, ARM64_TEXT_OFFSET_OFFSET + 8)
        flags = _u64(buffer, ARM64_TEXT_OFFSET_OFFSET + 16)
        if kernel_size != 0 and flags & ARM64_FLAG_BE:
            raise Error(
                f"could not load kernel '{filename}': the arm64 Image is "
                "big-endian (header flags bit 0); the virt board boots "
                "little-endian kernels"
            )
        if kernel_size != 0:
            # The Image asks for an offset from a 2 MiB boundary; the boot
            # loader owns the first 4 KiB, so such offsets move up 2 MiB.
            load_offset = text_offset
            if load_offset < BOOTLOADER_MAX_SIZE:
                load_offset += 2 * MiB
    if kernel_size == 0:
        # Kernels before 3.17 leave image_size 0 and raw images have no
        # header: their size is the file's.
        kernel_size = len(buffer)
    entry = mem_base + load_offset
    roms.add_blob_fixed(filename, buffer, entry)
    return kernel_size, entry


def _arm_load_elf(data: bytes, roms: RomLoader, filename: str) -> ElfImage | None:
    """Load an ELF kernel (``arm_load_elf``); None if *data* is not ELF."""
    if not is_elf(data):
        return None
    try:
        image = load_elf(data, EM_AARCH64)
    except ElfLoadError as e:
        raise Error(f"Couldn't load elf '{filename}': {e.msg}") from None
    for seg in image.segments:
        roms.add_blob_fixed(
            f"phdr #{seg.index}: {filename}", seg.data, seg.addr, romsize=seg.mem_size
        )
    return image


def _write_bootloader(roms: RomLoader, addr: int, fixups: Mapping[str, int]) -> None:
    words = [w if isinstance(w, int) else fixups[w] for w in BOOTLOADER_AARCH64]
    roms.add_blob_fixed("bootloader", struct.pack(f"<{len(words)}I", *words), addr)


def _arm_setup_direct_kernel_boot(info: ArmBootInfo, roms: RomLoader) -> None:
    assert info.kernel_filename is not None
    filename = info.kernel_filename
    data = read_image(filename, "kernel")
    ram_end = info.loader_start + info.ram_size
    image_low = image_high = 0
    is_linux = False
    elf = _arm_load_elf(data, roms, filename)
    if elf is not None:
        kernel_size, entry = elf.total_size, elf.entry
        image_low, image_high = elf.low, elf.high
        if info.have_dtb() and (
            image_low > info.loader_start or image_high < info.loader_start
        ):
            # Room at the start of RAM: the DTB goes there, as for -bios.
            info.dtb_start = info.loader_start
            info.dtb_limit = image_low if image_low >= info.loader_start else 0
        elif info.have_dtb():
            raise Error(
                f"ELF image '{filename}' covers the start of RAM "
                f"(0x{info.loader_start:x}), where the DTB would go",
                hint="Link the image above the start of RAM, or boot it with "
                "-bios instead.\n",
            )
        if info.initrd_filename is not None:
            warn_report(
                f"-initrd '{info.initrd_filename}' is ignored: '{filename}' is an "
                "ELF image, not a Linux kernel"
            )
    else:
        kernel_size, entry = load_aarch64_image(filename, data, info.loader_start, roms)
        is_linux = True
        image_low, image_high = entry, entry + kernel_size

    if kernel_size > info.ram_size:
        raise Error(
            f"kernel '{filename}' is too large to fit in RAM (kernel size "
            f"{kernel_size}, RAM size {info.ram_size})",
            hint="Give the machine more memory with -m.\n",
        )
    info.entry = entry

    # The initrd goes far enough up that the kernel can decompress below it,
    # but low enough to leave it room: half of RAM, at most 128 MiB up.
    initrd_start = info.loader_start + min(info.ram_size // 2, 128 * MiB)
    if image_high:
        initrd_start = max(initrd_start, image_high)
    info.initrd_start = (initrd_start + TARGET_PAGE_SIZE - 1) & ~(TARGET_PAGE_SIZE - 1)

    if is_linux:
        initrd_size = 0
        if info.initrd_filename is not None:
            initrd_size = _load_initrd(info, roms, ram_end)
        info.initrd_size = initrd_size
        fixups = {"entry_lo": entry & 0xFFFF_FFFF, "entry_hi": entry >> 32}
        if info.have_dtb():
            # Some kernels map the DTB's 2 MiB-aligned block early: align it.
            align = 2 * MiB
            info.dtb_start = (info.initrd_start + initrd_size + align - 1) & ~(
                align - 1
            )
            if info.dtb_start >= ram_end:
                raise Error(
                    "Not enough space for DTB after kernel/initrd",
                    hint="Give the machine more memory with -m.\n",
                )
            fixups["argptr_lo"] = info.dtb_start & 0xFFFF_FFFF
            fixups["argptr_hi"] = info.dtb_start >> 32
        else:  # pragma: no cover - AArch64 boards always have a DTB
            raise Error("an AArch64 Linux kernel needs a device tree (-dtb)")
        _write_bootloader(roms, info.loader_start, fixups)
    info.is_linux = is_linux


def _load_initrd(info: ArmBootInfo, roms: RomLoader, ram_end: int) -> int:
    assert info.initrd_filename is not None
    filename = info.initrd_filename
    if info.initrd_start >= ram_end:
        raise Error(
            "not enough space after kernel to load initrd",
            hint="Give the machine more memory with -m.\n",
        )
    data = read_image(filename, "initrd")
    if len(data) >= 4 and struct.unpack_from(">I", data)[0] == _UIMAGE_MAGIC:
        raise Error(
            f"could not load initrd '{filename}': it is a U-Boot uImage, which this "
            "loader does not unwrap; pass the ramdisk inside it"
        )
    if info.initrd_start + len(data) > ram_end:
        raise Error(
            f"could not load initrd '{filename}': too big to fit into RAM after "
            f"the kernel ({len(data)} bytes at 0x{info.initrd_start:x}, "
            f"{ram_end - info.initrd_start} bytes free)",
            hint="Give the machine more memory with -m.\n",
        )
    if data:
        roms.add_blob_fixed(filename, data, info.initrd_start)
    return len(data)


def _arm_setup_firmware_boot(info: ArmBootInfo) -> None:
    if info.have_dtb():
        # No kernel to hand the DTB to: the firmware finds it at RAM's start.
        info.dtb_start = info.loader_start
    if info.kernel_filename is not None:
        raise Error(
            "-kernel with -bios: the firmware would load the kernel through "
            "fw_cfg, which this machine does not have",
            hint="Boot the kernel directly (drop -bios), or let the firmware load "
            "it from its own storage.\n",
        )


def arm_boot_entry(
    info: ArmBootInfo, cpu_index: int
) -> tuple[int, dict[int, int]] | None:
    """The entry state of CPU *cpu_index* after reset (``do_cpu_reset``).

    Returns:
        ``(pc, regs)``, or None when the CPU keeps its own reset state (the
        secondary CPUs of a Linux boot, which wait for PSCI ``CPU_ON``).
        A Linux kernel starts on CPU 0 in the boot loader at the start of
        RAM, which sets ``x0`` to the DTB and ``x1``-``x3`` to 0; an ELF
        image starts at its entry point; firmware starts at address 0.
    """
    if info.kernel_filename is None or info.firmware_loaded:
        return 0, {}
    if not info.is_linux:
        return info.entry, {}
    if cpu_index == 0:
        return info.loader_start, {}
    return None


def arm_load_kernel(
    cpus: Sequence[ArmBootCpu], info: ArmBootInfo, roms: RomLoader
) -> None:
    """Load the guest and set the CPUs' entry state (``arm_load_kernel``).

    With ``-kernel`` (and no firmware) the kernel, initrd and boot loader
    become ROM blobs and :attr:`ArmBootInfo.dtb_start` is chosen; otherwise
    the DTB is meant for the firmware at the start of RAM. Unless the board
    asked to load the DTB itself, it is loaded here too.

    Args:
        cpus: the machine's CPUs, CPU 0 first (none under qtest).
        info: the board's boot information; the outputs are filled in.
        roms: the machine's ROM blobs.

    Raises:
        Error: an image cannot be loaded; the message says which and why.
    """
    info.dtb_limit = 0
    if info.kernel_filename is None or info.firmware_loaded:
        _arm_setup_firmware_boot(info)
    else:
        _arm_setup_direct_kernel_boot(info, roms)

    # PSCI cannot be reached through a conduit that targets the exception
    # level the guest starts in, or a lower one.
    boot_el = 3 if info.cpu_has_el3 else 2 if info.cpu_has_el2 else 1
    if info.is_linux:
        boot_el = 2 if info.cpu_has_el2 else 1
    if (info.psci_conduit is PsciConduit.HVC and boot_el >= 2) or (
        info.psci_conduit is PsciConduit.SMC and boot_el == 3
    ):
        info.psci_conduit = PsciConduit.DISABLED

    for i, cpu in enumerate(cpus):
        state = arm_boot_entry(info, i)
        if state is not None:
            cpu.set_boot_entry(*state)

    if not info.skip_dtb_autoload and info.have_dtb():
        arm_load_dtb(info.dtb_start, info, info.dtb_limit, roms)


def fdt_add_memory_node(
    fdt: Fdt, acells: int, mem_base: int, scells: int, mem_len: int, numa_node: int = -1
) -> None:
    """Add ``/memory@BASE`` for a RAM bank (``fdt_add_memory_node``)."""
    node = f"/memory@{mem_base:x}"
    fdt.add_subnode(node)
    fdt.setprop_string(node, "device_type", "memory")
    fdt.setprop_sized_cells(node, "reg", (acells, mem_base), (scells, mem_len))
    if numa_node >= 0:
        fdt.setprop_cell(node, "numa-node-id", numa_node)


def fdt_add_psci_node(fdt: Fdt, info: ArmBootInfo) -> None:
    """Add ``/psci`` for the CPU's PSCI conduit (``fdt_add_psci_node``).

    A ``/psci`` node already in the tree (from ``-dtb``) may name function
    IDs that do not match, so it is replaced.
    """
    if info.psci_conduit is PsciConduit.DISABLED:
        return
    if fdt.has_node("/psci"):
        fdt.nop_node("/psci")
    fdt.add_subnode("/psci")
    if info.psci_version >= (0, 2):
        if info.psci_version < (1, 0):
            compat = ["arm,psci-0.2", "arm,psci"]
        else:
            compat = ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]
        fdt.setprop_string_array("/psci", "compatible", compat)
        cpu_suspend, cpu_off = PSCI_0_2_FN64_CPU_SUSPEND, PSCI_0_2_FN_CPU_OFF
        cpu_on, migrate = PSCI_0_2_FN64_CPU_ON, PSCI_0_2_FN64_MIGRATE
    else:
        fdt.setprop_string("/psci", "compatible", "arm,psci")
        cpu_suspend, cpu_off = PSCI_0_1_FN_BASE, PSCI_0_1_FN_BASE + 1
        cpu_on, migrate = PSCI_0_1_FN_BASE + 2, PSCI_0_1_FN_BASE + 3
    # The binding says "method" for what PSCI calls the conduit.
    fdt.setprop_string("/psci", "method", info.psci_conduit.value)
    fdt.setprop_cell("/psci", "cpu_suspend", cpu_suspend)
    fdt.setprop_cell("/psci", "cpu_off", cpu_off)
    fdt.setprop_cell("/psci", "cpu_on", cpu_on)
    fdt.setprop_cell("/psci", "migrate", migrate)


def _randomize_rom_seeds(rom: Rom) -> None:
    Fdt(rom.data).randomize_seeds()


def arm_load_dtb(addr: int, info: ArmBootInfo, addr_limit: int, roms: RomLoader) -> int:
    """Patch the DTB and register it at *addr* (``arm_load_dtb``).

    The tree is the ``-dtb`` file or the board's. Every ``/memory`` node is
    replaced by one for the machine's RAM, ``/chosen`` gets ``bootargs``
    (``-append``) and the initrd's bounds, ``/psci`` is made for the CPU's
    conduit; then ``-machine dumpdtb=FILE`` stops here, else the blob is
    registered as the ROM ``dtb``, its ``rng-seed`` refreshed at each reset.

    Args:
        addr: where the DTB goes.
        info: the boot information.
        addr_limit: when above *addr*, the DTB must end below it.
        roms: the machine's ROM blobs.

    Returns:
        The DTB's size, or 0 when it would pass *addr_limit* (then it is not
        loaded, as in QEMU).

    Raises:
        Error: the ``-dtb`` file cannot be used.
        DtbDumped: ``dumpdtb`` wrote the file.
    """
    if info.dtb_filename is not None:
        fdt = load_device_tree(info.dtb_filename)
    elif info.get_dtb is not None:
        fdt = info.get_dtb()
    else:
        raise Error("Board was unable to create a dtb blob")
    size = fdt.size
    if addr_limit > addr and size > addr_limit - addr:
        warn_report(
            f"the DTB ({size} bytes) does not fit below 0x{addr_limit:x}; the guest "
            "gets no DTB"
        )
        return 0

    acells = fdt.getprop_cell("/", "#address-cells")
    scells = fdt.getprop_cell("/", "#size-cells")
    if acells == 0 or scells == 0:
        raise Error("dtb file invalid (#address-cells or #size-cells 0)")
    if scells < 2 and info.ram_size >= 4 * GiB:
        raise Error("qemu: dtb file not compatible with RAM size > 4GB")

    for path in fdt.node_unit_path("memory"):
        if path.startswith("/memory"):
            fdt.nop_node(path)
    fdt_add_memory_node(fdt, acells, info.loader_start, scells, info.ram_size)

    if not fdt.has_node("/chosen"):
        fdt.add_subnode("/chosen")
    if info.kernel_cmdline:
        fdt.setprop_string("/chosen", "bootargs", info.kernel_cmdline)
    if info.initrd_size:
        # One cell each, as QEMU 7.2 writes them (whatever #address-cells).
        fdt.setprop_cell("/chosen", "linux,initrd-start", info.initrd_start)
        fdt.setprop_cell(
            "/chosen", "linux,initrd-end", info.initrd_start + info.initrd_size
        )
    fdt_add_psci_node(fdt, info)

    qemu_fdt_dumpdtb(fdt, info.dumpdtb)

    # A ROM blob, even in RAM: each reset brings the DTB back.
    roms.add_blob_fixed("dtb", fdt.as_bytes(), addr, before_copy=_randomize_rom_seeds)
    return size
