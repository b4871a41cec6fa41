"""Smoke tests of bench/partition.py and bench/compile_scale.py at small sizes, so that the benches
cannot silently rot (the scripts are imported from their paths)."""

from __future__ import annotations

import re

import pytest

from bench_loader import load_bench


def test_partition_bench_prints_its_table_and_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench("partition")
    assert bench.main(["--sizes", "50", "--kinds", "recurrent", "--budget-scale", "0.2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("recurrent 50") for line in out)
    m = re.fullmatch(r"worst_core_ratio=(\d+\.\d+) median_traffic_cut=(-?\d+\.\d+)", out[-1])
    assert m, out[-1]
    assert 1.0 <= float(m.group(1)) <= 1.2
    assert float(m.group(2)) > 0.1  # CP-SAT beats ffd even on a tiny budget


def test_compile_scale_bench_prints_exponents(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench("compile_scale")
    assert bench.main(["--synapses", "2e5,4e5", "--kinds", "local", "--families", "width"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("width local") and "400000" in line for line in out)
    m = re.fullmatch(r"compile_exponent=(-?\d+\.\d+) compile_exponent_without_search=(-?\d+\.\d+) "
                     r"load_exponent=(-?\d+\.\d+) compile_10M_max_s=(\d+\.\d+)", out[-1])
    assert m, out[-1]
