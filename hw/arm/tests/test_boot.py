"""hw.arm.boot on the virt board: where each image goes, and the errors.

The placements are QEMU 7.2's rules (hw/arm/boot.c); tests/qtest/test_boot.py
checks the same images byte for byte against QEMU 7.2 itself.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable

import pytest

from hw.arm.boot import BOOTLOADER_AARCH64, PsciConduit
from hw.arm.tests.conftest import (
    EM_ARM,
    EM_X86_64,
    RAM,
    MiB,
    Segment,
    arm64_image,
    build_virt,
    elf_file,
)
from qemu_api.error import Error
from system.device_tree import Fdt

Files = Callable[[str, bytes], str]

BODY = bytes(range(256)) * 8


def dtb_at(virt_read: Callable[[int, int], bytes], addr: int) -> Fdt:
    size = struct.unpack(">I", virt_read(addr + 4, 4))[0]
    return Fdt.from_bytes(virt_read(addr, size))


def bootloader_words(dtb: int, entry: int) -> list[int]:
    fix = {
        "argptr_lo": dtb & 0xFFFF_FFFF,
        "argptr_hi": dtb >> 32,
        "entry_lo": entry & 0xFFFF_FFFF,
        "entry_hi": entry >> 32,
    }
    return [w if isinstance(w, int) else fix[w] for w in BOOTLOADER_AARCH64]


# -- arm64 Image ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text_offset", "image_size", "load"),
    [
        (0, 0x10000, RAM + 2 * MiB),  # Linux >= 5.10: offset 0 moves up 2 MiB
        (0x80000, 0x10000, RAM + 0x80000),  # older kernels' text_offset
        (0x800, 0x10000, RAM + 2 * MiB + 0x800),  # below the boot loader's 4 KiB
        (0x1000, 0x10000, RAM + 0x1000),
        (0x200000, 0, RAM + 0x80000),  # image_size 0 (before 3.17): raw placement
    ],
)
def test_image_goes_where_its_header_says(
    files: Files, text_offset: int, image_size: int, load: int
) -> None:
    image = arm64_image(BODY, text_offset=text_offset, image_size=image_size)
    virt = build_virt(ncpus=2, kernel=files("Image", image))
    info = virt.machine.boot_info
    assert info is not None
    assert info.entry == load
    assert info.is_linux
    assert virt.read(load, len(image)) == image
    # QEMU's boot loader at the start of RAM: x0 = DTB, then branch to the kernel.
    words = struct.unpack("<10I", virt.read(RAM, 40))
    assert list(words) == bootloader_words(info.dtb_start, load)
    assert words[:6] == (
        0x580000C0,
        0xAA1F03E1,
        0xAA1F03E2,
        0xAA1F03E3,
        0x58000084,
        0xD61F0080,
    )
    # CPU 0 starts in the boot loader; the second waits for PSCI CPU_ON.
    assert virt.cpus[0].entries == [(RAM, {})]
    assert virt.cpus[1].entries == []


def test_raw_binary_goes_0x80000_into_ram(files: Files) -> None:
    raw = b"\x1f\x20\x03\xd5" * 100  # nop, no Image magic
    virt = build_virt(kernel=files("raw.bin", raw))
    info = virt.machine.boot_info
    assert info is not None
    assert (info.entry, info.is_linux) == (RAM + 0x80000, True)
    assert virt.read(RAM + 0x80000, len(raw)) == raw


def test_gzip_image_is_decompressed_and_placed_as_the_image(files: Files) -> None:
    image = arm64_image(BODY, text_offset=0, image_size=0x20000)
    virt = build_virt(kernel=files("Image.gz", gzip.compress(image)))
    assert virt.read(RAM + 2 * MiB, len(image)) == image


def test_initrd_at_half_of_small_ram_and_dtb_on_the_next_2mib(files: Files) -> None:
    initrd = b"initramfs" * 1000
    virt = build_virt(
        kernel=files("Image", arm64_image(BODY, image_size=0x10000)),
        initrd=files("initrd", initrd),
        append="console=ttyAMA0 root=/dev/ram",
    )
    info = virt.machine.boot_info
    assert info is not None
    assert (info.initrd_start, info.initrd_size) == (RAM + 64 * MiB, len(initrd))
    assert info.dtb_start == RAM + 66 * MiB
    assert virt.read(info.initrd_start, len(initrd)) == initrd
    fdt = dtb_at(virt.read, info.dtb_start)
    assert fdt.getprop("/chosen", "bootargs") == b"console=ttyAMA0 root=/dev/ram\0"
    assert fdt.getprop_cell("/chosen", "linux,initrd-start") == RAM + 64 * MiB
    assert fdt.getprop_cell("/chosen", "linux,initrd-end") == RAM + 64 * MiB + len(
        initrd
    )
    assert fdt.getprop("/memory@40000000", "reg") == struct.pack(">QQ", RAM, 128 * MiB)


def test_initrd_at_128mib_in_large_ram_and_above_a_large_kernel(files: Files) -> None:
    kernel = files("Image", arm64_image(BODY, image_size=0x10000))
    initrd = files("initrd", b"x" * 10)
    virt = build_virt(ram=1024 * MiB, kernel=kernel, initrd=initrd)
    info = virt.machine.boot_info
    assert info is not None
    assert info.initrd_start == RAM + 128 * MiB
    # A kernel whose image_size ends past that point pushes the initrd up
    # (page aligned), and the DTB to the 2 MiB boundary after it.
    big = files("Big", arm64_image(BODY, image_size=130 * MiB + 5))
    virt2 = build_virt(ram=1024 * MiB, kernel=big, initrd=initrd)
    info2 = virt2.machine.boot_info
    assert info2 is not None
    assert info2.initrd_start == RAM + 2 * MiB + 130 * MiB + 0x1000
    assert info2.dtb_start == RAM + 134 * MiB


def test_no_initrd_no_append_leaves_chosen_alone(files: Files) -> None:
    virt = build_virt(kernel=files("Image", arm64_image(BODY)))
    info = virt.machine.boot_info
    assert info is not None
    assert info.dtb_start == RAM + 64 * MiB
    fdt = dtb_at(virt.read, info.dtb_start)
    names = [name for name, _ in fdt.properties("/chosen")]
    assert names == ["stdout-path"]


def test_reset_restores_the_images_and_refreshes_rng_seed(files: Files) -> None:
    image = arm64_image(BODY, image_size=0x10000)
    virt = build_virt(
        kernel=files("Image", image),
        setup=lambda m: setattr(m, "dtb_randomness", True),
    )
    info = virt.machine.boot_info
    assert info is not None
    first = dtb_at(virt.read, info.dtb_start)
    virt.write(RAM + 2 * MiB, b"\0" * 64)
    virt.write(RAM, b"\0" * 40)
    virt.machine.reset()
    assert virt.read(RAM + 2 * MiB, len(image)) == image
    assert virt.read(RAM, 40) != b"\0" * 40
    again = dtb_at(virt.read, info.dtb_start)
    # QEMU refreshes rng-seed at each reset; kaslr-seed keeps its value.
    assert again.getprop("/chosen", "rng-seed") != first.getprop("/chosen", "rng-seed")
    assert again.getprop("/chosen", "kaslr-seed") == first.getprop(
        "/chosen", "kaslr-seed"
    )


# -- ELF ------------------------------------------------------------------------------


def test_elf_segments_go_to_their_physical_addresses(files: Files) -> None:
    text = b"\x00\x00\x80\xd2" * 64
    elf = elf_file(
        [
            Segment(RAM + 0x10_0000, text, vaddr=0xFFFF_0000_0010_0000),
            Segment(RAM + 0x20_0000, b"data", memsz=0x2000, flags=6),
        ],
        entry=0xFFFF_0000_0010_0010,
    )
    virt = build_virt(ncpus=2, kernel=files("k.elf", elf))
    info = virt.machine.boot_info
    assert info is not None
    # The entry moves with its executable segment from p_vaddr to p_paddr.
    assert (info.entry, info.is_linux) == (RAM + 0x10_0010, False)
    assert virt.read(RAM + 0x10_0000, len(text)) == text
    # The BSS part of a segment is zero-filled.
    virt.write(RAM + 0x20_0004, b"junk")
    virt.machine.reset()
    assert virt.read(RAM + 0x20_0000, 8) == b"data\0\0\0\0"
    # Every CPU starts at the entry point; no boot loader.
    assert [c.entries for c in virt.cpus] == [[(RAM + 0x10_0010, {})]] * 2
    assert all(r.name != "bootloader" for r in virt.machine.roms.roms)
    # The DTB goes to the start of RAM, below the image.
    assert (info.dtb_start, info.dtb_limit) == (RAM, RAM + 0x10_0000)
    assert dtb_at(virt.read, RAM).has_node("/chosen")


def test_elf_with_no_room_below_gets_no_dtb(
    files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    elf = elf_file([Segment(RAM + 0x8_0000, b"\0" * 16)], entry=RAM + 0x8_0000)
    virt = build_virt(kernel=files("k.elf", elf))
    # The 1 MiB DTB does not fit below 0x40080000: QEMU loads none.
    assert virt.read(RAM, 4) == b"\0" * 4
    assert "the guest gets no DTB" in capsys.readouterr().err


def test_elf_ignores_initrd_with_a_warning(
    files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    elf = elf_file([Segment(RAM + 0x20_0000, b"\0" * 16)], entry=RAM + 0x20_0000)
    virt = build_virt(kernel=files("k.elf", elf), initrd=files("i", b"x" * 100))
    info = virt.machine.boot_info
    assert info is not None
    assert info.initrd_size == 0
    assert "-initrd" in capsys.readouterr().err


# -- firmware -------------------------------------------------------------------------


def test_bios_is_a_read_only_rom_at_0_and_the_cpu_starts_there(files: Files) -> None:
    fw = b"\x00\x00\x00\x14" * 1024  # b . (a loop)
    virt = build_virt(ncpus=1, firmware=files("fw.bin", fw))
    assert virt.read(0, len(fw)) == fw
    virt.write(0, b"\xff" * 4)
    assert virt.read(0, 4) == fw[:4]
    assert virt.read(len(fw), 4) == b"\0" * 4  # the rest of the 64 MiB bank
    assert virt.cpus[0].entries == [(0, {})]
    info = virt.machine.boot_info
    assert info is not None
    # The firmware finds the DTB at the start of RAM.
    assert info.dtb_start == RAM
    assert dtb_at(virt.read, RAM).has_node("/memory@40000000")


def test_no_kernel_no_bios_starts_at_0_with_the_dtb_in_ram() -> None:
    virt = build_virt(ncpus=1)
    assert virt.cpus[0].entries == [(0, {})]
    assert virt.read(RAM, 4) == bytes.fromhex("d00dfeed")


# -- PSCI -----------------------------------------------------------------------------


def test_psci_node_follows_the_conduit() -> None:
    virt = build_virt()
    fdt = dtb_at(virt.read, RAM)
    assert fdt.getprop("/psci", "method") == b"hvc\0"
    assert (
        fdt.getprop("/psci", "compatible") == b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0"
    )
    off = build_virt(setup=lambda m: setattr(m, "psci_conduit", PsciConduit.DISABLED))
    assert not dtb_at(off.read, RAM).has_node("/psci")


# -- errors ---------------------------------------------------------------------------


def zimage() -> bytes:
    data = bytearray(0x400)
    struct.pack_into("<I", data, 0x24, 0x016F2818)
    return bytes(data)


def riscv_image() -> bytes:
    data = bytearray(arm64_image(BODY))
    data[0x38:0x3C] = b"RSC\x05"
    return bytes(data)


def bzimage() -> bytes:
    data = bytearray(0x400)
    data[0x202:0x206] = b"HdrS"
    return bytes(data)


def uimage() -> bytes:
    return struct.pack(">I", 0x27051956) + bytes(60) + BODY


BAD_KERNELS: list[tuple[str, bytes, str]] = [
    ("empty", b"", "could not load kernel '{f}': it is empty"),
    (
        "truncated",
        arm64_image()[:0x3E],
        (
            "could not load kernel '{f}': truncated arm64 Image header (62 bytes; "
            "the header alone is 64)"
        ),
    ),
    (
        "be",
        arm64_image(BODY, flags=0x3),
        "could not load kernel '{f}': the arm64 Image is big-endian",
    ),
    ("zimage", zimage(), "could not load kernel '{f}': it is a 32-bit ARM zImage"),
    ("riscv", riscv_image(), "it is a RISC-V Linux Image"),
    ("bzimage", bzimage(), "it is an x86 bzImage"),
    ("uimage", uimage(), "it is a U-Boot uImage"),
    (
        "badgz",
        b"\x1f\x8b\x08\x00" + b"\xff" * 40,
        "unable to decompress gzipped kernel",
    ),
    (
        "cutgz",
        gzip.compress(arm64_image(BODY))[:40],
        "unable to decompress gzipped kernel file (the gzip data is truncated)",
    ),
    (
        "gzempty",
        gzip.compress(b""),
        "could not load kernel '{f}': the decompressed kernel is empty",
    ),
    (
        "toolarge",
        arm64_image(BODY, image_size=129 * MiB),
        (
            "kernel '{f}' is too large to fit in RAM (kernel size 135266304, RAM size "
            "134217728)"
        ),
    ),
    (
        "x86elf",
        elf_file([Segment(RAM, b"\0" * 4)], RAM, machine=EM_X86_64),
        (
            "Couldn't load elf '{f}': The image is from incompatible architecture "
            "(e_machine is EM_X86_64, this board needs EM_AARCH64)"
        ),
    ),
    (
        "arm32elf",
        elf_file([Segment(RAM, b"\0" * 4)], RAM, machine=EM_ARM, elfclass=32),
        "Couldn't load elf '{f}': The image is from incompatible architecture",
    ),
    (
        "beelf",
        elf_file([Segment(RAM + MiB, b"\0" * 4)], RAM, little=False),
        "Couldn't load elf '{f}': The image has incorrect endianness",
    ),
    (
        "cutelf",
        elf_file([Segment(RAM + MiB, b"\0" * 64)], RAM + MiB)[:100],
        "Couldn't load elf '{f}': Failed to load ELF (",
    ),
    ("tinyelf", b"\x7fELF\x02\x01", "Couldn't load elf '{f}': Failed to load ELF"),
    (
        "bsself",
        elf_file([Segment(RAM + MiB, b"\0" * 64, memsz=8)], RAM + MiB),
        "p_filesz 0x40 > p_memsz 0x8",
    ),
    (
        "noload",
        elf_file([], RAM),
        "Couldn't load elf '{f}': Failed to load ELF (no loadable segment)",
    ),
    (
        "cover",
        elf_file([Segment(RAM, b"\0" * 64)], RAM),
        "ELF image '{f}' covers the start of RAM (0x40000000), where the DTB would go",
    ),
]


@pytest.mark.parametrize(
    ("name", "data", "message"), BAD_KERNELS, ids=[b[0] for b in BAD_KERNELS]
)
def test_bad_kernels_are_refused_with_one_line(
    files: Files, name: str, data: bytes, message: str
) -> None:
    path = files(name, data)
    with pytest.raises(Error) as err:
        build_virt(kernel=path)
    assert message.format(f=path) in err.value.msg
    assert "\n" not in err.value.msg


def test_missing_files_say_which_and_why(files: Files) -> None:
    kernel = files("Image", arm64_image(BODY))
    cases: list[tuple[dict[str, str], str]] = [
        (
            {"kernel": "/nonexistent/Image"},
            "could not load kernel '/nonexistent/Image'",
        ),
        (
            {"kernel": kernel, "initrd": "/no/initrd"},
            "could not load initrd '/no/initrd'",
        ),
        ({"firmware": "/no/fw.bin"}, "Could not find ROM image '/no/fw.bin'"),
        ({"kernel": kernel, "dtb": "/no/x.dtb"}, "Couldn't open dtb file /no/x.dtb"),
    ]
    for images, message in cases:
        with pytest.raises(Error) as err:
            build_virt(
                kernel=images.get("kernel", ""),
                initrd=images.get("initrd", ""),
                firmware=images.get("firmware", ""),
                dtb=images.get("dtb", ""),
            )
        assert err.value.msg.startswith(message)
        assert "No such file or directory" in err.value.msg or "ROM" in message


def test_images_that_do_not_fit(files: Files) -> None:
    kernel = files("Image", arm64_image(BODY))
    # An initrd larger than what is left above its start.
    big = files("big", b"\0" * (65 * MiB))
    with pytest.raises(Error, match="too big to fit into RAM after the kernel"):
        build_virt(kernel=kernel, initrd=big)
    # No 2 MiB boundary left for the DTB.
    with pytest.raises(Error, match="Not enough space for DTB after kernel/initrd"):
        build_virt(ram=3 * MiB, kernel=kernel)
    # A file that does not fit below the end of RAM (its header's size does).
    tail = files(
        "tail", arm64_image(b"\0" * (70 * MiB), text_offset=60 * MiB, image_size=MiB)
    )
    with pytest.raises(Error, match=r"rom: '.*tail' \(0x43c00000-.*does not fit"):
        build_virt(kernel=tail)
    # -bios larger than the flash bank.
    fw = files("fw", b"\0" * (64 * MiB + 1))
    with pytest.raises(Error, match=r"Could not load ROM image .*67108865 bytes"):
        build_virt(firmware=fw)


def test_bios_and_kernel_together_need_fw_cfg(files: Files) -> None:
    with pytest.raises(Error, match=r"-kernel with -bios: .*fw_cfg"):
        build_virt(
            kernel=files("Image", arm64_image()), firmware=files("fw", b"\0" * 4)
        )


def test_overlapping_images_are_refused(files: Files) -> None:
    elf = elf_file(
        [
            Segment(RAM + 2 * MiB, b"\0" * 0x100),
            Segment(RAM + 2 * MiB + 0x80, b"\0" * 4),
        ],
        RAM + 2 * MiB,
    )
    with pytest.raises(Error, match=r"rom: requested regions overlap \(rom phdr #1"):
        build_virt(kernel=files("k.elf", elf))


def test_user_dtb_errors(files: Files) -> None:
    kernel = files("Image", arm64_image(BODY))
    with pytest.raises(Error, match=r"Couldn't open dtb file .*magic"):
        build_virt(kernel=kernel, dtb=files("bad.dtb", b"x" * 100))


def test_elf_offsets_past_any_file_are_refused(files: Files) -> None:
    data = bytearray(elf_file([Segment(RAM + MiB, b"\0" * 64)], RAM + MiB))
    struct.pack_into("<Q", data, 64 + 8, 1 << 63)  # p_offset of segment 0
    path = files("huge.elf", bytes(data))
    with pytest.raises(Error) as err:
        build_virt(kernel=path)
    assert err.value.msg.startswith(
        f"Couldn't load elf '{path}': Failed to load ELF (malformed ELF file: "
    )
