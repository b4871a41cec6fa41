"""bench/eprop_float_model.py, the float64 host model of the chip's e-prop rule: it must be a model
of *the chip*, or what it says about the chip's settings means nothing. With the evidence bench's
weights and trials, its recurrent spikes equal the interpreter's, tick for tick, until the first
near-threshold difference of fixed point and float64 (100-250 ticks in), and its spike counts over
the whole trial stay within a few percent; a model with another delay, reset or refractory rule
differs from the first spikes on. Plus a smoke run of its command line.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from bench_loader import load_bench

pytest.importorskip("numba")


@pytest.fixture(scope="module")
def model() -> ModuleType:
    return load_bench("eprop_float_model")


def test_the_float_model_spikes_as_the_chip(model: ModuleType, tmp_path: Path) -> None:
    ev = model.EV
    args = argparse.Namespace(eta=0.0513, eta_out=1.54e-4, reg=1e-3, batch=32, seed=1, w_max_factor=4.0,
                              update="sign", feedback="random", pairing="chip", beta_factor=1.0, g_fixed=True, adam_bits=0)
    host = model.Model(args)
    path = ev.write_program(tmp_path, args.eta, args.eta_out, args.reg, args.batch, args.seed, "sign")
    path.write_text(path.read_text() + "probe r.spikes\n")
    chip, _, _ = ev.compile_chip(path)
    chip.learning_enabled = False
    rng = np.random.default_rng(5)
    none = (np.zeros((1, 1)),) * 3
    for _ in range(3):
        x, lab = ev.trials(rng, 1)
        chip.reset()
        z_chip = chip.run(ev.T, {"x": x[0]}).probes["r.spikes"].astype(np.float64)
        z_host = np.zeros((ev.T, ev.N_REC))
        host.run(x[0], int(lab[0]), False, none, z_host)
        assert z_chip[:100].sum() > 50                                  # the network is active early on
        np.testing.assert_array_equal(z_host[:100], z_chip[:100])
        assert abs(z_host.sum() / z_chip.sum() - 1) < 0.1


def test_the_command_line_runs(model: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert model.main(["--trials", "4", "--batch", "2", "--eval-every", "1", "--eval", "2", "--test", "2",
                       "--curriculum", "1,7", "--update", "adam", "--eta", "0.08"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum("held-out error" in line for line in out) == 3                  # 2 validation points, the test
    assert re.fullmatch(r"error=\d\.\d{3} trials=4 model=float64", out[-1])
    for bad, says in ((["--curriculum", "2,7"], "the curriculum is odd cue counts"),
                      (["--adam-bits", "-1"], "--adam-bits is a number of significant bits"),
                      (["--batch", "0"], "--batch is a number of trials")):
        with pytest.raises(SystemExit):
            model.main(bad)
        assert says in capsys.readouterr().err
