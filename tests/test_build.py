"""The install CI tests is the one users get: Cython kernels built, with OpenMP, and the demo runs."""

import os
import subprocess
import sys

import pytest

from fastconv import _plan

IN_CI = bool(os.environ.get("CI"))


@pytest.mark.skipif(not IN_CI, reason="a developer tree may be Numba-only on purpose")
def test_cython_kernels_are_built_with_openmp():
    assert _plan.cython_available(), (
        "fastconv._ext.conv is not built: backend='auto' would fall back"
    )
    assert _plan.kernels("cython").openmp, "the Cython kernels were built without OpenMP"


def test_auto_backend_prefers_the_compiled_extension():
    assert _plan.resolve_backend("auto") == ("cython" if _plan.cython_available() else "numba")


def test_info_runs():
    r = subprocess.run(
        [sys.executable, "-m", "fastconv", "info"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "fastconv" in r.stdout and "threads" in r.stdout


@pytest.mark.slow
def test_demo_runs_and_checks_pass():
    r = subprocess.run(
        [sys.executable, "-m", "fastconv", "demo"], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all checks passed" in r.stdout


def test_every_isa_build_gives_the_same_results():
    """The baseline, AVX2 and AVX-512 builds of the loop kernels agree (the CPU picks one at run time)."""
    import importlib

    import numpy as np
    from tolerance import assert_close

    from fastconv._geometry import conv_geometry

    names = ["fastconv._ext.conv", "fastconv._ext._isa_conv_v3", "fastconv._ext._isa_conv_v4"]
    level = _plan.cpu_level()
    runnable = names[: 1 + ["", "v3", "v4"].index(level)]
    mods = []
    for n in runnable:
        try:
            mods.append(importlib.import_module(n))
        except ImportError:
            if IN_CI:
                raise
    if len(mods) < 2:
        pytest.skip("only one ISA build available here")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 13, 41)).astype(np.float32)  # wide enough for the 2x32 blocks
    wd = rng.standard_normal((12, 1, 3, 3)).astype(np.float32)
    wg = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    results = []
    for m in mods:
        x4, w4, _, g = conv_geometry(x, wd, None, 1, 1, 1, 6)
        dw = np.empty(g.out_shape, np.float32)
        ws = np.empty((2, m.depthwise_planes_workspace(g.as_array())), np.float32)
        m.conv_depthwise_planes(
            x4,
            w4.reshape(1, 12, 9),
            np.zeros((1, 1), np.float32),
            False,
            g.as_array(),
            dw,
            ws,
            0,
            2,
        )
        x4, w4, _, g = conv_geometry(x, wg, None, 2, 1, 1, 2)
        gm = np.empty((g.N, g.K, g.P), np.float32)
        ws = np.empty((2, m.conv_gemm_workspace(g.R, g.Kg, 16)), np.float32)
        m.conv_gemm(
            x4,
            w4.reshape(1, 4, -1),
            np.zeros((1, 1), np.float32),
            False,
            g.as_array(),
            gm,
            ws,
            16,
            2,
        )
        results.append((dw, gm))
    for dw, gm in results[1:]:
        assert_close(dw, results[0][0], np.float32)
        assert_close(gm, results[0][1], np.float32)


# --- the sdist, installed as users without a compiler or without Cython would (slow tier) ---

# What a fresh virtualenv gets from this environment instead of the network: the runtime
# dependencies and pip/setuptools, never Cython and never fastconv itself.
_LINKED = ["pip", "setuptools", "numpy", "scipy", "numba", "llvmlite", "threadpoolctl"]

# conv2d in the fresh install against a float64 loop that computes its own sizes
_CHECK = r"""
import json, sys
import numpy as np
import fastconv
from fastconv import _plan

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
backend = sys.argv[1]
y = fastconv.conv2d(x, w, stride=2, padding=1, backend=backend)
xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
Ho, Wo = (9 + 2 - 3) // 2 + 1, (11 + 2 - 3) // 2 + 1
ref = np.zeros((2, 4, Ho, Wo))
for i in range(Ho):
    for j in range(Wo):
        ref[:, :, i, j] = np.einsum("nchw,kchw->nk", xp[:, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3], w)
err = float(np.abs(y - ref).max() / np.abs(ref).max())
print(json.dumps({"file": fastconv.__file__, "cython": _plan.cython_available(), "err": err,
                  "dtype": str(y.dtype), "shape": list(y.shape)}))
"""


def _source_tree(dst):
    """This checkout's tracked files (what a clone has), copied to dst; no build products."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    try:
        files = subprocess.run(
            ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # an unpacked sdist: no git
        files = [
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and not p.name.endswith((".so", ".pyc")) and "build" not in p.parts
        ]
    for f in files:
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f, dst / f)
    return dst


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """The sdist, built as a release would be (build isolation: Cython generates the C)."""
    pytest.importorskip("build")
    src = _source_tree(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (path,) = out.glob("fastconv-*.tar.gz")
    return path


def _fresh_venv(root):
    """A new virtualenv whose only packages are symlinks to this environment's _LINKED ones."""
    import importlib.metadata as md

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    py = root / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for name in _LINKED:
        dist = md.distribution(name)
        for top in {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}:
            target = dist.locate_file(top)
            link = os.path.join(site, top)
            if os.path.exists(target) and not os.path.exists(link):
                os.symlink(target, link)
    r = subprocess.run([str(py), "-c", "import Cython"], capture_output=True)
    assert r.returncode != 0, "the fresh virtualenv must not see Cython"
    return py


def _install_and_check(tmp_path, sdist, env, pip_args, backend):
    """Build the sdist's wheel in a fresh virtualenv (pip, as a user would), install it, run
    conv2d on `backend` there and `fastconv info`; returns the build log, the check, info's text
    and the wheel's file names."""
    import json
    import zipfile

    py = _fresh_venv(tmp_path / "venv")
    wheels = tmp_path / "wheels"
    pip = [str(py), "-m", "pip"]
    run_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **env}
    r = subprocess.run(
        pip
        + ["wheel", "-v", "--no-deps", "--no-cache-dir", "-w", str(wheels), *pip_args]
        + [str(sdist)],
        capture_output=True,
        text=True,
        timeout=1800,
        env=run_env,
        cwd=tmp_path,
    )
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-5000:]
    (whl,) = wheels.glob("fastconv-*.whl")
    r = subprocess.run(
        pip + ["install", "--no-index", str(whl)],
        capture_output=True,
        text=True,
        timeout=600,
        env=run_env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    check = subprocess.run(
        [str(py), "-c", _CHECK, backend], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert check.returncode == 0, check.stderr[-3000:]
    got = json.loads(check.stdout.strip().splitlines()[-1])
    assert str(tmp_path / "venv") in got["file"], got  # the fresh install, not this checkout
    assert got["shape"] == [2, 4, 5, 6] and got["dtype"] == "float32"
    assert got["err"] < 1e-5, got
    info = subprocess.run(
        [str(py), "-m", "fastconv", "info"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert info.returncode == 0, info.stderr
    names = zipfile.ZipFile(whl).namelist()
    # the wheel: modules, data and the license; no build sources (no .pyx, generated C, headers)
    assert not [n for n in names if n.endswith((".c", ".pyx", ".pxd", ".h"))], names
    assert any(n.endswith("licenses/LICENSE") for n in names), names
    assert "fastconv/data/grace_hopper.npz" in names
    return log, got, info.stdout, names


@pytest.mark.slow
def test_sdist_contents(sdist):
    import tarfile

    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for need in ["LICENSE", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in"]:
        assert need in names, need
    for stem in ["conv", "signal", "packed", "winograd"]:
        assert f"fastconv/_ext/{stem}.pyx" in names and f"fastconv/_ext/{stem}.c" in names, stem
    for folder in ["docs/", "examples/", "tests/"]:
        assert any(n.startswith(folder) and n.endswith((".md", ".py")) for n in names), folder
    assert not any(n.endswith(".so") for n in names)


@pytest.mark.slow
def test_sdist_installs_without_a_compiler(tmp_path, sdist):
    """CC=/bin/false: every compile fails, the install succeeds as pure Python and says so once."""
    log, got, info, names = _install_and_check(tmp_path, sdist, {"CC": "/bin/false"}, [], "auto")
    notes = [ln for ln in log.splitlines() if "C extensions not built" in ln]
    assert len(notes) == 1, notes
    assert "/bin/false" in notes[0] and "Numba" in notes[0], notes[0]
    assert got["cython"] is False
    assert not any(n.endswith(".so") for n in names), names
    assert "extensions   missing" in info and "/bin/false" in info and "still works" in info, info


@pytest.mark.slow
def test_sdist_installs_without_cython(tmp_path, sdist):
    """No build isolation and no Cython in the virtualenv: the shipped generated C is compiled.

    FASTCONV_NO_ISA_VARIANTS keeps CI's time down (the x86-64-v3/v4 copies of two modules triple
    the compile); every extension is still compiled from the shipped C."""
    log, got, info, names = _install_and_check(
        tmp_path, sdist, {"FASTCONV_NO_ISA_VARIANTS": "1"}, ["--no-build-isolation"], "cython"
    )
    assert "Cython is not installed: compiling the generated C files" in log
    assert got["cython"] is True
    assert any(n.startswith("fastconv/_ext/conv.") and n.endswith(".so") for n in names), names
    assert "extensions   all" in info, info


def test_requirements_match_the_extras():
    """requirements-test.txt (the README's test command) installs exactly pyproject's extras."""
    from pathlib import Path

    from packaging.requirements import Requirement

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10 (the test extra brings tomli there)
        import tomli as tomllib

    root = Path(__file__).resolve().parents[1]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]

    def key(r):
        return (r.name.lower().replace("_", "-"), frozenset(r.extras))

    wanted = {}
    for group, reqs in extras.items():
        for text in reqs:
            r = Requirement(text)
            wanted[key(r)] = (group, r)
    lines = [
        ln.split("#", 1)[0].strip()
        for ln in (root / "requirements-test.txt").read_text().splitlines()
    ]
    have = {key(Requirement(ln)): Requirement(ln) for ln in lines if ln}
    assert set(have) == set(wanted), (
        f"only in pyproject's extras: {sorted(set(wanted) - set(have))}; "
        f"only in requirements-test.txt: {sorted(set(have) - set(wanted))}"
    )
    for k, (group, r) in wanted.items():
        got = have[k]
        if got.specifier == r.specifier:
            continue
        # a pin is allowed where the extra gives a range, if the pinned version is in it
        pins = [s.version for s in got.specifier if s.operator == "=="]
        assert pins and r.specifier.contains(pins[0]), (group, str(r), str(got))
