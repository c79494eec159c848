"""Bare-metal guests: sources, a loader and the tests that run them."""
