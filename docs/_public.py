"""The public API as the docs see it, and the docstring rule they enforce.

Used by docs/conf.py (which writes the API pages from it) and tests/test_docs.py.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import fastconv

# The docstring checks the build enforces (warnings, and with -W errors): numpydoc's "all" minus
# the codes below.  docs/conf.py and tests/test_docs.py both use this set, so the test and the
# build hold the same rule.  Left out, with the reason:
#   ES01  an extended summary is optional for short functions
#   GL01  house style (ruff's numpy convention) starts the summary on the quotes' line
#   RT02  numpydoc's own guide allows a named single return (``out : ndarray``)
#   SA04  See Also entries without a description are fine when the name says it
NUMPYDOC_SKIPPED_CHECKS = {"ES01", "GL01", "RT02", "SA04"}
NUMPYDOC_CHECKS = {"all"} | NUMPYDOC_SKIPPED_CHECKS


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
    "fastconv.signal": "The scipy.signal drop-ins",
    "fastconv.cost": "FLOPs, bytes and workspace of a call, without running it",
    "fastconv.algebra": "Exact kernel algebra (the layer names live at the top level too)",
    "fastconv.dask": "Out-of-core filters and layers on dask arrays",
    "fastconv.conv": "conv2d's module: the result type of tune",
    "fastconv.dynamic": "Dynamic convolution's module: its planner",
}


# How the top-level page groups its names; a name not listed here (a new one) lands under "More",
# so it is documented before anyone edits this table.
SECTIONS = {
    "fastconv": [
        ("Convolution", ["conv2d", "conv1d", "conv3d", "algorithms", "tune"]),
        (
            "Training: gradients and the transposed convolution",
            ["conv2d_backward", "conv2d_input", "conv2d_weight", "conv_transpose2d"],
        ),
        ("Dynamic convolution", ["dynamic_conv2d", "DynamicConv2d", "dynamic_conv2d_backward"]),
        (
            "Kernel algebra",
            [
                "Conv2d",
                "compose",
                "add",
                "fuse_bn",
                "identity_conv",
                "avgpool_conv",
                "compose_kernels",
                "separate",
            ],
        ),
        ("im2col", ["im2col", "col2im"]),
        ("Threads", ["set_num_threads", "get_num_threads", "threads"]),
    ]
}


def _autosummary(names):
    lines = [".. autosummary::", "   :toctree: generated", "   :nosignatures:", ""]
    return lines + [f"   {name}" for name in names] + [""]


def module_page(module_name):
    """The reST of one module's API page: an autosummary of its own names."""
    mod = importlib.import_module(module_name)
    title = module_name
    lines = [title, "=" * len(title), ""]
    if module_name in TITLES:
        lines += [TITLES[module_name] + ".", ""]
    lines += [f".. automodule:: {module_name}", "   :no-members:", ""]
    lines += [f".. currentmodule:: {module_name}", ""]
    names = public_names(module_name)
    sections = SECTIONS.get(module_name)
    if sections:
        listed = set()
        for heading, members in sections:
            members = [n for n in members if n in names]
            if members:
                lines += [heading, "-" * len(heading), ""] + _autosummary(members)
                listed.update(members)
        rest = [n for n in names if n not in listed]
        if rest:
            lines += ["More", "----", ""] + _autosummary(rest)
    elif names:
        lines += _autosummary(names)
    shared = [n for n in getattr(mod, "__all__", []) if n not in names and not n.startswith("__")]
    shared = [n for n in shared if type(getattr(mod, n)).__name__ != "module"]
    if shared:
        refs = ", ".join(f":obj:`fastconv.{n}`" for n in shared)
        lines += [f"Also exported here (documented under ``fastconv``): {refs}.", ""]
    return "\n".join(lines)


def write_api_pages(api):
    """Write ``api/<module>.rst`` for every public module and ``api/index.rst`` listing them."""
    api = Path(api)
    api.mkdir(exist_ok=True)
    modules = public_modules()
    for name in modules:
        text = module_page(name)
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


# Members Python gives every NamedTuple, dataclass and exception: not fastconv's docstrings.
INHERITED_MEMBERS = ("count", "index", "with_traceback", "add_note")


def public_objects():
    """Every object the API pages document, as ``(qualified name, object)``: the functions and
    classes of every public module, and the public methods and properties a class defines itself."""
    out = []
    for module_name in public_modules():
        mod = importlib.import_module(module_name)
        for name in public_names(module_name):
            obj = getattr(mod, name)
            out.append((f"{module_name}.{name}", obj))
            if isinstance(obj, type):
                for attr, value in vars(obj).items():
                    if attr.startswith("_") or attr in INHERITED_MEMBERS:
                        continue
                    if callable(value) or isinstance(value, property):
                        member = value.fget if isinstance(value, property) else getattr(obj, attr)
                        out.append((f"{module_name}.{name}.{attr}", member))
    return out
