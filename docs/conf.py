"""Sphinx configuration for pyqemu's documentation."""

import os
import sys

_root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, _root)
_build = os.environ.get("PYQEMU_BUILD_ROOT")
if _build:
    sys.path.insert(1, _build)

project = "pyqemu"
author = "the pyqemu project developers"
copyright = "2026, the pyqemu project developers"
with open(os.path.join(_root, "VERSION")) as _f:
    release = version = _f.read().strip()

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = f"pyqemu {release}"
