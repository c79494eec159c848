"""The AArch64 CPU (QEMU's ``target/arm``): types and line numbers for boards.

Importing :mod:`target.arm.cpu` registers the QOM types ``cortex-a57-arm-cpu``
and ``max-arm-cpu``.
"""
