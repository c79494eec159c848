"""Character devices: serial ports (QEMU's ``hw/char``)."""
