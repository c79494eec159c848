#!/usr/bin/env python3
"""Pretty-print a trace file written by the ``simple`` trace backend.

Usage: simpletrace.py [--no-header] TRACE_EVENTS [TRACE_EVENTS ...] TRACE_FILE

Reads QEMU's simpletrace format (version 4: a header, event-ID mapping records and
event records) and prints one line per record as QEMU's ``scripts/simpletrace.py``
does: ``name delta_us pid=N arg=value ...``, strings as they are and integers in
hex. The ``trace-events`` files give each event's argument names and types.
Errors (a wrong magic, an unknown version, a truncated record, an event missing
from the trace-events files) are reported without a traceback, with status 1.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from tracetool import Event, TraceError, read_events

HEADER_EVENT_ID = 0xFFFFFFFFFFFFFFFF
HEADER_MAGIC = 0xF2B177CB0AA429B4
DROPPED_EVENT_ID = 0xFFFFFFFFFFFFFFFE
RECORD_TYPE_MAPPING = 0


class SimpleTraceError(Exception):
    """The trace file cannot be read."""


def _read(f: BinaryIO, fmt: str, what: str) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise SimpleTraceError(f"truncated {what} at offset {f.tell() - len(data)}")
    return struct.unpack(fmt, data)


def read_header(f: BinaryIO) -> None:
    """Check the file header (event ID, magic, version 4)."""
    event_id, magic, version = _read(f, "=QQQ", "header")
    if event_id != HEADER_EVENT_ID or magic != HEADER_MAGIC:
        raise SimpleTraceError("not a simpletrace file (wrong header magic)")
    if version != 4:
        raise SimpleTraceError(f"unsupported simpletrace version {version}")


Record = tuple[str, int, int, list[tuple[str, str, object]]]


def read_records(f: BinaryIO, events: dict[str, Event]) -> Iterator[Record]:
    """Yield ``(name, timestamp_ns, pid, [(ctype, argname, value)])`` records."""
    names: dict[int, str] = {DROPPED_EVENT_ID: "dropped"}
    while True:
        t = f.read(8)
        if not t:
            return
        if len(t) != 8:
            raise SimpleTraceError("truncated record type")
        (rectype,) = struct.unpack("=Q", t)
        if rectype == RECORD_TYPE_MAPPING:
            event_id, length = _read(f, "=QI", "mapping record")
            raw = f.read(length)
            if len(raw) != length:
                raise SimpleTraceError("truncated mapping record")
            names[event_id] = raw.decode()
            continue
        event_id, ts, _length, pid = _read(f, "=QQII", "event record")
        if event_id == DROPPED_EVENT_ID:
            (count,) = _read(f, "=Q", "dropped record")
            yield ("dropped", ts, pid, [("uint64_t", "num_events_dropped", count)])
            continue
        name = names.get(event_id)
        if name is None:
            raise SimpleTraceError(f"event ID {event_id} has no mapping record")
        ev = events.get(name)
        if ev is None:
            raise SimpleTraceError(
                f"{name} event is logged but is not declared in the trace events "
                "files given"
            )
        args: list[tuple[str, str, object]] = []
        for arg in ev.args:
            if arg.kind == "str":
                (slen,) = _read(f, "=I", f"string argument of {name}")
                raw = f.read(slen)
                if len(raw) != slen:
                    raise SimpleTraceError(f"truncated string argument of {name}")
                args.append((arg.ctype, arg.name, raw.decode(errors="replace")))
            else:
                (value,) = _read(f, "=Q", f"argument of {name}")
                args.append((arg.ctype, arg.name, value))
        yield (name, ts, pid, args)


def format_records(
    f: BinaryIO, events: dict[str, Event], header: bool = True
) -> Iterator[str]:
    """Yield QEMU simpletrace's text lines for the records of *f*."""
    if header:
        read_header(f)
    last: int | None = None
    for name, ts, pid, args in read_records(f, events):
        delta = 0 if last is None else ts - last
        last = ts
        fields = " ".join(
            f"{n}={v}" if isinstance(v, str) else f"{n}=0x{v:x}" for _, n, v in args
        )
        yield f"{name} {delta / 1000:0.3f} pid={pid} {fields}".rstrip()


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--no-header"]
    if len(args) < 2:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 1
    *event_files, trace_file = args
    events: dict[str, Event] = {}
    try:
        for ef in event_files:
            for ev in read_events(Path(ef)):
                events[ev.name] = ev
        with open(trace_file, "rb") as f:
            for line in format_records(f, events, "--no-header" not in argv):
                print(line)
    except (TraceError, SimpleTraceError) as e:
        print(f"simpletrace: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"simpletrace: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
