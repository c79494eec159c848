"""Timers: the HPET (QEMU's ``hw/timer``)."""
