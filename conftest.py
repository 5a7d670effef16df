"""Collection rules for the doctests under fastconv/ (tests/ has its own conftest)."""

import importlib.util

# fastconv.dask's examples need dask, an optional extra; its tests skip likewise without it.
collect_ignore = [] if importlib.util.find_spec("dask") else ["fastconv/dask.py"]
