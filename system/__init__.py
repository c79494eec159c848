"""The runtime around the devices, as QEMU's ``system/`` directory.

It holds the command line (``vl``), the run state, the main loop, the qtest
accelerator and the monitors.
"""

QEMU_INTERFACE_VERSION = "7.2.0"
"""The QEMU release whose interfaces pyqemu implements: the version triple QMP
reports (``query-version``, the greeting), and the one ``-version`` names next
to pyqemu's own, so that tools that check QEMU's version keep working."""
