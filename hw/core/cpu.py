"""The CPU base class and the machine's CPU list (QEMU's ``hw/core/cpu-common.c``).

A CPU is a device (QEMU's ``TYPE_CPU``): boards create it, wire its GPIO lines
and realize it; realizing gives it an index and puts it on the machine's CPU list
(QEMU's ``cpus_queue``, walked by ``CPU_FOREACH``), which the monitor and the
machine reset use. Target CPUs (:mod:`target.arm.cpu`) subclass it.
"""

from __future__ import annotations

from qemu_api.qdev import DeviceCategory, DeviceState
from qemu_api.qom import override

__all__ = ["TYPE_CPU", "CPUState", "cpu_foreach", "cpu_list_reset", "first_cpu"]

TYPE_CPU = "cpu"

_cpus: list[CPUState] = []


class CPUState(DeviceState, type_name=TYPE_CPU, abstract=True):
    """A CPU: a device with an index on the machine's CPU list."""

    # As QEMU's cpu_common_class_init: listed as a CPU device; boards create
    # CPUs (wiring, reset, the CPU list), -device cannot.
    categories = frozenset({DeviceCategory.CPU})
    user_creatable = False

    @override
    def instance_init(self) -> None:
        self.cpu_index = -1
        """The CPU's index, given at realize (QEMU's ``cpu->cpu_index``)."""

    @override
    def realize(self) -> None:
        super().realize()
        self.cpu_index = len(_cpus)
        _cpus.append(self)

    @override
    def unrealize(self) -> None:
        if self in _cpus:
            _cpus.remove(self)
        super().unrealize()

    def cpu_reset(self) -> None:
        """Reset the CPU (QEMU's ``cpu_reset``): registers, then the boot entry."""

    def dump_state(self, fpu: bool) -> str:
        """Return the registers as QEMU's ``cpu_dump_state`` prints them."""
        return ""

    def arch_name(self) -> str:
        """Return the QAPI target name (``aarch64``)."""
        return ""

    def thread_id(self) -> int:
        """Return the host thread id of the vCPU (QEMU's ``cpu->thread_id``)."""
        return 0


def cpu_foreach() -> list[CPUState]:
    """Return the realized CPUs in index order (QEMU's ``CPU_FOREACH``)."""
    return list(_cpus)


def first_cpu() -> CPUState | None:
    """Return CPU 0, or None on a machine without CPUs."""
    return _cpus[0] if _cpus else None


def cpu_list_reset() -> None:
    """Forget every CPU (a new machine)."""
    _cpus.clear()
