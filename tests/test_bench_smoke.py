"""Smoke test of bench/interpreter.py at a small size, so the benchmark cannot silently rot.

The bench is a script, not a package module, so it is imported from its path.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "interpreter.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nmc_bench_interpreter", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


def test_interpreter_and_dense_numpy_agree(bench: ModuleType) -> None:
    # Fewer inputs give a smaller summed input, so a lower threshold keeps the neurons firing.
    lif = bench.LifParams(threshold=600)
    weights = bench.make_weights(100, 100, seed=3)
    inputs = bench.make_inputs(50, 100, rate=0.1, seed=3)
    chip = bench.load_interpreter(bench.compile_to_bytes(weights, lif))
    raster, result = bench.run_interpreter(chip, inputs)
    dense = bench.run_dense_numpy(weights, lif, inputs)
    assert raster.shape == dense.shape == (50, 100)
    assert 0 < raster.mean() < 0.5, "the comparison is only meaningful if neurons fire"
    assert np.array_equal(raster, dense)
    assert result.counters["synaptic_ops"] == int(inputs.sum()) * 100
    # Running again from reset gives the same raster (the bench times repeated runs).
    assert np.array_equal(bench.run_interpreter(chip, inputs)[0], raster)


def test_main_prints_the_summary_line(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    rc = bench.main(["--inputs", "100", "--neurons", "100", "--steps", "50", "--repeats", "1"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    assert re.fullmatch(r"speedup_vs_dense_numpy=[0-9.]+ events_per_s=[0-9.e+]+", out[-1]), out[-1]
