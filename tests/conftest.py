"""Shared fixtures: a small DSL program, a way to run the CLI in-process, and a small trained digits
MLP with its ONNX file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmc.cli import main

REPO = Path(__file__).resolve().parent.parent

SMALL = """\
network small
seed 5
neuron n = cuba_lif(decay_u = 1024, decay_v = 256, threshold = 60, refractory = 2)
input x[20]
population h[30] : n(bias = randint(0, 500))
population o[5] : n
output o
connect x -> h : dense(weights = randint(-100, 100), exponent = 1)
connect h -> o : sparse(p = 0.5, weights = randint(0, 120), delay = 2)
connect o -> h : one_to_all(weights = -40)
probe h.v
probe o.spikes
"""


@pytest.fixture
def small_src(tmp_path: Path) -> Path:
    path = tmp_path / "small.nmc"
    path.write_text(SMALL)
    return path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``nmc ARGS...`` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    """A small trained MLP (64-32-10, the shape of examples/onnx's digits MLP) on scikit-learn's
    digits and its data: 1200 training images (for calibration), 300 test images."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((32,), max_iter=150, random_state=0).fit(x[:1200], d.target[:1200])
    return {"ws": clf.coefs_, "bs": clf.intercepts_, "x_train": x[:1200], "x": x[1200:1500],
            "y": d.target[1200:1500]}


@pytest.fixture(scope="module")
def mlp_path(tmp_path_factory: pytest.TempPathFactory, digits: dict) -> Path:
    """The ``digits`` MLP as an ONNX file (Gemm, Relu, Softmax), input named ``input``."""
    import onnx

    from nmc.frontend.onnx.build import mlp_model
    path = tmp_path_factory.mktemp("onnx") / "mlp.onnx"
    onnx.save(mlp_model(digits["ws"], digits["bs"], input_name="input"), path)
    return path
