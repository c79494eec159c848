"""General-purpose I/O (QEMU's ``hw/gpio``)."""
