"""Smoke test of bench/interpreter.py at small sizes, so the benchmark cannot silently rot: the
interpreter and every baseline compute the same spikes, and the output has its summary lines.

The bench is a script, not a package module, so it is imported from its path.
"""

from __future__ import annotations

import re
from types import ModuleType

import numpy as np
import pytest

from bench_loader import load_bench


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("interpreter")


def test_interpreter_and_every_baseline_agree(bench: ModuleType) -> None:
    # Fewer inputs give a smaller summed input, so a lower threshold keeps the neurons firing.
    lif = bench.LifParams(threshold=600)
    weights = bench.make_weights(100, 100, seed=3)
    inputs = bench.make_inputs(50, 100, rate=0.1, seed=3)
    chip = bench.load_interpreter(bench.compile_to_bytes(weights, lif))
    raster, result = bench.run_interpreter(chip, inputs)
    assert raster.shape == (50, 100)
    assert 0 < raster.mean() < 0.5, "the comparison is only meaningful if neurons fire"
    for name, make in bench.BASELINES.items():
        assert np.array_equal(bench.run_baseline(make(weights), lif, 100, inputs), raster), name
    assert np.array_equal(bench.run_dense_numpy(weights, lif, inputs), raster)
    assert result.counters["synaptic_ops"] == int(inputs.sum()) * 100
    # Running again from reset gives the same raster (the bench times repeated runs).
    assert np.array_equal(bench.run_interpreter(chip, inputs)[0], raster)


def test_sparse_weights_have_the_asked_connectivity(bench: ModuleType) -> None:
    w = bench.make_weights(300, 400, seed=1, connectivity=0.1)
    assert abs(np.count_nonzero(w) / w.size - 0.1) < 0.01
    assert w.min() >= -256 and w.max() <= 254 and not np.any(w % 2)


def test_main_prints_both_networks_and_the_summary_line(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    rc = bench.main(["--inputs", "100", "--neurons", "100", "--steps", "50", "--repeats", "1", "--min-time", "0",
                     "--sparse-inputs", "300", "--sparse-neurons", "200", "--sparse-steps", "30",
                     "--sparse-rate", "0.05"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    sparse = next(i for i, line in enumerate(out) if line.startswith("network sparse: 300 Poisson inputs"))
    p1 = next(i for i, line in enumerate(out) if line.startswith("network P1: 100 Poisson inputs"))
    assert sparse < p1
    assert sum(line.startswith("spike rasters identical (5 implementations)") for line in out) == 2
    assert re.fullmatch(r"sparse: speedup_vs_best_numpy=[0-9.]+ speedup_vs_dense_int64=[0-9.]+ events_per_s=[0-9.e+]+",
                        out[p1 - 1]), out[p1 - 1]
    assert re.fullmatch(r"speedup_vs_best_numpy=[0-9.]+ speedup_vs_dense_int64=[0-9.]+ events_per_s=[0-9.e+]+",
                        out[-1]), out[-1]
