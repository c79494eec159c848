"""Loading guests through the launcher, read back over qtest, against QEMU 7.2.

Each case starts pyqemu (``-accel qtest``) and Debian's QEMU 7.2 (TCG, stopped
with ``-S``, ``-cpu cortex-a57``) with the same images, then reads guest
memory on both: the boot loader, the kernel, the initrd and the DTB must be
where QEMU puts them, byte for byte (the DTBs differ in the nodes pyqemu
does not have, see test_virt_dtb.py, except a ``-dtb`` file, which both patch
identically). Then ``system_reset`` must bring the images back, and bad
images must give a one-line error.
"""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from system.device_tree import Fdt
from tests.oracle import qemu72
from tests.qtest.libqtest import QTestState, qemu_binary

RAM: Final = 0x4000_0000
MiB: Final = 1 << 20
ARGS: Final = ["-M", "virt,dtb-randomness=off", "-nodefaults", "-S"]


def image(text_offset: int, image_size: int, body: bytes) -> bytes:
    hdr = struct.pack(
        "<IIQQQQQQII", 0x14000010, 0, text_offset, image_size, 2, 0, 0, 0, 0x644D5241, 0
    )
    return hdr + body


def elf(segments: list[tuple[int, bytes]], entry: int) -> bytes:
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    n = len(segments)
    out = struct.pack(
        "<16sHHIQQQIHHHHHH", ident, 2, 183, 1, entry, 64, 0, 0, 64, 56, n, 64, 0, 0
    )
    offset = 64 + 56 * n
    data = b""
    for paddr, body in segments:
        out += struct.pack(
            "<IIQQQQQQ",
            1,
            5,
            offset + len(data),
            paddr,
            paddr,
            len(body),
            len(body),
            4096,
        )
        data += body
    return out + data


BOARD_DTS: Final = """/dts-v1/;
/ {
  #address-cells = <2>;
  #size-cells = <2>;
  compatible = "example,board";
  memory@40000000 { device_type = "memory"; reg = <0 0x40000000 0 0x1000>; };
  memory@80000000 { device_type = "memory"; reg = <0 0x80000000 0 0x1000>; };
  psci { compatible = "arm,psci"; method = "smc"; };
  soc {
    #address-cells = <2>;
    #size-cells = <2>;
    memory@0 { reg = <0 0 0 1>; };
  };
};
"""

BODY: Final = bytes((i * 7 + 3) & 0xFF for i in range(0x3000))


@pytest.fixture
def both(tmp_path: Path) -> Iterator[tuple[Path, list[QTestState]]]:
    started: list[QTestState] = []
    yield tmp_path, started
    for qts in started:
        qts.quit()


def start(started: list[QTestState], args: list[str]) -> tuple[QTestState, QTestState]:
    qemu = QTestState(
        [*ARGS, "-cpu", "cortex-a57", *args], binary=qemu72(), accel=None, qmp=True
    )
    started.append(qemu)
    ours = QTestState([*ARGS, *args], qmp=True)
    started.append(ours)
    return qemu, ours


def same(qemu: QTestState, ours: QTestState, addr: int, size: int) -> bytes:
    got = ours.memread(addr, size)
    assert got == qemu.memread(addr, size), f"0x{addr:x}+0x{size:x} differs"
    return got


def dtb(qts: QTestState, addr: int) -> Fdt:
    size = struct.unpack(">I", qts.memread(addr + 4, 4))[0]
    return Fdt.from_bytes(qts.memread(addr, size))


def test_image_initrd_append_are_where_qemu_puts_them(
    both: tuple[Path, list[QTestState]],
) -> None:
    tmp, started = both
    kernel = image(0, 0x10000, BODY)
    initrd = bytes(range(256)) * 40
    (tmp / "Image").write_bytes(kernel)
    (tmp / "initrd").write_bytes(initrd)
    args = ["-kernel", str(tmp / "Image"), "-initrd", str(tmp / "initrd")]
    qemu, ours = start(started, [*args, "-append", "console=ttyAMA0 rdinit=/sh"])
    boot = same(qemu, ours, RAM, 40)  # QEMU's boot loader and its literal pool
    dtb_addr, entry = struct.unpack_from("<QQ", boot, 24)
    assert (entry, dtb_addr) == (RAM + 2 * MiB, RAM + 66 * MiB)
    assert same(qemu, ours, entry, len(kernel)) == kernel
    assert same(qemu, ours, RAM + 64 * MiB, len(initrd) + 16) == initrd + bytes(16)
    # The DTBs differ in nodes, not in /chosen and /memory.
    q, o = dtb(qemu, dtb_addr), dtb(ours, dtb_addr)
    assert o.size == q.size == MiB
    for path in ("/chosen", "/memory@40000000"):
        assert o.properties(path) == q.properties(path)
    assert o.getprop_cell("/chosen", "linux,initrd-end") == RAM + 64 * MiB + len(initrd)


def test_user_dtb_is_patched_as_qemu_patches_it(
    both: tuple[Path, list[QTestState]],
) -> None:
    tmp, started = both
    dtc = shutil.which("dtc")
    if dtc is None:
        pytest.fail("dtc not found: apt-get install device-tree-compiler")
    (tmp / "board.dts").write_text(BOARD_DTS)
    subprocess.run(
        [
            dtc,
            "-q",
            "-I",
            "dts",
            "-O",
            "dtb",
            "-o",
            str(tmp / "board.dtb"),
            str(tmp / "board.dts"),
        ],
        check=True,
        timeout=60,
    )
    (tmp / "Image").write_bytes(image(0x80000, 0x10000, BODY))
    (tmp / "initrd").write_bytes(b"rd" * 3000)
    qemu, ours = start(
        started,
        [
            "-kernel", str(tmp / "Image"), "-initrd", str(tmp / "initrd"),
            "-dtb", str(tmp / "board.dtb"), "-append", "root=/dev/vda",
        ],
    )  # fmt: skip
    boot = same(qemu, ours, RAM, 40)
    dtb_addr = struct.unpack_from("<Q", boot, 24)[0]
    size = struct.unpack(">I", qemu.memread(dtb_addr + 4, 4))[0]
    # The whole blob, header to free space: memory nodes replaced, /chosen and
    # /psci written, the buffer (file + 10000) * 2 bytes.
    blob = same(qemu, ours, dtb_addr, size)
    assert size == ((tmp / "board.dtb").stat().st_size + 10000) * 2
    fdt = Fdt.from_bytes(blob)
    assert fdt.getprop("/psci", "method") == b"hvc\0"
    assert fdt.node_unit_path("memory") == ["/soc/memory@0", "/memory@40000000"]


def test_raw_gzip_and_elf_kernels(both: tuple[Path, list[QTestState]]) -> None:
    tmp, started = both
    raw = b"\x1f\x20\x03\xd5" * 512
    gz = image(0x1000, 0x20000, BODY)
    segs = [(RAM + 0x20_0000, BODY[:0x800]), (RAM + 0x30_0000, BODY[0x800:0x900])]
    (tmp / "raw").write_bytes(raw)
    (tmp / "Image.gz").write_bytes(gzip.compress(gz))
    (tmp / "k.elf").write_bytes(elf(segs, RAM + 0x20_0010))
    qemu, ours = start(started, ["-kernel", str(tmp / "raw")])
    assert same(qemu, ours, RAM + 0x80000, len(raw)) == raw
    same(qemu, ours, RAM, 40)
    qemu, ours = start(started, ["-kernel", str(tmp / "Image.gz")])
    assert same(qemu, ours, RAM + 0x1000, len(gz)) == gz
    same(qemu, ours, RAM, 40)
    qemu, ours = start(started, ["-kernel", str(tmp / "k.elf")])
    for addr, body in segs:
        assert same(qemu, ours, addr, len(body)) == body
    # No boot loader; the DTB goes below the image, at the start of RAM.
    assert ours.readl(RAM) == qemu.readl(RAM) == 0xEDFE0DD0


def test_elf_without_room_below_gets_no_dtb_as_in_qemu(
    both: tuple[Path, list[QTestState]],
) -> None:
    tmp, started = both
    (tmp / "k.elf").write_bytes(elf([(RAM + 0x8_0000, BODY[:64])], RAM + 0x8_0000))
    qemu, ours = start(started, ["-kernel", str(tmp / "k.elf")])
    assert same(qemu, ours, RAM, 0x100) == bytes(0x100)
    assert "the guest gets no DTB" in ours.stderr()


def test_bios_is_at_0_and_the_dtb_at_the_start_of_ram(
    both: tuple[Path, list[QTestState]],
) -> None:
    tmp, started = both
    fw = BODY * 3
    (tmp / "fw.bin").write_bytes(fw)
    qemu, ours = start(started, ["-bios", str(tmp / "fw.bin")])
    assert same(qemu, ours, 0, len(fw)) == fw
    assert ours.readl(RAM) == qemu.readl(RAM) == 0xEDFE0DD0
    # Read-only for the guest (QEMU's pflash takes writes as commands).
    ours.writel(0, 0xFFFFFFFF)
    assert ours.memread(0, 4) == fw[:4]


def test_system_reset_brings_the_images_back(tmp_path: Path) -> None:
    kernel = image(0, 0x10000, BODY)
    (tmp_path / "Image").write_bytes(kernel)
    with QTestState([*ARGS, "-kernel", str(tmp_path / "Image")], qmp=True) as qts:
        qts.memwrite(RAM, bytes(40))
        qts.memwrite(RAM + 2 * MiB, bytes(len(kernel)))
        qts.memwrite(RAM + 64 * MiB, bytes(64))
        qts.qmp("system_reset")
        assert qts.memread(RAM + 2 * MiB, len(kernel)) == kernel
        assert struct.unpack_from("<Q", qts.memread(RAM, 40), 32)[0] == RAM + 2 * MiB
        assert qts.readl(RAM + 64 * MiB) == 0xEDFE0DD0


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(qemu_binary()), "-M", "virt", "-display", "none", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("files", "args", "first_line"),
    [
        ({}, ["-kernel", "{d}/nope"], "could not load kernel '{d}/nope': No such file"),
        (
            {"Image": image(0, 0, b"")[:62]},
            ["-kernel", "{d}/Image"],
            "could not load kernel '{d}/Image': truncated arm64 Image header",
        ),
        (
            {"zImage": b"\0" * 0x24 + struct.pack("<I", 0x016F2818) + b"\0" * 64},
            ["-kernel", "{d}/zImage"],
            "could not load kernel '{d}/zImage': it is a 32-bit ARM zImage",
        ),
        (
            {"big": image(0, 200 * MiB, BODY)},
            ["-kernel", "{d}/big"],
            (
                "kernel '{d}/big' is too large to fit in RAM (kernel size "
                "209715200, RAM size 134217728)"
            ),
        ),
        (
            {
                "x86.elf": elf([(RAM, BODY[:16])], RAM)[:18]
                + b"\x3e"
                + elf([(RAM, BODY[:16])], RAM)[19:]
            },
            ["-kernel", "{d}/x86.elf"],
            (
                "Couldn't load elf '{d}/x86.elf': The image is from incompatible "
                "architecture (e_machine is EM_X86_64, this board needs EM_AARCH64)"
            ),
        ),
        (
            {
                "Image": image(0, 0x1000, BODY),
                "bad.dtb": b"\xd0\x0d\xfe\xed" + bytes(60),
            },
            ["-kernel", "{d}/Image", "-dtb", "{d}/bad.dtb"],
            "Couldn't open dtb file {d}/bad.dtb: ",
        ),
        ({}, ["-initrd", "{d}/x"], "-initrd only allowed with -kernel option"),
        ({}, ["-append", "x"], "-append only allowed with -kernel option"),
        ({}, ["-bios", "{d}/nope"], "Could not find ROM image '{d}/nope'"),
    ],
)
def test_bad_images_give_one_line_and_status_1(
    tmp_path: Path, files: dict[str, bytes], args: list[str], first_line: str
) -> None:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    res = run([a.format(d=tmp_path) for a in args])
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    line = res.stderr.splitlines()[0]
    assert line.startswith("pyqemu-system-aarch64: " + first_line.format(d=tmp_path))


def test_boards_that_load_no_guests_say_so(tmp_path: Path) -> None:
    (tmp_path / "k").write_bytes(b"\0" * 16)
    res = subprocess.run(
        [str(qemu_binary()), "-M", "none", "-kernel", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 1
    assert res.stderr.startswith(
        "pyqemu-system-aarch64: the 'none' machine does not load guest images (-kernel)"
    )


def test_dumpdtb_with_a_user_dtb_dumps_it_patched(tmp_path: Path) -> None:
    # -M virt,dumpdtb writes what the guest would get, then the run ends.
    first = tmp_path / "first.dtb"
    res = run(["-M", f"virt,dumpdtb={first}"])
    assert res.returncode == 0, res.stderr
    (tmp_path / "Image").write_bytes(image(0, 0x1000, BODY))
    second = tmp_path / "second.dtb"
    res = run(
        ["-M", f"virt,dumpdtb={second}", "-kernel", str(tmp_path / "Image"),
         "-dtb", str(first), "-append", "quiet"]
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    fdt = Fdt.from_bytes(second.read_bytes())
    assert fdt.getprop("/chosen", "bootargs") == b"quiet\0"
    assert fdt.size == (first.stat().st_size + 10000) * 2
