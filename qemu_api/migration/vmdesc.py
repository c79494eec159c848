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

import array
import itertools
import re
from collections.abc import Mapping
from typing import Final, final

from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileReader

__all__ = [
    "VMDESC_MAX_DEPTH",
    "VMDESC_MAX_SIZE",
    "vmdesc_decode",
    "vmdesc_device",
    "vmdesc_find",
    "vmdesc_parse",
    "vmdesc_skip",
]

QEMU_VM_SUBSECTION: Final = 0x05
QEMU_VM_VMDESCRIPTION: Final = 0x06

VMDESC_MAX_SIZE: Final = 4 << 20
"""The longest JSON description read (QEMU's are tens of KiB for a whole PC).

Parsed JSON takes many times its text's size in memory; a longer one is
refused rather than let a stream make the process allocate gigabytes.
"""
VMDESC_MAX_DEPTH: Final = 64
"""The deepest nesting of JSON arrays and objects accepted in a description.

QEMU's VMState nesting is a few levels; each one takes three levels of JSON
(a ``struct`` object, its ``fields`` list, the field object).
"""

_ZERO_BYTE_BUDGET: Final = 1 << 16
"""How many field instances that take no byte of the stream one decode may read.

Every other instance consumes at least one byte, so the work of a decode is
bounded by the bytes left in the stream plus this.
"""

JSONObject = dict[str, object]


_JSON_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET: Final = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def _text_depth(text: bytes) -> int:
    """The deepest nesting of brackets outside strings, computed in C loops."""
    if text.count(b"[") + text.count(b"{") <= VMDESC_MAX_DEPTH:
        return 0
    brackets = _JSON_STRING.sub(b"", text).translate(None, _NOT_BRACKET)
    steps = array.array("b", brackets.translate(_BRACKET_STEP))
    return max(itertools.accumulate(steps), default=0)


def vmdesc_parse(text: bytes | bytearray | memoryview) -> JSONObject:
    """Parse the JSON text of a VM description, refusing hostile input.

    Raises:
        Error: the text is longer than :data:`VMDESC_MAX_SIZE`, is not JSON,
            is not an object, or nests deeper than :data:`VMDESC_MAX_DEPTH`.

    >>> vmdesc_parse(b'{"page_size": 4096, "devices": []}')
    {'page_size': 4096, 'devices': []}
    >>> vmdesc_parse(b"[" * 3000 + b"]" * 3000)
    Traceback (most recent call last):
      ...
    qemu_api.error.Error: the VM description nests deeper than 64 levels
    """
    import json  # a migration's VM description only

    if len(text) > VMDESC_MAX_SIZE:
        raise Error(
            f"the VM description is {len(text)} bytes long; at most "
            f"{VMDESC_MAX_SIZE} are read"
        )
    raw = bytes(text)
    if _text_depth(raw) > VMDESC_MAX_DEPTH:
        raise Error(f"the VM description nests deeper than {VMDESC_MAX_DEPTH} levels")
    try:
        parsed = json.loads(raw)
    except RecursionError:  # cannot happen after the depth check; belt and braces
        raise Error(
            f"the VM description nests deeper than {VMDESC_MAX_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise Error(f"the VM description is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise Error("the VM description is not a JSON object")
    return parsed


def vmdesc_find(data: bytes | bytearray | memoryview) -> tuple[int, JSONObject] | None:
    """Find the JSON VM description at the end of a stream.

    The description is the last thing in the stream: ``0x06``, its length
    as ``be32``, the JSON text.  JSON text never holds a raw ``0x06`` byte, so
    the marker is the last one in the stream, or one of the few before it
    when the length itself contains that byte.

    Returns:
        The offset of the ``0x06`` byte and the parsed description, or None
        when the stream has none, or none that :func:`vmdesc_parse` accepts.
    """
    view = memoryview(data).cast("B")
    raw = bytes(view[-min(len(view), VMDESC_MAX_SIZE + 5) :])
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
        return base + at, vmdesc_parse(text)
    except Error:
        return None


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


def _count(value: object) -> int | None:
    """A JSON number that is a count or size: an int, not a bool."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@final
class _Decoder:
    """One decode: the stream and the budget of reads that take no byte."""

    __slots__ = ("f", "values", "zero_budget")

    def __init__(self, f: QEMUFileReader, values: bool = True) -> None:
        self.f = f
        self.values = values
        self.zero_budget = _ZERO_BYTE_BUDGET

    def state(self, desc: Mapping[str, object], depth: int) -> dict[str, object]:
        if depth > VMDESC_MAX_DEPTH:
            raise Error(
                f"the VM description nests deeper than {VMDESC_MAX_DEPTH} levels"
            )
        f = self.f
        data: dict[str, object] = {}
        raw_fields = desc.get("fields", [])
        fields = raw_fields if isinstance(raw_fields, list) else []
        for field in fields:
            if not isinstance(field, dict):
                continue
            name = str(field.get("name", "?"))
            if "array_len" in field:
                n = _count(field.get("array_len"))
                if n is None or n < 0:
                    import json  # only for this error

                    raise Error(
                        f"field '{name}' has array_len "
                        f"{json.dumps(field.get('array_len'))[:40]} in the VM "
                        "description; expected a count of 0 or more"
                    )
                if n > f.remaining():
                    raise Error(
                        f"field '{name}' is an array of {n} elements in the VM "
                        f"description, but only {f.remaining()} bytes of the "
                        "stream are left"
                    )
            else:
                n = 1
            for _ in range(n):
                value = self.field(field, name, depth)
                if self.values:
                    self._store(data, name, value)
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
            data[sub_name] = self.state(sub, depth + 1)
        return data

    @staticmethod
    def _store(data: dict[str, object], name: str, value: object) -> None:
        # As QEMU's analyzer: repeated names (array elements) become a list.
        if name not in data:
            data[name] = value
        else:
            old = data[name]
            if isinstance(old, list):
                old.append(value)
            else:
                data[name] = [old, value]

    def field(self, field: Mapping[str, object], name: str, depth: int) -> object:
        f = self.f
        start = f.pos
        kind = str(field.get("type", "unknown"))
        value: object
        if kind == "struct":
            inner = field.get("struct")
            value = self.state(inner if isinstance(inner, dict) else {}, depth + 1)
        elif kind == "capability":
            value = f.get_counted_string()
        else:
            size = _count(field.get("size", 0))
            if size is None or size < 0:
                import json  # only for this error

                raise Error(
                    f"field '{name}' has size "
                    f"{json.dumps(field.get('size'))[:40]} in the VM description; "
                    "expected a byte count of 0 or more"
                )
            if not self.values:
                f.skip(size)
                value = None
            elif kind == "bool":
                value = bytes(f.get_buffer(size))[:1] != b"\x00"
            elif kind in _SIGNED_TYPES:
                value = _int_text(bytes(f.get_buffer(size)), signed=True)
            elif kind in _UNSIGNED_TYPES:
                value = _int_text(bytes(f.get_buffer(size)), signed=False)
            elif kind == "nullptr":
                f.skip(size)
                value = "nullptr"
            else:
                value = _hex_bytes(bytes(f.get_buffer(size)))
        if f.pos == start:
            self.zero_budget -= 1
            if self.zero_budget < 0:
                raise Error(
                    f"field '{name}': the VM description describes more than "
                    f"{_ZERO_BYTE_BUDGET} fields that take no byte of the stream"
                )
        return value


def vmdesc_decode(f: QEMUFileReader, desc: Mapping[str, object]) -> dict[str, object]:
    """Read one state described by a VM description entry, as QEMU's analyzer shows it.

    ``desc`` is an entry of the description's ``devices`` list (or a
    ``struct``/subsection inside one).  Integers come out as QEMU's
    ``analyze-migration.py`` prints them (``"0x00000090"``, negative values
    as ``"0xffffffff (-1)"``), booleans as booleans, other types as hex
    bytes; arrays are lists, structs and subsections nested objects.

    Every size and count the description gives is checked against what the
    stream still holds before anything is read or allocated, so a hostile
    description fails at once.

    Raises:
        Error: the stream does not match the description (it ends early, or
            an expected subsection is missing), or the description is
            invalid (a negative size, an array longer than the rest of the
            stream, nesting deeper than :data:`VMDESC_MAX_DEPTH`).
    """
    return _Decoder(f).state(desc, 1)


def vmdesc_skip(f: QEMUFileReader, desc: Mapping[str, object]) -> None:
    """Move past one state described by a VM description entry.

    :func:`vmdesc_decode` with the same checks, without building values:
    how migration steps over the section of a device it does not have.

    Raises:
        Error: as :func:`vmdesc_decode`.
    """
    _Decoder(f, values=False).state(desc, 1)


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
