#!/usr/bin/env bash
# The documentation site: install the docs extra; tests/test_docs.py then builds the html with
# warnings as errors, runs every example on the pages and in the docstrings (Sphinx's doctest
# builder), and renders the home page and the conv2d API page in headless Chromium, checking their
# text (PNGs in docs/_build/screenshots; the browser part skips without Chromium).  Run inside the virtualenv that has fastconv
# installed (.ci/run's); about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
# the docs extra's requirements only: `pip install -e ".[docs]"` would rebuild the C extensions
python - > .ci-docs-requirements.txt <<'PY'
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["docs"]))
PY
python -m pip install -q -r .ci-docs-requirements.txt
rm -f .ci-docs-requirements.txt
rm -rf docs/_build docs/api
# builds html and doctest with -W --keep-going (logs: docs/_build/html.log, doctest.log), then the
# browser checks
FASTCONV_DOCS_TEST=1 python -m pytest -q -p no:cacheprovider tests/test_docs.py
# the zero-warning lines (-W turns any warning into "build finished with problems")
grep -H "build succeeded" docs/_build/html.log docs/_build/doctest.log
grep -A2 "Doctest summary" docs/_build/doctest/output.txt | tail -n 2
