"""Migration: VMState descriptions and QEMU's migration stream.

The package mirrors QEMU's ``migration/`` directory:

- :mod:`qemu_api.migration.vmstate` -- a device's migratable state
  (``include/migration/vmstate.h``);
- :mod:`qemu_api.migration.qemu_file` -- the byte stream (``qemu-file.h``);
- :mod:`qemu_api.migration.savevm` -- the stream's sections, the VM
  description and the save/load of a whole machine (``savevm.c``);
- :mod:`qemu_api.migration.ram` -- the iterative RAM section (``ram.c``);
- :mod:`qemu_api.migration.uri` -- ``file:``, ``unix:``, ``tcp:`` and
  ``exec:`` transports and the migration state (``migration.c``).
"""
