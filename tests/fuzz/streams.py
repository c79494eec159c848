"""Migration streams for the fuzzer: real seeds, and their fields located.

:func:`qemu_stream` has the installed QEMU 7.2 write a stream (``-S``, QMP
``migrate`` to ``exec:cat > FILE``, as tests/migration/test_qemu_compat.py
does) and caches it.  :func:`tokenize` walks a valid stream as the loader
does and returns where each field is: magic, version, configuration,
section headers (type, id, idstr, instance, version), RAM page records,
every VMState field of every device section (through the stream's JSON
description), subsection headers, footers, the end marker and the
description itself.  The mutator then changes one field at a time, at its
edges, instead of random bytes that the first check refuses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from qemu_api.migration.qemu_file import QEMUFileReader
from qemu_api.migration.vmdesc import vmdesc_find

__all__ = ["Token", "qemu_stream", "tokenize"]

_PAGE: Final = 4096
_RAM_FLAGS: Final = 0xFFF
_ZERO, _MEM_SIZE, _PAGE_FLAG, _EOS, _CONTINUE = 0x02, 0x04, 0x08, 0x10, 0x20


@dataclasses.dataclass(frozen=True)
class Token:
    """One field of a stream: ``data[start:end]``; ``width`` for integers."""

    start: int
    end: int
    kind: str
    width: int = 0


class _Walker:
    def __init__(self, data: bytes) -> None:
        self.f = QEMUFileReader(data)
        self.tokens: list[Token] = []

    def take(self, n: int, kind: str, width: int = 0) -> int:
        start = self.f.pos
        value = self.f.get_int(n, False) if width else 0
        if not width:
            self.f.skip(n)
        self.tokens.append(Token(start, self.f.pos, kind, width))
        return value

    def counted(self, kind: str) -> str:
        n = self.take(1, kind + "-len", 1)
        start = self.f.pos
        raw = bytes(self.f.get_buffer(n))
        self.tokens.append(Token(start, self.f.pos, kind))
        return raw.decode("utf-8", "replace")


def tokenize(data: bytes) -> list[Token]:
    """The fields of a valid stream, in order (a partial list if it is not)."""
    w = _Walker(data)
    found = vmdesc_find(data)
    desc: Mapping[str, Any] = found[1] if found is not None else {}
    devices = {
        (d.get("name"), d.get("instance_id")): d
        for d in desc.get("devices", [])
        if isinstance(d, dict)
    }
    try:
        w.take(4, "magic", 4)
        w.take(4, "version", 4)
        w.take(1, "config", 1)
        n = w.take(4, "config-len", 4)
        w.take(n, "config-name")
        while w.f.peek_byte() == 0x05:
            w.take(1, "config-sub", 1)
            w.counted("config-sub-name")
            w.take(4, "config-sub-version", 4)
            w.take(4, "config-page-bits", 4)
        while True:
            kind = w.take(1, "section-type", 1)
            if kind == 0x00:
                break
            w.take(4, "section-id", 4)
            if kind in (0x01, 0x04):
                idstr = w.counted("idstr")
                instance = w.take(4, "instance-id", 4)
                w.take(4, "version-id", 4)
            else:
                idstr, instance = "ram", 0
            if idstr == "ram":
                with contextlib.suppress(_EndOfRamError):
                    _ram(w)
            else:
                entry = devices.get((idstr, instance))
                if entry is None:
                    return w.tokens
                _state(w, entry, idstr)
            w.take(1, "footer", 1)
            w.take(4, "footer-id", 4)
        if w.f.remaining() >= 5:
            w.take(1, "vmdesc", 1)
            n = w.take(4, "vmdesc-len", 4)
            w.take(n, "vmdesc-json")
    except Exception:  # a seed that is not what we thought: use what we have
        pass
    return w.tokens


def _ram(w: _Walker) -> None:
    records = 0
    while True:
        # Every record of the first few, then one in 256: QEMU's streams
        # have tens of thousands of zero pages that all look alike.
        records += 1
        if records > 32 and records % 256:
            _skip_record(w.f)
            continue
        header = w.take(8, "ram-header", 8)
        flags = header & _RAM_FLAGS
        if flags & _MEM_SIZE:
            total = header & ~_RAM_FLAGS
            while total > 0:
                w.counted("ram-block")
                total -= w.take(8, "ram-block-size", 8)
        if flags & (_ZERO | _PAGE_FLAG):
            if not flags & _CONTINUE:
                w.counted("ram-page-block")
            if flags & _ZERO:
                w.take(1, "ram-fill", 1)
            else:
                w.take(_PAGE, "ram-page")
        if flags & _EOS:
            return


def _skip_record(f: QEMUFileReader) -> None:
    header = f.get_be64()
    flags = header & _RAM_FLAGS
    if flags & _MEM_SIZE:
        total = header & ~_RAM_FLAGS
        while total > 0:
            f.skip(f.get_byte())
            total -= f.get_be64()
    if flags & (_ZERO | _PAGE_FLAG):
        if not flags & _CONTINUE:
            f.skip(f.get_byte())
        f.skip(1 if flags & _ZERO else _PAGE)
    if flags & _EOS:
        raise _EndOfRamError


class _EndOfRamError(Exception):
    pass


def _state(w: _Walker, desc: Mapping[str, Any], name: str) -> None:
    for field in desc.get("fields", []):
        count = field.get("array_len", 1)
        for _ in range(count):
            kind = field.get("type")
            fname = f"field:{name}.{field.get('name')}"
            if kind == "struct":
                _state(w, field.get("struct", {}), fname[6:])
            elif kind == "capability":
                w.counted(fname)
            else:
                size = field.get("size", 0)
                w.take(size, fname, size if size in (1, 2, 4, 8) else 0)
    for sub in desc.get("subsections", []):
        w.take(1, "subsection", 1)
        w.counted("subsection-name")
        w.take(4, "subsection-version", 4)
        _state(w, sub, str(sub.get("vmsd_name", name)))


def _connect(path: Path, proc: subprocess.Popen[bytes]) -> socket.socket:
    for _ in range(400):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            if proc.poll() is not None:
                break
            time.sleep(0.05)
            continue
        return sock
    raise RuntimeError(f"QEMU did not start its monitor at {path}")


def qemu_stream(binary: str, machine: str, memory: str, cache: Path) -> bytes:
    """The stream QEMU 7.2 writes for ``-M machine -m memory -nodefaults -S``.

    Raises:
        RuntimeError: QEMU is not installed or did not write the stream.
    """
    out = cache / f"qemu-{machine}-{memory}.mig"
    if out.exists() and out.stat().st_size:
        return out.read_bytes()
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(
            f"{binary} is missing: the migration fuzzer's seeds come from QEMU "
            "7.2; install it with 'apt-get install -y qemu-system-arm "
            "qemu-system-x86'"
        )
    cache.mkdir(parents=True, exist_ok=True)
    qmp_path = cache / f"qmp-{os.getpid()}.sock"
    tmp = out.with_suffix(".tmp")
    proc = subprocess.Popen(
        [
            path,
            "-M",
            machine,
            "-m",
            memory,
            "-display",
            "none",
            "-nodefaults",
            "-S",
            "-qmp",
            f"unix:{qmp_path},server=on,wait=off",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sock = _connect(qmp_path, proc)
        with sock, sock.makefile("rw") as f:
            f.readline()

            def cmd(name: str, **args: object) -> Any:
                f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
                f.flush()
                while True:
                    reply = json.loads(f.readline())
                    if "event" not in reply:
                        return reply

            cmd("qmp_capabilities")
            cmd("migrate", uri=f"exec:cat > {tmp}")
            for _ in range(600):
                status = cmd("query-migrate")["return"].get("status")
                if status in ("completed", "failed"):
                    break
                time.sleep(0.05)
            if status != "completed":
                raise RuntimeError(f"QEMU's migration ended {status}")
            cmd("quit")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        qmp_path.unlink(missing_ok=True)
    tmp.rename(out)
    return out.read_bytes()
