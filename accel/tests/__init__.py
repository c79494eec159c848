"""Unit tests of the accelerators."""
