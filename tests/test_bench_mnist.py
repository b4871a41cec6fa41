"""Smoke test of bench/backprop_mnist.py on a tiny synthetic MNIST file, so the benchmark cannot
silently rot, and of its training-data augmentation."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from bench_loader import load_bench


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("backprop_mnist")


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def test_shift_moves_each_window_by_at_most_k(bench: ModuleType) -> None:
    img = _images(60, 1)
    assert np.array_equal(bench.shifted(img, 0, np.random.default_rng(0)), bench.preprocess(img))
    got = bench.shifted(img, 1, np.random.default_rng(0))
    offsets = set()
    for i in range(len(img)):
        match = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                 if np.array_equal(got[i], (img[i, 4 + dy:24 + dy, 4 + dx:24 + dx] > 127).ravel())]
        assert match, f"row {i} is no 1-px shift of its image"
        offsets.add(match[0])
    assert len(offsets) > 1  # random, not one fixed offset


def test_main_trains_on_the_chip_and_prints_the_summary(bench: ModuleType, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mnist.npz"
    rng = np.random.default_rng(2)
    np.savez(data, x_train=_images(40, 3), y_train=rng.integers(0, 10, 40), x_test=_images(10, 4),
             y_test=rng.integers(0, 10, 10))
    args = ["--data", str(data), "--epochs", "2", "--hidden", "20", "--shift", "1", "--validation", "12"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "28 training samples, each epoch's images shifted by up to 1 px, 12 validation samples" in out[1]
    assert re.fullmatch(r"test_accuracy=[0-9.]+ test_accuracy_averaged=[0-9.]+ test_accuracy_membrane=[0-9.]+ "
                        r"test_accuracy_membrane_averaged=[0-9.]+ val_accuracy=[0-9.]+ val_accuracy_averaged=[0-9.]+ "
                        r"ms_per_sample=[0-9.]+ chip_ms_per_sample=[0-9.]+ energy_mj_per_sample=[0-9.]+", out[-1]), out[-1]
    fig = dict(kv.split("=") for kv in out[-1].split())
    # Per epoch: the validation figures; the test set only at the end, for both weight sets.
    epochs = [line for line in out if line.startswith("epoch ")]
    assert len(epochs) == 2 and all(" val " in e and "test" not in e for e in epochs)
    last = next(line for line in out if line.startswith("last epoch's weights (training chip): validation "))
    assert f"validation {fig['val_accuracy']} " in last and f"test {fig['test_accuracy']} " in last
    assert epochs[-1].split(" val ")[1].startswith(fig["val_accuracy"])
    avg = next(line for line in out if line.startswith("weights averaged over the last 2 epochs"))
    assert f"test {fig['test_accuracy_averaged']} (membrane {fig['test_accuracy_membrane_averaged']}," in avg
    assert f"validation {fig['val_accuracy_averaged']} " in avg
    assert bench.main(["--data", str(data), "--epochs", "1", "--hidden", "20", "--average", "0", "--validation", "0"]) == 0
    out = capsys.readouterr().out
    assert "weights averaged" not in out and "val_accuracy" not in out and "test_accuracy_averaged" not in out
    assert bench.main(["--data", str(data), "--validation", "40"]) == 1
    assert "--validation must be 0..39" in capsys.readouterr().err
    assert bench.main(["--data", str(tmp_path / "none.npz")]) == 1
    with pytest.raises(SystemExit):
        bench.main(["--shift", "5"])


def test_resumed_bench_run_reports_the_same_figures(bench: ModuleType, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The shifted images of epoch e depend on (seed, e) alone: a run resumed from its checkpoint
    after epoch 1 reports the accuracies of a run straight through."""
    data = tmp_path / "mnist.npz"
    rng = np.random.default_rng(5)
    np.savez(data, x_train=_images(30, 6), y_train=rng.integers(0, 10, 30), x_test=_images(8, 7),
             y_test=rng.integers(0, 10, 8))
    base = ["--data", str(data), "--hidden", "16", "--validation", "10", "--average", "2"]
    assert bench.main([*base, "--epochs", "3"]) == 0
    straight = capsys.readouterr().out.strip().splitlines()[-1]
    assert bench.main([*base, "--epochs", "1", "--checkpoint", str(tmp_path / "ck")]) == 0
    capsys.readouterr()
    assert bench.main([*base, "--epochs", "3", "--resume", str(tmp_path / "ck")]) == 0
    resumed = capsys.readouterr().out.strip().splitlines()[-1]
    acc = lambda line: [kv for kv in line.split() if "accuracy" in kv]  # noqa: E731
    assert acc(resumed) == acc(straight)
