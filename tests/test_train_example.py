"""examples/train_digits.py: its gradients against torch autograd, and (slow) the full training run."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.tolerance import assert_close

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

_PATH = Path(__file__).resolve().parents[1] / "examples" / "train_digits.py"


def _example():
    spec = importlib.util.spec_from_file_location("train_digits", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _torch_loss(p, x, y):
    F = torch.nn.functional
    t = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    h = torch.tensor(x)
    for name, _, _ in _example().LAYERS:
        h = F.max_pool2d(F.relu(F.conv2d(h, t[name + ".w"], t[name + ".b"], padding=1)), 2)
    logits = h.reshape(len(x), -1) @ t["fc.w"].T + t["fc.b"]
    loss = F.cross_entropy(logits, torch.tensor(y))
    loss.backward()
    return float(loss.detach()), {k: v.grad.numpy() for k, v in t.items()}


def test_example_gradients_match_torch_autograd():
    T = _example()
    rng = np.random.default_rng(0)
    p = T.init_params(rng, dtype=np.float64)
    for k in p:  # non-zero biases, so their gradients are exercised through the ReLUs
        if k.endswith(".b"):
            p[k] = 0.1 * rng.standard_normal(p[k].shape)
    x = rng.random((16, 1, 8, 8))
    y = rng.integers(0, 10, 16)
    loss, grads = T.loss_and_grads(p, x, y)
    ref_loss, ref = _torch_loss(p, x, y)
    assert abs(loss - ref_loss) <= 1e-12 * max(1.0, abs(ref_loss))
    assert set(grads) == set(ref)
    for k in ref:
        assert grads[k].shape == ref[k].shape
        assert_close(grads[k], ref[k])


def test_example_maxpool_roundtrip():
    T = _example()
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 6))
    out, idx = T.maxpool2(x)
    ref = torch.nn.functional.max_pool2d(torch.tensor(x), 2).numpy()
    np.testing.assert_array_equal(out, ref)
    g = T.maxpool2_backward(np.ones_like(out), idx, x.shape)
    assert g.sum() == out.size and set(np.unique(g)) <= {0.0, 1.0}


@pytest.mark.slow
def test_example_trains_to_97_percent(tmp_path):
    pytest.importorskip("matplotlib")
    T = _example()
    png = tmp_path / "loss.png"
    acc = T.main(["--png", str(png)])
    assert acc >= 0.97
    assert png.stat().st_size > 1000
