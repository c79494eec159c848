#!/usr/bin/env python3
"""Print the sections and device state of a migration stream as JSON.

Usage: analyze-migration.py -f FILE [-d state|desc] [-m] [-x]

Reads a stream written by QEMU or pyqemu (``migrate`` to ``file:`` or
``exec:cat > FILE``) and prints, like QEMU's script of the same name:

- ``-d state`` (default): one entry per section, ``"idstr (section_id)"``,
  with each field decoded through the JSON VM description the stream
  carries at its end (integers as ``"0x00000090"``, negative ones as
  ``"0xffffffff (-1)"``, arrays as lists, structs and subsections nested);
  the ``ram`` section shows its block sizes (and, with ``-m``, every page);
- ``-d desc``: the JSON VM description itself;
- ``-x``: writes ``desc.json``, ``state.json`` and one file per RAM block
  into the current directory.

It needs only the source tree (``qemu_api.migration.vmdesc`` and
``qemu_api.migration.qemu_file``), not a build.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileReader
from qemu_api.migration.vmdesc import vmdesc_decode, vmdesc_device, vmdesc_find

MAGIC = 0x5145564D
VERSION = 3
EOF_ = 0x00
START, PART, END, FULL = 0x01, 0x02, 0x03, 0x04
SUBSECTION = 0x05
CONFIGURATION = 0x07
COMMAND = 0x08
FOOTER = 0x7E

RAM_ZERO = 0x02
RAM_MEM_SIZE = 0x04
RAM_PAGE = 0x08
RAM_EOS = 0x10
RAM_CONTINUE = 0x20
RAM_MULTIFD_FLUSH = 0x200


class RamSection:
    """The ``ram`` section: block sizes, optionally every page."""

    def __init__(
        self, page_size: int, dump_memory: bool, extract_dir: Path | None
    ) -> None:
        self.page_size = page_size
        self.dump_memory = dump_memory
        self.extract_dir = extract_dir
        self.sizes: dict[str, str] = {}
        self.memory: dict[str, str] = {}
        self.name = ""

    def _write(self, offset: int, data: bytes) -> None:
        if self.extract_dir is None:
            return
        path = self.extract_dir / self.name.lstrip("/")
        with path.open("r+b") as out:
            out.seek(offset)
            out.write(data)

    def read(self, f: QEMUFileReader) -> None:
        mask = self.page_size - 1
        while True:
            header = f.get_be64()
            flags = header & mask
            addr = header & ~mask
            if flags & RAM_MEM_SIZE:
                total = addr
                while total > 0:
                    name = f.get_counted_string()
                    length = f.get_be64()
                    total -= length
                    self.sizes[name] = f"0x{length:016x}"
                    if self.extract_dir is not None:
                        path = self.extract_dir / name.lstrip("/")
                        path.parent.mkdir(parents=True, exist_ok=True)
                        with path.open("wb") as out:
                            out.truncate(length)
                        print(name)
                flags &= ~RAM_MEM_SIZE
            if flags & (RAM_ZERO | RAM_PAGE):
                if not flags & RAM_CONTINUE:
                    self.name = f.get_counted_string()
                key = f"{self.name} (0x{addr:016x})"
                if flags & RAM_ZERO:
                    fill = f.get_byte()
                    if self.dump_memory:
                        self.memory[key] = f"Filled with 0x{fill:02x}"
                    if fill:
                        self._write(addr, bytes([fill]) * self.page_size)
                else:
                    data = bytes(f.get_buffer(self.page_size))
                    if self.dump_memory:
                        self.memory[key] = " ".join(f"{c:02x}" for c in data)
                    self._write(addr, data)
                flags &= ~(RAM_ZERO | RAM_PAGE | RAM_CONTINUE)
            flags &= ~RAM_MULTIFD_FLUSH
            if flags & RAM_EOS:
                return
            if flags:
                raise Error(f"unknown RAM flags {flags:#x} at offset {f.pos - 8:#x}")

    def result(self) -> dict[str, object]:
        out: dict[str, object] = {"section sizes": self.sizes}
        if self.dump_memory:
            out["memory"] = self.memory
        return out


def read_configuration(f: QEMUFileReader) -> dict[str, object]:
    length = f.get_be32()
    name = bytes(f.get_buffer(length)).decode("utf-8", errors="replace")
    config: dict[str, object] = {"name": name}
    while f.peek_byte() == SUBSECTION:
        f.skip(1)
        sub = f.get_counted_string()
        f.get_be32()
        if sub == "configuration/target-page-bits":
            config["target-page-bits"] = f.get_be32()
        else:
            raise Error(f"configuration: unknown subsection '{sub}'")
    return config


def analyze(
    data: bytes, dump_memory: bool, extract_dir: Path | None
) -> tuple[dict[str, object], dict[str, object]]:
    found = vmdesc_find(data)
    if found is None:
        raise Error("the stream has no JSON VM description (QEMU_VM_VMDESCRIPTION)")
    end_of_sections, desc = found
    f = QEMUFileReader(data)
    magic = f.get_be32()
    if magic != MAGIC:
        raise Error(f"invalid file magic {magic:#x}")
    version = f.get_be32()
    if version != VERSION:
        raise Error(f"invalid version number {version}")
    page_size = desc.get("page_size", 4096)
    if not isinstance(page_size, int):
        raise Error("the VM description has no page_size")
    sections: dict[int, tuple[str, object]] = {}
    ram: RamSection | None = None
    out: dict[str, object] = {}
    last_id = -1
    while True:
        at = f.pos
        kind = f.get_byte()
        if kind == EOF_:
            break
        if kind == CONFIGURATION:
            read_configuration(f)
        elif kind in (START, FULL):
            section_id = f.get_be32()
            name = f.get_counted_string()
            instance_id = f.get_be32()
            f.get_be32()
            last_id = section_id
            if name == "ram" and instance_id == 0:
                ram = RamSection(page_size, dump_memory, extract_dir)
                sections[section_id] = (name, ram)
                ram.read(f)
            else:
                entry = vmdesc_device(desc, name, instance_id)
                if entry is None:
                    raise Error(
                        f"section '{name}' (instance {instance_id}) at {at:#x} is "
                        "not in the VM description"
                    )
                sections[section_id] = (name, vmdesc_decode(f, entry))
        elif kind in (PART, END):
            section_id = f.get_be32()
            last_id = section_id
            name, reader = sections.get(section_id, ("", None))
            if not isinstance(reader, RamSection):
                raise Error(f"section id {section_id} at {at:#x} is not iterative RAM")
            reader.read(f)
        elif kind == FOOTER:
            read_id = f.get_be32()
            if read_id != last_id:
                raise Error(f"mismatched section footer: {read_id:#x} vs {last_id:#x}")
        elif kind == COMMAND:
            cmd = f.get_be16()
            length = f.get_be16()
            f.skip(length)
            if cmd != 0x0B:
                raise Error(f"unknown QEMU_VM_COMMAND {cmd:#x}")
        else:
            raise Error(f"unknown section type {kind} at offset {at:#x}")
    if f.pos != end_of_sections:
        raise Error(
            f"{end_of_sections - f.pos} unexpected bytes between the end of the "
            f"sections at {f.pos:#x} and the VM description"
        )
    for section_id, (name, value) in sections.items():
        if isinstance(value, RamSection):
            out[f"{name} ({section_id})"] = value.result()
        else:
            out[f"{name} ({section_id})"] = value
    return out, desc


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--file", required=True, help="migration stream to read")
    parser.add_argument(
        "-m", "--memory", action="store_true", help="dump RAM contents as well"
    )
    parser.add_argument(
        "-d", "--dump", default="state", help='what to dump ("state" or "desc")'
    )
    parser.add_argument(
        "-x",
        "--extract",
        action="store_true",
        help="extract contents into individual files",
    )
    args = parser.parse_args(argv)
    if args.dump not in ("state", "desc") and not args.extract:
        parser.error('-d takes "state" or "desc"')
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"analyze-migration: {exc}", file=sys.stderr)
        return 1
    enc = json.JSONEncoder(indent=4, separators=(",", ": "))
    try:
        if args.extract:
            state, desc = analyze(data, False, Path.cwd())
            Path("desc.json").write_text(enc.encode(desc))
            print("desc.json")
            Path("state.json").write_text(enc.encode(state))
            print("state.json")
        elif args.dump == "desc":
            found = vmdesc_find(data)
            if found is None:
                raise Error("the stream has no JSON VM description")
            print(enc.encode(found[1]))
        else:
            state, _ = analyze(data, args.memory, None)
            print(enc.encode(state))
    except Error as err:
        print(f"analyze-migration: {args.file}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
