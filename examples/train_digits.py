"""A small CNN trained end to end in NumPy + fastconv on scikit-learn's bundled 8x8 digits.

    pip install -e ".[examples]"      # scikit-learn and matplotlib, for this example only
    python examples/train_digits.py [--epochs 30] [--png train_digits_loss.png] [--seed 0]

conv 1->16 3x3 -> ReLU -> 2x2 max-pool -> conv 16->32 3x3 -> ReLU -> 2x2 max-pool -> linear 128->10,
softmax cross-entropy, SGD with momentum.  The forward pass is fastconv.conv2d, the backward pass
fastconv.conv2d_backward; everything else is a few lines of NumPy.  No download (the digits ship with
scikit-learn); prints a text progress bar, the test accuracy and the wall time, and saves the loss
curve as a PNG.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastconv

LAYERS = (("conv1", 16, 1), ("conv2", 32, 16))  # name, out channels, in channels (3x3, padding 1)


def init_params(rng, dtype=np.float32):
    """He-initialised weights of the network, as a dict of arrays."""
    p = {}
    for name, k, c in LAYERS:
        p[name + ".w"] = (rng.standard_normal((k, c, 3, 3)) * np.sqrt(2.0 / (c * 9))).astype(dtype)
        p[name + ".b"] = np.zeros(k, dtype)
    p["fc.w"] = (rng.standard_normal((10, 128)) * np.sqrt(1.0 / 128)).astype(dtype)
    p["fc.b"] = np.zeros(10, dtype)
    return p


def maxpool2(x):
    """2x2 max-pooling, stride 2; returns the output and the argmax of each window."""
    N, C, H, W = x.shape
    win = (
        x.reshape(N, C, H // 2, 2, W // 2, 2)
        .transpose(0, 1, 2, 4, 3, 5)
        .reshape(N, C, H // 2, W // 2, 4)
    )
    idx = win.argmax(axis=-1)[..., None]
    return np.take_along_axis(win, idx, axis=-1)[..., 0], idx


def maxpool2_backward(g, idx, shape):
    N, C, H, W = shape
    win = np.zeros((N, C, H // 2, W // 2, 4), g.dtype)
    np.put_along_axis(win, idx, g[..., None], axis=-1)
    return win.reshape(N, C, H // 2, W // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


def forward(p, x):
    """Logits of a batch x (N, 1, 8, 8) and what the backward pass needs."""
    cache = []
    h = x
    for name, _, _ in LAYERS:
        a = fastconv.conv2d(h, p[name + ".w"], p[name + ".b"], padding=1)
        r = np.maximum(a, 0)
        o, idx = maxpool2(r)
        cache.append((h, a, idx))
        h = o
    flat = h.reshape(len(x), -1)
    return flat @ p["fc.w"].T + p["fc.b"], (cache, flat)


def backward(p, saved, dlogits):
    """Gradients of the loss with respect to every parameter, from d loss / d logits."""
    cache, flat = saved
    grads = {"fc.w": dlogits.T @ flat, "fc.b": dlogits.sum(axis=0)}
    g = (dlogits @ p["fc.w"]).reshape(len(flat), 32, 2, 2)
    for (name, _, _), (h, a, idx) in zip(reversed(LAYERS), reversed(cache), strict=True):
        g = maxpool2_backward(g, idx, a.shape) * (a > 0)
        first = name == LAYERS[0][0]  # the input needs no gradient
        gx, gw, gb = fastconv.conv2d_backward(
            h, p[name + ".w"], g, padding=1, needs=(not first, True, True)
        )
        grads[name + ".w"], grads[name + ".b"] = gw, gb
        g = gx
    return grads


def loss_and_grads(p, x, y):
    """Mean softmax cross-entropy of the batch and its gradients."""
    logits, saved = forward(p, x)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(len(y)), y].mean()
    d = np.exp(logp)
    d[np.arange(len(y)), y] -= 1
    return float(loss), backward(p, saved, d / len(y))


def accuracy(p, x, y, batch=256):
    hits = 0
    for i in range(0, len(x), batch):
        hits += int((forward(p, x[i : i + batch])[0].argmax(axis=1) == y[i : i + batch]).sum())
    return hits / len(x)


def load(seed=0, dtype=np.float32):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(dtype)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    return train_test_split(x, d.target, test_size=0.2, random_state=seed, stratify=d.target)


def progress(epoch, epochs, step, steps, loss, width=30):
    done = int(width * step / steps)
    bar = "#" * done + "." * (width - done)
    sys.stdout.write(f"\repoch {epoch + 1:>3}/{epochs} [{bar}] loss {loss:.4f}")
    sys.stdout.flush()


def train(epochs=30, batch=32, lr=0.05, momentum=0.9, seed=0, quiet=False):
    """Train the network; returns (params, per-step losses, test accuracy, seconds)."""
    x_tr, x_te, y_tr, y_te = load(seed)
    rng = np.random.default_rng(seed)
    p = init_params(rng)
    vel = {k: np.zeros_like(v) for k, v in p.items()}
    losses = []
    steps = -(-len(x_tr) // batch)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(x_tr))
        for s in range(steps):
            i = order[s * batch : (s + 1) * batch]
            loss, grads = loss_and_grads(p, x_tr[i], y_tr[i])
            for k in p:
                vel[k] = momentum * vel[k] - lr * grads[k]
                p[k] += vel[k]
            losses.append(loss)
            if not quiet and (s % 5 == 0 or s == steps - 1):
                progress(epoch, epochs, s + 1, steps, float(np.mean(losses[-steps:])))
        if not quiet:
            sys.stdout.write(f"  test acc {accuracy(p, x_te, y_te):.3f}\n")
    seconds = time.perf_counter() - t0
    return p, losses, accuracy(p, x_te, y_te), seconds


def save_curve(losses, path, steps_per_epoch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(len(losses)) / steps_per_epoch, losses, lw=0.6, alpha=0.5, label="batch")
    k = steps_per_epoch
    smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
    ax.plot((np.arange(len(smooth)) + k - 1) / k, smooth, lw=1.5, label=f"mean of {k}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.set_title("8x8 digits, NumPy + fastconv CNN")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--png", default="train_digits_loss.png")
    a = ap.parse_args(argv)
    p, losses, acc, seconds = train(a.epochs, seed=a.seed)
    save_curve(losses, a.png, -(-1437 // 32))
    print(
        f"test accuracy {acc:.4f} ({acc * 360:.0f}/360), training wall time {seconds:.1f} s, "
        f"{fastconv.get_num_threads()} threads; loss curve: {a.png}"
    )
    return acc


if __name__ == "__main__":
    main()
