"""pyqemu as a library: the entry points of an installed pyqemu.

``pip install .`` (or a wheel built with meson-python from the same
``meson.build``) installs the device API (:mod:`qemu_api`), the device tree
(``hw``), the runtime (``system``, ``accel``, ``target``, ``chardev``), the
generated modules (``qapi``, ``qemu_trace``, ``pyqemu_config``) and this
package:

- :mod:`pyqemu.system`: ``python -m pyqemu.system ARGS`` and the console
  scripts ``pyqemu-system-aarch64``/``pyqemu-system-x86_64`` run a board;
- :mod:`pyqemu.gate`: ``python -m pyqemu.gate`` runs the project's own gates
  (ruff, format, ``mypy --strict``, doctests) on a device package's files.

Device packages installed beside it are found through the ``pyqemu.devices``
entry point group (:mod:`qemu_api.module`).
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
