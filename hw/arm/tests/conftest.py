"""Fixtures of the virt and boot loader tests: a fresh runtime and image makers.

The images are made here, byte by byte, from their format's definition: an
arm64 ``Image`` header (Linux's ``Documentation/arm64/booting.rst``), ELF
files (the ELF-64 and ELF-32 object file formats), gzip data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import hw.char.pl011  # virt's UART, as the launcher imports it
from hw.arm.virt import VirtMachine
from qemu_api.memory import get_address_space_memory
from qemu_api.qom import Object, object_property_add_child, override
from tests.runtime import qemu_runtime, reset_runtime

__all__ = ["qemu_runtime"]

assert hw.char.pl011.TYPE_PL011 == "pl011"

RAM: int = 0x4000_0000
MiB: int = 1 << 20
EM_X86_64 = 62
EM_ARM = 40
EM_AARCH64 = 183


def arm64_image(
    body: bytes = b"",
    *,
    text_offset: int = 0,
    image_size: int | None = None,
    flags: int = 0x2,
) -> bytes:
    """An arm64 Image: the 64-byte header, then *body*."""
    size = 64 + len(body) if image_size is None else image_size
    hdr = struct.pack(
        "<IIQQQQQQII",
        0x14000010,  # code0: b +0x40 (past the header)
        0,  # code1
        text_offset,
        size,
        flags,  # bit 0: endianness (0: little), bits 1-2: 4K pages
        0,
        0,
        0,
        0x644D5241,  # magic "ARM\x64"
        0,  # res5 (the PE header offset of EFI stubs)
    )
    assert len(hdr) == 64
    assert hdr[0x38:0x3C] == b"ARM\x64"
    return hdr + body


@dataclass
class Segment:
    paddr: int
    data: bytes
    memsz: int | None = None
    vaddr: int | None = None
    flags: int = 5  # PF_R | PF_X


def elf_file(
    segments: Sequence[Segment],
    entry: int,
    *,
    machine: int = EM_AARCH64,
    elfclass: int = 64,
    little: bool = True,
) -> bytes:
    """An executable ELF file with one PT_LOAD per segment, data after the headers."""
    end = "<" if little else ">"
    ident = b"\x7fELF" + bytes([2 if elfclass == 64 else 1, 1 if little else 2, 1])
    ident += bytes(16 - len(ident))
    n = len(segments)
    if elfclass == 64:
        ehsize, phentsize = 64, 56
        ehdr = struct.pack(
            end + "16sHHIQQQIHHHHHH",
            ident, 2, machine, 1, entry, ehsize, 0, 0, ehsize, phentsize, n, 64, 0, 0,
        )  # fmt: skip
    else:
        ehsize, phentsize = 52, 32
        ehdr = struct.pack(
            end + "16sHHIIIIIHHHHHH",
            ident, 2, machine, 1, entry, ehsize, 0, 0, ehsize, phentsize, n, 40, 0, 0,
        )  # fmt: skip
    offset = ehsize + phentsize * n
    phdrs = b""
    data = b""
    for seg in segments:
        memsz = len(seg.data) if seg.memsz is None else seg.memsz
        vaddr = seg.paddr if seg.vaddr is None else seg.vaddr
        if elfclass == 64:
            phdrs += struct.pack(
                end + "IIQQQQQQ",
                1, seg.flags, offset + len(data), vaddr, seg.paddr,
                len(seg.data), memsz, 0x1000,
            )  # fmt: skip
        else:
            phdrs += struct.pack(
                end + "IIIIIIII",
                1, offset + len(data), vaddr, seg.paddr, len(seg.data), memsz,
                seg.flags, 0x1000,
            )  # fmt: skip
        data += seg.data
    return ehdr + phdrs + data


class FakeCpu(Object, type_name="test-boot-cpu"):
    """A CPU as the loader sees it: it records its boot entry."""

    @override
    def instance_init(self) -> None:
        self.entries: list[tuple[int, dict[int, int]]] = []

    def set_boot_entry(self, pc: int, regs: Mapping[int, int]) -> None:
        self.entries.append((pc, dict(regs)))


@dataclass
class Virt:
    """A virt machine built in this process as the launcher builds it."""

    machine: VirtMachine
    cpus: list[FakeCpu] = field(default_factory=list)

    def read(self, addr: int, size: int) -> bytes:
        buf = bytearray(size)
        get_address_space_memory().read_buf(addr, buf)
        return bytes(buf)

    def write(self, addr: int, data: bytes) -> None:
        get_address_space_memory().write_buf(addr, data)


def build_virt(
    *,
    ncpus: int = 0,
    ram: int = 128 * MiB,
    done: bool = True,
    setup: Callable[[VirtMachine], None] | None = None,
    **images: str,
) -> Virt:
    """Build and reset virt with *images* (``kernel``, ``initrd``, ``dtb``, ...).

    The keys are the machine's property names; ``dtb-randomness`` is off
    unless *setup* turns it on. Whatever was built before is dropped.
    """
    reset_runtime()
    machine = VirtMachine()
    machine.ram_size = ram
    machine.dtb_randomness = False
    for key, value in images.items():
        machine.property_set(key, value)
    if setup is not None:
        setup(machine)
    machine.attach()
    cpus = []
    for i in range(ncpus):
        cpu = FakeCpu()
        object_property_add_child(machine, f"cpu{i}", cpu)
        cpus.append(cpu)
    machine.machine_init()
    if done:
        machine.machine_done()
        machine.reset()
    return Virt(machine, cpus)


@pytest.fixture
def files(tmp_path: Path) -> Callable[[str, bytes], str]:
    """Write a file in the test's directory and return its path."""

    def write(name: str, data: bytes) -> str:
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)

    return write
