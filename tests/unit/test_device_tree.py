"""system.device_tree: building, patching, loading and dumping FDTs.

What a tree holds is checked by decompiling it with ``dtc`` (the reference
implementation of the format) where the text matters, and through libfdt's
reads elsewhere.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from qemu_api.error import Error
from system.device_tree import (
    FDT_MAX_SIZE,
    DtbDumped,
    Fdt,
    create_device_tree,
    load_device_tree,
    qemu_fdt_dumpdtb,
)


def dtc(blob: bytes, tmp: Path) -> str:
    exe = shutil.which("dtc")
    if exe is None:
        pytest.fail("dtc not found: apt-get install device-tree-compiler")
    path = tmp / "t.dtb"
    path.write_bytes(blob)
    return subprocess.run(
        [exe, "-q", "-I", "dtb", "-O", "dts", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def compile_dts(text: str, tmp: Path) -> Path:
    exe = shutil.which("dtc")
    if exe is None:
        pytest.fail("dtc not found: apt-get install device-tree-compiler")
    src, out = tmp / "in.dts", tmp / "in.dtb"
    src.write_text(text)
    subprocess.run(
        [exe, "-q", "-I", "dts", "-O", "dtb", "-o", str(out), str(src)],
        check=True,
        timeout=60,
    )
    return out


def test_create_is_an_empty_tree_in_a_1mib_buffer() -> None:
    fdt = create_device_tree()
    blob = fdt.as_bytes()
    assert fdt.size == FDT_MAX_SIZE == len(blob) == 0x100000
    magic, total = struct.unpack(">II", blob[:8])
    assert (magic, total) == (0xD00DFEED, FDT_MAX_SIZE)
    assert fdt.node_paths() == ["/"]
    assert fdt.properties("/") == []


def test_every_property_kind_as_dtc_reads_it(tmp_path: Path) -> None:
    fdt = create_device_tree()
    fdt.add_subnode("/n")
    fdt.setprop("/n", "flag", b"")
    fdt.setprop_cell("/n", "cell", 0x12345678)
    fdt.setprop_cells("/n", "cells", 1, 2, 0xFFFFFFFF)
    fdt.setprop_u64("/n", "u64", 0x0123456789ABCDEF)
    fdt.setprop_string("/n", "str", "hello")
    fdt.setprop_string_array("/n", "strs", ["arm,pl011", "arm,primecell"])
    fdt.setprop_sized_cells("/n", "reg", (2, 0x9000000), (1, 0x1000), (2, 1 << 40))
    text = dtc(fdt.as_bytes(), tmp_path)
    # libfdt adds each new property before the others: dtc prints them last first.
    assert text.split("n {\n")[1].split("\t};")[0].splitlines() == [
        "\t\treg = <0x00 0x9000000 0x1000 0x100 0x00>;",
        '\t\tstrs = "arm,pl011\\0arm,primecell";',
        '\t\tstr = "hello";',
        "\t\tu64 = <0x1234567 0x89abcdef>;",
        "\t\tcells = <0x01 0x02 0xffffffff>;",
        "\t\tcell = <0x12345678>;",
        "\t\tflag;",
    ]
    assert fdt.getprop("/n", "str") == b"hello\0"
    assert fdt.getprop_cell("/n", "cell") == 0x12345678


def test_setprop_replaces_in_place() -> None:
    fdt = create_device_tree()
    fdt.setprop_string("/", "a", "one")
    fdt.setprop_string("/", "b", "two")
    fdt.setprop_string("/", "a", "three")
    assert fdt.properties("/") == [("b", b"two\0"), ("a", b"three\0")]


def test_new_subnodes_come_first_and_paths_are_found() -> None:
    fdt = create_device_tree()
    for name in ("chosen", "apb-pclk", "intc@8000000"):
        fdt.add_subnode(f"/{name}")
    fdt.add_subnode("/intc@8000000/v2m@8020000")
    assert fdt.node_paths() == [
        "/",
        "/intc@8000000",
        "/intc@8000000/v2m@8020000",
        "/apb-pclk",
        "/chosen",
    ]
    # As in libfdt, a name without unit address finds the node with one.
    assert fdt.has_node("/intc")
    assert not fdt.has_node("/nope")


def test_add_path_makes_the_missing_parents() -> None:
    fdt = create_device_tree()
    fdt.add_subnode("/cpus")
    fdt.add_path("/cpus/cpu-map/socket0/cluster0/core1")
    fdt.add_path("/cpus/cpu-map/socket0/cluster0/core0")
    assert fdt.node_paths() == [
        "/",
        "/cpus",
        "/cpus/cpu-map",
        "/cpus/cpu-map/socket0",
        "/cpus/cpu-map/socket0/cluster0",
        "/cpus/cpu-map/socket0/cluster0/core0",
        "/cpus/cpu-map/socket0/cluster0/core1",
    ]
    with pytest.raises(Error, match="not an absolute path"):
        fdt.add_path("cpus")


def test_phandles_count_from_0x8000_and_resolve() -> None:
    fdt = create_device_tree()
    assert [fdt.alloc_phandle() for _ in range(3)] == [0x8000, 0x8001, 0x8002]
    fdt.add_subnode("/clk")
    fdt.setprop_cell("/clk", "phandle", 0x8001)
    fdt.add_subnode("/dev")
    fdt.setprop_phandle("/dev", "clocks", "/clk")
    assert fdt.getprop_cell("/dev", "clocks") == 0x8001
    assert create_device_tree(phandle_start=0x100).alloc_phandle() == 0x100
    with pytest.raises(Error, match="Couldn't get phandle for /dev"):
        fdt.get_phandle("/dev")


def test_nop_node_blanks_a_subtree_without_moving_the_rest() -> None:
    fdt = create_device_tree()
    # (libfdt's lookup of "memory" also matches "memory@...": add it first.)
    fdt.add_subnode("/memory")
    fdt.add_subnode("/memory@40000000")
    fdt.add_subnode("/memory@40000000/child")
    fdt.add_subnode("/soc")
    fdt.add_subnode("/soc/memory@0")
    # QEMU prepends each match found in blob order.
    assert fdt.node_unit_path("memory") == [
        "/memory",
        "/memory@40000000",
        "/soc/memory@0",
    ]
    before = len(fdt.packed())
    fdt.nop_node("/memory@40000000")
    assert fdt.node_paths() == ["/", "/soc", "/soc/memory@0", "/memory"]
    assert len(fdt.packed()) == before  # NOP tags keep their bytes


def test_node_path_filters_by_name_and_compatible() -> None:
    fdt = create_device_tree()
    for node, compat in (("/uart@1", "arm,pl011"), ("/uart@2", "ns16550")):
        fdt.add_subnode(node)
        fdt.setprop_string_array(node, "compatible", [compat, "x"])
    assert fdt.node_path("uart") == ["/uart@2", "/uart@1"]
    assert fdt.node_path("uart", "arm,pl011") == ["/uart@1"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda f: f.add_subnode("/a/b"),
            "qemu_fdt_add_subnode: Couldn't find node /a",
        ),
        (lambda f: f.add_subnode("/"), "invalid node path '/'"),
        (
            lambda f: f.setprop_cell("/x", "p", 1),
            "qemu_fdt_setprop: Couldn't find node",
        ),
        (lambda f: f.getprop("/", "nope"), "Couldn't get //nope: FDT_ERR_NOTFOUND"),
        (lambda f: f.setprop_cells("/", "c", 1 << 32), "does not fit in a 32-bit"),
        (lambda f: f.setprop_sized_cells("/", "r", (1, 1 << 32)), "one cell"),
        (lambda f: f.setprop_sized_cells("/", "r", (3, 1)), "only 1 or 2"),
        (lambda f: f.nop_node("/x"), "qemu_fdt_nop_node: Couldn't find node /x"),
    ],
)
def test_bad_calls_raise_qemus_errors(call, message: str) -> None:
    fdt = create_device_tree()
    with pytest.raises(Error, match=message.replace("(", r"\(")):
        call(fdt)


def test_getprop_cell_wants_four_bytes() -> None:
    fdt = create_device_tree()
    fdt.setprop_u64("/", "wide", 5)
    with pytest.raises(Error, match=r"//wide not 4 bytes long \(not a cell\?\)"):
        fdt.getprop_cell("/", "wide")


def test_a_full_buffer_is_an_error_not_a_crash() -> None:
    fdt = Fdt.from_bytes(create_device_tree().packed())
    with pytest.raises(Error, match="FDT_ERR_NOSPACE"):
        fdt.setprop("/", "big", bytes(4096))


def test_load_device_tree_doubles_the_room_as_qemu(tmp_path: Path) -> None:
    path = compile_dts(
        '/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>; model = "x"; };\n',
        tmp_path,
    )
    size = path.stat().st_size
    fdt = load_device_tree(str(path))
    assert fdt.size == (size + 10000) * 2
    assert struct.unpack(">I", fdt.as_bytes()[4:8])[0] == fdt.size
    assert fdt.getprop("/", "model") == b"x\0"


def _bad_blobs() -> list[tuple[str, bytes, str]]:
    good = create_device_tree().packed()
    corrupt = bytearray(good)
    struct.pack_into(">I", corrupt, 8, 0xFFFF00)  # off_dt_struct far past the end
    return [
        ("empty", b"", "shorter than the 40-byte FDT header"),
        ("short", good[:20], "shorter than the 40-byte FDT header"),
        ("text", b"not a device tree at all, just some text\n", "magic 0x6e6f7420"),
        ("truncated", good[:-8], "truncated: its header says 72 bytes, 64 are there"),
        ("corrupt", bytes(corrupt), "invalid device tree blob: FDT_ERR_"),
    ]


@pytest.mark.parametrize(("name", "blob", "message"), _bad_blobs())
def test_load_device_tree_rejects_bad_files(
    tmp_path: Path, name: str, blob: bytes, message: str
) -> None:
    path = tmp_path / f"{name}.dtb"
    path.write_bytes(blob)
    with pytest.raises(Error) as err:
        load_device_tree(str(path))
    assert err.value.msg.startswith(f"Couldn't open dtb file {path}: ")
    assert message in err.value.msg
    assert "dtc -I dts -O dtb" in (err.value.hint or "")


def test_load_device_tree_missing_file(tmp_path: Path) -> None:
    with pytest.raises(Error, match=r"Couldn.t open dtb file .*: No such file"):
        load_device_tree(str(tmp_path / "nope.dtb"))


def test_from_bytes_reads_a_tree_back_from_guest_memory_bytes() -> None:
    fdt = create_device_tree()
    fdt.add_subnode("/chosen")
    fdt.setprop_string("/chosen", "bootargs", "console=ttyAMA0")
    # A DTB in RAM is followed by whatever else is there.
    again = Fdt.from_bytes(fdt.as_bytes() + b"\xff" * 64)
    assert again.getprop("/chosen", "bootargs") == b"console=ttyAMA0\0"
    assert again.size == FDT_MAX_SIZE


def test_randomize_seeds_changes_rng_seed_only() -> None:
    fdt = create_device_tree()
    fdt.add_subnode("/chosen")
    fdt.setprop("/chosen", "rng-seed", bytes(32))
    fdt.setprop_u64("/chosen", "kaslr-seed", 7)
    fdt.randomize_seeds()
    seed = fdt.getprop("/chosen", "rng-seed")
    assert len(seed) == 32
    assert seed != bytes(32)
    assert fdt.getprop("/chosen", "kaslr-seed") == (7).to_bytes(8, "big")


def test_dumpdtb_writes_the_whole_buffer_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fdt = create_device_tree()
    qemu_fdt_dumpdtb(fdt, None)  # nothing asked: nothing done
    out = tmp_path / "out.dtb"
    with pytest.raises(DtbDumped) as done:
        qemu_fdt_dumpdtb(fdt, str(out))
    assert done.value.code == 0
    assert out.read_bytes() == fdt.as_bytes()
    assert capsys.readouterr().err.endswith(f"info: dtb dumped to {out}. Exiting.\n")
    with pytest.raises(Error, match="Failed dumping dtb to"):
        qemu_fdt_dumpdtb(fdt, str(tmp_path / "no" / "such" / "dir.dtb"))


def test_names_that_are_not_text_are_refused() -> None:
    fdt = create_device_tree()
    fdt.add_subnode("/zz")
    fdt.setprop_cell("/zz", "qq", 1)
    for name in (b"zz\0", b"qq\0"):
        blob = bytearray(fdt.packed())
        pos = blob.index(name)
        blob[pos : pos + 2] = b"\xff\xfe"
        with pytest.raises(Error, match=r"invalid device tree blob: .*not text"):
            Fdt.from_bytes(bytes(blob))
