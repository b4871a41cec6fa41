"""Smoke test of bench/onnx_mnist.py on a tiny synthetic MNIST file, so the benchmark cannot
silently rot: it trains, exports, converts both ways (rate coding on loihi and spinnaker), chooses on
validation and prints its line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bench_loader import load_bench


def test_bench_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mod = load_bench("onnx_mnist")
    rng = np.random.default_rng(0)
    # Ten classes told apart by which image row is bright: learnable in one epoch.
    y_tr, y_te = rng.integers(0, 10, 400), rng.integers(0, 10, 30)

    def images(y: np.ndarray) -> np.ndarray:
        x = rng.integers(0, 60, (len(y), 28, 28)).astype(np.uint8)
        x[np.arange(len(y)), 2 * y + 4, :] = 255
        return x

    data = tmp_path / "mnist.npz"
    np.savez(data, x_train=images(y_tr), y_train=y_tr, x_test=images(y_te), y_test=y_te)
    mod.main(["--data", str(data), "--epochs", "15", "--val", "100", "--val-runs", "15", "--test", "30",
              "--calib", "100"])
    out = capsys.readouterr().out.strip().splitlines()
    m = re.fullmatch(r"ann_accuracy=([0-9.]+) snn_accuracy=([0-9.]+) gap=(-?[0-9.]+) steps_per_sample=(\d+)", out[-1])
    assert m, out[-1]
    ann, snn, gap, steps = float(m[1]), float(m[2]), float(m[3]), int(m[4])
    assert ann > 50 and abs(ann - snn - gap) < 0.011 and 1 <= steps <= 64
    for target in ("loihi", "spinnaker"):
        assert any(f"== rate conversion on target '{target}' ==" in line for line in out), target
    assert any("timer-tick overruns (cost model):" in line for line in out)  # reported for spinnaker


def test_onnx_bench_refuses_an_unknown_target(capsys) -> None:
    mod = load_bench("onnx_mnist")
    with pytest.raises(SystemExit):
        mod.main(["--targets", "loihi,truenorth"])
    assert "--targets takes a comma list of loihi, loihi2, spinnaker" in capsys.readouterr().err
