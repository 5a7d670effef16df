"""The command line: every subcommand and flag, run as users run it (subprocesses, small layers)."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from tolerance import RTOL

import fastconv
from fastconv import _bench

F32_RTOL = RTOL[np.dtype(np.float32)]


def run(*args, env=None, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "fastconv", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_bare_command_prints_help_and_exits_0():
    r = run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: fastconv")
    for cmd in ("demo", "info", "bench", "warmup"):
        assert re.search(rf"^\s+{cmd}\s+\S", r.stdout, re.M), f"{cmd} has no help line"


@pytest.mark.parametrize("how", ["module", "script"])
def test_version(how):
    if how == "module":
        r = run("--version")
    else:
        exe = shutil.which("fastconv", path=os.path.dirname(sys.executable))
        if exe is None:
            pytest.skip("the console script is not installed next to this interpreter")
        r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"fastconv {fastconv.__version__}"


@pytest.mark.parametrize("cmd", ["demo", "info", "bench", "warmup"])
def test_every_flag_has_help_and_a_default(cmd):
    r = run(cmd, "--help")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    flags = set(re.findall(r"^\s+(--[a-z][a-z-]*)", text, re.M)) - {"--help"}
    if cmd == "bench":
        assert flags == {"--layers", "--threads", "--peers", "--repeat", "--json"}
    # each option's block (up to the next option) holds help text and its default
    blocks = re.split(r"^\s+(?=-)", text.split("options:", 1)[1], flags=re.M)
    for block in blocks:
        if not block.strip() or block.startswith("-h"):
            continue
        words = block.split(None, 2)
        assert len(words) == 3 and len(words[2].split()) >= 3, f"no help text: {block!r}"
        assert "(default:" in block, f"no default shown: {block!r}"


def test_bad_arguments_are_refused_by_name():
    for args, word in [
        (["bench", "--threads", "0"], "--threads"),
        (["bench", "--threads", "two"], "--threads"),
        (["bench", "--layers", "no_such_layer"], "--layers"),
        (["bench", "--peers", "tensorflow"], "--peers"),
        (["frobnicate"], "invalid choice"),
    ]:
        r = run(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert word in r.stderr, (args, r.stderr)


def test_info_reports_extensions_and_runtimes():
    r = run("info")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert re.search(r"^extensions\s+(all \d+ built|missing)", out, re.M), out
    # threadpoolctl's OpenMP entry has no internal name or version: say the library instead
    assert not re.search(r"^openmp\s+openmp None", out, re.M), out
    assert "None (" not in out, out
    for line in re.findall(r"^openmp\s+.*$", out, re.M):
        assert re.match(r"openmp\s+lib\w+ \(\d+ threads\)", line), line
    # the cost table the planner reads, named as _costs.py keys it
    from fastconv import _plan

    m = re.search(r"^planner\s+costs .*table ([\w-]+)", out, re.M)
    assert m and m.group(1) in _plan.cost_keys(), out


@pytest.mark.parametrize("level", ["baseline", "v3"])
def test_info_imports_no_build_this_cpu_cannot_run(level):
    """An AVX2-only CPU (a Zen 3 EPYC) stops with SIGILL on importing the AVX-512 build: info and
    the benchmarks' preload import only the ISA builds cpu_level() allows (FASTCONV_CPU caps it to
    act as such a CPU)."""
    code = (
        "import sys\n"
        "from fastconv.__main__ import main\n"
        "main(['info'])\n"
        "import benchmarks._common\n"  # asv's preload imports every kernel module
        "bad = [m for m in sys.modules if m.startswith('fastconv._ext._isa_') and "
        f"({level!r} == 'baseline' or m.endswith('_v4'))]\n"
        "assert not bad, bad\n"
    )
    env = dict(os.environ, FASTCONV_CPU=level)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, cwd=root
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "v4 (AVX-512)" not in r.stdout


def test_info_explains_missing_extensions(tmp_path):
    """With the extensions hidden (as a compiler-less install has them), info says what is missing
    and that the package still runs: a stub package dir shadows fastconv._ext's compiled modules."""
    # a copy of the pure-Python package without the compiled modules, first on sys.path
    src = os.path.dirname(fastconv.__file__)
    dst = tmp_path / "fastconv"
    shutil.copytree(
        src, dst, ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "build_status.json")
    )
    (dst / "_ext" / "build_status.json").write_text(
        json.dumps(
            {
                "built": [],
                "failed": {
                    s: "the C compiler `/bin/false` failed"
                    for s in ("conv", "signal", "packed", "winograd")
                },
            }
        )
    )
    # (-m puts the working directory first on sys.path: run from tmp_path, not a source tree)
    r = run("info", env={"PYTHONPATH": str(tmp_path)}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(
        r"^extensions   missing (\d+) of \1: conv, signal, packed, winograd", r.stdout, re.M
    ), r.stdout
    assert "`/bin/false` failed" in r.stdout
    assert "still works" in r.stdout and "Numba" in r.stdout
    assert "cython       not built" in r.stdout


def _layer_flops(spec):
    """Direct-convolution FLOPs of a layer, sizes computed here (not by fastconv._bench)."""
    N, C, H, W, K, kh, kw, s, p, d, g = spec
    Ho = (H + 2 * p - d * (kh - 1) - 1) // s + 1
    Wo = (W + 2 * p - d * (kw - 1) - 1) // s + 1
    return 2 * N * K * Ho * Wo * (C // g) * kh * kw


def test_bench_layers_peers_json(tmp_path):
    out = tmp_path / "bench.json"
    r = run(
        "bench",
        "--layers",
        "b1_3x3_c64,mbv2_dw_c144",
        "--threads",
        "2",
        "--peers",
        "torch,onnxruntime,openvino,sgemm",
        "--repeat",
        "1",
        "--json",
        str(out),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    first = r.stdout.splitlines()[0]
    assert "_bench" not in first and "PUBLIC_LAYERS" not in first, first
    # progress on stderr, a line before and after each layer
    assert len(re.findall(r"^bench: \[\d/2\] .* done in", r.stderr, re.M)) == 2, r.stderr
    data = json.loads(out.read_text())
    assert data["fastconv"] == fastconv.__version__
    rows = data["rows"]
    assert [(x["layer"], x["threads"]) for x in rows] == [("b1_3x3_c64", 2), ("mbv2_dw_c144", 2)]
    for row in rows:
        spec = _bench.PUBLIC_LAYERS[row["layer"]]
        assert row["flops"] == _layer_flops(spec)
        fc = row["fastconv"]
        assert fc["gflops"] == pytest.approx(row["flops"] / fc["best_s"] / 1e9)
        for peer in data["peers"]:
            if peer == "sgemm":
                # the GEMM yardstick exists for ungrouped layers only
                assert (peer in row["peers"]) == (spec[-1] == 1)
                continue
            pr = row["peers"][peer]
            assert pr["ratio_best"] == pytest.approx(fc["best_s"] / pr["best_s"])
            # each peer computed the same layer: its output agrees with fastconv's
            assert pr["max_rel_diff"] <= F32_RTOL, (row["layer"], peer, pr)
    for peer in ("torch", "onnxruntime", "openvino"):
        if importlib.util.find_spec(peer) is not None:
            assert peer in data["peers"], peer
            assert re.search(rf"\| +{peer[:11]} ", r.stdout), r.stdout


def test_bench_missing_peer_is_a_note_not_a_crash(tmp_path):
    # a module that fails to import stands in for a peer that is not installed
    (tmp_path / "onnxruntime.py").write_text("raise ImportError('not installed (test stub)')\n")
    r = run(
        "bench",
        "--layers",
        "b1_3x3_c64",
        "--threads",
        "1",
        "--peers",
        "onnxruntime,sgemm",
        "--repeat",
        "1",
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "note: peer onnxruntime is not available" in r.stdout, r.stdout
    assert r.stdout.startswith("conv2d layer suite: fastconv"), r.stdout
    assert re.search(r"^b1_3x3_c64\s+\w+\s+[\d.]+ms", r.stdout, re.M), r.stdout


def test_bench_threads_without_peers():
    r = run(
        "bench", "--layers", "b1_3x3_c64", "--threads", "1,2", "--peers", "none", "--repeat", "1"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    # one table per thread count, fastconv's columns only
    assert re.findall(r"^(\d) threads?$", r.stdout, re.M) == ["1", "2"], r.stdout
    rows = re.findall(r"^b1_3x3_c64\s+\w+\s+[\d.]+ms\s+[\d.]+$", r.stdout, re.M)
    assert len(rows) == 2, r.stdout


@pytest.mark.parametrize(
    "spec",
    [
        (2, 6, 9, 11, 4, 3, 3, 2, 1, 1, 1),  # strided
        (1, 8, 10, 10, 8, 3, 3, 1, 2, 2, 4),  # dilated, grouped
        (1, 3, 7, 9, 5, 1, 5, 1, 0, 1, 1),  # non-square kernel
    ],
)
def test_onnx_conv_model_matches_torch(spec):
    """The one-node ONNX model bench times is the same layer torch computes."""
    ort = pytest.importorskip("onnxruntime")
    torch = pytest.importorskip("torch")
    N, C, H, W, K, kh, kw, s, p, d, g = spec
    x, w, b = _bench.arrays(spec)
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), s, p, d, g
    ).numpy()
    sess = ort.InferenceSession(
        _bench.onnx_conv_model(spec, w, b), providers=["CPUExecutionProvider"]
    )
    y = sess.run(None, {"x": x})[0]
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=F32_RTOL * np.abs(ref).max())


def test_info_hints_at_openblas_avx2_kernels_on_an_avx512_cpu():
    from fastconv.__main__ import _blas_hint

    haswell = [{"internal_api": "openblas", "architecture": "Haswell"}]
    skx = [{"internal_api": "openblas", "architecture": "SkylakeX"}]
    assert "OPENBLAS_CORETYPE=SkylakeX" in _blas_hint(haswell, "v4")
    assert _blas_hint(haswell, "v3") == ""  # an AVX2 CPU: Haswell kernels are the right ones
    assert _blas_hint(skx, "v4") == ""
    assert _blas_hint([{"internal_api": "mkl"}], "v4") == ""
