"""Interrupt controllers (QEMU's ``hw/intc``)."""
