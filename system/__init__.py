"""The runtime around the devices, as QEMU's ``system/`` directory.

It holds the command line (``vl``), and later the run state, the main loop, the
qtest accelerator and the QMP monitor.
"""
