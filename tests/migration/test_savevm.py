"""The stream of a whole machine: layout, round trip, and every bad-stream case."""

from __future__ import annotations

import json
import struct
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from hw.arm.virt import VirtMachine
from qemu_api.bits import u8, u32
from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.savevm import (
    dump_vmstate_json,
    dump_vmstate_json_to_file,
    machine_accepts,
    migration_machine_name,
    qemu_loadvm_state,
    qemu_savevm_state,
)
from qemu_api.migration.vmdesc import vmdesc_find, vmdesc_parse
from qemu_api.timer import CLOCK_VIRTUAL, clock_step, qemu_clock_get_ns
from tests.migration.machine import (
    machine_state,
    make_virt,
    ram_digest,
    write_pattern,
)
from tests.migration.migdev import INVALID_B8, REJECT_MAGIC, MigTestDev, fill
from tests.runtime import reset_runtime

PATTERN = bytes(range(256)) * 16


SMALL_RAM = 16 << 20


def saved_stream(
    setup: Callable[[MigTestDev], None] = fill,
    runstate: str = "running",
    ram_size: int = SMALL_RAM,
) -> bytes:
    """A stream of a virt board with the test device set up by ``setup``."""
    machine, dev = make_virt(ram_size=ram_size)
    assert dev is not None
    setup(dev)
    write_pattern(0x1000, PATTERN)
    clock_step(5000)
    f = QEMUFileWriter()
    qemu_savevm_state(f, machine, runstate=runstate)
    return f.getvalue()


def fresh_machine(with_dev: bool = True) -> tuple[VirtMachine, MigTestDev | None]:
    """A new destination machine in the same process (the source is dropped)."""
    reset_runtime()
    machine, dev = make_virt(with_dev, ram_size=SMALL_RAM)
    if dev is not None:
        dev.timer.mod_ns(777)
        dev.period = u32(5)
    write_pattern(0, b"destination")
    return machine, dev


def sections_of(data: bytes) -> list[tuple[int, str]]:
    """(section type, idstr) of each START/FULL header, from the description."""
    found = vmdesc_find(data)
    assert found is not None
    desc: Any = found[1]
    return [(d["instance_id"], d["name"]) for d in desc["devices"]]


# -- layout ----------------------------------------------------------------------------


def test_stream_starts_like_qemu_72_virt() -> None:
    data = saved_stream(ram_size=128 << 20)
    config = (
        b"QEVM" + struct.pack(">I", 3) + b"\x07" + struct.pack(">I", 8) + b"virt-7.2"
        b"\x05\x1econfiguration/target-page-bits" + struct.pack(">II", 1, 12)
    )
    assert data.startswith(config)
    at = len(config)
    ram_start = b"\x01" + struct.pack(">I", 1) + b"\x03ram" + struct.pack(">II", 0, 4)
    assert data[at : at + len(ram_start)] == ram_start
    at += len(ram_start)
    blocks = (
        struct.pack(">Q", 0x8000000 | 0x04)
        + b"\x0dmach-virt.ram"
        + struct.pack(">Q", 0x8000000)
        + struct.pack(">Q", 0x10)
        + b"\x7e"
        + struct.pack(">I", 1)
    )
    assert data[at : at + len(blocks)] == blocks
    at += len(blocks)
    # The first page, a zero page named with its block, then a PART of pages.
    assert data[at : at + 5] == b"\x02" + struct.pack(">I", 1)
    assert data[at + 5 : at + 13] == struct.pack(">Q", 0x02)
    assert data[at + 13 : at + 28] == b"\x0dmach-virt.ram\x00"
    # Page 1 holds the pattern; it continues the block.
    assert data[at + 28 : at + 36] == struct.pack(">Q", 0x1000 | 0x08 | 0x20)
    assert data[at + 36 : at + 36 + 4096] == PATTERN
    found = vmdesc_find(data)
    assert found is not None
    eof_at = found[0]
    desc: Any = found[1]
    assert data[eof_at - 1] == 0x00  # QEMU_VM_EOF, then the description
    assert desc["page_size"] == 4096
    names = [d["name"] for d in desc["devices"]]
    assert names[0] == "timer"
    assert names[-1] == "globalstate"
    assert "mig-test-dev" in names
    timer = struct.pack(">Q", 5000) + bytes(8) + struct.pack(">Q", 5000)
    header = b"\x04" + struct.pack(">I", 0) + b"\x05timer" + struct.pack(">II", 0, 2)
    assert header + timer + b"\x7e" + struct.pack(">I", 0) in data
    gs = b"\x0bglobalstate" + struct.pack(">II", 0, 1) + struct.pack(">I", 8)
    assert gs + b"running" + bytes(93) in data


def test_machine_names_and_versions() -> None:
    machine, _ = make_virt(with_dev=False)
    assert migration_machine_name(machine) == "virt-7.2"
    assert machine_accepts(machine, "virt-8.0")
    assert machine_accepts(machine, "virt")
    assert not machine_accepts(machine, "virt-foo")
    assert not machine_accepts(machine, "pc-i440fx-7.2")


# -- round trip ------------------------------------------------------------------------


def test_round_trip_restores_ram_devices_timers_and_clock() -> None:
    machine, dev = make_virt(ram_size=SMALL_RAM)
    assert dev is not None
    fill(dev)
    write_pattern(0x1000, PATTERN)
    write_pattern(SMALL_RAM - 0x1000, b"end of RAM")
    clock_step(5000)
    src_state = machine_state(machine, dev)
    f = QEMUFileWriter()
    stats = qemu_savevm_state(f, machine, runstate="paused")
    assert stats.ram.normal == 2
    assert stats.ram.duplicate == SMALL_RAM // 4096 - 2
    assert stats.sections == ["arm_gic", "pl011", "mig-test-dev"]
    assert stats.total_bytes == len(f.getvalue())
    dst_machine, dst = fresh_machine()
    assert dst is not None
    result = qemu_loadvm_state(f.getvalue(), dst_machine)
    assert result.machine_type == "virt-7.2"
    assert result.runstate == "paused"
    assert result.loaded == ["arm_gic (0)", "pl011 (0)", "mig-test-dev (0)"]
    assert result.skipped == []
    assert result.virtual_clock_ns == 5000
    assert machine_state(dst_machine, dst) == src_state
    with dst.regs.borrow() as r:
        assert r.loads == 1
    # The timer fires at the same virtual time as it would have on the source.
    assert dst.timer.expire_time() == 12345
    clock_step(12345 - 5000)
    with dst.regs.borrow() as r:
        assert r.b64 == 12345


def test_device_sections_follow_realize_order() -> None:
    machine, _dev = make_virt()
    second = MigTestDev()
    from qemu_api.sysbus import sysbus_realize

    sysbus_realize(second)
    f = QEMUFileWriter()
    qemu_savevm_state(f, machine)
    assert sections_of(f.getvalue()) == [
        (0, "timer"),
        (0, "arm_gic"),
        (0, "pl011"),
        (0, "mig-test-dev"),
        (1, "mig-test-dev"),
        (0, "globalstate"),
    ]


# -- unknown devices and RAM blocks ----------------------------------------------------


def test_unknown_device_is_an_error_listing_it() -> None:
    data = saved_stream()
    machine, _ = fresh_machine(with_dev=False)
    before = machine_state(machine, None)
    with pytest.raises(Error) as info:
        qemu_loadvm_state(data, machine)
    assert str(info.value) == (
        "migration: the stream has sections for devices this machine does not "
        "have: 'mig-test-dev' (instance 0)"
    )
    assert info.value.hint is not None
    assert "skip-unknown=on" in info.value.hint
    assert machine_state(machine, None) == before


def test_skip_unknown_skips_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    data = saved_stream()
    machine, _ = fresh_machine(with_dev=False)
    result = qemu_loadvm_state(data, machine, skip_unknown=True)
    assert result.skipped == ["'mig-test-dev' (instance 0)"]
    assert result.loaded == ["arm_gic (0)", "pl011 (0)"]
    assert "skipping section 'mig-test-dev' (instance 0)" in capsys.readouterr().err
    assert machine.ram is not None
    assert bytes(machine.ram.get_ram_ptr()[0x1000:0x2000]) == PATTERN
    assert qemu_clock_get_ns(CLOCK_VIRTUAL) == 5000


def test_skip_unknown_without_a_description_finds_the_footer() -> None:
    data = saved_stream()
    found = vmdesc_find(data)
    assert found is not None
    bare = data[: found[0]]
    machine, _ = fresh_machine(with_dev=False)
    result = qemu_loadvm_state(bare, machine, skip_unknown=True)
    assert result.skipped == ["'mig-test-dev' (instance 0)"]
    assert result.runstate == "running"


def test_ram_size_mismatch_names_the_block() -> None:
    data = saved_stream()
    reset_runtime()
    machine, dev = make_virt(ram_size=8 << 20)
    before = machine_state(machine, dev)
    with pytest.raises(
        Error,
        match=r"RAM block 'mach-virt.ram' is 0x1000000 bytes in the stream but "
        r"0x800000 bytes here",
    ):
        qemu_loadvm_state(data, machine)
    assert machine_state(machine, dev) == before


# -- bad streams: each fails, naming where, and changes nothing ----------------------


def corrupt(data: bytes, find: bytes, replace: bytes, after: int = 0) -> bytes:
    at = data.index(find, after)
    return data[:at] + replace + data[at + len(find) :]


def device_header(data: bytes) -> int:
    return data.index(b"\x0cmig-test-dev")


def without_device_footer(data: bytes) -> bytes:
    at = device_header(data)
    footer = b"\x7e" + data[at - 4 : at]  # the section id precedes the idstr
    return corrupt(data, footer, b"\x7f" + footer[1:], after=at)


def with_device_version(data: bytes, version: int) -> bytes:
    at = device_header(data) + 13 + 4  # after the idstr and the instance id
    return data[:at] + struct.pack(">I", version) + data[at + 4 :]


BAD_STREAMS: list[tuple[str, Callable[[bytes], bytes], str]] = [
    (
        "wrong magic",
        lambda d: b"QEVX" + d[4:],
        r"not a migration stream: bad magic 0x51455658 \(expected 0x5145564d",
    ),
    (
        "unknown version",
        lambda d: d[:4] + struct.pack(">I", 4) + d[8:],
        r"unsupported migration stream version 4 \(expected 3\)",
    ),
    (
        "obsolete version",
        lambda d: d[:4] + struct.pack(">I", 2) + d[8:],
        r"stream version 2 \(SaveVM v2\) is obsolete",
    ),
    (
        "too short",
        lambda d: d[:5],
        r"the stream is 5 bytes long, too short",
    ),
    (
        "other board",
        lambda d: corrupt(d, b"virt-7.2", b"sbsa-7.2"),
        r"configuration: machine type received is 'sbsa-7.2' and local is 'virt-7.2'",
    ),
    (
        "page size",
        lambda d: corrupt(
            d,
            b"target-page-bits" + struct.pack(">II", 1, 12),
            b"target-page-bits" + struct.pack(">II", 1, 16),
        ),
        r"received TARGET_PAGE_BITS is 16 but local is 12",
    ),
    (
        "no configuration",
        lambda d: d[:8] + b"\x01" + d[9:],
        r"configuration section missing at offset 0x8",
    ),
    (
        "version older than minimum_version_id",
        lambda d: with_device_version(d, 1),
        (
            r"section 'mig-test-dev' \(instance 0\) at offset 0x[0-9a-f]+: VMState "
            r"'mig-test-dev': incoming version_id 1 is too old for local minimum "
            r"version_id 2"
        ),
    ),
    (
        "version newer than version_id",
        lambda d: with_device_version(d, 9),
        r"VMState 'mig-test-dev': incoming version_id 9 is too new",
    ),
    (
        "truncated in RAM",
        lambda d: d[:0x2000],
        r"section 'ram' at offset 0x[0-9a-f]+: the stream ends at offset 0x2000",
    ),
    (
        "truncated in a device",
        lambda d: d[: device_header(d) + 40],
        (
            r"section 'mig-test-dev' \(instance 0\) at offset 0x[0-9a-f]+: VMState "
            r"'mig-test-dev', field 'regs': VMState 'mig-regs', field '\w+': the "
            r"stream ends"
        ),
    ),
    (
        "truncated before the end marker",
        lambda d: d[: vmdesc_at(d) - 1],
        r"the stream ends at offset 0x[0-9a-f]+: needed 1 more byte",
    ),
    (
        "trailing garbage",
        lambda d: d + b"junk",
        (
            r"migration: \d+ bytes of trailing garbage after the end of the stream at "
            r"offset 0x"
        ),
    ),
    (
        "garbage before the description",
        lambda d: d[: vmdesc_at(d)] + b"xy" + d[vmdesc_at(d) :],
        r"bytes of trailing garbage after the end of the stream at offset",
    ),
    (
        "missing footer",
        without_device_footer,
        (
            r"section 'mig-test-dev': missing section footer at offset 0x[0-9a-f]+ "
            r"\(found byte 0x7f\)"
        ),
    ),
    (
        "unknown section type",
        lambda d: d[: vmdesc_at(d) - 1] + b"\x09" + d[vmdesc_at(d) - 1 :],
        r"unknown savevm section type 0x09",
    ),
]


def vmdesc_at(data: bytes) -> int:
    found = vmdesc_find(data)
    assert found is not None
    return found[0]


@pytest.mark.parametrize(
    ("what", "mangle", "message"), BAD_STREAMS, ids=[b[0] for b in BAD_STREAMS]
)
def test_bad_stream_fails_and_changes_nothing(
    what: str, mangle: Callable[[bytes], bytes], message: str
) -> None:
    data = mangle(saved_stream())
    machine, dev = fresh_machine()
    before = machine_state(machine, dev)
    with pytest.raises(Error, match=message):
        qemu_loadvm_state(data, machine)
    assert machine_state(machine, dev) == before


def rejected(dev: MigTestDev) -> None:
    fill(dev)
    with dev.regs.borrow_mut() as r:
        r.b32 = u32(REJECT_MAGIC)


def invalid(dev: MigTestDev) -> None:
    fill(dev)
    with dev.regs.borrow_mut() as r:
        r.b8 = u8(INVALID_B8)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            rejected,
            (
                r"migration: section 'mig-test-dev' \(instance 0\): the state was "
                r"rejected, nothing was loaded: VMState 'mig-test-dev': post_load: b32 "
                r"is 0xdeadbeef, which this device rejects"
            ),
        ),
        (
            invalid,
            (
                r"section 'mig-test-dev' \(instance 0\): .*VMState 'mig-test-dev', "
                r"field 'b8 is not 0xff': input validation failed"
            ),
        ),
    ],
)
def test_rejected_state_leaves_the_machine_unchanged(
    setup: Callable[[MigTestDev], None], message: str
) -> None:
    data = saved_stream(setup)
    machine, dev = fresh_machine()
    assert dev is not None
    before = machine_state(machine, dev)
    digest = ram_digest(machine)
    with pytest.raises(Error, match=message):
        qemu_loadvm_state(data, machine)
    assert machine_state(machine, dev) == before
    assert ram_digest(machine) == digest
    assert dev.timer.expire_time() == 777  # re-armed at the old clock
    assert qemu_clock_get_ns(CLOCK_VIRTUAL) == 0


def test_other_version_of_the_board_loads() -> None:
    data = corrupt(saved_stream(), b"virt-7.2", b"virt-9.2")
    machine, _dev = fresh_machine()
    assert qemu_loadvm_state(data, machine).machine_type == "virt-9.2"


def test_no_machine_is_an_error() -> None:
    with pytest.raises(Error, match=r"migration needs a machine"):
        qemu_savevm_state(QEMUFileWriter())


def test_save_names_the_device_and_field_of_a_bad_value() -> None:
    machine, dev = make_virt()
    assert dev is not None
    with dev.regs.borrow_mut() as r:
        r.s8 = 1000
    with pytest.raises(
        Error,
        match=r"section 'mig-test-dev' \(instance 0\): VMState 'mig-test-dev', field "
        r"'regs': VMState 'mig-regs', field 's8': the value 1000 does not fit int8",
    ):
        qemu_savevm_state(QEMUFileWriter(), machine)


# -- -dump-vmstate ---------------------------------------------------------------------


def test_dump_vmstate_in_qemu_format(tmp_path: object) -> None:
    text = dump_vmstate_json("virt-7.2")
    assert text.startswith('{\n  "vmschkmachine": {\n    "Name": "virt-7.2"\n  },\n')
    assert text.endswith("\n}\n")
    dump = json.loads(text)
    dev = dump["mig-test-dev"]
    assert dev["Name"] == "mig-test-dev"
    assert (dev["version_id"], dev["minimum_version_id"]) == (3, 2)
    desc = dev["Description"]
    assert [f["field"] for f in desc["Fields"]] == ["unused", "regs", "timer"]
    assert desc["Fields"][2] == {
        "field": "timer",
        "version_id": 0,
        "field_exists": False,
        "size": 8,
    }
    clock = desc["Subsections"][0]["Fields"][0]
    assert clock["size"] == 8
    assert clock["Description"]["name"] == "clock"
    assert clock["Description"]["Subsections"][0]["name"] == "clock/muldiv"
    regs = desc["Fields"][1]["Description"]["Fields"]
    late = next(f for f in regs if f["field"] == "late")
    assert late["version_id"] == 3
    fixed = next(f for f in regs if f["field"] == "fixed")
    assert fixed["size"] == 4  # one element, as QEMU prints it
    assert (
        '    "Description": {\n      "name": "mig-test-dev",\n      "version_id": 3,\n'
        '      "minimum_version_id": 2,\n      "Fields": [\n        {\n'
        '          "field": "unused",\n          "version_id": 0,\n'
        '          "field_exists": false,\n          "size": 2\n        },\n'
    ) in text


def test_dump_vmstate_to_file(tmp_path: pytest.TempPathFactory) -> None:
    machine, _ = make_virt(with_dev=False)
    path = f"{tmp_path}/dump.json"
    dump_vmstate_json_to_file(path, machine)
    with open(path, encoding="utf-8") as f:
        assert json.load(f)["vmschkmachine"] == {"Name": "virt-7.2"}
    with pytest.raises(
        Error, match=r"^open /nonexistent/x: No such file or directory$"
    ):
        dump_vmstate_json_to_file("/nonexistent/x", machine)


# -- hostile VM descriptions: found by fuzzing, each fails fast and changes nothing --


def with_description(data: bytes, text: bytes) -> bytes:
    """``data`` with its JSON description replaced by ``text``."""
    at = vmdesc_at(data)
    return data[:at] + b"\x06" + struct.pack(">I", len(text)) + text


def device_description(*fields: dict[str, Any]) -> bytes:
    entry = {"name": "mig-test-dev", "instance_id": 0, "fields": list(fields)}
    return json.dumps({"page_size": 4096, "devices": [entry]}).encode()


def test_deeply_nested_description_is_ignored_not_a_recursion_error() -> None:
    # 3,000 nested arrays made json.loads raise RecursionError, which only
    # ValueError was caught for.  The description is unusable; the unknown
    # section is still found by its footer, as without a description.
    deep = b'{"devices": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    data = with_description(saved_stream(), deep)
    assert vmdesc_find(data) is None
    machine, _ = fresh_machine(with_dev=False)
    result = qemu_loadvm_state(data, machine, skip_unknown=True)
    assert result.skipped == ["'mig-test-dev' (instance 0)"]
    with pytest.raises(Error, match="the VM description nests deeper than 64 levels"):
        vmdesc_parse(deep)


def test_deeply_nested_struct_in_a_device_description() -> None:
    head = b'{"name": "s", "type": "struct", "struct": {"fields": ['
    field = head * 500 + b'{"name": "x", "type": "uint8", "size": 1}' + b"]}}" * 500
    text = device_description({"name": "placeholder"})
    text = text.replace(b'{"name": "placeholder"}', field)
    data = with_description(saved_stream(), text)
    machine, _ = fresh_machine(with_dev=False)
    assert qemu_loadvm_state(data, machine, skip_unknown=True).skipped == [
        "'mig-test-dev' (instance 0)"
    ]


def test_negative_size_in_the_description_is_refused_not_a_hang() -> None:
    # "size": -22 moved the read position backwards: the loader parsed the
    # same section forever.
    data = with_description(
        saved_stream(), device_description({"name": "x", "type": "uint8", "size": -22})
    )
    machine, _ = fresh_machine(with_dev=False)
    before = machine_state(machine, None)
    with pytest.raises(Error) as info:
        qemu_loadvm_state(data, machine, skip_unknown=True)
    assert str(info.value).startswith(
        "migration: section 'mig-test-dev' (instance 0) at offset 0x"
    )
    assert str(info.value).endswith(
        ": field 'x' has size -22 in the VM description; expected a byte count of "
        "0 or more"
    )
    assert machine_state(machine, None) == before


def test_reader_never_moves_backwards() -> None:
    r = QEMUFileReader(b"abcdef")
    r.skip(3)
    for read in (r.get_buffer, r.skip, lambda n: r.get_int(n, False)):
        with pytest.raises(Error, match=r"a length of -2 bytes at offset 0x3"):
            read(-2)
    assert r.pos == 3


def test_huge_array_len_is_refused_before_allocating() -> None:
    # "array_len": 1000000000 expanded a billion field copies: past 3 GiB.
    data = with_description(
        saved_stream(),
        device_description(
            {"name": "a", "type": "uint8", "size": 1, "array_len": 1_000_000_000}
        ),
    )
    machine, _ = fresh_machine(with_dev=False)
    tracemalloc.start()
    try:
        with pytest.raises(
            Error,
            match=r"field 'a' is an array of 1000000000 elements in the VM "
            r"description, but only \d+ bytes of the stream are left",
        ):
            qemu_loadvm_state(data, machine, skip_unknown=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_zero_size_elements_are_bounded() -> None:
    # Elements that take no byte of the stream cost no bytes to claim.
    inner = {"name": "e", "type": "struct", "struct": {"fields": []}}
    outer = {
        "name": "o",
        "type": "struct",
        "array_len": 600,
        "struct": {"fields": [inner | {"array_len": 600}]},
    }
    data = with_description(saved_stream(), device_description(outer))
    machine, _ = fresh_machine(with_dev=False)
    with pytest.raises(Error, match="fields that take no byte of the stream"):
        qemu_loadvm_state(data, machine, skip_unknown=True)


@pytest.mark.parametrize(
    "bad",
    [{"size": True}, {"size": "4"}, {"size": 1, "array_len": -1}],
    ids=["bool size", "string size", "negative array_len"],
)
def test_description_types_are_checked(bad: dict[str, Any]) -> None:
    desc = device_description({"name": "x", "type": "uint8"} | bad)
    data = with_description(saved_stream(), desc)
    machine, _ = fresh_machine(with_dev=False)
    with pytest.raises(Error, match="in the VM description; expected a"):
        qemu_loadvm_state(data, machine, skip_unknown=True)
