"""Compatibility shims for the oldest supported Python (3.11).

``typing.override`` arrives in Python 3.12. mypy reads it from
``typing_extensions`` (bundled with mypy); at run time the decorator only returns
the method, so the runtime needs nothing beyond the standard library. Device code
imports it as ``from qemu_api.qom import override``.
"""

from typing import TYPE_CHECKING

__all__ = ["override"]

if TYPE_CHECKING:
    from typing_extensions import override
else:

    def override(method):
        """Mark a method as overriding one of its base class (``typing.override``)."""
        return method
