"""The pytest fixture of :mod:`qemu_api.testing`: every test on a fresh runtime.

Import it into a test directory's ``conftest.py``; being ``autouse``, it then
wraps every test of the directory in :func:`qemu_api.testing.fresh_runtime`::

    from qemu_api.testing.fixtures import qemu_runtime as qemu_runtime

This module imports pytest; :mod:`qemu_api.testing` itself does not, so the
emulator can import it without the test tools.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qemu_api.testing import fresh_runtime

__all__ = ["qemu_runtime"]


@pytest.fixture(autouse=True)
def qemu_runtime() -> Iterator[None]:
    """Hold the BQL during the test and reset the runtime before and after it."""
    with fresh_runtime():
        yield
