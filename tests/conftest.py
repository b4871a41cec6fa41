"""Shared fixtures: a small DSL program and a way to run the CLI in-process."""

from __future__ import annotations

from pathlib import Path

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
