"""The ARM Generic Interrupt Controller (GICv2), QEMU's ``hw/intc/arm_gic.c``.

Importing this package registers the QOM type ``arm_gic``; the model is in
:mod:`hw.intc.arm_gic.device` and the register map in
:mod:`hw.intc.arm_gic.registers`.

>>> from qemu_api.qom import object_class_by_name
>>> object_class_by_name(TYPE_ARM_GIC) is GICState
True
"""

from hw.intc.arm_gic.device import TYPE_ARM_GIC, GICState, gic_create

__all__ = ["TYPE_ARM_GIC", "GICState", "gic_create"]
