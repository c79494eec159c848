"""An example out-of-tree device package for pyqemu.

It provides one device, ``example-counter`` (:mod:`.counter`), declared to
pyqemu through the ``pyqemu.devices`` entry point group in its
``pyproject.toml``. Once installed with pip beside pyqemu, the device is
listed by ``-device help`` and ``-device example-counter`` puts it on virt's
platform bus.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
