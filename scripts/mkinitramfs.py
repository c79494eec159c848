#!/usr/bin/env python3
"""Build the initramfs of pyqemu's Linux guest: a cpio archive (newc) for ``-initrd``.

Usage:
  mkinitramfs.py --busybox BUSYBOX [--modules DIR] [--module NAME ...] OUTPUT

The archive holds a static AArch64 busybox as ``/bin/busybox`` (``/bin/sh`` links to
it; ``/init`` installs the other applet links at boot), the files of
``scripts/guest/rootfs/`` (``/init``, ``/etc/inittab``, the shell profile, the
power-button handler of acpid) and, from DIR (a kernel's ``lib/modules/RELEASE``),
the modules named with ``--module`` together with the modules they depend on, a
``modules.dep`` for busybox ``modprobe`` and ``/etc/modules``, the list ``/init``
loads. A module that the kernel has built in (``modules.builtin``) is left out; one
the kernel has neither built in nor as a module is reported, and the features that
need it will be missing in the guest.

The archive is written by this script (no ``cpio`` tool is needed) and is
reproducible: entries are sorted, owned by root and dated ``SOURCE_DATE_EPOCH``
(default 0), so the same inputs give the same bytes. It is not compressed: the
kernel unpacks it without running a decompressor on the emulated CPU.
"""

from __future__ import annotations

import argparse
import gzip
import lzma
import os
import shutil
import stat
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOTFS = Path(__file__).resolve().parent / "guest" / "rootfs"

# Directories of the guest's file system (the rootfs tree adds its own).
DIRECTORIES = (
    "bin",
    "dev",
    "etc",
    "lib",
    "lib/modules",
    "proc",
    "root",
    "run",
    "sbin",
    "sys",
    "tmp",
    "usr",
    "usr/bin",
    "usr/sbin",
    "var",
    "var/log",
)

EM_AARCH64 = 183
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")


class InitramfsError(Exception):
    """A wrong input: the message says what was expected."""


@dataclass(frozen=True)
class Entry:
    """One cpio member: a directory, a file, a symlink or a device node."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def cpio_newc(entries: list[Entry], mtime: int) -> bytes:
    r"""Return the entries as a cpio archive in the "newc" format the kernel reads.

    >>> blob = cpio_newc([Entry("init", stat.S_IFREG | 0o755, b"#!/bin/sh\\n")], 0)
    >>> blob[:6], len(blob) % 4
    (b'070701', 0)
    >>> b"TRAILER!!!" in blob
    True
    """
    out = bytearray()

    def member(ino: int, e: Entry) -> None:
        name = e.path.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(e.mode) else 1
        fields = (
            ino,
            e.mode,
            0,
            0,
            nlink,
            mtime,
            len(e.data),
            0,
            0,
            e.rdev[0],
            e.rdev[1],
            len(name),
            0,
        )
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + name)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(e.data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, e in enumerate(entries, start=1):
        member(ino, e)
    member(0, Entry("TRAILER!!!", 0))
    return bytes(out)


def check_busybox(path: Path) -> bytes:
    """Read a busybox binary and check that it is a static AArch64 ELF executable."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InitramfsError(f"cannot read busybox {path}: {e.strerror}") from None
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise InitramfsError(f"{path} is not a 64-bit little-endian ELF file")
    (machine,) = struct.unpack_from("<H", data, 18)
    if machine != EM_AARCH64:
        raise InitramfsError(
            f"{path} is an ELF file for machine {machine}, not AArch64 ({EM_AARCH64}): "
            "use an arm64 busybox (Debian's busybox-static for arm64)"
        )
    (phoff,) = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        (ptype,) = struct.unpack_from("<I", data, phoff + i * phentsize)
        if ptype == 3:  # PT_INTERP: dynamically linked
            raise InitramfsError(
                f"{path} is dynamically linked; the initramfs has no C library: "
                "use a statically linked busybox (Debian's busybox-static)"
            )
    return data


def modinfo(data: bytes) -> dict[str, str]:
    """Return the ``.modinfo`` section of a kernel module (an ELF relocatable file)."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise InitramfsError("not a 64-bit ELF kernel module")
    (shoff,) = struct.unpack_from("<Q", data, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, off, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + i * shentsize
        )
        return name, off, size

    _, stroff, _ = section(shstrndx)
    info: dict[str, str] = {}
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name : end] == b".modinfo":
            for item in data[off : off + size].split(b"\0"):
                key, sep, value = item.decode(errors="replace").partition("=")
                if sep and key not in info:
                    info[key] = value
    return info


def read_module(path: Path) -> bytes:
    """The module's ELF bytes, uncompressed (busybox modprobe loads plain .ko files)."""
    raw = path.read_bytes()
    name = path.name
    if name.endswith(".ko.xz"):
        return lzma.decompress(raw)
    if name.endswith(".ko.gz"):
        return gzip.decompress(raw)
    if name.endswith(".ko.zst"):
        zstd = shutil.which("zstd")
        if zstd is None:
            raise InitramfsError(
                f"{path} is zstd-compressed: install zstd to unpack it"
            )
        return subprocess.run(
            [zstd, "-dc", str(path)], check=True, capture_output=True
        ).stdout
    return raw


def module_name(path: Path) -> str:
    """The kernel's name for a module file: ``rtc-pl031.ko.xz`` -> ``rtc_pl031``."""
    name = path.name
    for suffix in MODULE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("-", "_")


@dataclass(frozen=True)
class Module:
    """A kernel module resolved for the archive."""

    name: str
    rel: str  # path under lib/modules/RELEASE, uncompressed: kernel/drivers/....ko
    data: bytes
    deps: tuple[str, ...]


def collect_modules(
    moddir: Path, wanted: list[str]
) -> tuple[list[Module], list[str], list[str]]:
    """Resolve the wanted modules and their dependencies in ``moddir``.

    Returns the modules in load order (dependencies first), the wanted names the
    kernel has built in, and the wanted names it lacks.
    """
    if not (moddir / "kernel").is_dir():
        raise InitramfsError(
            f"{moddir} has no kernel/ directory: give a kernel's lib/modules/RELEASE"
        )
    builtin: set[str] = set()
    builtin_file = moddir / "modules.builtin"
    if builtin_file.is_file():
        builtin = {module_name(Path(line)) for line in builtin_file.read_text().split()}
    files: dict[str, Path] = {}
    for path in sorted((moddir / "kernel").rglob("*.ko*")):
        if path.name.endswith(MODULE_SUFFIXES):
            files.setdefault(module_name(path), path)

    order: list[Module] = []
    done: set[str] = set()
    built_in: list[str] = []
    missing: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in chain:
            raise InitramfsError(
                f"module dependency loop: {' -> '.join((*chain, name))}"
            )
        path = files.get(name)
        if path is None:
            raise InitramfsError(
                f"module {name} (needed by {chain[-1]}) is not in {moddir / 'kernel'}"
            )
        data = read_module(path)
        depends = modinfo(data).get("depends", "")
        deps = tuple(d.replace("-", "_") for d in depends.split(",") if d)
        for dep in deps:
            visit(dep, (*chain, name))
        rel = path.relative_to(moddir).as_posix()
        for suffix in (".xz", ".gz", ".zst"):
            rel = rel.removesuffix(suffix)
        done.add(name)
        order.append(Module(name, rel, data, deps))

    for want in wanted:
        name = want.replace("-", "_")
        if name in files:
            visit(name, ())
        elif name in builtin:
            built_in.append(name)
        else:
            missing.append(name)
    return order, built_in, missing


def rootfs_entries(root: Path) -> list[Entry]:
    """The files of the rootfs tree: executables get mode 0755, the others 0644."""
    entries = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            entries.append(Entry(rel, stat.S_IFDIR | 0o755))
        else:
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            entries.append(Entry(rel, stat.S_IFREG | mode, path.read_bytes()))
    return entries


def build(
    busybox: Path, moddir: Path | None, wanted: list[str]
) -> tuple[bytes, list[str]]:
    """Return the archive and the report lines (what went in, what is missing)."""
    report = []
    entries: dict[str, Entry] = {}
    for d in DIRECTORIES:
        entries[d] = Entry(d, stat.S_IFDIR | 0o755)
    entries["dev/console"] = Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    entries["bin/busybox"] = Entry(
        "bin/busybox", stat.S_IFREG | 0o755, check_busybox(busybox)
    )
    entries["bin/sh"] = Entry("bin/sh", stat.S_IFLNK | 0o777, b"busybox")
    for e in rootfs_entries(ROOTFS):
        entries[e.path] = e
    load: list[str] = []
    if moddir is not None:
        release = moddir.name
        base = f"lib/modules/{release}"
        order, built_in, missing = collect_modules(moddir, wanted)
        rels = {m.name: m.rel for m in order}
        dep_lines = []
        for m in order:
            parts = m.rel.split("/")
            for i in range(1, len(parts)):
                d = f"{base}/{'/'.join(parts[:i])}"
                entries[d] = Entry(d, stat.S_IFDIR | 0o755)
            path = f"{base}/{m.rel}"
            entries[path] = Entry(path, stat.S_IFREG | 0o644, m.data)
            dep_lines.append(" ".join([f"{m.rel}:", *(rels[d] for d in m.deps)]) + "\n")
            load.append(m.name)
        entries[base] = Entry(base, stat.S_IFDIR | 0o755)
        entries[f"{base}/modules.dep"] = Entry(
            f"{base}/modules.dep", stat.S_IFREG | 0o644, "".join(dep_lines).encode()
        )
        report.append(f"kernel release {release}")
        report.append("modules: " + (", ".join(load) or "none"))
        if built_in:
            report.append("built into the kernel: " + ", ".join(built_in))
        if missing:
            report.append(
                "WARNING: neither built in nor a module of this kernel: "
                + ", ".join(missing)
            )
    else:
        report.append("no modules directory: the kernel's built-in drivers only")
    entries["etc/modules"] = Entry(
        "etc/modules", stat.S_IFREG | 0o644, "".join(f"{m}\n" for m in load).encode()
    )
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    return cpio_newc([entries[k] for k in sorted(entries)], mtime), report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Build the initramfs (cpio newc) of pyqemu's Linux guest."
    )
    parser.add_argument(
        "--busybox", type=Path, required=True, help="a static AArch64 busybox binary"
    )
    parser.add_argument(
        "--modules", type=Path, help="the kernel's lib/modules/RELEASE directory"
    )
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        help="a module to include and load at boot (repeatable)",
    )
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    try:
        blob, report = build(args.busybox, args.modules, args.module)
    except InitramfsError as e:
        print(f"mkinitramfs: error: {e}", file=sys.stderr)
        return 1
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(args.output)
    for line in report:
        print(f"mkinitramfs: {line}")
    print(f"mkinitramfs: wrote {args.output} ({len(blob) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
