"""Unit tests of the AArch64 CPU model."""
