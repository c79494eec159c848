"""The JSON VM description reader and scripts/analyze-migration.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.savevm import qemu_savevm_state
from qemu_api.migration.vmdesc import vmdesc_decode, vmdesc_device, vmdesc_find
from qemu_api.timer import clock_step
from tests.migration.machine import make_virt, write_pattern
from tests.migration.migdev import fill

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "analyze-migration.py"


def test_find_the_description_even_when_its_length_holds_0x06() -> None:
    text = json.dumps({"page_size": 4096, "devices": [], "pad": "x" * 240}).encode()
    assert len(text) & 0xFF == 0x06 or len(text) >> 8 == 0x01
    body = b"QEVM" + bytes(7) + b"\x06\x06\x00"
    stream = body + b"\x06" + len(text).to_bytes(4, "big") + text
    found = vmdesc_find(stream)
    assert found is not None
    assert found[0] == len(body)
    assert found[1]["page_size"] == 4096
    assert vmdesc_find(stream[:-1]) is None
    assert vmdesc_find(b"no description") is None


def test_decode_like_qemu_analyzer() -> None:
    desc = {
        "fields": [
            {"name": "u", "type": "uint16", "size": 2},
            {"name": "s", "type": "int64", "size": 8},
            {"name": "b", "type": "bool", "size": 1},
            {"name": "t", "type": "timer", "size": 8},
            {"name": "a", "index": 0, "type": "uint8", "size": 1},
            {"name": "a", "index": 1, "type": "uint8", "size": 1},
            {
                "name": "st",
                "type": "struct",
                "struct": {"fields": [{"name": "x", "type": "int8", "size": 1}]},
                "size": 1,
            },
        ],
        "subsections": [
            {
                "vmsd_name": "d/sub",
                "version": 1,
                "fields": [{"name": "y", "type": "uint32", "size": 4}],
            }
        ],
    }
    raw = (
        bytes.fromhex("0102fffffffffffffffe01ffffffffffffffff0a0b7f")
        + b"\x05\x05d/sub"
        + bytes.fromhex("0000000100000009")
    )
    f = QEMUFileReader(raw)
    assert vmdesc_decode(f, desc) == {
        "u": "0x0102",
        "s": "0xfffffffffffffffe (-2)",
        "b": True,
        "t": "ff ff ff ff ff ff ff ff",
        "a": ["0x0a", "0x0b"],
        "st": {"x": "0x7f"},
        "d/sub": {"y": "0x00000009"},
    }
    assert f.remaining() == 0
    with pytest.raises(Error, match=r"subsection 'd/sub' not found at offset 0x0"):
        vmdesc_decode(QEMUFileReader(b"\x00\x00"), {"subsections": desc["subsections"]})
    assert vmdesc_device({"devices": [{"name": "n", "instance_id": 1}]}, "n", 1)
    assert vmdesc_device({"devices": []}, "n", 1) is None


@pytest.fixture
def pyqemu_stream(tmp_path: Path) -> Path:
    machine, dev = make_virt(ram_size=1 << 20)
    assert dev is not None
    fill(dev)
    write_pattern(0x1000, b"\x5a" * 4096)
    clock_step(99)
    f = QEMUFileWriter()
    qemu_savevm_state(f, machine, runstate="paused")
    path = tmp_path / "p.mig"
    path.write_bytes(f.getvalue())
    return path


def run_script(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def test_analyze_state_of_a_pyqemu_stream(pyqemu_stream: Path) -> None:
    out = run_script("-f", str(pyqemu_stream))
    assert out.returncode == 0, out.stderr
    state: Any = json.loads(out.stdout)
    assert list(state) == [
        "ram (1)",
        "timer (0)",
        "arm_gic (2)",
        "pl011 (3)",
        "mig-test-dev (4)",
        "globalstate (5)",
    ]
    assert state["ram (1)"] == {
        "section sizes": {"mach-virt.ram": "0x0000000000100000"}
    }
    assert state["timer (0)"]["cpu_clock_offset"] == "0x0000000000000063"
    dev = state["mig-test-dev (4)"]
    regs = dev["regs"]
    assert regs["b32"] == "0x83456789"
    assert regs["s16"] == "0xfed4 (-300)"
    assert regs["flag"] is True
    assert regs["fixed"] == ["0x00000010", "0x00000020", "0x00000030", "0x00000040"]
    assert regs["counted"] == ["0x0007", "0x0008", "0x0009"]
    assert regs["buf"] == "70 79 71 65 6d 75"
    assert regs["sub"] == {"a": "0x000000a1", "mig-sub/extra": {"extra": "0x0005"}}
    assert dev["mig-test-dev/clock"]["clk"]["clock/muldiv"] == {
        "multiplier": "0x00000003",
        "divider": "0x00000002",
    }
    assert dev["mig-test-dev/period"] == {"period": "0x000003e8"}
    # QEMU's output format: 4-space indent, ": " and "," separators.
    assert out.stdout.startswith('{\n    "ram (1)": {\n        "section sizes": {\n')


def test_analyze_desc_memory_and_extract(pyqemu_stream: Path, tmp_path: Path) -> None:
    desc = run_script("-f", str(pyqemu_stream), "-d", "desc")
    assert json.loads(desc.stdout)["devices"][0]["name"] == "timer"
    mem = run_script("-f", str(pyqemu_stream), "-m")
    memory = json.loads(mem.stdout)["ram (1)"]["memory"]
    assert memory["mach-virt.ram (0x0000000000000000)"] == "Filled with 0x00"
    assert memory["mach-virt.ram (0x0000000000001000)"] == " ".join(["5a"] * 4096)
    out = tmp_path / "x"
    out.mkdir()
    ext = run_script("-f", str(pyqemu_stream), "-x", cwd=out)
    assert ext.returncode == 0, ext.stderr
    assert ext.stdout.split() == ["mach-virt.ram", "desc.json", "state.json"]
    ram = (out / "mach-virt.ram").read_bytes()
    assert len(ram) == 1 << 20
    assert ram[0x1000:0x2000] == b"\x5a" * 4096
    assert json.loads((out / "state.json").read_text())["globalstate (5)"]["size"] == (
        "0x00000007"
    )


def test_analyze_errors(tmp_path: Path, pyqemu_stream: Path) -> None:
    data = pyqemu_stream.read_bytes()
    found = vmdesc_find(data)
    assert found is not None
    bare = tmp_path / "bare.mig"
    bare.write_bytes(data[: found[0]])
    out = run_script("-f", str(bare))
    assert out.returncode == 1
    assert "the stream has no JSON VM description" in out.stderr
    bad = tmp_path / "bad.mig"
    bad.write_bytes(b"QEVX" + data[4:])
    out = run_script("-f", str(bad))
    assert out.returncode == 1
    assert "invalid file magic 0x51455658" in out.stderr
    out = run_script("-f", str(tmp_path / "missing.mig"))
    assert out.returncode == 1
    assert "No such file or directory" in out.stderr
