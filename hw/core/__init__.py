"""Machine-independent board infrastructure (QEMU's ``hw/core``)."""
