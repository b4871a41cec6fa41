"""Smoke test of bench/backprop_mnist.py on a tiny synthetic MNIST file, so the benchmark cannot
silently rot, and of its training-data augmentation."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "backprop_mnist.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nmc_bench_backprop_mnist", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


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
    np.savez(data, x_train=_images(30, 3), y_train=rng.integers(0, 10, 30), x_test=_images(10, 4),
             y_test=rng.integers(0, 10, 10))
    assert bench.main(["--data", str(data), "--epochs", "2", "--hidden", "20", "--shift", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "shifted by up to 1 px" in out[1]
    assert re.fullmatch(r"test_accuracy=[0-9.]+ test_accuracy_membrane=[0-9.]+ ms_per_sample=[0-9.]+ "
                        r"energy_mj_per_sample=[0-9.]+", out[-1]), out[-1]
    # --average (default 10, here both epochs): the last line reports the averaged weights' chip.
    avg = next(line for line in out if line.startswith("weights averaged over the last 2 epochs"))
    got = re.search(r"test ([0-9.]+) \(membrane ([0-9.]+),", avg)
    assert got and out[-1].startswith(f"test_accuracy={got[1]} test_accuracy_membrane={got[2]} ")
    assert bench.main(["--data", str(data), "--epochs", "1", "--hidden", "20", "--average", "0"]) == 0
    assert "weights averaged" not in capsys.readouterr().out
    assert bench.main(["--data", str(tmp_path / "none.npz")]) == 1
    with pytest.raises(SystemExit):
        bench.main(["--shift", "5"])
