#!/usr/bin/env python3
"""Scaffold a device package, in the tree or as a package of its own.

Usage:
  scripts/new-device CATEGORY NAME [--type TYPE] [--desc TEXT]
  scripts/new-device --out-of-tree DIR NAME [--type TYPE] [--desc TEXT]

In the tree it writes ``hw/CATEGORY/NAME/`` (``meson.build``, ``trace-events``,
``__init__.py``, ``device.py`` with a register map, VMState and reset, and
``tests/``) and ``docs/devices/NAME.rst``, and adds the package to
``hw/CATEGORY/meson.build`` (creating the category if needed) and the page to
``docs/devices/index.rst``. The device builds with ``--enable-python-devices``
or once a board selects it (``board_devices += 'NAME'``).

Out of the tree it writes a pip-installable package in DIR: ``pyproject.toml``
(meson-python, the ``pyqemu.devices`` entry point), a ``meson.build`` whose
tests are pyqemu's gates (``python -m pyqemu.gate``) and the unit tests, the
package ``NAME/`` with ``device.py`` (a
:class:`~qemu_api.sysbus.DynamicSysBusDevice`, so ``-device TYPE`` puts it on
virt's platform bus), ``tests/`` and ``docs/NAME.rst``.

The generated code passes the gates and its tests as generated; the registers
are a placeholder to replace with the hardware's.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

SRCROOT = Path(__file__).resolve().parent.parent
"""The tree ``in_tree`` writes into (``--root``)."""

DEVICE = '''"""{title}.

The device model: its registers (a :class:`~qemu_api.register.RegisterMap`),
its interrupt, reset and migration state.

>>> from qemu_api.sysbus import sysbus_realize
>>> dev = {cls}()
>>> sysbus_realize(dev)
>>> dev.cold_reset()
>>> dev.registers.write(dev, 0x00, 0x1, 4)  # CTRL.ENABLE
>>> dev.registers.write(dev, 0x08, 0x5A, 4)  # DATA
>>> hex(dev.registers.read(dev, 0x04, 4))  # STATUS.DATA_VALID
'0x1'
"""

from __future__ import annotations

from typing import Final

{imports}
from qemu_api.bql import BqlStruct
from qemu_api.irq import InterruptSource
from qemu_api.memory import MemoryRegion, MemoryRegionOps, OpsImpl
from qemu_api.migration.vmstate import VMStateDescription, vmstate_uint32
from qemu_api.qdev import ResetType
from qemu_api.qom import override
from qemu_api.register import RW, W1C, R, Register, RegisterMap
from qemu_api.sysbus import {base}
{after}

__all__ = ["TYPE_{const}", "{cls}"]

TYPE_{const}: Final = "{type}"
"""The QOM type name."""
MMIO_SIZE: Final = 0x1000
CTRL_ENABLE: Final = 1 << 0
STATUS_DATA_VALID: Final = 1 << 0


class {regs}(BqlStruct):
    """The registers' state."""

    ctrl: int
    status: int
    data: int

    def __init__(self) -> None:
        self.ctrl = self.status = self.data = 0


class {cls}({base}, type_name=TYPE_{const}):
    """{desc} (sysbus MMIO 0, IRQ 0)."""

    desc = "{desc}"{user_creatable}

    regs: {regs}

    @override
    def instance_init(self) -> None:
        """Create the registers, the MMIO window and the IRQ."""
        self.regs = {regs}()
        self.iomem = MemoryRegion.io(self, "{type}", MMIO_SIZE, OPS, self)
        self.init_mmio(self.iomem)
        self.irq = InterruptSource()
        self.init_irq(self.irq)

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        """Reset every register to its reset value."""
        super().reset_hold(reset_type)
        self.registers.reset(self)
        self.update()
{fdt}
    def update(self) -> None:
        """Drive the IRQ: enabled and data valid."""
        regs = self.regs
        level = regs.ctrl & CTRL_ENABLE and regs.status & STATUS_DATA_VALID
        self.irq.set(1 if level else 0)

    def write_data(self, value: int) -> None:
        """A DATA write: latch it and flag it valid."""
        self.regs.data = value & 0xFF
        self.regs.status |= STATUS_DATA_VALID
        self.update()

    def read_data(self) -> int:
        """A DATA read."""
        return self.regs.data

    def post_write(self) -> None:
        """After a register write: the IRQ may change."""
        self.update()

    registers = RegisterMap["{cls}"](
        "{type}",
        MMIO_SIZE,
        [
            Register(
                "CTRL",
                0x00,
                RW,
                field=lambda s: s.regs.ctrl,
                write_mask=CTRL_ENABLE,
                post_write=post_write,
            ),
            Register(
                "STATUS",
                0x04,
                R | W1C,
                field=lambda s: s.regs.status,
                write_mask=STATUS_DATA_VALID,
                post_write=post_write,
            ),
            Register("DATA", 0x08, RW, read=read_data, write=write_data),
        ],{trace}
    )
    """The device's registers."""

    vmsd = VMStateDescription["{cls}"](
        "{type}",
        version_id=1,
        minimum_version_id=1,
        fields=[
            vmstate_uint32(lambda s: s.regs.ctrl),
            vmstate_uint32(lambda s: s.regs.status),
            vmstate_uint32(lambda s: s.regs.data),
        ],
    )
    """The migration state: section ``{type}``, version 1."""


OPS: Final = MemoryRegionOps[{cls}](
    read={cls}.registers.read,
    write={cls}.registers.write,
    impl=OpsImpl(min_access_size=4, max_access_size=4),
)
"""32-bit callbacks; every access size is valid."""
'''

FDT = '''
    def add_fdt_node(self, data: PlatformBusFDTData) -> None:
        """Describe the device on a platform bus (``-device`` on virt)."""
        node = data.node_path(self, "{type}")
        data.fdt.add_subnode(node)
        data.fdt.setprop_string(node, "compatible", "pyqemu,{type}")
        data.fdt.setprop_cells(node, "reg", *data.reg(self, 0))
        data.fdt.setprop_cells(node, "interrupts", *data.interrupts(self, 0))
'''

TEST = '''"""{type} in this process: registers, interrupt, migration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from {module}.device import {cls}
from qemu_api.irq import qemu_allocate_irq
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import vmstate_load_state, vmstate_save_state
from qemu_api.sysbus import sysbus_realize
from qemu_api.testing import fresh_runtime

CTRL, STATUS, DATA = 0x00, 0x04, 0x08


@pytest.fixture(autouse=True)
def runtime() -> Iterator[None]:
    with fresh_runtime():
        yield


def make() -> tuple[{cls}, list[int]]:
    dev = {cls}()
    sysbus_realize(dev)
    levels: list[int] = []
    dev.connect_irq(0, qemu_allocate_irq(lambda _n, lvl: levels.append(lvl), 0))
    dev.cold_reset()
    return dev, levels


def test_irq_follows_enable_and_data() -> None:
    dev, levels = make()
    dev.registers.write(dev, DATA, 0x1A5, 4)
    assert dev.registers.read(dev, DATA, 4) == 0xA5  # 8 bits
    assert levels[-1] == 0  # not enabled
    dev.registers.write(dev, CTRL, 1, 4)
    assert levels[-1] == 1
    dev.registers.write(dev, STATUS, 1, 4)  # write one to clear
    assert levels[-1] == 0


def test_migration_round_trip() -> None:
    dev, _ = make()
    dev.registers.write(dev, CTRL, 1, 4)
    dev.registers.write(dev, DATA, 0x42, 4)
    f = QEMUFileWriter()
    vmstate_save_state(f, {cls}.vmsd, dev)
    blob = f.getvalue()
    assert blob == bytes.fromhex("00000001 00000001 00000042")  # be32 each
    other, _ = make()
    vmstate_load_state(QEMUFileReader(blob), {cls}.vmsd, other, 1)
    assert other.registers.read(other, DATA, 4) == 0x42
'''

DOC = """{title}
{underline}

{desc}. QOM type ``{type}``: one 4 KiB MMIO window (sysbus region 0) and one
interrupt output (sysbus IRQ 0).

Registers
---------

====== ====== ====== ===================================================
offset name   access meaning
====== ====== ====== ===================================================
0x000  CTRL   RW     bit 0 ENABLE: the IRQ follows STATUS.DATA_VALID
0x004  STATUS R/W1C  bit 0 DATA_VALID: set by a DATA write
0x008  DATA   RW     8 bits of data
====== ====== ====== ===================================================

Migration
---------

Section ``{type}``, version 1: CTRL, STATUS, DATA as 32-bit words.
"""


def names(name: str, type_: str | None) -> dict[str, str]:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise SystemExit(
            f"new-device: NAME must be a Python package name in lower case "
            f"(letters, digits, _), not {name!r}"
        )
    qom = type_ or name.replace("_", "-")
    cls = "".join(p.capitalize() for p in re.split(r"[_-]", qom)) + "State"
    return {
        "name": name,
        "type": qom,
        "cls": cls,
        "regs": cls.removesuffix("State") + "Regs",
        "const": re.sub(r"[^A-Z0-9]", "_", qom.upper()),
    }


_planned: list[tuple[Path, str]] = []


def write(path: Path, text: str) -> None:
    """Plan writing *path*; :func:`commit` writes every planned file or none."""
    _planned.append((path, text))


def commit() -> None:
    for path, _text in _planned:
        if path.exists():
            raise SystemExit(f"new-device: {path} exists; not overwriting it")
    for path, text in _planned:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"  wrote {path}")
    _planned.clear()


def device_py(n: dict[str, str], desc: str, *, oot: bool, module: str) -> str:
    imports = []
    after = ""
    if oot:
        imports.append("from hw.core.sysbus_fdt import PlatformBusFDTData")
        trace = ""
    else:
        after = (
            f"from qemu_trace.{n['name']} import (\n"
            f"    trace_{n['name']}_read,\n"
            f"    trace_{n['name']}_write,\n"
            ")"
        )
        trace = (
            f"\n        trace_read=trace_{n['name']}_read,"
            f"\n        trace_write=trace_{n['name']}_write,"
        )
    text = DEVICE.format(
        title=f"{n['type']}: {desc}",
        imports="\n".join(imports),
        after=after,
        base="DynamicSysBusDevice" if oot else "SysBusDevice",
        user_creatable="" if oot else "\n    user_creatable = False",
        fdt=FDT.format(**n) if oot else "",
        trace=trace,
        desc=desc,
        module=module,
        **n,
    )
    # an empty import line leaves an extra blank line
    text = text.replace(
        "from typing import Final\n\n\n", "from typing import Final\n\n"
    )
    return text.replace("\n\n\n__all__", "\n\n__all__")


def in_tree(category: str, n: dict[str, str], desc: str, root: Path = SRCROOT) -> int:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", category):
        raise SystemExit(f"new-device: bad CATEGORY {category!r}")
    cat = root / "hw" / category
    pkg = cat / n["name"]
    module = f"hw.{category}.{n['name']}"
    print(f"new-device: {module} (QOM type {n['type']!r})")
    write(pkg / "__init__.py", f'"""{n["type"]}: {desc}."""\n\n'
          f"from {module}.device import TYPE_{n['const']}, {n['cls']}\n\n"
          f'__all__ = ["TYPE_{n["const"]}", "{n["cls"]}"]\n')  # fmt: skip
    write(pkg / "device.py", device_py(n, desc, oot=False, module=module))
    write(pkg / "trace-events",
          "# See docs/devel/tracing.rst for the syntax of this file.\n\n"
          "# device.py\n"
          f'{n["name"]}_read(uint32_t addr, uint32_t value, const char *regname) '
          '"addr 0x%03x value 0x%08x reg %s"\n'
          f'{n["name"]}_write(uint32_t addr, uint32_t value, const char *regname) '
          '"addr 0x%03x value 0x%08x reg %s"\n')  # fmt: skip
    write(pkg / "tests" / "__init__.py", "")
    write(pkg / "tests" / "test_device.py", TEST.format(module=module, **n))
    write(pkg / "meson.build",
          f"# hw/{category}/{n['name']}: {desc}. Built when a board selects it or\n"
          "# with python_devices enabled.\n"
          f"if have_python and (all_python_devices or "
          f"board_devices.contains('{n['name']}'))\n"
          f"  devices_built += '{n['name']}'\n"
          f"  device_modules += '{module}'\n"
          f"  python_packages += {{'{n['name']}': {{\n"
          f"    'dir': 'hw/{category}/{n['name']}',\n"
          "    'sources': files('__init__.py', 'device.py'),\n"
          "    'tests': files('tests/__init__.py', 'tests/test_device.py'),\n"
          "    'doctest': true,\n"
          "    'install': true,\n"
          "    'trace_events': files('trace-events'),\n"
          "  }}\n"
          "endif\n")  # fmt: skip
    cat_meson = cat / "meson.build"
    new_category = not cat_meson.exists()
    if new_category:
        write(cat / "__init__.py", f'"""hw/{category}: devices of this category."""\n')
        write(cat_meson,
              f"# hw/{category}\n"
              "if have_python\n"
              f"  python_packages += {{'hw-{category}': {{\n"
              f"    'dir': 'hw/{category}',\n"
              "    'sources': files('__init__.py'),\n"
              "    'doctest': true,\n"
              "    'install': true,\n"
              "  }}\n"
              "endif\n")  # fmt: skip
    write(root / "docs" / "devices" / f"{n['name']}.rst",
          DOC.format(title=n["type"], underline="=" * len(n["type"]), desc=desc,
                     type=n["type"]))  # fmt: skip
    commit()
    if new_category:
        hw = root / "hw" / "meson.build"
        text = hw.read_text()
        anchor = "  subdir('char')\n"
        if anchor in text:
            hw.write_text(text.replace(anchor, anchor + f"  subdir('{category}')\n"))
            print(f"  added subdir('{category}') to {hw}")
    cat_meson.write_text(cat_meson.read_text() + f"subdir('{n['name']}')\n")
    print(f"  added subdir('{n['name']}') to {cat_meson}")
    index = root / "docs" / "devices" / "index.rst"
    if index.exists():
        index.write_text(index.read_text().rstrip("\n") + f"\n   {n['name']}\n")
        print(f"  added {n['name']} to {index}")
    print(
        "next: ./configure --enable-python-devices && make && "
        f"meson test -C build --suite {n['name']}"
    )
    return 0


def out_of_tree(directory: Path, n: dict[str, str], desc: str) -> int:
    module = n["name"]
    dist = module.replace("_", "-")
    print(f"new-device: package {dist} in {directory} (QOM type {n['type']!r})")
    write(directory / module / "__init__.py",
          f'"""{dist}: a pyqemu device package ({n["type"]})."""\n\n'
          '__all__ = ["__version__"]\n\n__version__ = "0.1.0"\n')  # fmt: skip
    write(directory / module / "device.py",
          device_py(n, desc, oot=True, module=module))  # fmt: skip
    write(directory / "tests" / "test_device.py", TEST.format(module=module, **n))
    write(directory / "pyproject.toml",
          "[build-system]\n"
          'build-backend = "mesonpy"\n'
          'requires = ["meson-python==0.22.1", "meson==1.12.1", "ninja==1.13.2"]\n\n'
          "[project]\n"
          f'name = "{dist}"\n'
          'version = "0.1.0"\n'
          f'description = "{desc}"\n'
          'requires-python = ">=3.11"\n'
          'dependencies = ["pyqemu>=0.1,<0.2"]\n\n'
          "# One entry point per QOM type: the type's name = the module defining it.\n"
          '[project.entry-points."pyqemu.devices"]\n'
          f'"{n["type"]}" = "{module}.device"\n')  # fmt: skip
    write(directory / "meson.build",
          f"project('{dist}', version: '0.1.0', meson_version: '>=1.6.0')\n\n"
          "py = import('python').find_installation(pure: true)\n\n"
          f"sources = files('{module}/__init__.py', '{module}/device.py')\n"
          "tests = files('tests/test_device.py')\n"
          f"py.install_sources(sources, subdir: '{module}')\n\n"
          "# pyqemu's own gates (python -m pyqemu.gate), with its settings.\n"
          "gate_cache = meson.current_build_dir() / 'gate-cache'\n"
          "foreach gate : ['clippy', 'pyfmt', 'mypy']\n"
          "  test(gate, py, args: ['-m', 'pyqemu.gate', gate, '--cache', gate_cache,\n"
          "                        sources, tests],\n"
          "       workdir: meson.current_source_dir(), suite: 'lint', timeout: 300)\n"
          "endforeach\n"
          "test('doctest', py, args: ['-m', 'pyqemu.gate', 'doctest', sources],\n"
          "     workdir: meson.current_source_dir(), suite: 'doc')\n"
          "test('unit', py, args: ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', "
          "tests],\n"
          "     workdir: meson.current_source_dir(), suite: 'unit')\n")  # fmt: skip
    write(directory / "docs" / f"{n['name']}.rst",
          DOC.format(title=n["type"], underline="=" * len(n["type"]), desc=desc,
                     type=n["type"]))  # fmt: skip
    commit()
    print(
        f"next: cd {directory} && pip install --no-build-isolation . (into "
        f"pyqemu's environment), then pyqemu-system-aarch64 -M virt -device "
        f"{n['type']}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/new-device", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out-of-tree", type=Path, metavar="DIR")
    parser.add_argument("--type", help="the QOM type name (default: NAME with -)")
    parser.add_argument("--desc", default="a new device")
    parser.add_argument("--root", type=Path, default=SRCROOT, help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="+", metavar="[CATEGORY] NAME")
    args = parser.parse_args(argv)
    if args.out_of_tree is not None:
        if len(args.args) != 1:
            parser.error("--out-of-tree takes NAME only")
        return out_of_tree(args.out_of_tree, names(args.args[0], args.type), args.desc)
    if len(args.args) != 2:
        parser.error("in the tree: CATEGORY NAME (e.g. misc my_dev)")
    category, name = args.args
    return in_tree(category, names(name, args.type), args.desc, args.root)


if __name__ == "__main__":
    sys.exit(main())
