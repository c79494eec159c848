"""The ARM PrimeCell real-time clock (PL031), QEMU's ``hw/rtc/pl031.c``.

Importing this package registers the QOM type ``pl031``; the model is in
:mod:`hw.rtc.pl031.device`.

>>> from qemu_api.qom import object_class_by_name
>>> object_class_by_name(TYPE_PL031) is PL031State
True
"""

from hw.rtc.pl031.device import TYPE_PL031, PL031State, pl031_create

__all__ = ["TYPE_PL031", "PL031State", "pl031_create"]
