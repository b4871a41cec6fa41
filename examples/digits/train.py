"""Train the bundled digits classifier in numpy and write what ``digits.nmc`` needs.

scikit-learn's 8x8 digits (1797 images, shipped with scikit-learn) -> a 64-100-10 ReLU network
trained with plain SGD on softmax cross-entropy -> converted to integrate-and-fire neurons:

* inputs are rate coded: pixel value p in 0..16 spikes at rate p/16 (regular spike train);
* weights are scaled into the chip's 8-bit mantissa range, each layer's threshold set from the
  99.9th percentile of its ReLU activations on the training set (data-based normalisation);
* biases become a constant drive on the membrane (raw voltage units = 64 x mantissa units).

Writes, next to this file: ``digits_weights.npz`` (w1, b1, w2, b2 in chip units; the thresholds)
and ``digits_test.npz`` (x: (samples, steps, 64) spikes, labels) for ``nmc run``.
Deterministic: the same seed gives the same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nmc.atomic import save_npz

HERE = Path(__file__).resolve().parent


def load_digits_split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    d = load_digits()
    x = d.data.astype(np.float64) / 16.0
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = len(y) // 5
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def train_mlp(x: np.ndarray, y: np.ndarray, hidden: int, epochs: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, np.sqrt(2 / x.shape[1]), (x.shape[1], hidden))
    b1 = np.zeros(hidden)
    w2 = rng.normal(0, np.sqrt(2 / hidden), (hidden, 10))
    b2 = np.zeros(10)
    lr = 0.05
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(y)), len(y) // 32):
            h = np.maximum(x[idx] @ w1 + b1, 0)
            z = h @ w2 + b2
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1
            g = p / len(idx)
            gh = (g @ w2.T) * (h > 0)
            w2 -= lr * h.T @ g
            b2 -= lr * g.sum(axis=0)
            w1 -= lr * x[idx].T @ gh
            b1 -= lr * gh.sum(axis=0)
    return [w1, b1, w2, b2]


def rate_code(x: np.ndarray, steps: int) -> np.ndarray:
    """Regular spike trains: a unit with rate r spikes at step t when floor((t+1) r) > floor(t r)."""
    t = np.arange(steps + 1)[:, None]
    counts = np.floor(t * x[:, None, :] + 1e-9)
    return (np.diff(counts, axis=1) > 0).astype(np.uint8)


def to_chip(params: list[np.ndarray], x_train: np.ndarray) -> dict[str, np.ndarray]:
    """Scale each layer so its largest weight is 254 mantissa units (8-bit mixed-sign weights are
    even numbers) and set its threshold to the 99.9th-percentile activation, so that a neuron's
    spike rate approximates ReLU(a) / a_max.

    Layer 1 sees rates x in [0, 1]: drive per step s1 (w1.x + b1), threshold s1 a1, rate h / a1.
    Layer 2 sees rates h / a1: drive per step s2 (w2.h + b2) / a1, threshold s2 a2 / a1.
    Biases are raw voltage units, 64 per mantissa unit.
    """
    w1, b1, w2, b2 = params
    h = np.maximum(x_train @ w1 + b1, 0)
    a1 = np.percentile(h, 99.9)
    a2 = np.percentile(np.maximum(h @ w2 + b2, 0), 99.9)
    s1 = 254.0 / np.abs(w1).max()
    s2 = 254.0 / np.abs(w2).max()
    even = lambda w: 2 * np.round(w / 2)  # noqa: E731
    return {
        "w1": even(w1 * s1), "b1": np.round(64 * b1 * s1), "theta1": np.array(np.round(a1 * s1)),
        "w2": even(w2 * s2), "b2": np.round(64 * b2 * s2 / a1), "theta2": np.array(np.round(a2 * s2 / a1)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--steps", type=int, default=32, help="timesteps per test sample")
    ap.add_argument("--out-dir", type=Path, default=HERE)
    args = ap.parse_args()
    x_tr, y_tr, x_te, y_te = load_digits_split(args.seed)
    params = train_mlp(x_tr, y_tr, args.hidden, args.epochs, args.seed)
    w1, b1, w2, b2 = params
    acc = np.mean((np.maximum(x_te @ w1 + b1, 0) @ w2 + b2).argmax(axis=1) == y_te)
    chip = to_chip(params, x_tr)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    save_npz(args.out_dir / "digits_weights.npz", chip)  # atomic: a failed write keeps the old file
    save_npz(args.out_dir / "digits_test.npz", {"x": rate_code(x_te, args.steps), "labels": y_te})
    print(f"float network test accuracy: {100 * acc:.2f}% on {len(y_te)} held-out digits")
    print(f"thresholds (mantissa): hidden {int(chip['theta1'])}, output {int(chip['theta2'])}")
    print(f"wrote {args.out_dir / 'digits_weights.npz'} and {args.out_dir / 'digits_test.npz'}")


if __name__ == "__main__":
    main()
