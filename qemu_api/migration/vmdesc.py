"""The JSON VM description of a migration stream, and reading sections with it.

QEMU appends to every stream a JSON description of the device sections it
wrote (``QEMU_VM_VMDESCRIPTION`` after the end marker, built by
``migration/vmstate.c`` while saving): for each section its ``name``,
``instance_id``, ``vmsd_name``, ``version``, its ``fields`` (name, type,
size; arrays as ``array_len``, structs nested) and the ``subsections`` it
sent.  This module finds that description and reads a section's bytes with
it, as QEMU's ``scripts/analyze-migration.py`` does; migration uses it to
step over the sections of devices a machine does not have, and pyqemu's
``scripts/analyze-migration.py`` to print any stream.

It depends only on :mod:`qemu_api.migration.qemu_file`, so tools can use it
without the emulator.

>>> from qemu_api.migration.qemu_file import QEMUFileReader
>>> desc = {
...     "fields": [
...         {"name": "ctrl", "type": "uint32", "size": 4},
...         {"name": "pos", "type": "int32", "size": 4},
...         {"name": "fifo", "array_len": 2, "type": "uint8", "size": 1},
...     ]
... }
>>> vmdesc_decode(QEMUFileReader(bytes.fromhex("00000301ffffffff4142")), desc)
{'ctrl': '0x00000301', 'pos': '0xffffffff (-1)', 'fifo': ['0x41', '0x42']}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Final

from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileReader

__all__ = ["vmdesc_decode", "vmdesc_device", "vmdesc_find"]

QEMU_VM_SUBSECTION: Final = 0x05
QEMU_VM_VMDESCRIPTION: Final = 0x06

JSONObject = dict[str, object]


def vmdesc_find(data: bytes | bytearray | memoryview) -> tuple[int, JSONObject] | None:
    """Find the JSON VM description at the end of a stream.

    The description is the last thing in the stream: ``0x06``, its length
    as ``be32``, the JSON text.  JSON text never holds a raw ``0x06`` byte, so
    the marker is the last one in the stream, or one of the few before it
    when the length itself contains that byte.

    Returns:
        The offset of the ``0x06`` byte and the parsed description, or None
        when the stream has none.
    """
    view = memoryview(data).cast("B")
    raw = bytes(view[-min(len(view), 64 << 20) :])
    base = len(view) - len(raw)
    end = len(raw)
    # The marker is the last 0x06 byte, unless the length field holds one.
    for _ in range(5):
        at = raw.rfind(bytes([QEMU_VM_VMDESCRIPTION]), 0, end)
        if at < 0:
            return None
        end = at
        if at + 5 > len(raw):
            continue
        length = int.from_bytes(raw[at + 1 : at + 5], "big")
        text = raw[at + 5 :]
        if length == len(text) and text.startswith(b"{"):
            break
    else:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    return base + at, parsed


def _hex_bytes(data: bytes) -> str:
    return " ".join(f"{c:02x}" for c in data)


def _int_text(data: bytes, signed: bool) -> str:
    size = len(data)
    unsigned = int.from_bytes(data, "big")
    if signed:
        value = int.from_bytes(data, "big", signed=True)
        if value < 0:
            return f"0x{unsigned:0{size * 2}x} ({value})"
    return f"0x{unsigned:0{size * 2}x}"


_SIGNED_TYPES: Final = frozenset(
    {"int8", "int16", "int32", "int32 equal", "int32 le", "int64", "int64 equal"}
    | {"uint8 equal", "uint16 equal"}
)
_UNSIGNED_TYPES: Final = frozenset(
    {"uint8", "uint16", "uint32", "uint32 equal", "uint64"}
)


def _expand_arrays(
    fields: Iterable[Mapping[str, object]],
) -> list[Mapping[str, object]]:
    out: list[Mapping[str, object]] = []
    for field in fields:
        n = field.get("array_len")
        if not isinstance(n, int):
            out.append(field)
            continue
        for i in range(n):
            copy = dict(field)
            del copy["array_len"]
            copy["index"] = i
            out.append(copy)
    return out


def vmdesc_decode(f: QEMUFileReader, desc: Mapping[str, object]) -> dict[str, object]:
    """Read one state described by a VM description entry, as QEMU's analyzer shows it.

    ``desc`` is an entry of the description's ``devices`` list (or a
    ``struct``/subsection inside one).  Integers come out as QEMU's
    ``analyze-migration.py`` prints them (``"0x00000090"``, negative values
    as ``"0xffffffff (-1)"``), booleans as booleans, other types as hex
    bytes; arrays are lists, structs and subsections nested objects.

    Raises:
        Error: the stream does not match the description (it ends early, or
            an expected subsection is missing).
    """
    data: dict[str, object] = {}
    raw_fields = desc.get("fields", [])
    fields = raw_fields if isinstance(raw_fields, list) else []
    for field in _expand_arrays(x for x in fields if isinstance(x, dict)):
        name = str(field.get("name", "?"))
        kind = str(field.get("type", "unknown"))
        size = field.get("size", 0)
        value: object
        if kind == "struct":
            inner = field.get("struct")
            value = vmdesc_decode(f, inner if isinstance(inner, dict) else {})
        elif kind == "capability":
            value = f.get_counted_string()
        else:
            if not isinstance(size, int):
                raise Error(f"field '{name}' has no size in the VM description")
            raw = bytes(f.get_buffer(size))
            if kind == "bool":
                value = raw[:1] != b"\x00"
            elif kind in _SIGNED_TYPES:
                value = _int_text(raw, signed=True)
            elif kind in _UNSIGNED_TYPES:
                value = _int_text(raw, signed=False)
            elif kind == "nullptr":
                value = "nullptr"
            else:
                value = _hex_bytes(raw)
        # As QEMU's analyzer: repeated names (array elements) become a list.
        if name not in data:
            data[name] = value
        else:
            old = data[name]
            if isinstance(old, list):
                old.append(value)
            else:
                data[name] = [old, value]
    subs = desc.get("subsections", [])
    for sub in subs if isinstance(subs, list) else []:
        if not isinstance(sub, dict):
            continue
        at = f.pos
        if f.get_byte() != QEMU_VM_SUBSECTION:
            raise Error(
                f"subsection '{sub.get('vmsd_name')}' not found at offset {at:#x}"
            )
        sub_name = f.get_counted_string()
        f.get_be32()
        data[sub_name] = vmdesc_decode(f, sub)
    return data


def vmdesc_device(
    vmdesc: Mapping[str, object], idstr: str, instance_id: int
) -> Mapping[str, object] | None:
    """Return the VM description entry of section ``idstr`` ``instance_id``."""
    devices = vmdesc.get("devices")
    for dev in devices if isinstance(devices, list) else []:
        if (
            isinstance(dev, dict)
            and dev.get("name") == idstr
            and dev.get("instance_id") == instance_id
        ):
            return dev
    return None
