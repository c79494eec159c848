r"""Building and patching flattened device trees (QEMU's ``system/device_tree.c``).

This module mirrors ``include/sysemu/device_tree.h``: boards describe their
hardware to the guest in a flattened device tree (FDT, the ``.dtb`` format),
and the boot loader patches a user's ``-dtb`` file the same way. The tree is
kept in libfdt's own binary format and edited by libfdt itself, through its
Python binding ``pylibfdt``, so nodes and properties land in the blob exactly
where QEMU's calls put them (libfdt inserts a new subnode before its siblings
and a new property before the others, which is why ``dtc`` prints QEMU's
trees "backwards").

An :class:`Fdt` is addressed by node paths, as QEMU's ``qemu_fdt_*`` calls
are. Failures raise :class:`~qemu_api.error.Error` with QEMU's message (QEMU
exits with that message).

>>> fdt = create_device_tree()
>>> fdt.setprop_string("/", "compatible", "linux,dummy-virt")
>>> fdt.setprop_cell("/", "#address-cells", 2)
>>> fdt.add_subnode("/chosen")
>>> fdt.setprop_string("/chosen", "bootargs", "console=ttyAMA0")
>>> clk = fdt.alloc_phandle()
>>> fdt.add_subnode("/apb-pclk")
>>> fdt.setprop_cell("/apb-pclk", "phandle", clk)
>>> fdt.add_subnode("/uart@9000000")
>>> fdt.setprop_sized_cells("/uart@9000000", "reg", (2, 0x9000000), (2, 0x1000))
>>> fdt.setprop_phandle("/uart@9000000", "clocks", "/apb-pclk")
>>> fdt.getprop("/chosen", "bootargs")
b'console=ttyAMA0\x00'
>>> hex(fdt.getprop_cell("/uart@9000000", "clocks")), fdt.size == FDT_MAX_SIZE
('0x8000', True)
>>> fdt.node_paths()
['/', '/uart@9000000', '/apb-pclk', '/chosen']
>>> fdt.add_subnode("/nope/child")
Traceback (most recent call last):
...
qemu_api.error.Error: qemu_fdt_add_subnode: Couldn't find node /nope: FDT_ERR_NOTFOUND
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterator, Sequence
from typing import Final, final

import libfdt

from qemu_api.error import Error, error_get_progname

__all__ = [
    "FDT_HEADER_SIZE",
    "FDT_MAX_SIZE",
    "FDT_PHANDLE_START",
    "DtbDumped",
    "Fdt",
    "create_device_tree",
    "load_device_tree",
    "qemu_fdt_dumpdtb",
]

FDT_MAX_SIZE: Final = 0x100000
"""Size of a tree made by :func:`create_device_tree` (QEMU's ``FDT_MAX_SIZE``)."""

FDT_HEADER_SIZE: Final = 40
"""Bytes of a version 17 FDT header: the least a blob can have."""

FDT_PHANDLE_START: Final = 0x8000
"""The first phandle :meth:`Fdt.alloc_phandle` hands out, as QEMU's."""

_FDT_MAGIC: Final = 0xD00DFEED
_LOAD_SLACK: Final = 10000
_MAX_DTB_FILE: Final = (1 << 31) // 2 - _LOAD_SLACK


def _strerror(err: int) -> str:
    return libfdt.fdt_strerror(err)


class DtbDumped(SystemExit):
    """``-machine dumpdtb=FILE`` wrote the tree: the run ends with status 0.

    Raised by :func:`qemu_fdt_dumpdtb` where QEMU calls ``exit(0)``. It is a
    :class:`SystemExit` with status 0, so it unwinds through the board code
    to the command line, which ends the run.

    Attributes:
        filename: the file written.
    """

    def __init__(self, filename: str) -> None:
        super().__init__(0)
        self.filename = filename


@final
class Fdt:
    """A flattened device tree in a fixed-size buffer (QEMU's ``void *fdt``).

    Make one with :func:`create_device_tree`, :func:`load_device_tree` or
    :meth:`from_bytes`; every method takes node paths (``"/chosen"``,
    ``"/cpus/cpu@0"``). The buffer keeps its size as the tree grows, as in
    QEMU: :attr:`size` bytes go to the guest, and a full buffer is an error.
    """

    def __init__(self, blob: bytearray, *, phandle_start: int = FDT_PHANDLE_START):
        self._blob = blob
        self._next_phandle = phandle_start

    # -- making and exporting -------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, *, size: int = 0) -> Fdt:
        """Check a DTB blob and copy it into a buffer of *size* bytes.

        The blob is checked completely (header, structure, strings) before
        anything reads it, so a corrupt or truncated blob is an error, never
        a crash. With *size* 0 the buffer is the blob's ``totalsize``.

        Raises:
            Error: the blob is not a valid DTB, or *size* is too small.
        """
        blob = bytearray(data)
        if len(blob) < FDT_HEADER_SIZE:
            raise Error(
                f"not a device tree blob: {len(blob)} bytes, shorter than the "
                f"{FDT_HEADER_SIZE}-byte FDT header"
            )
        magic, total = struct.unpack_from(">II", blob)
        if magic != _FDT_MAGIC:
            raise Error(
                f"not a device tree blob: magic 0x{magic:08x}, expected "
                f"0x{_FDT_MAGIC:08x} (FDT_ERR_BADMAGIC)"
            )
        if total > len(blob):
            raise Error(
                f"device tree blob truncated: its header says {total} bytes, "
                f"{len(blob)} are there (FDT_ERR_TRUNCATED)"
            )
        err = libfdt.fdt_check_full(blob, total)
        if err < 0:
            raise Error(f"invalid device tree blob: {_strerror(err)}")
        buf = bytearray(max(size, total))
        err = libfdt.fdt_open_into(blob, buf, len(buf))
        if err < 0:
            raise Error(f"Unable to copy device tree into memory: {_strerror(err)}")
        fdt = cls(buf)
        fdt._check_names()
        return fdt

    def _check_names(self) -> None:
        """Read every node and property name once: libfdt's check leaves them.

        Names must be text (the binding returns them as ``str``); a blob with
        names that are not is refused here rather than failing later.
        """
        try:
            for path in self.node_paths():
                if libfdt.fdt_path_offset(self._blob, path) < 0:
                    raise Error(f"invalid device tree blob: node {path!r} not found")
                self.properties(path)
        except (SystemError, TypeError, UnicodeError, ValueError) as e:
            raise Error(
                f"invalid device tree blob: a node or property name is not text ({e})"
            ) from None

    @property
    def size(self) -> int:
        """The buffer size in bytes, which is also the header's ``totalsize``."""
        return len(self._blob)

    def as_bytes(self) -> bytes:
        """Return the whole blob, :attr:`size` bytes, as the guest gets it."""
        return bytes(self._blob)

    def packed(self) -> bytes:
        """Return the blob without its free space (as ``fdt_pack``).

        >>> len(create_device_tree().packed())
        72
        """
        copy = bytearray(self._blob)
        err = libfdt.fdt_pack(copy)
        if err < 0:  # pragma: no cover - a checked tree always packs
            raise Error(f"fdt_pack: {_strerror(err)}")
        return bytes(copy[: libfdt.fdt_totalsize(copy)])

    # -- finding nodes ----------------------------------------------------------------

    def _findnode(self, func: str, path: str) -> int:
        off = libfdt.fdt_path_offset(self._blob, path)
        if off < 0:
            raise Error(f"{func}: Couldn't find node {path}: {_strerror(off)}")
        return off

    def has_node(self, path: str) -> bool:
        """Return whether node *path* exists (``fdt_path_offset() >= 0``).

        As in libfdt, ``/intc`` also finds ``/intc@8000000``.
        """
        return libfdt.fdt_path_offset(self._blob, path) >= 0

    def _path_of(self, offset: int) -> str:
        res = libfdt.fdt_get_path(self._blob, offset, 4096)
        err, path = res[0], res[1]
        if not isinstance(err, int) or err < 0 or not isinstance(path, str):
            raise Error(
                f"fdt_get_path: {_strerror(err if isinstance(err, int) else -1)}"
            )
        return path

    def _name_of(self, offset: int) -> str:
        name = libfdt.fdt_get_name(self._blob, offset)[0]
        return name if isinstance(name, str) else ""

    def _walk(self) -> Iterator[int]:
        off, depth = 0, 0
        while off >= 0 and depth >= 0:
            yield off
            off, depth = libfdt.fdt_next_node(self._blob, off, depth)

    def node_paths(self) -> list[str]:
        """Return every node's path, in blob order (as ``dtc`` prints them)."""
        return [self._path_of(off) for off in self._walk()]

    def node_path(self, name: str, compat: str | None = None) -> list[str]:
        """Paths of the nodes called *name* (QEMU's ``qemu_fdt_node_path``).

        *name* matches a node name with or without its unit address; with
        *compat*, only nodes whose ``compatible`` list holds it are returned.
        """
        out = []
        for off in self._walk():
            node = self._name_of(off)
            if node != name and node.split("@", 1)[0] != name:
                continue
            if compat is not None:
                compats = self._getprop_at(off, "compatible")
                if compats is None or compat.encode() not in compats.split(b"\0"):
                    continue
            out.append(self._path_of(off))
        return out

    def node_unit_path(self, name: str) -> list[str]:
        """Paths of the nodes named *name* or *name@unit*, last found first.

        QEMU's ``qemu_fdt_node_unit_path`` (it prepends each match).
        """
        prefix = f"{name}@"
        found = [
            self._path_of(off)
            for off in self._walk()
            if (n := self._name_of(off)) == name or n.startswith(prefix)
        ]
        return found[::-1]

    # -- nodes ------------------------------------------------------------------------

    def add_subnode(self, path: str) -> None:
        """Add node *path*; its parent must exist (``qemu_fdt_add_subnode``).

        The new node comes first among its parent's children.

        Raises:
            Error: no parent, the node exists, or the buffer is full.
        """
        parent_path, sep, base = path.rpartition("/")
        if not sep or not base:
            raise Error(f"qemu_fdt_add_subnode: invalid node path '{path}'")
        parent = (
            self._findnode("qemu_fdt_add_subnode", parent_path) if parent_path else 0
        )
        err = libfdt.fdt_add_subnode(self._blob, parent, base)
        if err < 0:
            raise Error(
                f"qemu_fdt_add_subnode: Failed to create subnode {path}: "
                f"{_strerror(err)}"
            )

    def add_path(self, path: str) -> None:
        """Add node *path* and every missing node above it (``qemu_fdt_add_path``).

        Raises:
            Error: *path* is not absolute, or the buffer is full.
        """
        if not path.startswith("/"):
            raise Error(f"qemu_fdt_add_path: '{path}' is not an absolute path")
        parent = 0
        for name in path[1:].split("/"):
            off = libfdt.fdt_subnode_offset(self._blob, parent, name)
            if off == -libfdt.FDT_ERR_NOTFOUND:
                off = libfdt.fdt_add_subnode(self._blob, parent, name)
                if off < 0:
                    raise Error(
                        f"qemu_fdt_add_path: Failed to create subnode {name}: "
                        f"{_strerror(off)}"
                    )
            elif off < 0:
                raise Error(
                    f"qemu_fdt_add_path: Unexpected error in finding subnode "
                    f"{name}: {_strerror(off)}"
                )
            parent = off

    def nop_node(self, path: str) -> None:
        """Blank out node *path* and its subtree (``qemu_fdt_nop_node``).

        The bytes stay in place as libfdt's NOP tags, so nothing else moves.
        """
        off = self._findnode("qemu_fdt_nop_node", path)
        err = libfdt.fdt_nop_node(self._blob, off)
        if err < 0:
            raise Error(f"qemu_fdt_nop_node: Failed to nop {path}: {_strerror(err)}")

    # -- properties -------------------------------------------------------------------

    def setprop(self, path: str, name: str, value: bytes | bytearray) -> None:
        """Set property *name* of node *path* to raw *value* (``qemu_fdt_setprop``).

        An empty *value* makes a boolean property (``interrupt-controller;``).

        Raises:
            Error: no such node, or the buffer is full.
        """
        off = self._findnode("qemu_fdt_setprop", path)
        err = libfdt.fdt_setprop(self._blob, off, name, bytes(value), len(value))
        if err < 0:
            raise Error(
                f"qemu_fdt_setprop: Couldn't set {path}/{name}: {_strerror(err)}"
            )

    def setprop_cell(self, path: str, name: str, value: int) -> None:
        """Set a one-cell (big-endian u32) property (``qemu_fdt_setprop_cell``)."""
        self.setprop_cells(path, name, value)

    def setprop_cells(self, path: str, name: str, *values: int) -> None:
        """Set a property of 32-bit cells (``qemu_fdt_setprop_cells``).

        Raises:
            Error: a value does not fit in 32 bits.
        """
        for v in values:
            if not 0 <= v <= 0xFFFF_FFFF:
                raise Error(
                    f"qemu_fdt_setprop_cells: {path}/{name}: 0x{v:x} does not fit "
                    "in a 32-bit cell"
                )
        self.setprop(path, name, struct.pack(f">{len(values)}I", *values))

    def setprop_u64(self, path: str, name: str, value: int) -> None:
        """Set a 64-bit (two-cell) property (``qemu_fdt_setprop_u64``)."""
        self.setprop(path, name, struct.pack(">Q", value & 0xFFFF_FFFF_FFFF_FFFF))

    def setprop_sized_cells(
        self, path: str, name: str, *pairs: tuple[int, int]
    ) -> None:
        """Set a property of 1- or 2-cell values (``qemu_fdt_setprop_sized_cells``).

        Each pair is ``(cells, value)``, as ``reg`` wants ``#address-cells``
        and ``#size-cells`` of them.

        Raises:
            Error: a cell count other than 1 or 2, or a value that does not
                fit its cells.
        """
        cells: list[int] = []
        for ncells, value in pairs:
            if ncells not in (1, 2):
                raise Error(
                    f"qemu_fdt_setprop_sized_cells: {path}/{name}: {ncells} cells "
                    "per value; only 1 or 2 are supported"
                )
            hi = (value >> 32) & 0xFFFF_FFFF
            if ncells == 2:
                cells.append(hi)
            elif hi != 0 or value < 0:
                raise Error(
                    f"qemu_fdt_setprop_sized_cells: {path}/{name}: 0x{value:x} "
                    "does not fit in one cell"
                )
            cells.append(value & 0xFFFF_FFFF)
        self.setprop(path, name, struct.pack(f">{len(cells)}I", *cells))

    def setprop_string(self, path: str, name: str, value: str) -> None:
        """Set a NUL-terminated string property (``qemu_fdt_setprop_string``)."""
        self.setprop(path, name, value.encode() + b"\0")

    def setprop_string_array(self, path: str, name: str, values: Sequence[str]) -> None:
        r"""Set a string list property (``qemu_fdt_setprop_string_array``).

        ``["arm,pl011", "arm,primecell"]`` is stored as
        ``arm,pl011\0arm,primecell\0``.
        """
        self.setprop(path, name, b"".join(v.encode() + b"\0" for v in values))

    def setprop_phandle(self, path: str, name: str, target: str) -> None:
        """Set *name* to the phandle of node *target* (``qemu_fdt_setprop_phandle``)."""
        self.setprop_cell(path, name, self.get_phandle(target))

    def _getprop_at(self, offset: int, name: str) -> bytes | None:
        res = libfdt.fdt_getprop(self._blob, offset, name)
        value = res[0]
        return value if isinstance(value, bytes) else None

    def getprop(self, path: str, name: str) -> bytes:
        """Return the raw value of property *name* (``qemu_fdt_getprop``).

        Raises:
            Error: no such node or property.
        """
        off = self._findnode("qemu_fdt_getprop", path)
        res = libfdt.fdt_getprop(self._blob, off, name)
        value, err = res[0], res[1]
        if not isinstance(value, bytes):
            code = err if isinstance(err, int) else -libfdt.FDT_ERR_NOTFOUND
            raise Error(
                f"qemu_fdt_getprop: Couldn't get {path}/{name}: {_strerror(code)}"
            )
        return value

    def getprop_cell(self, path: str, name: str) -> int:
        """Return a one-cell property as an integer (``qemu_fdt_getprop_cell``).

        Raises:
            Error: no such property, or it is not 4 bytes long.
        """
        value = self.getprop(path, name)
        if len(value) != 4:
            raise Error(
                f"qemu_fdt_getprop_cell: {path}/{name} not 4 bytes long (not a cell?)"
            )
        cell: int = struct.unpack(">I", value)[0]
        return cell

    def properties(self, path: str) -> list[tuple[str, bytes]]:
        """Return node *path*'s properties as ``(name, value)``, in blob order."""
        off = self._findnode("properties", path)
        out = []
        poff = libfdt.fdt_first_property_offset(self._blob, off)
        while poff >= 0:
            res = libfdt.fdt_get_property_by_offset(self._blob, poff)
            name, value = res[0], res[1]
            if isinstance(name, str) and isinstance(value, bytearray):
                out.append((name, bytes(value)))
            poff = libfdt.fdt_next_property_offset(self._blob, poff)
        return out

    # -- phandles and seeds -----------------------------------------------------------

    def get_phandle(self, path: str) -> int:
        """Return the phandle of node *path* (``qemu_fdt_get_phandle``).

        Raises:
            Error: no such node, or it has no phandle.
        """
        off = self._findnode("qemu_fdt_get_phandle", path)
        phandle = libfdt.fdt_get_phandle(self._blob, off)
        if phandle == 0:
            raise Error(
                f"qemu_fdt_get_phandle: Couldn't get phandle for {path}: "
                f"{_strerror(-libfdt.FDT_ERR_NOTFOUND)}"
            )
        return phandle

    def alloc_phandle(self) -> int:
        """Return a new phandle, from 0x8000 up (``qemu_fdt_alloc_phandle``)."""
        phandle = self._next_phandle
        self._next_phandle += 1
        return phandle

    def randomize_seeds(self) -> None:
        """Refill every ``rng-seed`` property with random bytes.

        QEMU's ``qemu_fdt_randomize_seeds``, run on each reset so that a
        rebooted guest gets fresh entropy (``kaslr-seed`` keeps its value).
        """
        for off in self._walk():
            for name, value in self._props_at(off):
                if name == "rng-seed":
                    err = libfdt.fdt_setprop(
                        self._blob, off, name, os.urandom(len(value)), len(value)
                    )
                    if err < 0:  # pragma: no cover - same size, done in place
                        raise Error(f"rng-seed: {_strerror(err)}")

    def _props_at(self, off: int) -> list[tuple[str, bytes]]:
        out = []
        poff = libfdt.fdt_first_property_offset(self._blob, off)
        while poff >= 0:
            res = libfdt.fdt_get_property_by_offset(self._blob, poff)
            if isinstance(res[0], str) and isinstance(res[1], bytearray):
                out.append((res[0], bytes(res[1])))
            poff = libfdt.fdt_next_property_offset(self._blob, poff)
        return out


def create_device_tree(*, phandle_start: int = FDT_PHANDLE_START) -> Fdt:
    """Return an empty tree in a :data:`FDT_MAX_SIZE` buffer (``create_device_tree``).

    Args:
        phandle_start: the first phandle :meth:`Fdt.alloc_phandle` returns.
    """
    buf = bytearray(FDT_MAX_SIZE)
    err = libfdt.fdt_create_empty_tree(buf, len(buf))
    if err < 0:  # pragma: no cover - an empty tree always fits
        raise Error(f"create_device_tree() failed: {_strerror(err)}")
    return Fdt(buf, phandle_start=phandle_start)


def load_device_tree(filename: str) -> Fdt:
    """Read a ``.dtb`` file for patching (``load_device_tree``).

    As in QEMU, the buffer is twice the file size plus 10000 bytes, so that
    the loader's additions fit; that whole buffer is what the guest gets.

    Raises:
        Error: the file cannot be read, or is not a valid DTB.
    """
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Error(
            f"Couldn't open dtb file {filename}: {e.strerror or e}",
            hint="-dtb takes a compiled device tree (dtc -I dts -O dtb).\n",
        ) from None
    if len(data) > _MAX_DTB_FILE:
        raise Error(f"Device tree file '{filename}' is too large")
    try:
        return Fdt.from_bytes(data, size=(len(data) + _LOAD_SLACK) * 2)
    except Error as e:
        raise Error(
            f"Couldn't open dtb file {filename}: {e.msg}",
            hint="-dtb takes a compiled device tree (dtc -I dts -O dtb).\n",
        ) from None


def qemu_fdt_dumpdtb(fdt: Fdt, filename: str | None) -> None:
    """Write *fdt* to *filename* and end the run, for ``-machine dumpdtb=FILE``.

    QEMU's ``qemu_fdt_dumpdtb``: with no file asked for it does nothing;
    otherwise it writes the whole buffer, prints ``info: dtb dumped to FILE.
    Exiting.`` and raises :class:`DtbDumped` (QEMU exits with status 0).

    Raises:
        DtbDumped: the file was written.
        Error: the file could not be written.
    """
    if filename is None:
        return
    try:
        with open(filename, "wb") as f:
            f.write(fdt.as_bytes())
    except OSError as e:
        raise Error(
            f"qemu_fdt_dumpdtb: Failed dumping dtb to {filename}: {e.strerror or e}"
        ) from None
    sys.stderr.write(
        f"{error_get_progname()}: info: dtb dumped to {filename}. Exiting.\n"
    )
    raise DtbDumped(filename)
