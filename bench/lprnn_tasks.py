"""The low-pass RNN (Nair & Indiveri 2019) through ONNX onto the Loihi-2-like chip: accuracy gap and
state tracking on two sequence tasks.

Tasks (one lpRNN layer and a linear readout of its last state, trained here with numpy BPTT):

- ``digits``: scikit-learn's 8x8 digits fed as 8 rows of 8 pixels over 8 items; 64 units,
  alpha = 0.8; classes by argmax; split 60 / 20 / 20 % into train / validation / test.
- ``adding``: the adding problem (Hochreiter & Schmidhuber 1997, experiment 4): 50 items of
  (value in [0, 1], marker), two markers, target the sum of the two marked values; 48 units with
  alpha spread over [0.8, 0.99]; a sequence counts as solved when the absolute error is below
  0.04 (the paper's criterion). 6,000 training, 300 validation, 500 test sequences.

Each model is written with ``nmc.frontend.onnx.build.lprnn_model`` (the custom operator
nmc.LpRNN), imported, converted by convert-ann (sigma-delta units, tau = -T_item / ln alpha) and
run on the interpreter of ``loihi2``. The number of time steps per item is chosen on the
validation split (the fewest within 0.5 points of the best of 8, 16, 32); the test split is run
once. Correlation: the spiking units' state at the end of every item against the ANN's h_t, over
all units, items and test samples.

Run from the repository root (about 10 minutes on one core)::

    python bench/lprnn_tasks.py [--tasks digits,adding]

One line per task at the end::

    task=<t> ann_accuracy=<a> snn_accuracy=<s> gap=<a - s> correlation=<r> item_steps=<k>
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ITEM_STEPS = (8, 16, 32)


def train_lprnn(x: np.ndarray, y: np.ndarray, hidden: int, alpha: np.ndarray, n_out: int, epochs: int, lr: float,
                seed: int, regression: bool) -> list[np.ndarray]:
    """BPTT with Adam on h_t = alpha h_(t-1) + (1 - alpha) relu(x_t W + h_(t-1) U + b), out = h_T V + c
    (softmax cross-entropy, or squared error for regression). Weights (in, out) as numpy uses them."""
    rng = np.random.default_rng(seed)
    n, items, d = x.shape
    params = [rng.normal(0, np.sqrt(2 / d), (d, hidden)), rng.normal(0, 0.3 / np.sqrt(hidden), (hidden, hidden)),
              np.full(hidden, 0.1), rng.normal(0, np.sqrt(1 / hidden), (hidden, n_out)), np.zeros(n_out)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(n), max(1, n // 32)):
            w, u, b, vo, c = params
            xb = x[idx]
            hs, zs = [np.zeros((len(idx), hidden))], []
            for t in range(items):
                z = xb[:, t] @ w + hs[-1] @ u + b
                zs.append(z)
                hs.append(alpha * hs[-1] + (1 - alpha) * np.maximum(z, 0))
            out = hs[-1] @ vo + c
            if regression:
                go = 2 * (out - y[idx].reshape(len(idx), -1)) / len(idx)
            else:
                p = np.exp(out - out.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                p[np.arange(len(idx)), y[idx]] -= 1
                go = p / len(idx)
            grads = [np.zeros_like(w), np.zeros_like(u), np.zeros_like(b), hs[-1].T @ go, go.sum(axis=0)]
            gh = go @ vo.T
            for t in reversed(range(items)):
                gz = gh * (1 - alpha) * (zs[t] > 0)
                grads[0] += xb[:, t].T @ gz
                grads[1] += hs[t].T @ gz
                grads[2] += gz.sum(axis=0)
                gh = gh * alpha + gz @ u.T
            step += 1
            for i, g in enumerate(grads):
                g = np.clip(g, -1, 1)
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                params[i] -= lr * (m[i] / (1 - 0.9 ** step)) / (np.sqrt(v[i] / (1 - 0.999 ** step)) + 1e-8)
    return params


def ann_run(params: list[np.ndarray], alpha: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, u, b, vo, c = params
    h = np.zeros((x.shape[0], w.shape[1]))
    hs = []
    for t in range(x.shape[1]):
        h = alpha * h + (1 - alpha) * np.maximum(x[:, t] @ w + h @ u + b, 0)
        hs.append(h)
    return np.stack(hs, axis=1), h @ vo + c


def adding_data(n: int, items: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros((n, items, 2))
    x[:, :, 0] = rng.uniform(0, 1, (n, items))
    for i in range(n):
        x[i, rng.choice(items, 2, replace=False), 1] = 1.0
    return x, (x[:, :, 0] * x[:, :, 1]).sum(axis=1)


def tasks(seed: int) -> dict[str, dict[str, Any]]:
    from sklearn.datasets import load_digits
    d = load_digits()
    xd = (d.data / 16.0).reshape(-1, 8, 8)
    order = np.random.default_rng(seed).permutation(len(d.target))
    n = len(order)
    tr, va, te = order[: 6 * n // 10], order[6 * n // 10: 8 * n // 10], order[8 * n // 10:]
    rng = np.random.default_rng(seed + 1)
    xa, ya = adding_data(6000, 50, rng)
    xav, yav = adding_data(300, 50, rng)
    xat, yat = adding_data(500, 50, rng)
    return {
        "digits": {"train": (xd[tr], d.target[tr]), "val": (xd[va], d.target[va]), "test": (xd[te], d.target[te]),
                   "hidden": 64, "alpha": np.full(64, 0.8), "n_out": 10, "epochs": 60, "lr": 3e-3, "regression": False},
        "adding": {"train": (xa, ya), "val": (xav, yav), "test": (xat, yat), "hidden": 48,
                   "alpha": np.linspace(0.8, 0.99, 48), "n_out": 1, "epochs": 20, "lr": 3e-3, "regression": True},
    }


def score(out: np.ndarray, y: np.ndarray, regression: bool) -> float:
    """Accuracy in percent: argmax for classes; |error| < 0.04 for the adding problem."""
    if regression:
        return 100.0 * float(np.mean(np.abs(out.reshape(-1) - y) < 0.04))
    return 100.0 * float(np.mean(out.argmax(axis=1) == y))


def snn_run(path: Path, calib: np.ndarray, x: np.ndarray, item_steps: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Compile for loihi2 with ``item_steps`` steps per item, run ``x``; returns the readout (model
    units), the units' state at the end of every item (model units) and the seconds it took."""
    from nmc.driver import compile_network, load_network
    from nmc.ir.network import Probe
    from nmc.sim import interpreter_for
    from nmc.sim.runner import run_session
    net = load_network(path)
    net.add_probe(Probe("h", "LpRNN_0", "v"))
    pipeline = f"verify,convert-ann{{item_steps={item_steps}}},verify,map-neurons,quantize,partition,allocate"
    binary = compile_network(net, "loihi2", pipeline, calibration={"input": calib})
    t0 = time.time()
    session = run_session(interpreter_for(binary), {"input": x}, None)
    secs = time.time() - t0
    scale = net.population("LpRNN_0").attrs["mapped"]["units"]["v"][0]
    norm = net.attrs["conversion"]["scales"]["LpRNN_0"]
    ends = [(t + 1) * item_steps for t in range(x.shape[1])]
    return session.readout, session.probes["h"][:, ends, :] / scale * norm, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="digits,adding")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import onnx
    from nmc.conversion.ann import forward
    from nmc.driver import load_network
    from nmc.frontend.onnx.build import lprnn_model
    summary = []
    all_tasks = tasks(args.seed)
    for name in args.tasks.split(","):
        t = all_tasks[name]
        (x, y), (xv, yv), (xt, yt) = t["train"], t["val"], t["test"]
        t0 = time.time()
        params = train_lprnn(x, y, t["hidden"], t["alpha"], t["n_out"], t["epochs"], t["lr"], args.seed,
                             t["regression"])
        hs_t, out_t = ann_run(params, t["alpha"], xt)
        ann_val = score(ann_run(params, t["alpha"], xv)[1], yv, t["regression"])
        ann_test = score(out_t, yt, t["regression"])
        print(f"== {name}: trained in {time.time() - t0:.0f} s; ANN validation {ann_val:.2f} %, test {ann_test:.2f} %"
              + (f", test MSE {np.mean((out_t[:, 0] - yt) ** 2):.5f} (predicting the mean: {np.var(yt):.4f})"
                 if t["regression"] else ""), flush=True)
        w, u, b, vo, c = params
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(lprnn_model(w.T, u.T, b, t["alpha"], vo, c, items=x.shape[1]), path)
            imported = forward(load_network(path), {"input": xt[:50]}).y["LpRNN_0"]
            print(f"  imported: largest difference to the trained cell's states {np.abs(imported - hs_t[:50]).max():.2g}")
            calib = x[:500]
            val = {}
            for k in ITEM_STEPS:
                out, _, secs = snn_run(path, calib, xv, k)
                val[k] = score(out, yv, t["regression"])
                print(f"  validation, {k} steps per item: {val[k]:.2f} % ({secs:.0f} s)", flush=True)
            best = max(val.values())
            k = min(s for s, a in val.items() if a >= best - 0.5)
            out, states, secs = snn_run(path, calib, xt, k)
            snn_test = score(out, yt, t["regression"])
            corr = float(np.corrcoef(hs_t.ravel(), states.ravel())[0, 1])
            extra = f", MSE {np.mean((out[:, 0] - yt) ** 2):.5f}" if t["regression"] else ""
            print(f"  test at {k} steps per item ({secs:.0f} s): spiking {snn_test:.2f} % against ANN {ann_test:.2f} %"
                  f"{extra}; state correlation {corr:.4f}", flush=True)
            summary.append(f"task={name} ann_accuracy={ann_test:.2f} snn_accuracy={snn_test:.2f} "
                           f"gap={ann_test - snn_test:.2f} correlation={corr:.4f} item_steps={k}")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
