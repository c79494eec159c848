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
)

__all__ = ["modules_init"]

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
