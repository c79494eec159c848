r"""Loading files into guest memory: ROM blobs and image readers (``hw/core/loader.c``).

QEMU never writes a guest image straight into RAM. Loaders register *ROM
blobs* (``rom_add_blob_fixed``, ``rom_add_file_mr``): the bytes and where they
go. :meth:`RomLoader.check_and_register_reset` checks that no two blobs
overlap once the machine is built, and :meth:`RomLoader.reset` copies every
blob into memory at each system reset, so ``system_reset`` brings the kernel,
the initrd and the DTB back even if the guest overwrote them. A blob that
lands in a ROM region is written once only, as QEMU does.

The image readers are here too: :func:`read_image` (with errors that say
what went wrong), :func:`load_image_gzipped_buffer`, and :func:`load_elf`,
which reads an ELF file with ``pyelftools`` and returns its loadable segments
as QEMU's ``load_elf`` places them (at their physical addresses).

>>> from qemu_api.memory import MemoryRegion, get_system_memory
>>> from qemu_api.memory import get_address_space_memory, reset_system_memory
>>> reset_system_memory()
>>> get_system_memory().add_subregion(
...     0x4000_0000, MemoryRegion.ram(None, "ram", 0x1000)
... )
>>> roms = RomLoader()
>>> _ = roms.add_blob_fixed("boot", b"\xaa\xbb", 0x4000_0010)
>>> roms.check_and_register_reset()
>>> roms.reset()
>>> buf = bytearray(2)
>>> _ = get_address_space_memory().read_buf(0x4000_0010, buf)
>>> bytes(buf)
b'\xaa\xbb'
>>> _ = roms.add_blob_fixed("late", b"\x01", 0x4000_0011)
>>> roms.check_and_register_reset()  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
qemu_api.error.Error: rom: requested regions overlap (rom late. free=0x...12, ...)
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, final

from qemu_api.error import Error
from qemu_api.memory import (
    MemoryRegion,
    get_address_space_memory,
)

__all__ = [
    "ELF_LOAD_FAILED",
    "ELF_LOAD_NOT_ELF",
    "ELF_LOAD_TOO_BIG",
    "ELF_LOAD_WRONG_ARCH",
    "ELF_LOAD_WRONG_ENDIAN",
    "EM_AARCH64",
    "EM_ARM",
    "LOAD_IMAGE_MAX_GUNZIP_BYTES",
    "ElfImage",
    "ElfLoadError",
    "ElfSegment",
    "Rom",
    "RomLoader",
    "is_elf",
    "load_elf",
    "load_elf_strerror",
    "load_image_gzipped_buffer",
    "read_image",
]

LOAD_IMAGE_MAX_GUNZIP_BYTES: Final = 256 << 20
"""The most a gzip-compressed image may expand to (QEMU's limit)."""

ELF_LOAD_FAILED: Final = -1
ELF_LOAD_NOT_ELF: Final = -2
ELF_LOAD_WRONG_ARCH: Final = -3
ELF_LOAD_WRONG_ENDIAN: Final = -4
ELF_LOAD_TOO_BIG: Final = -5

EM_ARM: Final = 40
"""``e_machine`` of 32-bit ARM ELF files."""
EM_AARCH64: Final = 183
"""``e_machine`` of AArch64 ELF files."""

_ELF_MAGIC: Final = b"\x7fELF"
_EI_NIDENT: Final = 16


def load_elf_strerror(error: int) -> str:
    """QEMU's text for an ``ELF_LOAD_*`` code (``load_elf_strerror``).

    >>> load_elf_strerror(ELF_LOAD_WRONG_ARCH)
    'The image is from incompatible architecture'
    """
    return {
        0: "No error",
        ELF_LOAD_FAILED: "Failed to load ELF",
        ELF_LOAD_NOT_ELF: "The image is not ELF",
        ELF_LOAD_WRONG_ARCH: "The image is from incompatible architecture",
        ELF_LOAD_WRONG_ENDIAN: "The image has incorrect endianness",
        ELF_LOAD_TOO_BIG: "The image segments are too big to load",
    }.get(error, "Unknown error")


class ElfLoadError(Error):
    """An ELF file that cannot be loaded; :attr:`code` is QEMU's ``ELF_LOAD_*``.

    The message is QEMU's text for the code, then what exactly was wrong.
    """

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{load_elf_strerror(code)} ({detail})")
        self.code = code


def read_image(filename: str, what: str) -> bytes:
    """Return the contents of *filename*, or raise an error naming *what* it is.

    Raises:
        Error: the file cannot be read (``could not load kernel 'F': No such
            file or directory``).
    """
    try:
        with open(filename, "rb") as f:
            return f.read()
    except OSError as e:
        raise Error(f"could not load {what} '{filename}': {e.strerror or e}") from None


def load_image_gzipped_buffer(
    data: bytes, filename: str, max_size: int = LOAD_IMAGE_MAX_GUNZIP_BYTES
) -> bytes | None:
    r"""Decompress a gzip-compressed image (``load_image_gzipped_buffer``).

    Returns None when *data* is not gzip data (it does not start with
    ``1f 8b``), so the caller loads it as it is.

    Raises:
        Error: the data is corrupt or truncated, or expands to more than
            *max_size* bytes.

    >>> import gzip
    >>> load_image_gzipped_buffer(gzip.compress(b"kernel"), "Image.gz")
    b'kernel'
    >>> load_image_gzipped_buffer(b"raw", "Image") is None
    True
    """
    if len(data) < 2 or data[0] != 0x1F or data[1] != 0x8B:
        return None
    limit = min(max_size, LOAD_IMAGE_MAX_GUNZIP_BYTES)
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise Error(
            f"{filename}: unable to decompress gzipped kernel file ({e})"
        ) from None
    if len(out) > limit:
        raise Error(
            f"{filename}: unable to decompress gzipped kernel file (it expands "
            f"to more than {limit} bytes)"
        )
    if not d.eof:
        raise Error(
            f"{filename}: unable to decompress gzipped kernel file (the gzip "
            "data is truncated)"
        )
    return out


# -- ELF ------------------------------------------------------------------------------


@final
@dataclass(frozen=True)
class ElfSegment:
    """One ``PT_LOAD`` segment: *data* at physical address *addr*, *mem_size* long.

    The bytes past ``len(data)`` up to *mem_size* are zeros (the BSS).
    """

    index: int
    addr: int
    data: bytes
    mem_size: int


@final
@dataclass(frozen=True)
class ElfImage:
    """An ELF file as QEMU's ``load_elf`` places it.

    Attributes:
        entry: the entry point, moved to its physical address when the
            executable segment that holds it has ``p_vaddr != p_paddr``.
        low: the lowest address a segment occupies.
        high: the first address above every segment.
        total_size: the sum of the segments' memory sizes (what ``load_elf``
            returns).
        segments: the loadable segments with a non-zero memory size.
    """

    entry: int
    low: int
    high: int
    total_size: int
    segments: tuple[ElfSegment, ...]


def is_elf(data: bytes) -> bool:
    """Return whether *data* starts with the ELF magic (``7f 45 4c 46``)."""
    return data[:4] == _ELF_MAGIC


def load_elf(data: bytes, elf_machine: int) -> ElfImage:
    """Read the loadable segments of an ELF file for *elf_machine*.

    QEMU's ``load_elf``: segments go to their physical addresses
    (``p_paddr``); segments with no memory size are skipped. The file is
    read with ``pyelftools`` (:mod:`hw.core.elf_reader`), imported on the
    first ELF kernel only: it takes longer to import than the rest of the
    emulator's start.

    Raises:
        ElfLoadError: not an ELF file, a file for another machine or word
            size, a big-endian file, or a malformed file.
    """
    if not is_elf(data):
        raise ElfLoadError(ELF_LOAD_NOT_ELF, "no ELF magic")
    if len(data) < _EI_NIDENT:
        raise ElfLoadError(ELF_LOAD_FAILED, "the ELF header is truncated")
    reader = importlib.import_module("hw.core.elf_reader")
    image: ElfImage = reader.read_elf(data, elf_machine)
    return image


# -- ROM blobs ------------------------------------------------------------------------


@final
@dataclass(eq=False)
class Rom:
    """One registered blob (QEMU's ``Rom``).

    Attributes:
        name: what it is (a file name, ``"bootloader"``, ``"dtb"``).
        data: the bytes copied at reset; a hook may change them.
        addr: the guest physical address, for blobs placed by address.
        romsize: how much memory the blob covers; past ``len(data)`` it is
            filled with zeros.
        mr: the memory region, for blobs loaded into a region (``-bios``).
        isrom: whether it lands in ROM (then it is written at the first
            reset only).
        before_copy: called with the blob before each copy (the DTB
            refreshes its ``rng-seed`` there).
    """

    name: str
    data: bytearray
    addr: int
    romsize: int
    mr: MemoryRegion | None = None
    isrom: bool = False
    before_copy: Callable[[Rom], None] | None = None
    written: bool = field(default=False, init=False)


def _fmt(addr: int) -> str:
    return f"0x{addr:016x}"


@final
class RomLoader:
    """A machine's ROM blobs (QEMU's ``roms`` list) and their reset copy.

    A board creates one, its loaders add blobs while the machine is built,
    and the machine calls :meth:`check_and_register_reset` once it is
    complete and :meth:`reset` at every system reset.
    """

    def __init__(self) -> None:
        self._roms: list[Rom] = []
        self._checked = False

    @property
    def roms(self) -> tuple[Rom, ...]:
        """The blobs, in address order (region blobs first)."""
        return tuple(self._roms)

    def _insert(self, rom: Rom) -> Rom:
        # QEMU's rom_insert: region blobs first, then by address.
        key = (rom.mr is None, rom.addr)
        pos = len(self._roms)
        for i, other in enumerate(self._roms):
            if (other.mr is None, other.addr) > key:
                pos = i
                break
        self._roms.insert(pos, rom)
        self._checked = False
        return rom

    def add_blob_fixed(
        self,
        name: str,
        data: bytes | bytearray,
        addr: int,
        *,
        romsize: int | None = None,
        before_copy: Callable[[Rom], None] | None = None,
    ) -> Rom:
        """Register *data* to be copied to address *addr* (``rom_add_blob_fixed``).

        Args:
            name: what it is, for error messages and ``info roms``.
            data: the bytes.
            addr: where they go.
            romsize: the memory the blob covers (at least ``len(data)``; the
                rest is zero-filled at each reset).
            before_copy: a hook run before each copy.
        """
        size = len(data) if romsize is None else max(romsize, len(data))
        return self._insert(
            Rom(name, bytearray(data), addr, size, before_copy=before_copy)
        )

    def add_file_mr(self, name: str, data: bytes, mr: MemoryRegion) -> Rom:
        """Register *data* for the start of region *mr* (``rom_add_file_mr``).

        Raises:
            Error: *mr* is not RAM or ROM, or *data* is larger than it.
        """
        if not mr.is_ram():
            raise Error(f"rom: '{name}' can only go into RAM or ROM, not '{mr.name}'")
        if len(data) > mr.size:
            raise Error(
                f"rom: '{name}' is {len(data)} bytes, larger than "
                f"'{mr.name}' ({mr.size} bytes)"
            )
        return self._insert(
            Rom(name, bytearray(data), mr.addr, len(data), mr=mr, isrom=mr.is_rom())
        )

    def check_and_register_reset(self) -> None:
        """Check the blobs once the machine is built (``rom_check_and_register_reset``).

        Blobs placed by address must not overlap and must land entirely in
        RAM or ROM (QEMU would silently drop the part that does not; a
        kernel cut short that way never boots).

        Raises:
            Error: two blobs overlap, or a blob is not all in RAM or ROM.
        """
        free = 0
        first = True
        mem = get_address_space_memory()
        for rom in self._roms:
            if rom.mr is not None:
                continue
            if not first and free > rom.addr:
                raise Error(
                    f"rom: requested regions overlap (rom {rom.name}. "
                    f"free={_fmt(free)}, addr={_fmt(rom.addr)})",
                    hint="Two images were asked to go to the same guest memory; "
                    "check the addresses of the -kernel, -initrd and -dtb files.\n",
                )
            first = False
            free = rom.addr + rom.romsize
            self._check_backed(mem.root, rom)
        self._checked = True

    @staticmethod
    def _check_backed(root: MemoryRegion, rom: Rom) -> None:
        addr, end = rom.addr, rom.addr + rom.romsize
        isrom = False
        while addr < end:
            found = _find_ram(root, addr)
            if found is None:
                raise Error(
                    f"rom: '{rom.name}' (0x{rom.addr:x}-0x{end - 1:x}) does not fit "
                    f"in guest RAM: nothing backs address 0x{addr:x}",
                    hint="Give the machine more memory with -m, or a smaller image.\n",
                )
            mr, mr_end = found
            isrom = isrom or mr.is_rom()
            addr = mr_end
        rom.isrom = isrom

    def reset(self, *, incoming: bool = False) -> None:
        """Copy every blob into guest memory (``rom_reset``).

        Args:
            incoming: an incoming migration will fill memory; copy nothing
                (as QEMU in the ``inmigrate`` state).
        """
        if incoming:
            return
        mem = get_address_space_memory()
        for rom in self._roms:
            if rom.isrom and rom.written:
                continue
            if rom.before_copy is not None:
                rom.before_copy(rom)
            if rom.mr is not None:
                host = rom.mr.get_ram_ptr()
                host[: len(rom.data)] = rom.data
            else:
                mem.write_rom(rom.addr, rom.data)
                pad = rom.romsize - len(rom.data)
                if pad:
                    mem.write_rom(rom.addr + len(rom.data), bytes(pad))
            rom.written = True


def _find_ram(root: MemoryRegion, addr: int) -> tuple[MemoryRegion, int] | None:
    """The RAM or ROM region that backs *addr* in *root*, and where it ends."""
    return _find_in(root, 0, addr)


def _find_in(mr: MemoryRegion, base: int, addr: int) -> tuple[MemoryRegion, int] | None:
    if not mr.enabled:
        return None
    end = base + mr.size
    target = mr.alias_target
    if target is not None:
        found = _find_in(target, base - mr.alias_offset, addr)
        return None if found is None else (found[0], min(found[1], end))
    if mr.is_ram():
        return mr, end
    # Subregions in priority order: the first that has RAM at addr wins;
    # a container is transparent where it holds nothing.
    for sub in mr.subregions:
        start = base + sub.addr
        if start <= addr < start + sub.size:
            found = _find_in(sub, start, addr)
            if found is not None:
                return found[0], min(found[1], end)
    return None
