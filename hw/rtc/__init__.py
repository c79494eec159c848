"""Real-time clocks (QEMU's ``hw/rtc``)."""
