"""pyqemu's device tree: one package per device, grouped as QEMU's ``hw/`` is."""
