"""Tests of qemu_api.memory against the behaviour of QEMU's memory.c/physmem.c."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

import pytest

from qemu_api import bql, memory
from qemu_api.error import Error
from qemu_api.log import LOG_INVALID_MEM, qemu_set_log
from qemu_api.memory import (
    DEVICE_BIG_ENDIAN,
    DEVICE_LITTLE_ENDIAN,
    DEVICE_NATIVE_ENDIAN,
    MEMTX_ACCESS_ERROR,
    MEMTX_DECODE_ERROR,
    MEMTX_ERROR,
    MEMTX_OK,
    MEMTXATTRS_UNSPECIFIED,
    UINT64_MAX,
    AddressSpace,
    Endianness,
    GuestAddress,
    GuestMemory,
    MemoryRegion,
    MemoryRegionOps,
    MemTxAttrs,
    MemTxResult,
    MemTxResultSlot,
    MemTxValue,
    OpsImpl,
    OpsValid,
    get_address_space_memory,
    get_system_memory,
    memory_region_transaction,
    memory_region_transaction_begin,
    memory_region_transaction_commit,
    mtree_info,
    reset_system_memory,
    target_big_endian,
)
from qemu_api.qom import Container, Object, object_get_root


@pytest.fixture(autouse=True)
def _fresh_memory() -> Iterator[None]:
    """A new machine memory map, with invalid accesses logged to stderr."""
    reset_system_memory()
    qemu_set_log(LOG_INVALID_MEM)
    yield
    reset_system_memory()


# ---------------------------------------------------------------------------
# Helpers


class Recorder:
    """A device that logs its accesses and returns programmed values."""

    def __init__(self, default: int = 0) -> None:
        self.calls: list[tuple[str, int, int, int]] = []
        self.values: dict[tuple[int, int], int] = {}
        self.default = default

    def read(self, offset: int, size: int) -> int:
        self.calls.append(("r", offset, size, 0))
        return self.values.get((offset, size), self.default)

    def write(self, offset: int, value: int, size: int) -> None:
        self.calls.append(("w", offset, size, value))


class MemoryLike:
    """A device whose registers behave like memory in its byte order.

    Reading ``size`` bytes at ``offset`` gives the bytes at that offset, read
    in the device's byte order; a write stores the value's bytes likewise.
    """

    def __init__(self, order: Literal["little", "big"], size: int = 0x40) -> None:
        self.order: Literal["little", "big"] = order
        self.mem = bytearray((0x10 + i) & 0xFF for i in range(size + 8))
        self.calls: list[tuple[str, int, int]] = []

    def read(self, offset: int, size: int) -> int:
        self.calls.append(("r", offset, size))
        return int.from_bytes(self.mem[offset : offset + size], self.order)

    def write(self, offset: int, value: int, size: int) -> None:
        self.calls.append(("w", offset, size))
        self.mem[offset : offset + size] = value.to_bytes(size, self.order)


def recorder_ops(
    *,
    endianness: Endianness = DEVICE_LITTLE_ENDIAN,
    valid: OpsValid | None = None,
    impl: OpsImpl | None = None,
) -> MemoryRegionOps[Recorder]:
    return MemoryRegionOps[Recorder](
        read=Recorder.read,
        write=Recorder.write,
        endianness=endianness,
        valid=valid or OpsValid(),
        impl=impl or OpsImpl(),
    )


def memlike_ops(
    endianness: Endianness, impl: OpsImpl, valid: OpsValid | None = None
) -> MemoryRegionOps[MemoryLike]:
    return MemoryRegionOps[MemoryLike](
        read=MemoryLike.read,
        write=MemoryLike.write,
        endianness=endianness,
        impl=impl,
        valid=valid or OpsValid(min_access_size=1, max_access_size=8),
    )


def result_of(slot: MemTxResultSlot) -> MemTxResult:
    """Read a slot (a call, so mypy does not keep an earlier narrowing)."""
    return slot.value


def untyped(value):
    """Pass a value of the wrong type, to test the run-time checks."""
    return value


def space_with(*regions: tuple[int, MemoryRegion]) -> AddressSpace:
    root = MemoryRegion.container(None, "root", 0x10000)
    for offset, region in regions:
        root.add_subregion(offset, region)
    return AddressSpace(root, "test")


def invalid(kind: str, addr: int, size: int, region: str, reason: str) -> str:
    return (
        f"Invalid {kind} at addr 0x{addr:X}, size {size}, region '{region}', "
        f"reason: {reason}\n"
    )


# ---------------------------------------------------------------------------
# Results, attributes, ops validation


def test_memtx_result_values_are_qemus() -> None:
    assert (MEMTX_OK, MEMTX_ERROR, MEMTX_DECODE_ERROR, MEMTX_ACCESS_ERROR) == (
        0,
        1,
        2,
        4,
    )
    assert MEMTX_ERROR | MEMTX_DECODE_ERROR == 3
    assert isinstance(MEMTX_ERROR | MEMTX_DECODE_ERROR, MemTxResult)


def test_memtx_attrs() -> None:
    assert MEMTXATTRS_UNSPECIFIED.unspecified
    attrs = MemTxAttrs(secure=True, requester_id=0x0108)
    assert attrs.secure
    assert not attrs.unspecified
    assert attrs.requester_id == 0x108
    with pytest.raises(Error, match=r"requester_id 0x10000 does not fit in 16 bits"):
        MemTxAttrs(requester_id=0x10000)


def test_result_slot_collects_failures_and_clears() -> None:
    slot = MemTxResultSlot()
    space = space_with()
    assert space.read(0x10, 4, result=slot) == 0
    assert result_of(slot) is MEMTX_DECODE_ERROR
    ram = MemoryRegion.ram(None, "ram", 0x100)
    get_system_memory().add_subregion(0, ram)
    get_address_space_memory().read(0, 4, result=slot)
    assert result_of(slot) is MEMTX_DECODE_ERROR  # success leaves it unchanged
    slot.clear()
    assert result_of(slot) is MEMTX_OK
    assert repr(slot) == "MemTxResultSlot(<MemTxResult.MEMTX_OK: 0>)"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: OpsValid(min_access_size=4, max_access_size=2),
            r"OpsValid: min_access_size \(4\) is larger than max_access_size \(2\)",
        ),
        (
            lambda: OpsValid(min_access_size=3, max_access_size=4),
            r"OpsValid: min_access_size is 3; expected 1, 2, 4 or 8 bytes",
        ),
        (
            lambda: OpsValid(min_access_size=2),
            r"max_access_size is 0, which QEMU reads as 'every size is valid'",
        ),
        (
            lambda: OpsImpl(min_access_size=8, max_access_size=4),
            r"OpsImpl: min_access_size \(8\) is larger than max_access_size \(4\)",
        ),
        (
            lambda: OpsImpl(min_access_size=8),
            r"larger than max_access_size \(4 by default\)",
        ),
        (lambda: OpsImpl(max_access_size=16), r"OpsImpl: max_access_size is 16"),
    ],
)
def test_ops_size_validation(make: Callable[[], object], message: str) -> None:
    with pytest.raises(Error, match=message):
        make()


def test_ops_callbacks_validation() -> None:
    with pytest.raises(Error, match="no write callback; expected write= or") as err:
        MemoryRegionOps[Recorder](read=Recorder.read)
    assert err.value.hint is not None
    assert "LOG_GUEST_ERROR" in err.value.hint
    with pytest.raises(Error, match="no read callback"):
        MemoryRegionOps[Recorder](write=Recorder.write)

    def read_attrs(
        dev: Recorder, offset: int, size: int, attrs: MemTxAttrs
    ) -> tuple[MemTxResult, int]:
        return MEMTX_OK, 0

    with pytest.raises(Error, match="both read= and read_with_attrs= are set"):
        MemoryRegionOps[Recorder](
            read=Recorder.read, read_with_attrs=read_attrs, write=Recorder.write
        )
    with pytest.raises(Error, match=r"impl\.unaligned is set but valid\.unaligned"):
        MemoryRegionOps[Recorder](
            read=Recorder.read, write=Recorder.write, impl=OpsImpl(unaligned=True)
        )


def test_ops_defaults_are_qemus() -> None:
    ops = recorder_ops(endianness=DEVICE_NATIVE_ENDIAN)
    assert ops.valid == OpsValid(min_access_size=0, max_access_size=0)
    assert ops.impl == OpsImpl(min_access_size=0, max_access_size=0)
    assert ops.endianness is DEVICE_NATIVE_ENDIAN
    assert [e.value for e in Endianness] == [0, 1, 2]


# ---------------------------------------------------------------------------
# Region kinds and attributes


def test_container_attributes() -> None:
    owner = Container()
    c = MemoryRegion.container(owner, "bus", 0x1000)
    assert (c.name, c.owner, c.size, c.addr, c.priority) == ("bus", owner, 0x1000, 0, 0)
    assert c.enabled
    assert not c.readonly
    assert not c.is_ram()
    assert not c.is_rom()
    assert c.parent_container is None
    assert c.alias_target is None
    assert c.subregions == ()
    assert not c.is_mapped()
    assert repr(c) == "<MemoryRegion 'bus' container size=0x1000>"


def test_size_uint64_max_means_2_64() -> None:
    assert MemoryRegion.container(None, "all", UINT64_MAX).size == 1 << 64
    assert get_system_memory().size == 1 << 64
    with pytest.raises(Error, match=r"size -1 is out of range; expected 0 to 2\*\*64"):
        MemoryRegion.container(None, "bad", -1)
    with pytest.raises(Error, match="size 36893488147419103232 is out of range"):
        MemoryRegion.ram(None, "bad", 1 << 65)


def test_io_region_calls_ops_with_region_offsets() -> None:
    dev = Recorder(default=0x1234)
    mr = MemoryRegion.io(None, "dev", 0x100, recorder_ops(), dev)
    assert mr.opaque is dev
    assert not mr.is_ram()
    space = space_with((0x2000, mr))
    assert space.read(0x2010, 4) == 0x1234
    assert space.write(0x2014, 0xAB, 2) is MEMTX_OK
    assert dev.calls == [("r", 0x10, 4, 0), ("w", 0x14, 2, 0xAB)]


def test_io_region_with_opaque_none() -> None:
    seen: list[object] = []

    def read(opaque: None, offset: int, size: int) -> int:
        seen.append(opaque)
        return 7

    def write(opaque: None, offset: int, value: int, size: int) -> None:
        seen.append(value)

    ops = MemoryRegionOps[None](read=read, write=write)
    space = space_with((0, MemoryRegion.io(None, "n", 0x10, ops, None)))
    assert space.read(0, 4) == 7
    space.write(0, 9, 4)
    assert seen == [None, 9]


def test_io_requires_ops() -> None:
    with pytest.raises(Error, match="ops is a dict; expected a MemoryRegionOps"):
        MemoryRegion.io(None, "x", 4, untyped({}), None)


def test_ram_region_is_zero_copy() -> None:
    ram = MemoryRegion.ram(None, "ram", 0x100)
    assert ram.is_ram()
    assert not ram.is_rom()
    space = space_with((0x1000, ram))
    view = ram.get_ram_ptr()
    view[0:4] = b"\x78\x56\x34\x12"
    assert space.ldl_le(0x1000) == 0x12345678
    assert space.stw_be(0x1010, 0xBEEF) is MEMTX_OK
    assert bytes(view[0x10:0x12]) == b"\xbe\xef"
    assert len(view) == 0x100
    assert not view.readonly


def test_get_ram_ptr_of_alias_and_of_io() -> None:
    ram = MemoryRegion.ram(None, "ram", 0x100)
    alias = MemoryRegion.alias(None, "win", ram, 0x40, 0x20)
    alias.get_ram_ptr()[0] = 0x99
    assert ram.get_ram_ptr()[0x40] == 0x99
    dev = Recorder()
    io = MemoryRegion.io(None, "dev", 4, recorder_ops(), dev)
    with pytest.raises(Error, match="memory region 'dev' is not RAM; get_ram_ptr"):
        io.get_ram_ptr()


def test_rom_reads_and_rejects_writes(capsys: pytest.CaptureFixture[str]) -> None:
    rom = MemoryRegion.rom(None, "bios", 0x100)
    assert rom.is_rom()
    assert rom.is_ram()
    assert rom.readonly
    rom.get_ram_ptr()[4:8] = b"\x01\x02\x03\x04"
    space = space_with((0x8000, rom))
    assert space.ldl_le(0x8004) == 0x04030201
    assert space.stl_le(0x8004, 0xFFFFFFFF) is MEMTX_DECODE_ERROR
    assert space.write(0x8004, 0, 4) is MEMTX_DECODE_ERROR
    assert bytes(rom.get_ram_ptr()[4:8]) == b"\x01\x02\x03\x04"
    # A buffer write is cut into the largest accesses the (RAM) ops allow.
    assert space.write_buf(0x8000, bytes(8)) is MEMTX_DECODE_ERROR
    assert capsys.readouterr().err == (
        invalid("write", 4, 4, "bios", "rejected") * 2
        + invalid("write", 0, 4, "bios", "rejected")
        + invalid("write", 4, 4, "bios", "rejected")
    )
    assert bytes(rom.get_ram_ptr()[0:8]) == b"\x00\x00\x00\x00\x01\x02\x03\x04"


def test_rom_is_written_by_loaders_and_debug_accesses() -> None:
    rom = MemoryRegion.rom(None, "bios", 0x10)
    dev = Recorder()
    io = MemoryRegion.io(None, "dev", 0x10, recorder_ops(), dev)
    space = space_with((0, rom), (0x10, io))
    assert space.write_rom(0x0C, b"\xaa" * 8) is MEMTX_OK
    assert bytes(rom.get_ram_ptr()[0x0C:0x10]) == b"\xaa" * 4
    assert dev.calls == []  # I/O is skipped
    debug = MemTxAttrs(debug=True)
    assert space.stb(0, 0x55, debug) is MEMTX_OK
    assert space.write_buf(1, b"\x66", debug) is MEMTX_OK
    assert bytes(rom.get_ram_ptr()[0:2]) == b"\x55\x66"


def test_set_readonly_makes_ram_reject_writes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ram = MemoryRegion.ram(None, "ram", 0x10)
    space = space_with((0, ram))
    ram.set_readonly(True)
    assert space.stb(0, 1) is MEMTX_DECODE_ERROR
    assert "region 'ram', reason: rejected" in capsys.readouterr().err
    ram.set_readonly(False)
    assert space.stb(0, 1) is MEMTX_OK
    assert space.ldub(0) == 1


def test_alias_maps_a_window() -> None:
    ram = MemoryRegion.ram(None, "ram", 0x1000)
    ram.get_ram_ptr()[0x800:0x804] = b"\x11\x22\x33\x44"
    alias = MemoryRegion.alias(None, "hi", ram, 0x800, 0x100)
    assert alias.alias_target is ram
    assert alias.alias_offset == 0x800
    assert not ram.is_mapped()
    space = space_with((0x4000, alias))
    assert ram.is_mapped()  # through the alias
    assert space.ldl_le(0x4000) == 0x44332211
    assert space.ldub(0x4100, result=(slot := MemTxResultSlot())) == 0
    assert result_of(slot) is MEMTX_DECODE_ERROR  # past the window
    alias.set_alias_offset(0x801)
    assert space.ldub(0x4000) == 0x22
    with pytest.raises(Error, match="set_alias_offset: memory region 'ram' is not"):
        ram.set_alias_offset(0)


def test_alias_of_io_region_forwards_offsets() -> None:
    dev = Recorder(default=5)
    io = MemoryRegion.io(None, "dev", 0x100, recorder_ops(), dev)
    alias = MemoryRegion.alias(None, "dev-alias", io, 0x20, 0x10)
    space = space_with((0x100, io), (0x1000, alias))
    assert space.read(0x1004, 4) == 5
    assert dev.calls == [("r", 0x24, 4, 0)]
    assert alias.dispatch_read(0x8, 4) == MemTxValue(MEMTX_OK, 5)
    assert dev.calls[-1] == ("r", 0x28, 4, 0)


def test_alias_of_alias_counts_as_mapped() -> None:
    ram = MemoryRegion.ram(None, "ram", 0x100)
    a1 = MemoryRegion.alias(None, "a1", ram, 0, 0x100)
    a2 = MemoryRegion.alias(None, "a2", a1, 0x10, 0x10)
    c = MemoryRegion.container(None, "c", 0x100)
    c.add_subregion(0, a2)
    assert ram.is_mapped()
    assert a1.is_mapped()
    c.del_subregion(a2)
    assert not ram.is_mapped()
    assert not a1.is_mapped()


# ---------------------------------------------------------------------------
# Topology: containers, priorities, enable/disable, moves


def test_region_can_be_in_only_one_container() -> None:
    ram = MemoryRegion.ram(None, "ram", 0x10)
    c1 = MemoryRegion.container(None, "c1", 0x100)
    c2 = MemoryRegion.container(None, "c2", 0x100)
    c1.add_subregion(0, ram)
    with pytest.raises(
        Error, match="'ram' is already mapped in 'c1'; a region can"
    ) as e:
        c2.add_subregion(0, ram)
    assert e.value.hint is not None
    assert "c1.del_subregion(region)" in e.value.hint
    c1.del_subregion(ram)
    c2.add_subregion(0x10, ram)
    assert ram.parent_container is c2
    assert ram.addr == 0x10


def test_cycles_are_refused() -> None:
    outer = MemoryRegion.container(None, "outer", 0x100)
    inner = MemoryRegion.container(None, "inner", 0x100)
    outer.add_subregion(0, inner)
    with pytest.raises(Error, match="mapping 'outer' in 'inner' would make a cycle"):
        inner.add_subregion(0, outer)
    with pytest.raises(Error, match="would make a cycle"):
        outer.add_subregion_overlap(0, outer, 1)


def test_del_subregion_errors() -> None:
    c = MemoryRegion.container(None, "c", 0x100)
    other = MemoryRegion.container(None, "other", 0x100)
    ram = MemoryRegion.ram(None, "ram", 0x10)
    with pytest.raises(Error, match="'ram' is not mapped anywhere, not in 'c'"):
        c.del_subregion(ram)
    other.add_subregion(0, ram)
    with pytest.raises(Error, match="'ram' is mapped in 'other', not in 'c'"):
        c.del_subregion(ram)


def test_add_subregion_checks_arguments() -> None:
    c = MemoryRegion.container(None, "c", 0x100)
    with pytest.raises(Error, match="add_subregion: expected a MemoryRegion, got int"):
        c.add_subregion(0, untyped(5))
    with pytest.raises(Error, match="mapping 'r': address -16 is out of range"):
        c.add_subregion(-16, MemoryRegion.ram(None, "r", 1))


def test_higher_priority_wins_and_lower_shows_around_it() -> None:
    low = MemoryRegion.ram(None, "low", 0x1000)
    low.get_ram_ptr()[:] = b"\x11" * 0x1000
    dev = Recorder(default=0xEE)
    high = MemoryRegion.io(None, "high", 0x100, recorder_ops(), dev)
    root = MemoryRegion.container(None, "root", 0x10000)
    root.add_subregion_overlap(0, low, 0)
    root.add_subregion_overlap(0x800, high, 1)
    space = AddressSpace(root, "prio")
    assert [space.ldub(a) for a in (0x7FF, 0x800, 0x8FF, 0x900)] == [
        0x11,
        0xEE,
        0xEE,
        0x11,
    ]
    assert mtree_info(flatview=True).split("FlatView #1\n")[1].split("\n\n")[0] == (
        ' AS "prio", root: root\n'
        " Root memory region: root\n"
        "  0000000000000000-00000000000007ff (prio 0, ram): low\n"
        "  0000000000000800-00000000000008ff (prio 1, i/o): high\n"
        "  0000000000000900-0000000000000fff (prio 0, ram): low @0000000000000900"
    )


def test_equal_priority_last_added_wins() -> None:
    first = MemoryRegion.ram(None, "first", 0x100)
    second = MemoryRegion.ram(None, "second", 0x100)
    first.get_ram_ptr()[0] = 1
    second.get_ram_ptr()[0] = 2
    space = space_with((0, first), (0, second))
    assert space.ldub(0) == 2
    assert [r.name for r in space.root.subregions] == ["second", "first"]


def test_subregion_order_follows_qemus_insertion() -> None:
    c = MemoryRegion.container(None, "c", 0x1000)
    names = ["a", "b", "c", "d", "e"]
    prios = [0, 2, 0, -1, 2]
    for name, prio in zip(names, prios, strict=True):
        c.add_subregion_overlap(0, MemoryRegion.ram(None, name, 1), prio)
    # Inserted before the first sibling of lower or equal priority.
    assert [r.name for r in c.subregions] == ["e", "b", "c", "a", "d"]
    assert [r.priority for r in c.subregions] == [2, 2, 0, 0, -1]


def test_negative_priority_is_a_background() -> None:
    bg = MemoryRegion.ram(None, "bg", 0x1000)
    bg.get_ram_ptr()[:] = b"\xbb" * 0x1000
    fg = MemoryRegion.ram(None, "fg", 0x10)
    fg.get_ram_ptr()[:] = b"\xff" * 0x10
    root = MemoryRegion.container(None, "root", 0x1000)
    root.add_subregion(0x10, fg)
    root.add_subregion_overlap(0, bg, -1)
    space = AddressSpace(root)
    assert (space.ldub(0x0F), space.ldub(0x10), space.ldub(0x20)) == (0xBB, 0xFF, 0xBB)


def test_container_priority_covers_its_contents_but_not_its_holes() -> None:
    b = MemoryRegion.ram(None, "b", 0x1000)
    b.get_ram_ptr()[:] = b"\x0b" * 0x1000
    a = MemoryRegion.container(None, "a", 0x1000)
    a_child = MemoryRegion.ram(None, "a-child", 0x10)
    a_child.get_ram_ptr()[:] = b"\x0a" * 0x10
    a.add_subregion(0x100, a_child)
    root = MemoryRegion.container(None, "root", 0x1000)
    root.add_subregion_overlap(0, a, 1)
    root.add_subregion_overlap(0, b, 0)
    space = AddressSpace(root)
    # The container does not terminate: where it has no child, b shows.
    assert (space.ldub(0x0), space.ldub(0x100), space.ldub(0x110)) == (0xB, 0xA, 0xB)


def test_subregion_is_clipped_by_its_container() -> None:
    ram = MemoryRegion.ram(None, "ram", 0x100)
    small = MemoryRegion.container(None, "small", 0x10)
    small.add_subregion(0, ram)
    space = space_with((0x1000, small))
    assert space.stb(0x100F, 1) is MEMTX_OK
    assert space.stb(0x1010, 1) is MEMTX_DECODE_ERROR


def test_enable_disable(capsys: pytest.CaptureFixture[str]) -> None:
    under = MemoryRegion.ram(None, "under", 0x100)
    under.get_ram_ptr()[0] = 0x55
    dev = Recorder(default=0xAA)
    over = MemoryRegion.io(None, "over", 0x100, recorder_ops(), dev)
    root = MemoryRegion.container(None, "root", 0x1000)
    root.add_subregion_overlap(0, over, 1)
    space = AddressSpace(root)
    assert space.ldub(0) == 0xAA
    over.set_enabled(False)
    assert not over.enabled
    assert space.ldub(0) == 0  # nothing below yet
    assert capsys.readouterr().err == invalid("read", 0, 1, "(null)", "rejected")
    root.add_subregion(0, under)
    assert space.ldub(0) == 0x55  # shows through the disabled region
    over.set_enabled(True)
    assert space.ldub(0) == 0xAA
    over.set_enabled(True)  # no change, no render
    root.set_enabled(False)
    assert space.ldub(0) == 0


def test_set_address_moves_and_readds() -> None:
    dev = Recorder(default=1)
    io = MemoryRegion.io(None, "dev", 0x10, recorder_ops(), dev)
    other = MemoryRegion.ram(None, "other", 0x10)
    space = space_with((0x100, io), (0x200, other))
    io.set_address(0x200)
    assert io.addr == 0x200
    assert space.read(0x200, 4) == 1  # re-added last: wins over 'other'
    assert space.read(0x100, 4) == 0
    assert [r.name for r in space.root.subregions] == ["dev", "other"]
    unmapped = MemoryRegion.ram(None, "loose", 4)
    unmapped.set_address(0x40)
    assert unmapped.addr == 0x40


def test_set_size() -> None:
    ram = MemoryRegion.ram(None, "ram", 0x100)
    space = space_with((0, ram))
    ram.set_size(0x10)
    assert ram.size == 0x10
    assert space.stb(0x10, 1) is MEMTX_DECODE_ERROR
    ram.set_size(0x100)
    assert space.stb(0x10, 1) is MEMTX_OK
    with pytest.raises(Error, match="RAM region 'ram' has 0x100 bytes of storage"):
        ram.set_size(0x200)
    c = MemoryRegion.container(None, "c", 0)
    c.set_size(UINT64_MAX)
    assert c.size == 1 << 64


# ---------------------------------------------------------------------------
# Transactions


def test_transaction_batches_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    root = MemoryRegion.container(None, "root", 0x10000)
    space = AddressSpace(root, "batch")
    renders: list[str] = []
    original = AddressSpace._update_topology

    def counting(self: AddressSpace) -> None:
        renders.append(self.name)
        original(self)

    monkeypatch.setattr(AddressSpace, "_update_topology", counting)
    ram = [MemoryRegion.ram(None, f"r{i}", 0x10) for i in range(4)]
    with memory_region_transaction():
        for i, region in enumerate(ram):
            root.add_subregion(i * 0x10, region)
        with memory_region_transaction():  # nested: still batched
            ram[0].set_enabled(False)
        assert renders == []
        assert space.stb(0x10, 1) is MEMTX_DECODE_ERROR  # the old view
    assert renders.count("batch") == 1
    assert space.stb(0x10, 1) is MEMTX_OK
    assert space.stb(0x00, 1) is MEMTX_DECODE_ERROR  # r0 disabled
    renders.clear()
    root.add_subregion(0x100, MemoryRegion.ram(None, "late", 1))
    assert renders.count("batch") == 1  # outside a transaction: at once


def test_transaction_begin_commit_functions() -> None:
    root = MemoryRegion.container(None, "root", 0x100)
    space = AddressSpace(root)
    memory_region_transaction_begin()
    root.add_subregion(0, MemoryRegion.ram(None, "r", 0x10))
    assert space.stb(0, 1) is MEMTX_DECODE_ERROR
    memory_region_transaction_commit()
    assert space.stb(0, 1) is MEMTX_OK


def test_commit_without_begin() -> None:
    with pytest.raises(Error, match=r"memory_region_transaction_commit\(\) without a"):
        memory_region_transaction_commit()


def test_topology_changes_need_the_bql() -> None:
    c = MemoryRegion.container(None, "c", 0x100)
    space = AddressSpace(c, "locked")
    ram = MemoryRegion.ram(None, "r", 1)
    bql.bql_unlock()
    try:
        with pytest.raises(bql.BqlNotHeldError, match="changing the memory topology"):
            c.add_subregion(0, ram)
        with pytest.raises(bql.BqlNotHeldError, match="changing the memory topology"):
            ram.set_address(0x10)
        with pytest.raises(bql.BqlNotHeldError):
            memory_region_transaction_begin()
    finally:
        bql.bql_lock()
    # Nothing changed and the transactions stayed balanced.
    assert ram.parent_container is None
    assert ram.addr == 0
    c.add_subregion(0x10, ram)
    assert space.stb(0x10, 1) is MEMTX_OK


def test_commit_without_the_bql_keeps_transactions_balanced() -> None:
    c = MemoryRegion.container(None, "c", 0x100)
    space = AddressSpace(c, "late")
    memory_region_transaction_begin()
    c.add_subregion(0, MemoryRegion.ram(None, "r", 1))
    bql.bql_unlock()
    try:
        with pytest.raises(bql.BqlNotHeldError):
            memory_region_transaction_commit()
    finally:
        bql.bql_lock()
    assert space.stb(0, 1) is MEMTX_DECODE_ERROR  # not rendered yet
    with memory_region_transaction():
        pass
    assert space.stb(0, 1) is MEMTX_OK


def test_address_space_checks_root_and_destroy() -> None:
    with pytest.raises(Error, match="AddressSpace 'x': root is a str; expected"):
        AddressSpace(untyped("root"), "x")
    root = MemoryRegion.container(None, "root", 0x100)
    space = AddressSpace(root, "gone")
    assert space.name == "gone"
    assert space.root is root
    assert repr(space) == "<AddressSpace 'gone' root='root'>"
    space.destroy()
    root.add_subregion(0, MemoryRegion.ram(None, "r", 1))
    assert space.stb(0, 1) is MEMTX_DECODE_ERROR  # no longer rendered
    assert "address-space: gone" not in mtree_info()


# ---------------------------------------------------------------------------
# Dispatch: unassigned, valid rules, accepts


def test_unassigned_access(capsys: pytest.CaptureFixture[str]) -> None:
    space = get_address_space_memory()
    slot = MemTxResultSlot()
    assert space.read(0x12345678, 4, result=slot) == 0
    assert result_of(slot) is MEMTX_DECODE_ERROR
    assert space.write(0x12345678, 1, 2) is MEMTX_DECODE_ERROR
    assert space.ldq_be(0xFFFF_FFFF_FFFF_FFF8) == 0
    assert capsys.readouterr().err == (
        invalid("read", 0x12345678, 4, "(null)", "rejected")
        + invalid("write", 0x12345678, 2, "(null)", "rejected")
        + invalid("read", 0xFFFFFFFFFFFFFFF8, 8, "(null)", "rejected")
    )


def test_unassigned_access_is_not_logged_without_the_mask(
    capsys: pytest.CaptureFixture[str],
) -> None:
    qemu_set_log(0)
    assert get_address_space_memory().read(0x100, 4) == 0
    assert capsys.readouterr().err == ""


def test_invalid_size_and_unaligned(capsys: pytest.CaptureFixture[str]) -> None:
    dev = Recorder(default=7)
    ops = recorder_ops(valid=OpsValid(min_access_size=4, max_access_size=4))
    space = space_with((0x1000, MemoryRegion.io(None, "regs", 0x100, ops, dev)))
    slot = MemTxResultSlot()
    assert space.read(0x1000, 1, result=slot) == 0
    assert space.read(0x1000, 8, result=slot) == 0
    assert space.read(0x1002, 4, result=slot) == 0
    assert space.write(0x1006, 5, 4) is MEMTX_DECODE_ERROR
    assert result_of(slot) is MEMTX_DECODE_ERROR
    assert dev.calls == []
    assert capsys.readouterr().err == (
        invalid("read", 0, 1, "regs", "invalid size (min:4 max:4)")
        + invalid("read", 0, 8, "regs", "invalid size (min:4 max:4)")
        + invalid("read", 2, 4, "regs", "unaligned")
        + invalid("write", 6, 4, "regs", "unaligned")
    )
    assert space.read(0x1004, 4) == 7


def test_valid_unaligned_lets_the_device_see_it() -> None:
    dev = Recorder(default=3)
    ops = recorder_ops(valid=OpsValid(max_access_size=4, unaligned=True))
    space = space_with((0, MemoryRegion.io(None, "u", 0x100, ops, dev)))
    assert space.read(0x3, 4) == 3
    assert dev.calls == [("r", 3, 4, 0)]


def test_valid_max_zero_accepts_every_size() -> None:
    dev = Recorder(default=1)
    space = space_with((0, MemoryRegion.io(None, "any", 0x100, recorder_ops(), dev)))
    slot = MemTxResultSlot()
    space.read(0, 8, result=slot)
    assert result_of(slot) is MEMTX_OK
    assert dev.calls == [("r", 0, 4, 0), ("r", 4, 4, 0)]  # impl max 4 by default


def test_accepts_hook(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[int, int, bool, MemTxAttrs]] = []

    def accepts(
        dev: Recorder, offset: int, size: int, is_write: bool, attrs: MemTxAttrs
    ) -> bool:
        seen.append((offset, size, is_write, attrs))
        return attrs.secure

    ops = MemoryRegionOps[Recorder](
        read=Recorder.read, write=Recorder.write, accepts=accepts
    )
    dev = Recorder(default=9)
    space = space_with((0, MemoryRegion.io(None, "sec", 0x100, ops, dev)))
    secure = MemTxAttrs(secure=True)
    assert space.read(0x10, 4) == 0
    assert space.read(0x10, 4, secure) == 9
    assert space.write(0x14, 1, 4) is MEMTX_DECODE_ERROR
    assert space.write(0x14, 1, 4, secure) is MEMTX_OK
    assert seen == [
        (0x10, 4, False, MEMTXATTRS_UNSPECIFIED),
        (0x10, 4, False, secure),
        (0x14, 4, True, MEMTXATTRS_UNSPECIFIED),
        (0x14, 4, True, secure),
    ]
    assert capsys.readouterr().err == (
        invalid("read", 0x10, 4, "sec", "rejected")
        + invalid("write", 0x14, 4, "sec", "rejected")
    )


def test_with_attrs_callbacks_report_errors() -> None:
    log: list[tuple[str, int, int, MemTxAttrs]] = []

    def read_attrs(
        dev: Recorder, offset: int, size: int, attrs: MemTxAttrs
    ) -> tuple[MemTxResult, int]:
        log.append(("r", offset, size, attrs))
        if offset >= 0x84:
            return MEMTX_ERROR, 0
        return MEMTX_OK, 0x42

    def write_attrs(
        dev: Recorder, offset: int, value: int, size: int, attrs: MemTxAttrs
    ) -> MemTxResult:
        log.append(("w", offset, value, attrs))
        return MEMTX_ERROR if attrs.user else MEMTX_OK

    ops = MemoryRegionOps[Recorder](
        read_with_attrs=read_attrs,
        write_with_attrs=write_attrs,
        impl=OpsImpl(min_access_size=4, max_access_size=4),
    )
    dev = Recorder()
    space = space_with((0, MemoryRegion.io(None, "attr", 0x100, ops, dev)))
    user = MemTxAttrs(user=True)
    slot = MemTxResultSlot()
    assert space.read(0x10, 4, user, slot) == 0x42
    assert result_of(slot) is MEMTX_OK
    assert space.read(0x84, 4, user, slot) == 0
    assert result_of(slot) is MEMTX_ERROR
    assert space.write(0x10, 5, 4, user) is MEMTX_ERROR
    assert space.write(0x10, 5, 4) is MEMTX_OK
    # Split: one failing piece fails the whole access.
    slot.clear()
    assert space.read(0x80, 8, result=slot) == 0x42
    assert result_of(slot) is MEMTX_ERROR
    assert log[0] == ("r", 0x10, 4, user)
    assert log[-2:] == [
        ("r", 0x80, 4, MEMTXATTRS_UNSPECIFIED),
        ("r", 0x84, 4, MEMTXATTRS_UNSPECIFIED),
    ]


def test_access_size_must_be_1_2_4_8() -> None:
    space = space_with()
    with pytest.raises(Error, match="access size 3 is invalid; expected 1, 2, 4 or 8"):
        space.read(0, 3)
    with pytest.raises(Error, match="access size 16 is invalid"):
        space.write(0, 0, 16)
    mr = MemoryRegion.ram(None, "r", 4)
    with pytest.raises(Error, match="access size 0 is invalid"):
        mr.dispatch_read(0, 0)


def test_device_read_must_return_an_int() -> None:
    class Broken:
        def read(self, offset, size):
            return None

        def write(self, offset: int, value: int, size: int) -> None:
            pass

    ops = MemoryRegionOps[Broken](
        read=Broken.read, write=Broken.write, impl=OpsImpl(min_access_size=4)
    )
    dev = Broken()
    space = space_with((0, MemoryRegion.io(None, "broken", 0x10, ops, dev)))
    with pytest.raises(Error, match=r"MMIO read callback .*Broken.read returned None"):
        space.read(0, 4)
    with pytest.raises(Error, match=r"returned None; expected an int"):
        space.read(0, 1)  # widened


def test_read_values_are_masked_to_the_access_size() -> None:
    dev = Recorder()
    dev.values = {(0, 1): 0x1234, (0, 2): -1, (0, 4): 1 << 40}
    space = space_with((0, MemoryRegion.io(None, "wide", 0x10, recorder_ops(), dev)))
    assert space.read(0, 1) == 0x34
    assert space.read(0, 2) == 0xFFFF
    assert space.read(0, 4) == 0
    space.write(0, 0x1_2345_6789, 4)
    space.write(0, -1, 1)
    assert dev.calls[-2:] == [("w", 0, 4, 0x2345_6789), ("w", 0, 1, 0xFF)]


def test_dispatch_cache_follows_topology_changes() -> None:
    d1, d2 = Recorder(default=1), Recorder(default=2)
    r1 = MemoryRegion.io(None, "d1", 0x10, recorder_ops(), d1)
    r2 = MemoryRegion.io(None, "d2", 0x10, recorder_ops(), d2)
    space = space_with((0, r1))
    assert space.read(0, 4) == 1
    space.root.del_subregion(r1)
    assert space.read(0, 4) == 0
    space.root.add_subregion(0, r2)
    assert space.read(0, 4) == 2
    for addr in range(0, memory._CACHE_MAX + 100, 4):
        space.read(addr, 4)
    assert space.read(0, 4) == 2
    assert space.read(0x3FFFC, 4) == 0


# ---------------------------------------------------------------------------
# Splitting and combining (access_with_adjusted_size)

# Device calls, as (offset, size), for an access of each size at offset 0x10.
SPLIT_CASES: list[tuple[tuple[int, int], int, list[tuple[int, int]]]] = [
    ((1, 1), 1, [(0x10, 1)]),
    ((1, 1), 2, [(0x10, 1), (0x11, 1)]),
    ((1, 1), 4, [(0x10, 1), (0x11, 1), (0x12, 1), (0x13, 1)]),
    ((1, 1), 8, [(0x10 + i, 1) for i in range(8)]),
    ((2, 2), 1, [(0x10, 2)]),
    ((2, 2), 2, [(0x10, 2)]),
    ((2, 2), 4, [(0x10, 2), (0x12, 2)]),
    ((2, 2), 8, [(0x10, 2), (0x12, 2), (0x14, 2), (0x16, 2)]),
    ((4, 4), 1, [(0x10, 4)]),
    ((4, 4), 2, [(0x10, 4)]),
    ((4, 4), 4, [(0x10, 4)]),
    ((4, 4), 8, [(0x10, 4), (0x14, 4)]),
    ((8, 8), 1, [(0x10, 8)]),
    ((8, 8), 2, [(0x10, 8)]),
    ((8, 8), 4, [(0x10, 8)]),
    ((8, 8), 8, [(0x10, 8)]),
    ((0, 0), 1, [(0x10, 1)]),
    ((0, 0), 2, [(0x10, 2)]),
    ((0, 0), 4, [(0x10, 4)]),
    ((0, 0), 8, [(0x10, 4), (0x14, 4)]),
    ((2, 8), 1, [(0x10, 2)]),
    ((2, 8), 8, [(0x10, 8)]),
    ((1, 2), 4, [(0x10, 2), (0x12, 2)]),
]


@pytest.mark.parametrize(("impl", "size", "calls"), SPLIT_CASES)
@pytest.mark.parametrize("dev_order", ["little", "big"])
@pytest.mark.parametrize("op_order", ["little", "big"])
def test_split_and_combine_reads(
    impl: tuple[int, int],
    size: int,
    calls: list[tuple[int, int]],
    dev_order: Literal["little", "big"],
    op_order: Literal["little", "big"],
) -> None:
    # QEMU's pieces put each byte where memory would have it: for a device
    # that behaves like memory in its byte order, any access reads the
    # memory bytes in the order of the access.
    endianness = DEVICE_LITTLE_ENDIAN if dev_order == "little" else DEVICE_BIG_ENDIAN
    dev = MemoryLike(dev_order)
    ops = memlike_ops(
        endianness, OpsImpl(min_access_size=impl[0], max_access_size=impl[1])
    )
    space = space_with((0x1000, MemoryRegion.io(None, "dev", 0x40, ops, dev)))
    expected = int.from_bytes(dev.mem[0x10 : 0x10 + size], op_order)
    load = {
        (1, "little"): space.ldub,
        (1, "big"): space.ldub,
        (2, "little"): space.lduw_le,
        (2, "big"): space.lduw_be,
        (4, "little"): space.ldl_le,
        (4, "big"): space.ldl_be,
        (8, "little"): space.ldq_le,
        (8, "big"): space.ldq_be,
    }[size, op_order]
    slot = MemTxResultSlot()
    assert load(0x1010, MEMTXATTRS_UNSPECIFIED, slot) == expected
    assert result_of(slot) is MEMTX_OK
    assert dev.calls == [("r", off, n) for off, n in calls]
    # The slow path (no cache) gives the same.
    dev.calls.clear()
    big = op_order == "big"
    assert space._load(0x1010, size, big, MEMTXATTRS_UNSPECIFIED, None) == expected
    assert dev.calls == [("r", off, n) for off, n in calls]


@pytest.mark.parametrize(("impl", "size", "calls"), SPLIT_CASES)
@pytest.mark.parametrize("dev_order", ["little", "big"])
@pytest.mark.parametrize("op_order", ["little", "big"])
def test_split_writes(
    impl: tuple[int, int],
    size: int,
    calls: list[tuple[int, int]],
    dev_order: Literal["little", "big"],
    op_order: Literal["little", "big"],
) -> None:
    endianness = DEVICE_LITTLE_ENDIAN if dev_order == "little" else DEVICE_BIG_ENDIAN
    dev = MemoryLike(dev_order)
    ops = memlike_ops(
        endianness, OpsImpl(min_access_size=impl[0], max_access_size=impl[1])
    )
    space = space_with((0x1000, MemoryRegion.io(None, "dev", 0x40, ops, dev)))
    value = 0xA1B2C3D4E5F60718 & ((1 << (8 * size)) - 1)
    store = {
        (1, "little"): space.stb,
        (1, "big"): space.stb,
        (2, "little"): space.stw_le,
        (2, "big"): space.stw_be,
        (4, "little"): space.stl_le,
        (4, "big"): space.stl_be,
        (8, "little"): space.stq_le,
        (8, "big"): space.stq_be,
    }[size, op_order]
    assert store(0x1010, value) is MEMTX_OK
    assert dev.calls == [("w", off, n) for off, n in calls]
    widened = calls[0][1] > size
    if not widened:
        # Split or exact: the bytes land where memory would put them.
        assert dev.mem[0x10 : 0x10 + size] == value.to_bytes(size, op_order)


@pytest.mark.parametrize(
    ("endianness", "size", "expected"),
    [
        (DEVICE_LITTLE_ENDIAN, 1, 0xDD),
        (DEVICE_LITTLE_ENDIAN, 2, 0xCCDD),
        (DEVICE_LITTLE_ENDIAN, 8, 0xAABBCCDD_AABBCCDD),
        (DEVICE_BIG_ENDIAN, 1, 0xAA),
        (DEVICE_BIG_ENDIAN, 2, 0xAABB),
        (DEVICE_BIG_ENDIAN, 8, 0xAABBCCDD_AABBCCDD),
    ],
)
def test_widened_and_split_read_values(
    endianness: Endianness, size: int, expected: int
) -> None:
    # A 4-byte-only register that always reads 0xAABBCCDD; accesses in the
    # device's own byte order (no swap).  Widening keeps the low bytes for a
    # little-endian device (shift 0) and the high bytes for a big-endian one
    # (shift (size - 4) * 8 < 0); splitting puts the first piece low (LE) or
    # high (BE).
    dev = Recorder(default=0xAABBCCDD)
    ops = recorder_ops(
        endianness=endianness,
        impl=OpsImpl(min_access_size=4, max_access_size=4),
        valid=OpsValid(min_access_size=1, max_access_size=8, unaligned=True),
    )
    space = space_with((0, MemoryRegion.io(None, "w", 0x100, ops, dev)))
    get = space.ldq_be if endianness is DEVICE_BIG_ENDIAN else space.ldq_le
    load = {
        1: space.ldub,
        2: space.lduw_be if endianness is DEVICE_BIG_ENDIAN else space.lduw_le,
        8: get,
    }[size]
    assert load(0x41) == expected
    # QEMU does not align the widened access down: the device sees 0x41.
    assert dev.calls[0] == ("r", 0x41, 4, 0)


def test_widened_writes_shift_the_value() -> None:
    le, be = Recorder(), Recorder()
    impl = OpsImpl(min_access_size=4, max_access_size=4)
    le_ops = recorder_ops(endianness=DEVICE_LITTLE_ENDIAN, impl=impl)
    be_ops = recorder_ops(endianness=DEVICE_BIG_ENDIAN, impl=impl)
    space = space_with(
        (0, MemoryRegion.io(None, "le", 0x10, le_ops, le)),
        (0x10, MemoryRegion.io(None, "be", 0x10, be_ops, be)),
    )
    space.stb(0x1, 0x5A)
    space.stb(0x11, 0x5A)
    space.stw_be(0x12, 0x1234)
    assert le.calls == [("w", 1, 4, 0x5A)]
    assert be.calls == [("w", 1, 4, 0x5A000000), ("w", 2, 4, 0x12340000)]


def test_byte_swap_between_access_and_device_order() -> None:
    dev = Recorder(default=0x11223344)
    ops = recorder_ops(
        endianness=DEVICE_LITTLE_ENDIAN,
        impl=OpsImpl(min_access_size=4, max_access_size=4),
    )
    space = space_with((0, MemoryRegion.io(None, "le", 0x10, ops, dev)))
    assert space.ldl_le(0) == 0x11223344
    assert space.ldl_be(0) == 0x44332211
    space.stl_be(4, 0xAABBCCDD)
    assert dev.calls[-1] == ("w", 4, 4, 0xDDCCBBAA)
    r = MemoryRegion.io(None, "direct", 0x10, ops, dev)
    assert r.dispatch_read(0, 4, endianness=DEVICE_BIG_ENDIAN) == (MEMTX_OK, 0x44332211)
    assert r.dispatch_write(8, 0x01020304, 4, endianness=DEVICE_BIG_ENDIAN) is MEMTX_OK
    assert dev.calls[-1] == ("w", 8, 4, 0x04030201)


def test_region_dispatch_of_ram_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    ram = MemoryRegion.ram(None, "ram", 0x10)
    assert ram.dispatch_read(0, 4) == MemTxValue(MEMTX_DECODE_ERROR, 0)
    assert ram.dispatch_write(0, 1, 4) is MEMTX_DECODE_ERROR
    assert capsys.readouterr().err == (
        invalid("read", 0, 4, "ram", "rejected")
        + invalid("write", 0, 4, "ram", "rejected")
    )


# ---------------------------------------------------------------------------
# Target byte order


def test_big_endian_target() -> None:
    reset_system_memory(big_endian=True)
    assert target_big_endian()
    ram = MemoryRegion.ram(None, "ram", 0x100)
    get_system_memory().add_subregion(0, ram)
    space = get_address_space_memory()
    space.write(0, 0x11223344, 4)
    assert bytes(ram.get_ram_ptr()[0:4]) == b"\x11\x22\x33\x44"
    assert space.ldl(0) == 0x11223344
    assert space.ldl_le(0) == 0x44332211
    assert space.lduw(0) == 0x1122
    assert space.ldq(0) == 0x11223344_00000000
    space.stw(8, 0xA0B0)
    space.stl(12, 0x01020304)
    space.stq(16, 0x0102030405060708)
    assert bytes(ram.get_ram_ptr()[8:24]) == bytes.fromhex(
        "a0b00000010203040102030405060708"
    )
    # A native-endian device is big-endian here: no swap for native loads.
    dev = Recorder(default=0x11223344)
    ops = recorder_ops(endianness=DEVICE_NATIVE_ENDIAN)
    get_system_memory().add_subregion(
        0x1000, MemoryRegion.io(None, "n", 0x10, ops, dev)
    )
    assert space.read(0x1000, 4) == 0x11223344
    assert space.ldl_le(0x1000) == 0x44332211
    reset_system_memory()
    assert not target_big_endian()


def test_native_endian_device_on_little_endian_target() -> None:
    dev = Recorder(default=0x11223344)
    ops = recorder_ops(endianness=DEVICE_NATIVE_ENDIAN)
    space = space_with((0, MemoryRegion.io(None, "n", 0x10, ops, dev)))
    assert space.read(0, 4) == 0x11223344
    assert space.ldl(0) == 0x11223344
    assert space.ldl_be(0) == 0x44332211
    assert space.lduw(0) == 0x1122 or dev.values == {}  # default for size 2
    ram = MemoryRegion.ram(None, "ram", 0x10)
    space.root.add_subregion(0x100, ram)
    space.stq(0x100, 0x0102030405060708)
    assert bytes(ram.get_ram_ptr()[0:8]) == bytes(range(8, 0, -1))
    assert space.ldq(0x100) == 0x0102030405060708
    assert space.lduw(0x100) == 0x0708
    assert space.lduw_be(0x100) == 0x0807


# ---------------------------------------------------------------------------
# Loads and stores on RAM


def test_loads_and_stores_on_ram() -> None:
    ram = MemoryRegion.ram(None, "ram", 0x100)
    space = space_with((0x100, ram))
    assert space.stb(0x100, 0x1FF) is MEMTX_OK  # masked to a byte
    assert space.stw_le(0x102, 0xBBAA) is MEMTX_OK
    assert space.stw_be(0x104, 0xBBAA) is MEMTX_OK
    assert space.stl_le(0x108, 0x1_DDCCBBAA) is MEMTX_OK
    assert space.stl_be(0x10C, 0xDDCCBBAA) is MEMTX_OK
    assert space.stq_le(0x110, 0x8877665544332211) is MEMTX_OK
    assert space.stq_be(0x118, 0x8877665544332211) is MEMTX_OK
    assert bytes(ram.get_ram_ptr()[0:0x20]) == bytes.fromhex(
        "ff00aabbbbaa0000aabbccdd ddccbbaa 1122334455667788 8877665544332211".replace(
            " ", ""
        )
    )
    assert space.ldub(0x100) == 0xFF
    assert (space.lduw_le(0x102), space.lduw_be(0x102)) == (0xBBAA, 0xAABB)
    assert (space.ldl_le(0x108), space.ldl_be(0x108)) == (0xDDCCBBAA, 0xAABBCCDD)
    assert space.ldq_le(0x110) == 0x8877665544332211
    assert space.ldq_be(0x110) == 0x1122334455667788
    assert space.read(0x118, 8) == 0x1122334455667788
    assert space.write(0x120, 0xFEED, 2) is MEMTX_OK
    assert space.read(0x120, 2) == 0xFEED


def test_load_across_the_end_of_ram_is_rejected(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ram = MemoryRegion.ram(None, "ram", 0x1000)
    ram2 = MemoryRegion.ram(None, "ram2", 0x1000)
    space = space_with((0, ram), (0x1000, ram2))
    slot = MemTxResultSlot()
    # QEMU's ldl does not cross into the next region: the piece of 2 bytes
    # goes to the RAM region's ops, which reject it.
    assert space.ldl_le(0xFFE, result=slot) == 0
    assert result_of(slot) is MEMTX_DECODE_ERROR
    assert space.stl_le(0xFFE, 0) is MEMTX_DECODE_ERROR
    assert capsys.readouterr().err == (
        invalid("read", 0xFFE, 4, "ram", "rejected")
        + invalid("write", 0xFFE, 4, "ram", "rejected")
    )
    # A buffer access crosses.
    assert space.write_buf(0xFFE, b"\x01\x02\x03\x04") is MEMTX_OK
    assert space.ldl_le(0xFFC) == 0x02010000
    assert space.ldub(0x1001) == 4


# ---------------------------------------------------------------------------
# Buffer accesses across regions


def test_buffer_read_and_write_across_regions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ram = MemoryRegion.ram(None, "ram", 0x10)
    ram.get_ram_ptr()[:] = bytes(range(0x10))
    dev = MemoryLike("little")
    ops = memlike_ops(
        DEVICE_LITTLE_ENDIAN,
        OpsImpl(min_access_size=4, max_access_size=4),
        OpsValid(min_access_size=1, max_access_size=4),
    )
    io = MemoryRegion.io(None, "io", 0x10, ops, dev)
    space = space_with((0x1000, ram), (0x1010, io))
    buf = bytearray(0x1C)
    assert space.read_buf(0x100C, buf) is MEMTX_DECODE_ERROR
    assert bytes(buf) == (bytes(range(0xC, 0x10)) + bytes(dev.mem[0:0x10]) + bytes(8))
    # The I/O part is read in the largest valid accesses (max 4, aligned).
    assert dev.calls == [("r", 0, 4), ("r", 4, 4), ("r", 8, 4), ("r", 0xC, 4)]
    assert capsys.readouterr().err == invalid(
        "read", 0x1020, 4, "(null)", "rejected"
    ) + invalid("read", 0x1024, 4, "(null)", "rejected")
    dev.calls.clear()
    data = bytes(range(0xA0, 0xA0 + 0x0A))
    assert space.write_buf(0x100D, data) is MEMTX_OK
    assert bytes(ram.get_ram_ptr()[0xD:0x10]) == data[:3]
    # 7 bytes for the device: pieces of 4, 2 and 1 bytes, each widened to
    # the 4 bytes it implements (QEMU writes the extra bytes as zeros).
    assert dev.calls == [("w", 0, 4), ("w", 4, 4), ("w", 6, 4)]
    assert bytes(dev.mem[0:10]) == data[3:] + bytes(3)


def test_buffer_pieces_follow_alignment() -> None:
    dev = Recorder()
    ops = recorder_ops(valid=OpsValid(min_access_size=1, max_access_size=8))
    space = space_with((0, MemoryRegion.io(None, "d", 0x100, ops, dev)))
    assert space.write_buf(0x1, bytes(15)) is MEMTX_OK
    # memory_access_size: bounded by valid.max (8) and the address alignment;
    # impl max 4 then splits the 8-byte piece in two.
    assert [(c[1], c[2]) for c in dev.calls] == [
        (1, 1),
        (2, 2),
        (4, 4),
        (8, 4),
        (12, 4),
    ]


def test_mmio_buffer_access_is_not_clipped_at_the_region_end() -> None:
    # As in QEMU (address_space_translate_internal): MMIO registers expect
    # full-width accesses, so a piece may run past the end of the region.
    dev = Recorder(default=0x44332211)
    space = space_with((0, MemoryRegion.io(None, "tiny", 2, recorder_ops(), dev)))
    buf = bytearray(4)
    assert space.read_buf(0, buf) is MEMTX_OK
    assert dev.calls == [("r", 0, 4, 0)]
    assert bytes(buf) == b"\x11\x22\x33\x44"


def test_buffer_access_in_device_byte_order() -> None:
    dev = Recorder(default=0x11223344)
    ops = recorder_ops(endianness=DEVICE_BIG_ENDIAN)
    space = space_with((0, MemoryRegion.io(None, "be", 0x10, ops, dev)))
    buf = bytearray(4)
    space.read_buf(0, buf)
    assert bytes(buf) == b"\x11\x22\x33\x44"
    space.write_buf(4, b"\xaa\xbb\xcc\xdd")
    assert dev.calls[-1] == ("w", 4, 4, 0xAABBCCDD)


def test_rw_and_empty_buffers() -> None:
    ram = MemoryRegion.ram(None, "ram", 0x10)
    space = space_with((0, ram))
    assert space.rw(0, bytearray(b"\x01\x02"), True) is MEMTX_OK
    out = bytearray(2)
    assert space.rw(0, out, False) is MEMTX_OK
    assert out == b"\x01\x02"
    assert space.read_buf(0x5000, bytearray()) is MEMTX_OK
    assert space.write_buf(0x5000, memoryview(b"")) is MEMTX_OK


def test_memory_only_attrs_refuse_mmio(capsys: pytest.CaptureFixture[str]) -> None:
    dev = Recorder()
    ram = MemoryRegion.ram(None, "ram", 0x10)
    space = space_with(
        (0, ram), (0x10, MemoryRegion.io(None, "dev", 0x10, recorder_ops(), dev))
    )
    mem_only = MemTxAttrs(memory=True)
    assert space.write_buf(0, bytes(8), mem_only) is MEMTX_OK
    assert space.write_buf(0x10, bytes(8), mem_only) is MEMTX_ACCESS_ERROR
    assert space.write_buf(0x8, bytes(16), mem_only) is MEMTX_ACCESS_ERROR
    assert dev.calls == []
    assert capsys.readouterr().err == (
        "Invalid access to non-RAM device at addr 0x0, size 8, region 'dev'\n" * 2
    )


def test_access_valid(capsys: pytest.CaptureFixture[str]) -> None:
    dev = Recorder()
    ops = recorder_ops(valid=OpsValid(min_access_size=4, max_access_size=4))
    ram = MemoryRegion.ram(None, "ram", 0x10)
    space = space_with((0, ram), (0x10, MemoryRegion.io(None, "dev", 0x10, ops, dev)))
    assert space.access_valid(0, 0x10, True)
    assert space.access_valid(0x10, 8, False)
    assert not space.access_valid(0x20, 4, False)
    assert not space.access_valid(0x12, 2, False)
    assert dev.calls == []
    err = capsys.readouterr().err
    assert invalid("read", 0x20, 4, "(null)", "rejected") in err
    assert invalid("read", 2, 2, "dev", "invalid size (min:4 max:4)") in err


# ---------------------------------------------------------------------------
# System memory


def test_system_memory_and_reset() -> None:
    system = get_system_memory()
    space = get_address_space_memory()
    assert system.name == "system"
    assert space.name == "memory"
    assert space.root is system
    ram = MemoryRegion.ram(None, "ram", 0x10)
    system.add_subregion(0x4000_0000, ram)
    assert space.stb(0x4000_0000, 1) is MEMTX_OK
    reset_system_memory()
    assert get_system_memory() is not system
    new_space = get_address_space_memory()
    assert new_space.stb(0x4000_0000, 1) is MEMTX_DECODE_ERROR
    assert ram.parent_container is system  # still mapped in the old root
    system.del_subregion(ram)
    get_system_memory().add_subregion(0x4000_0000, ram)
    assert new_space.ldub(0x4000_0000) == 1


def test_reset_drops_pending_transactions() -> None:
    memory_region_transaction_begin()
    reset_system_memory()
    get_system_memory().add_subregion(0, MemoryRegion.ram(None, "r", 1))
    assert get_address_space_memory().stb(0, 1) is MEMTX_OK


# ---------------------------------------------------------------------------
# Guest memory for DMA


def test_guest_address() -> None:
    a = GuestAddress(0x1000)
    assert a.raw_value() == 0x1000
    assert int(a) == 0x1000
    assert hex(a) == "0x1000"
    assert a.checked_add(0x10) == GuestAddress(0x1010)
    assert a.checked_add(-0x1001) is None
    assert a.checked_sub(0x1000) == GuestAddress(0)
    assert GuestAddress(UINT64_MAX).checked_add(1) is None
    assert GuestAddress(UINT64_MAX).wrapping_add(2) == GuestAddress(1)
    assert GuestAddress(0x1010).offset_from(a) == 0x10
    assert a < GuestAddress(0x1001) <= GuestAddress(0x1001)
    assert a >= GuestAddress(0x1000)
    assert GuestAddress(0x2000) > a
    assert len({GuestAddress(5), GuestAddress(5)}) == 1
    assert a != 0x1000
    assert repr(a) == "GuestAddress(0x1000)"
    with pytest.raises(Error, match=r"GuestAddress: address -1 is out of range"):
        GuestAddress(-1)
    with pytest.raises(Error, match="is out of range; expected a 64-bit"):
        GuestAddress(1 << 64)


def test_guest_memory_on_ram(capsys: pytest.CaptureFixture[str]) -> None:
    ram = MemoryRegion.ram(None, "ram", 0x100)
    mem = GuestMemory(ram)
    assert mem.target is ram
    assert mem.write_bytes(GuestAddress(0xFC), b"\x01\x02\x03\x04") is MEMTX_OK
    assert mem.read_bytes(GuestAddress(0xFC), 4) == (MEMTX_OK, b"\x01\x02\x03\x04")
    assert mem.read_u32_le(GuestAddress(0xFC)) == MemTxValue(MEMTX_OK, 0x04030201)
    assert mem.read_u32_be(GuestAddress(0xFC)).value == 0x01020304
    # Out of bounds: an error, zeros, nothing written, a log line.
    assert mem.read_bytes(GuestAddress(0xFE), 4) == (MEMTX_DECODE_ERROR, bytes(4))
    assert mem.write_bytes(GuestAddress(0x100), b"\xff") is MEMTX_DECODE_ERROR
    assert mem.read_u64_le(GuestAddress(UINT64_MAX)) == (MEMTX_DECODE_ERROR, 0)
    assert capsys.readouterr().err == (
        invalid("read", 0xFE, 4, "ram", "out of bounds")
        + invalid("write", 0x100, 1, "ram", "out of bounds")
        + invalid("read", UINT64_MAX, 8, "ram", "out of bounds")
    )
    assert bytes(ram.get_ram_ptr()[0xFC:]) == b"\x01\x02\x03\x04"
    assert mem.is_valid(GuestAddress(0), 0x100, True)
    assert not mem.is_valid(GuestAddress(1), 0x100, False)


@pytest.mark.parametrize(
    ("size", "order", "value", "raw"),
    [
        (1, "little", 0xAB, b"\xab"),
        (2, "little", 0xAABB, b"\xbb\xaa"),
        (2, "big", 0xAABB, b"\xaa\xbb"),
        (4, "little", 0x11223344, b"\x44\x33\x22\x11"),
        (4, "big", 0x11223344, b"\x11\x22\x33\x44"),
        (8, "little", 0x0102030405060708, bytes(range(8, 0, -1))),
        (8, "big", 0x0102030405060708, bytes(range(1, 9))),
    ],
)
def test_guest_memory_integers(size: int, order: str, value: int, raw: bytes) -> None:
    ram = MemoryRegion.ram(None, "ram", 0x20)
    mem = GuestMemory(ram)
    suffix = "" if size == 1 else ("_le" if order == "little" else "_be")
    write = getattr(mem, f"write_u{size * 8}{suffix}")
    read = getattr(mem, f"read_u{size * 8}{suffix}")
    assert write(GuestAddress(8), value | (1 << (size * 8))) is MEMTX_OK  # masked
    assert bytes(ram.get_ram_ptr()[8 : 8 + size]) == raw
    assert read(GuestAddress(8)) == (MEMTX_OK, value)


def test_guest_memory_on_rom_and_alias(capsys: pytest.CaptureFixture[str]) -> None:
    rom = MemoryRegion.rom(None, "rom", 0x10)
    mem = GuestMemory(rom)
    assert mem.write_u8(GuestAddress(0), 1) is MEMTX_DECODE_ERROR
    assert capsys.readouterr().err == invalid("write", 0, 1, "rom", "rejected")
    assert mem.read_u8(GuestAddress(0)) == (MEMTX_OK, 0)
    ram = MemoryRegion.ram(None, "ram", 0x100)
    window = GuestMemory(MemoryRegion.alias(None, "win", ram, 0x80, 0x100))
    assert window.write_u16_le(GuestAddress(0x7E), 0xBEEF) is MEMTX_OK
    assert bytes(ram.get_ram_ptr()[0xFE:]) == b"\xef\xbe"
    # The alias is larger than what is left of the RAM: bounds are the RAM's.
    assert window.write_u8(GuestAddress(0x80), 1) is MEMTX_DECODE_ERROR
    rom_alias = GuestMemory(MemoryRegion.alias(None, "rom-win", rom, 0, 0x10))
    assert rom_alias.write_u8(GuestAddress(0), 1) is MEMTX_DECODE_ERROR


def test_guest_memory_on_address_space(capsys: pytest.CaptureFixture[str]) -> None:
    ram = MemoryRegion.ram(None, "ram", 0x10)
    dev = MemoryLike("little")
    ops = memlike_ops(
        DEVICE_LITTLE_ENDIAN, OpsImpl(min_access_size=1, max_access_size=4)
    )
    get_system_memory().add_subregion(0x1000, ram)
    get_system_memory().add_subregion(
        0x1010, MemoryRegion.io(None, "fifo", 0x10, ops, dev)
    )
    mem = GuestMemory(get_address_space_memory())
    assert mem.target is get_address_space_memory()
    assert mem.write_bytes(GuestAddress(0x100E), b"\x01\x02\x03\x04") is MEMTX_OK
    assert bytes(ram.get_ram_ptr()[0xE:]) == b"\x01\x02"
    assert dev.mem[0:2] == b"\x03\x04"
    assert mem.read_u32_le(GuestAddress(0x100E)) == (MEMTX_OK, 0x04030201)
    res, data = mem.read_bytes(GuestAddress(0x101E), 4)
    assert res is MEMTX_DECODE_ERROR
    assert data == bytes(dev.mem[0xE:0x10]) + bytes(2)
    assert capsys.readouterr().err == invalid("read", 0x1020, 2, "(null)", "rejected")
    assert mem.read_bytes(GuestAddress(UINT64_MAX), 2) == (MEMTX_DECODE_ERROR, bytes(2))
    assert capsys.readouterr().err == (
        f"Invalid DMA read at addr 0x{UINT64_MAX:X}, size 2, reason: wraps past the "
        "end of the address space\n"
    )
    assert mem.is_valid(GuestAddress(0x1000), 0x20, True)
    assert not mem.is_valid(GuestAddress(0x1000), 0x21, True)
    assert not mem.is_valid(GuestAddress(UINT64_MAX), 2, False)
    ram_only = GuestMemory(get_address_space_memory(), MemTxAttrs(memory=True))
    assert ram_only.write_u32_le(GuestAddress(0x1010), 0) is MEMTX_ACCESS_ERROR
    assert ram_only.write_u32_le(GuestAddress(0x1000), 0) is MEMTX_OK


def test_guest_memory_refuses_programming_errors() -> None:
    dev = Recorder()
    io = MemoryRegion.io(None, "dev", 0x10, recorder_ops(), dev)
    with pytest.raises(Error, match="memory region 'dev' is not RAM or ROM; DMA into"):
        GuestMemory(io)
    with pytest.raises(Error, match="target is a int; expected an AddressSpace"):
        GuestMemory(untyped(5))
    mem = GuestMemory(MemoryRegion.ram(None, "ram", 0x10))
    with pytest.raises(Error, match=r"address 4 is a int; expected a GuestAddress"):
        mem.read_u8(untyped(4))
    with pytest.raises(Error, match="length -1 is negative"):
        mem.read_bytes(GuestAddress(0), -1)
    into = bytearray(4)
    assert mem.read_into(GuestAddress(0xE), into) is MEMTX_DECODE_ERROR
    assert into == bytes(4)


# ---------------------------------------------------------------------------
# info mtree


def test_mtree_info_tree() -> None:
    system = get_system_memory()
    ram = MemoryRegion.ram(None, "ram", 0x8000_0000)
    system.add_subregion(0x4000_0000, ram)
    dev = Recorder()
    uart = MemoryRegion.io(None, "pl011", 0x1000, recorder_ops(), dev)
    system.add_subregion(0x0900_0000, uart)
    flash = MemoryRegion.rom(None, "flash", 0x0400_0000)
    system.add_subregion(0, flash)
    bus = MemoryRegion.container(None, "pcie-mmio", 0x1000)
    bus.add_subregion_overlap(0x100, MemoryRegion.ram(None, "bar0", 0x100), 1)
    bus.add_subregion(0x100, MemoryRegion.ram(None, "bar1", 0x100))
    system.add_subregion_overlap(0x1000_0000, bus, 2)
    low = MemoryRegion.alias(None, "ram-low", ram, 0x1000, 0x1000)
    system.add_subregion(0x2000_0000, low)
    hidden = MemoryRegion.ram(None, "hidden", 0x10)
    system.add_subregion(0x3000_0000, hidden)
    hidden.set_enabled(False)
    expected = (
        "address-space: memory\n"
        "  0000000000000000-ffffffffffffffff (prio 0, container): system\n"
        "    0000000000000000-0000000003ffffff (prio 0, rom): flash\n"
        "    0000000009000000-0000000009000fff (prio 0, i/o): pl011\n"
        "    0000000010000000-0000000010000fff (prio 2, i/o): pcie-mmio\n"
        "      0000000010000100-00000000100001ff (prio 1, ram): bar0\n"
        "      0000000010000100-00000000100001ff (prio 0, ram): bar1\n"
        "    0000000020000000-0000000020000fff (prio 0, ram): alias ram-low @ram "
        "0000000000001000-0000000000001fff\n"
        "    0000000040000000-00000000bfffffff (prio 0, ram): ram\n"
        "\n"
        "memory-region: ram\n"
        "  0000000040000000-00000000bfffffff (prio 0, ram): ram\n"
        "\n"
    )
    assert mtree_info() == expected
    with_disabled = mtree_info(disabled=True)
    assert (
        "    0000000030000000-000000003000000f (prio 0, ram): hidden [disabled]\n"
        in with_disabled
    )


def test_mtree_info_groups_address_spaces_by_root() -> None:
    root = MemoryRegion.container(None, "dma-root", 0x100)
    spaces = [AddressSpace(root, "zeta"), AddressSpace(root, "alpha")]
    text = mtree_info()
    assert (
        "address-space: alpha\naddress-space: zeta\n"
        "  0000000000000000-00000000000000ff (prio 0, container): dma-root\n\n"
    ) in text
    assert text.startswith("address-space: memory\n")
    del spaces
    assert "zeta" not in mtree_info()  # unreferenced address spaces go away


def test_mtree_info_flatview() -> None:
    system = get_system_memory()
    ram = MemoryRegion.ram(None, "ram", 0x1000)
    system.add_subregion(0x1000, ram)
    rom = MemoryRegion.rom(None, "rom", 0x100)
    system.add_subregion(0, rom)
    system.add_subregion(0x1800, MemoryRegion.alias(None, "alias", ram, 0x10, 0x10))
    empty = MemoryRegion.container(None, "empty", 0x100)
    nothing = AddressSpace(empty, "nothing")
    text = mtree_info(flatview=True)
    assert text == (
        "FlatView #0\n"
        ' AS "memory", root: system\n'
        " Root memory region: system\n"
        "  0000000000000000-00000000000000ff (prio 0, rom): rom\n"
        "  0000000000001000-00000000000017ff (prio 0, ram): ram\n"
        "  0000000000001800-000000000000180f (prio 0, ram): ram @0000000000000010\n"
        "  0000000000001810-0000000000001fff (prio 0, ram): ram @0000000000000810\n"
        "\n"
        "FlatView #1\n"
        ' AS "nothing", root: empty\n'
        " Root memory region: (none)\n"
        "  No rendered FlatView\n"
        "\n"
    )
    assert nothing.name == "nothing"


def test_mtree_flatview_root_through_alias() -> None:
    ram = MemoryRegion.ram(None, "big-ram", 0x100)
    whole = MemoryRegion.alias(None, "whole", ram, 0, 0x100)
    space = AddressSpace(whole, "aliased")
    text = mtree_info(flatview=True)
    assert (
        ' AS "aliased", root: whole, alias big-ram\n Root memory region: big-ram\n'
        in text
    )
    assert space.ldub(0) == 0


def test_bad_accesses_are_guest_errors_too(capsys) -> None:
    """QEMU 7.2 logs rejected accesses under -d guest_errors (9.1: invalid_mem)."""
    from qemu_api.log import LOG_GUEST_ERROR

    qemu_set_log(0)
    space = AddressSpace(MemoryRegion.container(None, "empty", 0x1000), "t")
    space.read(0x10, 4)
    assert capsys.readouterr().err == ""
    qemu_set_log(LOG_GUEST_ERROR)
    space.read(0x10, 4)
    assert capsys.readouterr().err == (
        "Invalid read at addr 0x10, size 4, region '(null)', reason: rejected\n"
    )


# ---------------------------------------------------------------------------
# Regions as QOM objects, and lifetimes


def test_region_of_a_dead_owner_is_unmapped_and_emptied(
    capsys: pytest.CaptureFixture[str],
) -> None:
    board = object_get_root().property_add_child("board", Container())
    outer = MemoryRegion.container(None, "outer", 0x10000)
    mine = MemoryRegion.container(board, "mine", 0x1000)
    ram = MemoryRegion.ram(None, "ram", 0x100)
    mine.add_subregion(0, ram)
    outer.add_subregion(0x1000, mine)
    space = AddressSpace(outer, "view")
    assert space.stb(0x1000, 7) is MEMTX_OK
    board.unparent()
    # The owned container left its container, and let go of what it held.
    assert mine.parent_container is None
    assert not ram.is_mapped()
    assert outer.subregions == ()
    assert space.ldub(0x1000) == 0
    assert capsys.readouterr().err == invalid("read", 0x1000, 1, "(null)", "rejected")
    # The unowned RAM lives on and can be mapped again.
    outer.add_subregion(0, ram)
    assert space.ldub(0) == 7


def owner_of(space: AddressSpace) -> Object | None:
    """Read the owner through a call, so mypy does not narrow it across calls."""
    return space.owner


def test_address_space_dies_with_its_owner() -> None:
    root = MemoryRegion.container(None, "root", 0x100)
    owner = object_get_root().property_add_child("dma", Container())
    space = AddressSpace(root, "owned", owner=owner)
    assert space.owner is owner
    assert "address-space: owned\n" in mtree_info()
    owner.unparent()
    assert owner_of(space) is None
    assert "address-space: owned\n" not in mtree_info()


def test_destroyed_address_space_is_not_destroyed_again_by_its_owner() -> None:
    root = MemoryRegion.container(None, "root", 0x100)
    owner = object_get_root().property_add_child("dma", Container())
    space = AddressSpace(root, "owned", owner=owner)
    space.destroy()
    assert space.owner is None
    again = AddressSpace(root, "owned")
    owner.unparent()
    assert "address-space: owned\n" in mtree_info()
    again.destroy()


def test_alias_into_a_dead_region_shows_nothing() -> None:
    board = object_get_root().property_add_child("board", Container())
    ram = MemoryRegion.ram(board, "ram", 0x100)
    ram.get_ram_ptr()[0] = 0x5A
    window = MemoryRegion.alias(None, "window", ram, 0, 0x100)
    space = space_with((0x200, window))
    assert space.ldub(0x200) == 0x5A
    board.unparent()
    assert space.ldub(0x200) == 0


# ---------------------------------------------------------------------------
# Resolved accesses (MemoryRegionOps.resolve_read / resolve_write)


class Resolving(Recorder):
    """A Recorder whose accesses at offset 0 resolve to their own callables."""

    def __init__(self) -> None:
        super().__init__(default=7)
        self.asked: list[tuple[str, int, int]] = []

    def resolve_read(self, offset: int, size: int) -> Callable[[int, int], int] | None:
        self.asked.append(("r", offset, size))
        if offset:
            return None

        def read(off: int, size: int) -> int:
            self.calls.append(("R", off, size, 0))
            return 9

        return read

    def resolve_write(
        self, offset: int, size: int
    ) -> Callable[[int, int, int], None] | None:
        self.asked.append(("w", offset, size))
        if offset:
            return None
        return lambda off, value, size: self.calls.append(("W", off, size, value))


def resolving_space(dev: Resolving, impl: OpsImpl) -> AddressSpace:
    ops = MemoryRegionOps[Resolving](
        read=Resolving.read,
        write=Resolving.write,
        resolve_read=Resolving.resolve_read,
        resolve_write=Resolving.resolve_write,
        impl=impl,
    )
    root = MemoryRegion.container(None, "root", 0x10000)
    root.add_subregion(0x100, MemoryRegion.io(None, "dev", 0x10, ops, dev))
    return AddressSpace(root, "resolving")


def test_resolved_accesses_replace_the_callbacks_once_asked() -> None:
    dev = Resolving()
    space = resolving_space(dev, OpsImpl(min_access_size=4, max_access_size=4))
    assert [space.read(0x100, 4) for _ in range(3)] == [9, 9, 9]
    space.write(0x100, 5, 4)
    space.write(0x100, 6, 4)
    assert space.read(0x104, 4) == 7  # not resolved: the read callback
    assert dev.calls == [
        ("R", 0, 4, 0),
        ("R", 0, 4, 0),
        ("R", 0, 4, 0),
        ("W", 0, 4, 5),
        ("W", 0, 4, 6),
        ("r", 4, 4, 0),
    ]
    # Asked once per address and size, until the view changes.
    assert dev.asked == [("r", 0, 4), ("w", 0, 4), ("r", 4, 4)]
    space.root.add_subregion(0x200, MemoryRegion.ram(None, "ram", 0x10))
    space.read(0x100, 4)
    assert dev.asked[-1] == ("r", 0, 4)


def test_accesses_the_callbacks_do_not_take_as_they_are_never_resolved() -> None:
    # impl 4 bytes: a byte read is widened by the memory core (QEMU's
    # access_with_adjusted_size), which calls the read callback itself.
    dev = Resolving()
    space = resolving_space(dev, OpsImpl(min_access_size=4, max_access_size=4))
    assert space.read(0x100, 1) == 7
    assert dev.asked == []
    assert dev.calls == [("r", 0, 4, 0)]


def test_resolvers_need_their_callback() -> None:
    with pytest.raises(Error, match="resolve_read= is set without read="):
        MemoryRegionOps[Resolving](
            read_with_attrs=lambda d, o, s, a: (MEMTX_OK, 0),
            write=Resolving.write,
            resolve_read=Resolving.resolve_read,
        )
