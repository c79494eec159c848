"""QEMU 7.2, the behaviour oracle of the differential and compatibility tests.

The tests that compare pyqemu with QEMU run Debian's ``qemu-system-aarch64``
or ``qemu-system-x86_64`` (QEMU 7.2) next to pyqemu's launcher. This module
finds that binary, or fails the test saying how to install it, and holds the
small helpers those tests share: where QEMU put a device it did not name, and
a pyqemu/QEMU pair started alike.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import pytest

from tests.qtest.libqtest import QTestState

__all__ = ["PACKAGES", "qemu72", "unattached", "virt_pair"]

PACKAGES: Final = {"aarch64": "qemu-system-arm", "x86_64": "qemu-system-x86"}
"""The Debian package that provides ``qemu-system-TARGET``."""


@functools.cache
def _find(target: str) -> Path | str:
    """The binary's path, or the reason it cannot serve as the oracle."""
    name = f"qemu-system-{target}"
    hint = (
        f"QEMU 7.2 is the oracle of this test: install Debian's with "
        f"'apt-get install -y {PACKAGES[target]}'"
    )
    found = shutil.which(name)
    if found is None:
        return f"{name} not found. {hint}"
    try:
        version = subprocess.run(
            [found, "--version"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{found} --version failed ({e}). {hint}"
    if "version 7.2." not in version:
        first = version.splitlines()[0] if version else "no version line"
        return f"{found} is not QEMU 7.2 ({first}). {hint}"
    return Path(found)


def qemu72(target: str = "aarch64") -> Path:
    """Debian's ``qemu-system-TARGET`` 7.2, or fail the test saying how to install it.

    Args:
        target: ``aarch64`` or ``x86_64``.

    Returns:
        The binary's path (checked once per process).
    """
    found = _find(target)
    if isinstance(found, str):
        pytest.fail(found, pytrace=False)
    return found


def unattached(qts: QTestState, typename: str) -> str:
    """The QOM path of QEMU's only ``typename`` device under ``/machine/unattached``.

    QEMU's boards leave most devices unnamed; their paths depend on creation
    order, so the tests look them up by type.
    """
    children = qts.qmp("qom-list", path="/machine/unattached")
    assert isinstance(children, list)
    found = [
        c["name"]
        for c in children
        if isinstance(c, dict) and str(c.get("type", "")).endswith(f"<{typename}>")
    ]
    assert len(found) == 1, f"{len(found)} {typename} devices in {children}"
    return f"/machine/unattached/{found[0]}"


@contextlib.contextmanager
def virt_pair(
    oracle_args: Sequence[str], our_args: Sequence[str]
) -> Iterator[tuple[QTestState, QTestState]]:
    """QEMU 7.2's and pyqemu's ``virt``, with QMP and the GIC's inputs intercepted.

    Yields ``(oracle, ours)``; both are stopped and killed on the way out,
    whatever happened.
    """
    oracle = QTestState(list(oracle_args), binary=qemu72(), accel=None, qmp=True)
    try:
        ours = QTestState(list(our_args), qmp=True)
    except BaseException:
        oracle.quit()
        raise
    try:
        oracle.irq_intercept_in(unattached(oracle, "arm_gic"))
        ours.irq_intercept_in("/machine/gic")
        yield oracle, ours
    finally:
        ours.quit()
        oracle.quit()
