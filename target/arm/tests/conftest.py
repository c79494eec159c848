from tests.runtime import qemu_runtime as qemu_runtime
