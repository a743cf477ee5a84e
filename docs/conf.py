"""Sphinx configuration of the layerscope documentation (``make docs``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import layerscope

DOCS = Path(__file__).parent
sys.path.insert(0, str(DOCS.parent / "src"))
os.environ.setdefault("MPLBACKEND", "Agg")

project = "layerscope"
author = "layerscope developers"
copyright = "layerscope developers, GPL-3.0-or-later"
release = version = layerscope.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
root_doc = "index"

autosummary_generate = True
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False,
                           "ignore-module-all": True}  # each object documented once, where it is defined
autodoc_typehints = "none"
autodoc_mock_imports: list[str] = []
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "autosummary.import_cycle", "autodoc.import_object"]
# names imported into a module (cKDTree, Atoms ...) are not documented there
autosummary_imported_members = False

sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "alabaster"
html_title = f"layerscope {release}"
html_static_path: list[str] = []


def _skip_foreign(app, what, name, obj, skip, options):
    """Document only layerscope's own objects (not names a module imports, e.g. scipy's cKDTree)."""
    module = getattr(obj, "__module__", None)
    if isinstance(module, str) and not module.startswith("layerscope") and what == "module":
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign)
