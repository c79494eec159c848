"""The ARM PrimeCell GPIO (PL061), QEMU's ``hw/gpio/pl061.c``.

Importing this package registers the QOM types ``pl061`` and
``pl061_luminary``; the model is in :mod:`hw.gpio.pl061.device`.

>>> from qemu_api.qom import object_class_by_name
>>> object_class_by_name(TYPE_PL061) is PL061State
True
"""

from hw.gpio.pl061.device import (
    TYPE_PL061,
    TYPE_PL061_LUMINARY,
    PL061Luminary,
    PL061State,
    pl061_create,
)

__all__ = [
    "TYPE_PL061",
    "TYPE_PL061_LUMINARY",
    "PL061Luminary",
    "PL061State",
    "pl061_create",
]
