"""ARM boards (QEMU's ``hw/arm``)."""
