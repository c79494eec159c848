"""The engine's view of guest memory (QEMU's TCG memory listener, ``cputlb.c``).

The engine mirrors an :class:`~qemu_api.memory.AddressSpace`: RAM and ROM ranges
are mapped from the very buffers of their memory regions (the one copy of guest
RAM that DMA, qtest and migration use too), everything else that is mapped goes
through the address space's dispatch, one call per guest access, with the BQL
taken for it (the vCPU thread lends it while guest code runs, see
:func:`~qemu_api.bql.bql_lend`). Addresses where nothing is mapped stay
unmapped in the engine, so an access there stops the guest at the faulting
instruction and the CPU takes a synchronous external abort, as on QEMU.

The engine maps whole pages (:data:`PAGE`): the page-aligned inside of a RAM
range is mapped directly; the pages around the edges of RAM, and every page with
an I/O region, are dispatched through the address space, which gets each byte
right (including holes in those pages, which read as zero and log an invalid
access).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Final, NamedTuple, final

from accel.tcg.engine_api import MMIO_READ, MMIO_WRITE, Engine
from qemu_api.bql import bql_lent_pair
from qemu_api.memory import AddressSpace

__all__ = ["PAGE", "EngineMemory"]

PAGE: Final = 0x1000
"""The granule of the engine's mappings."""


class _Mapping(NamedTuple):
    start: int
    size: int
    ram: bool
    ptr: int
    readonly: bool


@final
class EngineMemory:
    """Keeps one engine's mappings equal to an address space's flat view.

    Args:
        engine: the engine to map into.
        space: the address space the CPU sees (``address_space_memory``).
        before_access: called with the BQL held before each device access
            (the runtime brings the virtual clock up to date there), or None.
    """

    def __init__(
        self,
        engine: Engine,
        space: AddressSpace,
        before_access: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.space = space
        self._mapped: dict[_Mapping, object] = {}
        self._read: MMIO_READ = space.read
        self._write: MMIO_WRITE = space.write
        self._before = before_access

    def desired(self) -> dict[_Mapping, object]:
        """Return the mappings the current flat view asks for (and their buffers)."""
        want: dict[_Mapping, object] = {}
        io: list[tuple[int, int]] = []
        for fr in self.space.flat_ranges():
            end = fr.start + fr.size
            lo = -(-fr.start // PAGE) * PAGE
            hi = end // PAGE * PAGE
            if fr.mr.is_ram() and hi > lo:
                view = fr.mr.get_ram_ptr()[fr.offset_in_region + lo - fr.start :]
                buf = ctypes.c_char.from_buffer(view)
                ptr = ctypes.addressof(buf)
                want[_Mapping(lo, hi - lo, True, ptr, fr.readonly)] = buf
                # The partial pages at either end go through dispatch.
                if fr.start < lo:
                    io.append((lo - PAGE, lo))
                if end > hi:
                    io.append((hi, hi + PAGE))
            else:
                io.append((fr.start // PAGE * PAGE, -(-end // PAGE) * PAGE))
        io.sort()
        merged: list[tuple[int, int]] = []
        for a, b in io:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        for a, b in merged:
            want[_Mapping(a, min(b, 1 << 64) - a, False, 0, False)] = None
        return want

    def sync(self) -> None:
        """Map and unmap until the engine matches the flat view (BQL held)."""
        want = self.desired()
        for m in [m for m in self._mapped if m not in want]:
            self.engine.unmap(m.start, m.size)
            del self._mapped[m]
        for m, buf in want.items():
            if m in self._mapped:
                continue
            if m.ram:
                self.engine.map_ram(m.start, m.size, m.ptr, m.readonly)
            else:
                # The address space's own read/write, the BQL taken around
                # them and before_access called by the engine's callback (no
                # Python frame of their own); the vCPU thread has lent the BQL
                # (bql_lend) while guest code runs.
                take, release = bql_lent_pair()
                self.engine.map_mmio(
                    m.start,
                    m.size,
                    self._read,
                    self._write,
                    take,
                    release,
                    self._before,
                )
            self._mapped[m] = buf
