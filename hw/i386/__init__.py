"""x86 boards (QEMU's ``hw/i386``)."""
