"""The ARM PrimeCell UART (PL011), QEMU's ``hw/char/pl011.c``.

Importing this package registers the QOM types ``pl011`` and
``pl011_luminary``; the model is in :mod:`hw.char.pl011.device` and the
register map in :mod:`hw.char.pl011.registers`.

>>> from qemu_api.qom import object_class_by_name
>>> object_class_by_name(TYPE_PL011) is PL011State
True
"""

from hw.char.pl011.device import (
    TYPE_PL011,
    TYPE_PL011_LUMINARY,
    PL011Luminary,
    PL011State,
    pl011_create,
)

__all__ = [
    "TYPE_PL011",
    "TYPE_PL011_LUMINARY",
    "PL011Luminary",
    "PL011State",
    "pl011_create",
]
