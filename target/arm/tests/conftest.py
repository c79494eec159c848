"""Fixtures: every test holds the BQL and starts from a fresh runtime."""

from tests.runtime import qemu_runtime

__all__ = ["qemu_runtime"]
