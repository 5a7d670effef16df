"""Sphinx configuration for fastconv's documentation (``sphinx-build -W --keep-going -b html docs docs/_build/html``).

The API pages are generated here from the public modules' ``__all__``, so a public name added to any
module appears in the reference without editing the docs.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

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
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = []

autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = False

# The docstring checks the build enforces (warnings, and with -W errors).  tests/test_docs.py reads
# this set, so the test and the build hold the same rule.  Left out, with the reason:
#   ES01  an extended summary is optional for short functions
#   GL01  house style (ruff's numpy convention) starts the summary on the quotes' line
#   RT02  numpydoc's own guide allows a named single return (``out : ndarray``)
#   SA04  See Also entries without a description are fine when the name says it
NUMPYDOC_SKIPPED_CHECKS = {"ES01", "GL01", "RT02", "SA04"}
numpydoc_validation_checks = {"all"} | NUMPYDOC_SKIPPED_CHECKS
# Members Python gives every NamedTuple/dataclass/exception; they are not fastconv's docstrings.
numpydoc_validation_exclude = {r"\.count$", r"\.index$", r"\.with_traceback$", r"\.add_note$"}

intersphinx_mapping = {}
intersphinx_disabled_reftypes = ["*"]
nitpicky = False

doctest_global_setup = "import numpy as np\nimport fastconv\n"
doctest_test_doctest_blocks = "default"


def public_modules():
    """The package and its public namespaces: ``fastconv.<name>`` modules without a leading underscore
    that export a name of their own (not only names ``fastconv`` re-exports)."""
    names = ["fastconv"]
    for info in pkgutil.iter_modules(fastconv.__path__):
        if info.name.startswith("_"):
            continue
        attr = getattr(fastconv, info.name, None)
        if attr is not None and type(attr).__name__ != "module":
            continue  # fastconv.im2col is the function; the module behind it is not a namespace
        name = f"fastconv.{info.name}"
        # an implementation module whose names all live at the top level (fastconv.conv) has no page
        if public_names(name):
            names.append(name)
    return names


def public_names(module_name):
    """The names a module documents: its ``__all__`` minus submodules and dunders, and minus the
    objects ``fastconv`` itself exports (those are documented once, under ``fastconv.``)."""
    mod = importlib.import_module(module_name)
    out = []
    for name in getattr(mod, "__all__", []):
        if name.startswith("__"):
            continue
        obj = getattr(mod, name)
        if type(obj).__name__ == "module":
            continue
        if module_name != "fastconv" and getattr(fastconv, name, None) is obj:
            continue
        out.append(name)
    return out


TITLES = {
    "fastconv": "fastconv: conv2d, im2col, dynamic convolution, kernel algebra, threads",
    "fastconv.signal": "fastconv.signal: scipy.signal drop-ins",
    "fastconv.cost": "fastconv.cost: FLOPs, bytes and workspace of a call",
    "fastconv.algebra": "fastconv.algebra: exact kernel algebra",
    "fastconv.dask": "fastconv.dask: out-of-core filters and layers",
    "fastconv.conv": "fastconv.conv: conv2d's module (its result types)",
    "fastconv.dynamic": "fastconv.dynamic: dynamic convolution's module (its planner)",
}


def _module_page(module_name):
    mod = importlib.import_module(module_name)
    title = TITLES.get(module_name, module_name)
    lines = [title, "=" * len(title), "", f".. automodule:: {module_name}", "   :no-members:", ""]
    lines += [f".. currentmodule:: {module_name}", ""]
    names = public_names(module_name)
    if names:
        lines += [".. autosummary::", "   :toctree: generated", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in names]
        lines.append("")
    shared = [n for n in getattr(mod, "__all__", []) if n not in names and not n.startswith("__")]
    shared = [n for n in shared if type(getattr(mod, n)).__name__ != "module"]
    if shared:
        refs = ", ".join(f":obj:`fastconv.{n}`" for n in shared)
        lines += [f"Also exported here (documented under ``fastconv``): {refs}.", ""]
    return "\n".join(lines)


def write_api_pages():
    """Write api/<module>.rst for every public module and api/index.rst listing them."""
    api = HERE / "api"
    api.mkdir(exist_ok=True)
    modules = public_modules()
    for name in modules:
        text = _module_page(name)
        path = api / f"{name}.rst"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    index = [
        "API reference",
        "=============",
        "",
        "Generated from the docstrings of every name in the public modules' ``__all__``.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ] + [f"   {name}" for name in modules]
    text = "\n".join(index) + "\n"
    path = api / "index.rst"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


if os.environ.get("FASTCONV_DOCS_NO_APIGEN") != "1":
    write_api_pages()
