"""pyqemu's device API and the small emulator core it stands on.

The package mirrors QEMU's Rust ``qemu-api`` crate, one module per QEMU concept:

- :mod:`qemu_api.bql` -- the big QEMU lock and the cells that check it;
- :mod:`qemu_api.bits` -- fixed-width integers, bit operations, register bitfields;
- :mod:`qemu_api.error` -- errors carrying QEMU's error classes;
- :mod:`qemu_api.log` -- ``qemu_log_mask`` and the ``-d`` log masks;
- :mod:`qemu_api.timer` -- QEMU clocks and timers, virtual time;
- :mod:`qemu_api.qom` -- the QEMU Object Model;
- :mod:`qemu_api.qdev` -- devices, properties, reset, GPIO;
- :mod:`qemu_api.irq` -- interrupt lines;
- :mod:`qemu_api.clock` -- clock trees (``hw/clock.h``);
- :mod:`qemu_api.sysbus` -- system bus devices;
- :mod:`qemu_api.memory` -- memory regions, address spaces and guest memory.
"""

__version__ = "0.1.0"
