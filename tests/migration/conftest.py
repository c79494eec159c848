"""Shared fixtures of the migration tests.

Each test runs with the BQL held and starts from a fresh runtime, as the unit
tests do (virtual clock at 0, no timers, no chardevs, an empty QOM tree and a
fresh system memory), with no state registered for migration and no
migration in progress.
"""

from tests.runtime import qemu_runtime, reset_runtime

__all__ = ["qemu_runtime", "reset_runtime"]
