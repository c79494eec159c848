"""The CPU models (QEMU's ``target/``): one package per architecture."""
