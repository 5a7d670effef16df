"""The documentation: every public docstring passes the numpydoc checks the docs build enforces,
every public name has an API page, and (opt-in) the built site renders in headless Chromium.

Default tier (a few seconds): numpydoc's validator on every documented object with the checks of
``docs/_public.py`` (numpydoc's "all" minus ES01, GL01, RT02, SA04; the reasons are there), so the
``-W`` docs build cannot fail on a docstring that passes here.  Enforced, among others: GL02/GL03
(blank lines), GL07 (section order), GL08 (a docstring exists), SS01-SS06 (summary), PR01/PR02
(parameters documented and real), PR04/PR07 (typed and described), RT01/RT03 (Returns), YD01
(Yields), SA01 (See Also), EX01 (Examples).

Opt-in (about a minute): ``FASTCONV_DOCS_TEST=1 pytest tests/test_docs.py`` builds the site with
``sphinx-build -W --keep-going`` (html, then the doctest builder), loads the home page and the
conv2d API page in headless Chromium, checks their rendered text and saves PNGs under
``docs/_build/screenshots``.  Skips without Sphinx or Chromium.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastconv

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

numpydoc_validate = pytest.importorskip("numpydoc.validate")


def _load_public():
    spec = importlib.util.spec_from_file_location("_fastconv_docs_public", DOCS / "_public.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PUBLIC = _load_public()
OBJECTS = PUBLIC.public_objects()
CHECKS = numpydoc_validate.get_validation_checks(PUBLIC.NUMPYDOC_CHECKS)


def test_checks_are_the_documented_set():
    # the skipped codes are real numpydoc codes, and the rule still enforces the ones that matter
    assert PUBLIC.NUMPYDOC_SKIPPED_CHECKS <= set(numpydoc_validate.ERROR_MSGS)
    for code in ("GL08", "PR01", "PR02", "PR07", "RT01", "SS01", "SA01", "EX01", "GL07"):
        assert code in CHECKS


def _is_property(name):
    """A property's docstring is a one-line description: the global and summary checks only."""
    owner, _, attr = name.rpartition(".")
    module, _, cls = owner.rpartition(".")
    klass = getattr(sys.modules.get(module), cls, None)
    return isinstance(klass, type) and isinstance(vars(klass).get(attr), property)


@pytest.mark.parametrize("name,obj", OBJECTS, ids=[n for n, _ in OBJECTS])
def test_docstring_passes_numpydoc(name, obj):
    report = numpydoc_validate.validate(numpydoc_validate.get_doc_object(obj))
    checks = CHECKS
    if getattr(obj, "__name__", "") != name.rsplit(".", 1)[-1] or _is_property(name):
        checks = {c for c in CHECKS if c[:2] in ("GL", "SS")}
    errors = [f"{code}: {msg}" for code, msg in report["errors"] if code in checks]
    assert not errors, f"{name}:\n  " + "\n  ".join(errors)


def _all_public_names():
    """Every (module, name) in a public module's ``__all__``, found without the docs' helpers."""
    modules = [fastconv]
    for info in pkgutil.iter_modules(fastconv.__path__):
        if not info.name.startswith("_"):
            modules.append(importlib.import_module(f"fastconv.{info.name}"))
    for mod in modules:
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if name.startswith("__") or type(obj).__name__ == "module":
                continue
            yield mod.__name__, name, obj


def test_every_public_name_has_an_api_page():
    documented = {id(obj): name for name, obj in OBJECTS if name.count(".") <= 2}
    pages = {m: PUBLIC.module_page(m) for m in PUBLIC.public_modules()}
    missing = []
    for module_name, name, obj in _all_public_names():
        if id(obj) not in documented:
            missing.append(f"{module_name}.{name}")
            continue
        # and the page that documents it lists it in its autosummary
        where = documented[id(obj)]
        page_module, short = where.rsplit(".", 1)
        if f"\n   {short}\n" not in pages[page_module] + "\n":
            missing.append(f"{where} (not on its page)")
    assert not missing, "public names without an API page: " + ", ".join(missing)
    assert "fastconv.signal" in pages and "fastconv.dask" in pages


def test_docs_reference_no_files_outside_the_repository():
    for path in list(DOCS.rglob("*.md")) + list(DOCS.glob("*.py")):
        if "_build" in path.parts or "api" in path.relative_to(DOCS).parts[:1]:
            continue
        text = path.read_text()
        assert "../shared" not in text and "shared/bench" not in text, path
        assert "/work/" not in text, path


# ---- opt-in: build the site, look at it in a browser ----

needs_build = pytest.mark.skipif(
    not os.environ.get("FASTCONV_DOCS_TEST"),
    reason="docs build and browser test are opt-in: set FASTCONV_DOCS_TEST=1",
)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _sphinx(builder):
    """Run one Sphinx builder with warnings as errors; its log goes to docs/_build/<builder>.log."""
    pytest.importorskip("sphinx")
    pytest.importorskip("pydata_sphinx_theme")
    pytest.importorskip("myst_parser")
    out = DOCS / "_build"
    out.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", builder]
    cmd += [str(DOCS), str(out / builder)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    log = res.stdout + res.stderr
    (out / f"{builder}.log").write_text(log)
    assert res.returncode == 0, f"sphinx -b {builder} failed:\n{log[-6000:]}"
    assert "WARNING" not in log and "ERROR" not in log, log[-6000:]
    return out, log


@pytest.fixture(scope="module")
def built_html():
    return _sphinx("html")


def _render(url, png):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium (apt-get install chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    flags += ["--window-size=1280,1400", "--virtual-time-budget=3000"]
    shot = subprocess.run(
        [browser, *flags, f"--screenshot={png}", url], capture_output=True, text=True, timeout=120
    )
    assert png.exists() and png.stat().st_size > 10_000, shot.stderr[-2000:]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


@needs_build
def test_examples_on_the_pages_and_in_the_docstrings_pass():
    """Sphinx's doctest builder: the guides' {doctest} blocks and every docstring's Examples."""
    _, log = _sphinx("doctest")
    assert "0 failures in tests" in log, log[-3000:]


@needs_build
def test_site_builds_and_renders(built_html):
    out, log = built_html
    assert "build succeeded." in log
    shots = out / "screenshots"
    shots.mkdir(exist_ok=True)
    html = out / "html"

    home = _render((html / "index.html").as_uri(), shots / "home.png")
    for text in ("fastconv", "User guides", "API reference", "Choosing a backend"):
        assert text in home, text
    assert "pydata" in home.lower()  # the theme rendered, not a bare page

    page = html / "api" / "generated" / "fastconv.conv2d.html"
    assert page.exists(), sorted(p.name for p in (html / "api" / "generated").iterdir())
    api = _render(page.as_uri(), shots / "conv2d.png")
    for text in ("fastconv.conv2d", "Parameters", "Returns", "Raises", "Examples", "weight"):
        assert text in api, text
    assert "Traceback" not in api
