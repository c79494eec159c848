"""Fuzz campaigns: every input class pyqemu reads, attacked as a hostile user would.

The ``fuzz`` meson suite runs each campaign briefly (``make check``); ``make
fuzz`` runs them long and prints, per target, the operations run, the
distinct paths covered and the failures found.  Targets register in
:mod:`tests.fuzz.engine`; counterexamples are kept under ``corpus/`` and
replayed as regression tests.
"""
