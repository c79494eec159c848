"""Unit tests of the HPET."""
