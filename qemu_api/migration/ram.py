"""The iterative ``ram`` section: guest RAM in QEMU's migration stream.

This module mirrors the stream format of QEMU's ``migration/ram.c``
(section ``"ram"``, version 4), as QEMU 7.2 writes it for a precopy migration
without capabilities:

- the ``START`` section carries the block list: ``be64(total |
  RAM_SAVE_FLAG_MEM_SIZE)``, then for each block its counted name and its
  length as ``be64``, then ``be64(RAM_SAVE_FLAG_EOS)``;
- ``PART`` sections carry pages: ``be64(offset | flags)``, the block's counted
  name unless ``RAM_SAVE_FLAG_CONTINUE`` says "same block as the previous
  page", then one fill byte for a zero page (``RAM_SAVE_FLAG_ZERO``) or the
  page's bytes (``RAM_SAVE_FLAG_PAGE``); each section ends with
  ``be64(RAM_SAVE_FLAG_EOS)``;
- the ``END`` section carries what is left (nothing once the machine is
  stopped) and its end marker.

RAM blocks are the machine's RAM and ROM regions, named as QEMU names them
(``mach-virt.ram`` on virt, ``pc.ram`` on pc) and listed from the largest to
the smallest, as QEMU keeps its ``ram_list``.

>>> from qemu_api.memory import MemoryRegion
>>> from qemu_api.migration.qemu_file import QEMUFileWriter, QEMUFileReader
>>> ram = MemoryRegion.ram(None, "doc.ram", 2 * TARGET_PAGE_SIZE)
>>> ram.get_ram_ptr()[TARGET_PAGE_SIZE : TARGET_PAGE_SIZE + 2] = b"hi"
>>> blocks = [RAMBlock(ram)]
>>> f = QEMUFileWriter()
>>> ram_save_setup(f, blocks)
>>> stats = RamStats()
>>> ram_save_pages(f, blocks, stats)
>>> stats.duplicate, stats.normal
(1, 1)
>>> copy = MemoryRegion.ram(None, "doc.ram", 2 * TARGET_PAGE_SIZE)
>>> load = RamLoad([RAMBlock(copy)])
>>> r = QEMUFileReader(f.getvalue())
>>> load.parse(r, 4)
>>> load.parse(r, 4)
>>> load.apply()
>>> bytes(copy.get_ram_ptr()[TARGET_PAGE_SIZE : TARGET_PAGE_SIZE + 2])
b'hi'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, final

from qemu_api.error import Error
from qemu_api.memory import MemoryRegion, get_system_memory
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.qom import override

__all__ = [
    "RAM_SAVE_FLAG_CONTINUE",
    "RAM_SAVE_FLAG_EOS",
    "RAM_SAVE_FLAG_MEM_SIZE",
    "RAM_SAVE_FLAG_PAGE",
    "RAM_SAVE_FLAG_ZERO",
    "RAM_SECTION_VERSION",
    "TARGET_PAGE_SIZE",
    "RAMBlock",
    "RamLoad",
    "RamStats",
    "ram_blocks",
    "ram_save_complete",
    "ram_save_pages",
    "ram_save_setup",
]

TARGET_PAGE_SIZE: Final = 4096
"""The target page size of the aarch64 virt and x86 pc boards (12 bits)."""
RAM_SECTION_VERSION: Final = 4
"""The version of the ``ram`` section."""

RAM_SAVE_FLAG_FULL: Final = 0x01
RAM_SAVE_FLAG_ZERO: Final = 0x02
"""A page whose bytes all equal the one fill byte that follows."""
RAM_SAVE_FLAG_MEM_SIZE: Final = 0x04
"""The block list follows; the address field holds the total RAM size."""
RAM_SAVE_FLAG_PAGE: Final = 0x08
"""A whole page of bytes follows."""
RAM_SAVE_FLAG_EOS: Final = 0x10
"""The end of this section's RAM data."""
RAM_SAVE_FLAG_CONTINUE: Final = 0x20
"""The page is in the same block as the previous one (no block name)."""
_RAM_SAVE_FLAG_XBZRLE: Final = 0x40
_RAM_SAVE_FLAG_HOOK: Final = 0x80
_RAM_SAVE_FLAG_COMPRESS_PAGE: Final = 0x100
_RAM_SAVE_FLAG_MULTIFD_FLUSH: Final = 0x200
_PAGE_MASK: Final = TARGET_PAGE_SIZE - 1
_ZERO_PAGE: Final = bytes(TARGET_PAGE_SIZE)


@final
class RAMBlock:
    """A RAM or ROM region as migration sees it (QEMU's ``RAMBlock``).

    Args:
        mr: the region; its name is the block's ``idstr``.
    """

    __slots__ = ("idstr", "mr", "used_length")

    def __init__(self, mr: MemoryRegion) -> None:
        if not mr.is_ram():
            raise Error(f"memory region '{mr.name}' is not RAM")
        self.mr = mr
        self.idstr = mr.name
        """The block's name in the stream."""
        self.used_length = len(mr.get_ram_ptr())
        """The block's size in bytes."""

    def host(self) -> memoryview:
        """Return the block's bytes, writable, without copying."""
        return self.mr.get_ram_ptr()

    @override
    def __repr__(self) -> str:
        return f"RAMBlock('{self.idstr}', {self.used_length:#x})"


def ram_blocks(
    root: MemoryRegion | None = None, extra: Iterable[MemoryRegion] = ()
) -> list[RAMBlock]:
    """Return the RAM blocks reachable from ``root``, largest first.

    Every RAM or ROM region in the tree counts once, also when it is mapped
    through aliases; ``extra`` adds regions that are not mapped (a board's
    RAM before it is mapped).  Blocks of equal size keep the order in which
    they were found, as QEMU keeps its list sorted by size.

    Args:
        root: the tree to search; the system memory by default.
        extra: more RAM regions to include.

    Raises:
        Error: two blocks have the same name (the stream could not tell them
            apart).
    """
    found: list[MemoryRegion] = []
    seen: set[int] = set()

    def visit(mr: MemoryRegion) -> None:
        target = mr.alias_target
        if target is not None:
            visit(target)
            return
        if id(mr) in seen:
            return
        seen.add(id(mr))
        if mr.is_ram():
            found.append(mr)
        for sub in mr.subregions:
            visit(sub)

    visit(get_system_memory() if root is None else root)
    for mr in extra:
        visit(mr)
    blocks = [RAMBlock(mr) for mr in found]
    names: dict[str, RAMBlock] = {}
    for b in blocks:
        if b.idstr in names:
            raise Error(
                f"two RAM blocks are named '{b.idstr}'; migration identifies "
                "blocks by name, so give each RAM region a unique name"
            )
        names[b.idstr] = b
    return sorted(blocks, key=lambda b: -b.used_length)


@final
class RamStats:
    """Counters of a RAM migration, as ``query-migrate`` reports them.

    Attributes:
        normal: pages sent with their bytes.
        duplicate: zero pages (sent as one fill byte).
        transferred: bytes of the ``ram`` sections.
        total: bytes of RAM in the blocks.
    """

    __slots__ = ("duplicate", "normal", "total", "transferred")

    def __init__(self) -> None:
        self.normal = 0
        self.duplicate = 0
        self.transferred = 0
        self.total = 0

    @property
    def normal_bytes(self) -> int:
        """The bytes of the normal pages."""
        return self.normal * TARGET_PAGE_SIZE


def ram_save_setup(f: QEMUFileWriter, blocks: Iterable[RAMBlock]) -> None:
    """Write the block list that opens the ``ram`` section (``ram_save_setup``).

    Args:
        f: the stream, after the ``START`` section header.
        blocks: the blocks, as :func:`ram_blocks` lists them.
    """
    blocks = list(blocks)
    total = sum(b.used_length for b in blocks)
    f.put_be64(total | RAM_SAVE_FLAG_MEM_SIZE)
    for b in blocks:
        f.put_counted_string(b.idstr)
        f.put_be64(b.used_length)
    f.put_be64(RAM_SAVE_FLAG_EOS)


def ram_save_pages(
    f: QEMUFileWriter, blocks: Iterable[RAMBlock], stats: RamStats
) -> None:
    """Write every page of every block, then the end marker (one ``PART``).

    Zero pages take one fill byte, like QEMU's ``save_zero_page``; the other
    pages are written whole.  The block's name goes with the first page of
    each block; the following pages carry :data:`RAM_SAVE_FLAG_CONTINUE`.

    Args:
        f: the stream, after a ``PART`` section header.
        blocks: the blocks.
        stats: counters to update.
    """
    start = f.transferred()
    zero = _ZERO_PAGE
    size = TARGET_PAGE_SIZE
    put_be64 = f.put_be64
    put_byte = f.put_byte
    put_buffer = f.put_buffer
    for b in blocks:
        host = b.host()
        name = b.idstr
        stats.total += b.used_length
        first = True
        for offset in range(0, b.used_length, size):
            page = bytes(host[offset : offset + size])
            is_zero = page == zero
            flags = RAM_SAVE_FLAG_ZERO if is_zero else RAM_SAVE_FLAG_PAGE
            if first:
                put_be64(offset | flags)
                f.put_counted_string(name)
                first = False
            else:
                put_be64(offset | flags | RAM_SAVE_FLAG_CONTINUE)
            if is_zero:
                put_byte(0)
                stats.duplicate += 1
            else:
                put_buffer(page)
                stats.normal += 1
    put_be64(RAM_SAVE_FLAG_EOS)
    stats.transferred += f.transferred() - start


def ram_save_complete(f: QEMUFileWriter, stats: RamStats) -> None:
    """Write the ``END`` section's data: nothing left, and the end marker.

    The machine is stopped while it migrates, so no page was dirtied after
    :func:`ram_save_pages`.
    """
    start = f.transferred()
    f.put_be64(RAM_SAVE_FLAG_EOS)
    stats.transferred += f.transferred() - start


@final
class RamLoad:
    """Reads the ``ram`` sections of a stream and stores them at the end.

    :meth:`parse` reads one section's data (call it for ``START``, every
    ``PART`` and ``END``), checking every block name, size and offset;
    nothing is written to guest RAM until :meth:`apply`.

    Blocks of the stream that the destination lacks are listed in
    :attr:`skipped` and their pages are read and dropped; the caller decides
    whether that is an error.

    Args:
        blocks: the destination's blocks.
    """

    __slots__ = (
        "_blocks",
        "_last",
        "_named",
        "_pages",
        "_zeros",
        "skipped",
    )

    def __init__(self, blocks: Iterable[RAMBlock]) -> None:
        self._blocks = {b.idstr: b for b in blocks}
        self._last: RAMBlock | None = None
        self._named = False
        # (block, offset, page bytes) and (block, offset, fill byte).
        self._pages: list[tuple[RAMBlock, int, memoryview]] = []
        self._zeros: list[tuple[RAMBlock, int, int]] = []
        self.skipped: list[str] = []
        """The blocks of the stream the destination lacks."""

    def _block(self, name: str) -> RAMBlock | None:
        block = self._blocks.get(name)
        if block is None and name not in self.skipped:
            raise Error(
                f"section 'ram': a page names RAM block '{name}', which is not in "
                "the block list of the stream"
            )
        return block

    def parse(self, f: QEMUFileReader, version_id: int) -> None:
        """Read one section's RAM data, up to its end marker (``ram_load``).

        Raises:
            Error: an unknown version, flag, block or offset, a size that
                differs from the destination's block, or an early end.
        """
        if version_id != RAM_SECTION_VERSION:
            raise Error(
                f"section 'ram': version {version_id} is not supported "
                f"(expected {RAM_SECTION_VERSION})"
            )
        while True:
            at = f.pos
            header = f.get_be64()
            flags = header & _PAGE_MASK
            addr = header & ~_PAGE_MASK
            if not flags & ~RAM_SAVE_FLAG_CONTINUE:
                raise Error(
                    f"section 'ram': no RAM flags in the page header {header:#x} at "
                    f"stream offset {at:#x}"
                )
            if flags & RAM_SAVE_FLAG_MEM_SIZE:
                self._parse_sizes(f, addr)
                flags &= ~RAM_SAVE_FLAG_MEM_SIZE
            if flags & (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE):
                if not flags & RAM_SAVE_FLAG_CONTINUE:
                    self._last = self._block(f.get_counted_string())
                    self._named = True
                elif not self._named:
                    raise Error(
                        f"section 'ram': the page at stream offset {at:#x} "
                        "continues a block, but no block was named before"
                    )
                block = self._last
                if block is not None and addr + TARGET_PAGE_SIZE > block.used_length:
                    raise Error(
                        f"section 'ram': page at offset {addr:#x} is outside RAM "
                        f"block '{block.idstr}' ({block.used_length:#x} bytes)"
                    )
                if flags & RAM_SAVE_FLAG_ZERO:
                    fill = f.get_byte()
                    if block is not None:
                        self._zeros.append((block, addr, fill))
                else:
                    data = f.get_buffer(TARGET_PAGE_SIZE)
                    if block is not None:
                        self._pages.append((block, addr, data))
                flags &= ~(
                    RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_CONTINUE
                )
            if flags & _RAM_SAVE_FLAG_MULTIFD_FLUSH:
                flags &= ~_RAM_SAVE_FLAG_MULTIFD_FLUSH
            if flags & RAM_SAVE_FLAG_EOS:
                return
            if flags:
                raise Error(
                    f"section 'ram': unknown RAM flags {flags:#x} at stream offset "
                    f"{at:#x} (compression, XBZRLE and RDMA are not supported)"
                )

    def _parse_sizes(self, f: QEMUFileReader, total: int) -> None:
        remaining = total
        while remaining > 0:
            name = f.get_counted_string()
            length = f.get_be64()
            remaining -= length
            block = self._blocks.get(name)
            if block is None:
                # Reported by the caller with the other unknown sections.
                self.skipped.append(name)
                continue
            if length != block.used_length:
                raise Error(
                    f"section 'ram': RAM block '{name}' is {length:#x} bytes in the "
                    f"stream but {block.used_length:#x} bytes here; start the "
                    "destination with the same -m"
                )
        if remaining != 0:
            raise Error(
                f"section 'ram': the block sizes add up to {total - remaining:#x}, "
                f"not the announced total {total:#x}"
            )

    def pages(self) -> int:
        """Return how many pages (zero or not) will be stored."""
        return len(self._pages) + len(self._zeros)

    def apply(self) -> None:
        """Store the pages read by :meth:`parse` into guest RAM."""
        size = TARGET_PAGE_SIZE
        zero = _ZERO_PAGE
        hosts: dict[int, memoryview] = {}
        for block, addr, fill in self._zeros:
            host = hosts.get(id(block))
            if host is None:
                host = hosts[id(block)] = block.host()
            if fill == 0:
                if bytes(host[addr : addr + size]) != zero:
                    host[addr : addr + size] = zero
            else:
                host[addr : addr + size] = bytes([fill]) * size
        for block, addr, data in self._pages:
            host = hosts.get(id(block))
            if host is None:
                host = hosts[id(block)] = block.host()
            host[addr : addr + size] = data
