"""Sphinx configuration for fastconv's documentation (``sphinx-build -W --keep-going -b html docs docs/_build/html``).

The API pages are generated here from the public modules' ``__all__``, so a public name added to any
module appears in the reference without editing the docs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _public import INHERITED_MEMBERS, NUMPYDOC_CHECKS, write_api_pages  # noqa: E402

import fastconv  # noqa: E402

project = "fastconv"
author = "the fastconv developers"
copyright = "the fastconv developers"
release = fastconv.__version__
version = release

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
templates_path = ["_templates"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = f"fastconv {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = []

# `name` in a docstring links to that object where Sphinx knows it (numpydoc style), else stays code
default_role = "py:obj"
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# The docstring checks the build enforces (with -W, errors): docs/_public.py holds the set and the
# reasons for what it leaves out; tests/test_docs.py validates every public docstring with it.
numpydoc_validation_checks = NUMPYDOC_CHECKS
# Members Python gives every NamedTuple/dataclass/exception; they are not fastconv's docstrings.
numpydoc_validation_exclude = {rf"\.{name}$" for name in INHERITED_MEMBERS}

intersphinx_mapping = {}
intersphinx_disabled_reftypes = ["*"]
nitpicky = False

doctest_global_setup = "import numpy as np\nimport fastconv\n"
doctest_test_doctest_blocks = "default"


if os.environ.get("FASTCONV_DOCS_NO_APIGEN") != "1":
    write_api_pages(HERE / "api")
