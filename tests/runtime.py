"""The test runtime of pyqemu's own tests: :mod:`qemu_api.testing`.

The fresh-runtime fixture and context manager are public API for device
tests (:mod:`qemu_api.testing`, :mod:`qemu_api.testing.fixtures`); this module
re-exports them under the names the tests have always imported::

    from tests.runtime import qemu_runtime as qemu_runtime
"""

from __future__ import annotations

from qemu_api.testing import fresh_runtime, reset_runtime
from qemu_api.testing.fixtures import qemu_runtime

__all__ = ["fresh_runtime", "qemu_runtime", "reset_runtime"]
