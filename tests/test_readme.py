"""The README's API tour runs as written (examples people copy must not rot)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    text = README.read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_api_tour_runs():
    blocks = _python_blocks()
    tour = [b for b in blocks if "fastconv.conv2d(x, w, stride=2, padding=1)" in b]
    assert tour, "the API tour block is missing from README.md"
    exec(compile(tour[0], "README.md", "exec"), {})


def test_dask_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("dask")
    import numpy as np

    block = next(b for b in _python_blocks() if "fastconv.dask.from_npy" in b)
    monkeypatch.chdir(tmp_path)
    image = np.random.default_rng(0).standard_normal((300, 260)).astype(np.float32)
    np.save("image.npy", image)
    exec(compile(block.replace("chunks=1024", "chunks=128"), "README.md", "exec"), {})
    import scipy.signal

    kernel = np.ones((15, 15), dtype=np.float32) / 225
    expected = scipy.signal.correlate2d(image, kernel, mode="same", boundary="symm")
    got = np.load("smooth.npy")
    assert np.max(np.abs(got - expected)) <= 1e-4 * np.max(np.abs(expected))
