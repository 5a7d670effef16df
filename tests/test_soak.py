"""Short soak: mixed public calls with resident memory flat, and 8 threads whose results agree.

The full run is benchmarks/scripts/soak.py (10,000 calls, 8 threads x 60 s); this one is sized
to catch a leak or a race in CI in well under a minute.  It runs in a fresh process so that
the resident memory it reads is the soak's own.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "scripts", "soak.py")


@pytest.mark.timeout(180)
def test_soak_short():
    args = ["--calls", "500", "--warmup", "200", "--check-every", "5"]
    args += ["--threads", "8", "--seconds", "3", "--json"]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(
        [sys.executable, SCRIPT, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert r.stdout.strip(), r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    soak, conc = res["soak"], res["concurrent"]
    assert soak["checked"] == 100
    assert soak["failures"] == []
    # resident memory after the warm-up (compiles, caches) stays within 5%
    assert soak["growth"] <= 0.05, soak["rss"]
    assert conc["errors"] == []
    assert conc["mismatches"] == []
    assert conc["calls"] > 8  # every thread got to run
    assert res["ok"] and r.returncode == 0, r.stderr
