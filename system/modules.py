"""Loading the device packages at start (QEMU's ``module_call_init`` in ``vl.c``).

:func:`modules_init` registers what this build and the installed device
packages provide:

- in a build without modules (the default), every device package of the
  tree is imported, as QEMU links its devices into the binary;
- with ``--enable-modules``, the registry generated at build time
  (``pyqemu_modinfo``) is registered instead and each package is imported on
  the first use of one of its types (:mod:`qemu_api.module`);
- device packages installed with pip (entry point group ``pyqemu.devices``)
  are registered in both cases; without modules they are imported here too,
  and one that fails to import is reported with a warning (using its types
  then fails with the full error) rather than stopping every start.

A device package of the tree belongs to the boards that select it
(``board_selects`` in ``hw/<arch>/meson.build``, QEMU's Kconfig ``select``):
:func:`module_boards` gives them, the registry records them
(``scripts/modinfo.py``), and :func:`device_boards` answers for a type without
importing it, so that a launcher refuses the devices of another target's
boards as QEMU's binaries do (they are not built into them).
"""

from __future__ import annotations

import importlib
from typing import TextIO

import pyqemu_config
from qemu_api.error import Error, error_get_progname
from qemu_api.module import (
    ModuleInfo,
    module_init_entry_points,
    module_init_modinfo,
    module_load,
    module_of_type,
)
from qemu_api.qom import type_info

__all__ = ["device_boards", "module_boards", "modules_init"]


def _package_name(name: str) -> str:
    return name.replace("-", "_")


def module_boards(import_name: str) -> tuple[str, ...]:
    """The boards that select the tree's device package *import_name*, sorted.

    A package is named as its directory (``hw.gpio.gpio_key`` is the
    ``gpio-key`` that ``virt`` selects).  Empty when no board selects it
    (built by ``--enable-python-devices`` alone): any board may use it.

    >>> module_boards("hw.char.pl011") if "virt" in pyqemu_config.BOARDS else ("virt",)
    ('virt',)
    """
    pkg = _package_name(import_name.rpartition(".")[2])
    return tuple(
        sorted(
            board
            for board, devices in pyqemu_config.BOARD_DEVICES.items()
            if any(_package_name(d) == pkg for d in devices)
        )
    )


def device_boards(typename: str) -> tuple[str, ...]:
    """The boards whose device package provides *typename*, without importing it.

    From the module registry when the type's module is registered
    (``--enable-modules``, installed packages: those declare no boards), else
    from the imported class's package.  Empty: any board (the core's types,
    installed packages, devices no board selects, unknown types).
    """
    info = module_of_type(typename)
    if info is not None:
        return info.boards
    ti = type_info(typename)
    if ti is None:
        return ()
    module = ti.cls.__module__
    for import_name in pyqemu_config.DEVICE_MODULES:
        if module == import_name or module.startswith(import_name + "."):
            return module_boards(import_name)
    return ()


_done = False


def modules_init(warn: TextIO) -> list[ModuleInfo]:
    """Register (and, without modules, import) the device packages; once.

    Args:
        warn: where a device package that fails to import is reported.

    Returns:
        The out-of-tree device modules registered from entry points.

    Raises:
        Error: the build's registry is corrupt, or one of the tree's own
            device packages fails to import.
    """
    global _done
    if _done:
        return []
    _done = True
    if pyqemu_config.MODULES:
        modinfo = importlib.import_module("pyqemu_modinfo")
        module_init_modinfo(modinfo.MODINFO, load=False)
    else:
        for module in pyqemu_config.DEVICE_MODULES:
            importlib.import_module(module)
    external = module_init_entry_points()
    if not pyqemu_config.MODULES:
        for info in external:
            try:
                module_load("", info.name)
            except Error as e:
                warn.write(f"{error_get_progname()}: warning: {e.msg}\n")
    return external
