"""Make two ONNX models from scikit-learn's 8x8 digits, for ``nmc compile model.onnx``.

- ``digits_mlp.onnx``: scikit-learn's MLPClassifier (64-64-10, ReLU), its weights written into
  ONNX as Gemm + Relu + Softmax;
- ``digits_cnn.onnx``: a small CNN trained here in numpy -- Conv 3x3 (8 channels, padding 1),
  Relu, AveragePool 2x2, Flatten, Gemm to 10 classes, Softmax -- 86 % of it convolution weights
  shared over positions, which nmc expands to synapses.

Also writes ``digits_calib.npz`` (training images under the models' input name ``input``, for
``--calibrate``) and ``digits_test.npz`` (the held-out images and their labels, for ``nmc run``).
Deterministic: the same seed gives the same files. Then::

    nmc compile examples/onnx/digits_mlp.onnx --calibrate examples/onnx/digits_calib.npz -o mlp.nmcb
    nmc run mlp.nmcb --input examples/onnx/digits_test.npz
    nmc compile examples/onnx/digits_cnn.onnx --target loihi2 --calibrate examples/onnx/digits_calib.npz -o cnn.nmcb
    nmc run cnn.nmcb --input examples/onnx/digits_test.npz

(``--target loihi``: rate-coded neurons on the Loihi-like chip; ``loihi2``: sigma-delta units
with graded spikes; ``spinnaker``: rate-coded IF_curr_exp neurons that reset to zero.
docs/onnx.md and docs/conversion.md explain them.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def digits_split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images scaled to [0, 1] as (n, 64); 20 % held out for testing."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = len(y) // 5
    return x[order[n_test:]], y[order[n_test:]], x[order[:n_test]], y[order[:n_test]]


def train_mlp(x: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=epochs, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a short run is enough for digits
        clf.fit(x, y)
    return list(clf.coefs_), list(clf.intercepts_)


def _patches(x: np.ndarray) -> np.ndarray:
    """(n, 8, 8) images -> (n, 64, 9): each position's 3x3 neighbourhood, zero padded."""
    p = np.pad(x.reshape(-1, 8, 8), ((0, 0), (1, 1), (1, 1)))
    return np.stack([p[:, i:i + 8, j:j + 8].reshape(-1, 64) for i in range(3) for j in range(3)], axis=2)


def cnn_forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, ...]:
    k, kb, w, b = params                       # k (8, 9), kb (8,), w (128, 10), b (10,)
    pt = _patches(x)                           # (n, 64, 9)
    z = np.einsum("npk,ck->ncp", pt, k) + kb[None, :, None]   # (n, 8, 64)
    h = np.maximum(z, 0.0)
    pooled = h.reshape(-1, 8, 4, 2, 4, 2).mean(axis=(3, 5)).reshape(-1, 128)
    return pt, z, h, pooled, pooled @ w + b


def train_cnn(x: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, np.sqrt(2 / 9), (8, 9)), np.zeros(8), rng.normal(0, np.sqrt(1 / 128), (128, 10)), np.zeros(10)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(y)), len(y) // 32):
            pt, z, h, pooled, out = cnn_forward(params, x[idx])
            p = np.exp(out - out.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1
            g = p / len(idx)
            gw, gb = pooled.T @ g, g.sum(axis=0)
            gpool = (g @ params[2].T).reshape(-1, 8, 4, 1, 4, 1) / 4.0
            gh = np.broadcast_to(gpool, (len(idx), 8, 4, 2, 4, 2)).reshape(-1, 8, 64)
            gz = gh * (z > 0)
            gk, gkb = np.einsum("ncp,npk->ck", gz, pt), gz.sum(axis=(0, 2))
            step += 1
            for i, gr in enumerate((gk, gkb, gw, gb)):
                m[i] = 0.9 * m[i] + 0.1 * gr
                v[i] = 0.999 * v[i] + 0.001 * gr * gr
                params[i] -= 3e-3 * (m[i] / (1 - 0.9 ** step)) / (np.sqrt(v[i] / (1 - 0.999 ** step)) + 1e-8)
    return params


def cnn_model(params: list[np.ndarray]):  # noqa: ANN201 (onnx.ModelProto)
    """The CNN as ONNX: Conv, Relu, AveragePool, Flatten, Gemm, Softmax on a (N, 1, 8, 8) input."""
    from onnx import TensorProto, helper, numpy_helper
    k, kb, w, b = params
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for a, n in
             ((k.reshape(8, 1, 3, 3), "conv.weight"), (kb, "conv.bias"), (w, "fc.weight"), (b, "fc.bias"))]
    nodes = [
        helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["conv"], name="Conv_0",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="Relu_1"),
        helper.make_node("AveragePool", ["relu"], ["pool"], name="AveragePool_2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], name="Flatten_3", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["scores"], name="Gemm_4"),
        helper.make_node("Softmax", ["scores"], ["probabilities"], name="Softmax_5", axis=1),
    ]
    graph = helper.make_graph(nodes, "digits_cnn", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="nmc example")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=30, help="training epochs of both models")
    ap.add_argument("--out-dir", type=Path, default=HERE)
    args = ap.parse_args()
    import onnx
    from nmc.frontend.onnx.build import mlp_model
    x_tr, y_tr, x_te, y_te = digits_split(args.seed)
    ws, bs = train_mlp(x_tr, y_tr, args.seed, 10 * args.epochs)
    cnn = train_cnn(x_tr, y_tr, args.seed, args.epochs)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(mlp_model(ws, bs, input_name="input", name="digits_mlp"), out / "digits_mlp.onnx")
    onnx.save(cnn_model(cnn), out / "digits_cnn.onnx")
    np.savez(out / "digits_calib.npz", input=x_tr)
    np.savez(out / "digits_test.npz", input=x_te, labels=y_te)
    a = x_te
    for w, b in zip(ws[:-1], bs[:-1]):
        a = np.maximum(a @ w + b, 0)
    mlp_acc = np.mean((a @ ws[-1] + bs[-1]).argmax(axis=1) == y_te)
    cnn_acc = np.mean(cnn_forward(cnn, x_te)[-1].argmax(axis=1) == y_te)
    print(f"float accuracy on {len(y_te)} held-out digits: MLP {100 * mlp_acc:.2f} %, CNN {100 * cnn_acc:.2f} %")
    names = ("digits_mlp.onnx", "digits_cnn.onnx", "digits_calib.npz", "digits_test.npz")
    print(f"wrote {', '.join(names)} in {out}")


if __name__ == "__main__":
    main()
