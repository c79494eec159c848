"""Fixtures of the Linux guest tests: the launcher under test and the guest's files.

``--launcher`` names the launcher: ``qemu`` (Debian's QEMU 7.2,
``qemu-system-aarch64``, the default), ``pyqemu`` (``build/pyqemu-system-aarch64``)
or any command that takes QEMU's command line. ``--timeout-scale`` multiplies every
timeout, for a slower launcher. A launcher that cannot run an AArch64 guest, or a
guest that cannot be fetched, fails the tests: nothing here is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

import pytest

from tests.linux.guest import (
    GuestError,
    GuestFiles,
    LinuxGuest,
    fetch_guest,
    launcher_cpu_probe,
    launcher_path,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--launcher",
        default="qemu",
        help="qemu, pyqemu or a command taking QEMU's command line",
    )
    parser.addoption(
        "--timeout-scale",
        type=float,
        default=1.0,
        help="multiply every timeout (a slower launcher)",
    )


@pytest.fixture(scope="session")
def launcher(request: pytest.FixtureRequest) -> str:
    """The launcher under test; it must list tcg and the cortex-a57 CPU."""
    path = launcher_path(str(request.config.getoption("--launcher")))
    problem = launcher_cpu_probe(path)
    if problem is not None:
        pytest.fail(f"the launcher cannot boot the AArch64 guest: {problem}")
    return path


@pytest.fixture(scope="session")
def timeout_scale(request: pytest.FixtureRequest) -> float:
    return float(request.config.getoption("--timeout-scale"))


@pytest.fixture(scope="session")
def guest_files() -> GuestFiles:
    """Debian's kernel and the initramfs, fetched on first use (a failure fails)."""
    try:
        return fetch_guest()
    except GuestError as e:
        pytest.fail(str(e))


class GuestFactory(Protocol):
    """``make_guest(suffix, extra_args)``: a guest on the launcher under test."""

    def __call__(
        self, suffix: str = "", extra_args: tuple[str, ...] = ()
    ) -> LinuxGuest: ...


@pytest.fixture
def make_guest(
    request: pytest.FixtureRequest,
    launcher: str,
    guest_files: GuestFiles,
    timeout_scale: float,
) -> Iterator[GuestFactory]:
    """Create guests on the launcher under test; they are ended after the test."""
    guests: list[LinuxGuest] = []
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    tag = "pyqemu" if "pyqemu" in launcher else "qemu"

    def make(suffix: str = "", extra_args: tuple[str, ...] = ()) -> LinuxGuest:
        name = f"{tag}-{base}{'-' + suffix if suffix else ''}"
        guest = LinuxGuest(
            launcher,
            guest_files,
            name=name,
            extra_args=extra_args,
            timeout_scale=timeout_scale,
        )
        guests.append(guest)
        return guest

    yield make
    for guest in guests:
        guest.close()
