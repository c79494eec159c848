"""Shared fixtures of the unit tests: the fresh runtime of tests/runtime.py."""

from tests.runtime import qemu_runtime

__all__ = ["qemu_runtime"]
