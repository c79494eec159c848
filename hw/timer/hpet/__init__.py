"""The High Precision Event Timer (HPET), QEMU's ``hw/timer/hpet.c``.

Importing this package registers the QOM type ``hpet``; the model is in
:mod:`hw.timer.hpet.device` and the register layout in
:mod:`hw.timer.hpet.registers`.

>>> from qemu_api.qom import object_class_by_name
>>> object_class_by_name(TYPE_HPET) is HPETState
True
"""

from hw.timer.hpet.device import TYPE_HPET, HPETState, HPETTimer

__all__ = ["TYPE_HPET", "HPETState", "HPETTimer"]
