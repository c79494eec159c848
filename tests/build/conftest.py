"""Fixtures for the build system's tests: where the source and build trees are."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


@pytest.fixture
def srcroot() -> Path:
    return Path(os.environ.get("PYQEMU_SOURCE_ROOT", Path(__file__).parents[2]))


@pytest.fixture
def buildroot(srcroot: Path) -> Path:
    return Path(os.environ.get("PYQEMU_BUILD_ROOT", srcroot / "build"))


@pytest.fixture
def venv_bin() -> Path:
    """The bin directory of the venv running the tests (build/pyvenv/bin)."""
    return Path(sys.executable).parent
