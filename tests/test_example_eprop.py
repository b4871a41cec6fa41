"""The bundled e-prop example (examples/eprop) works through the CLI: its data script, nmc
compile for the SpiNNaker-like target, nmc run, and the score, which shows the error falling."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "eprop"


def test_pattern_example_learns_through_the_cli(cli, tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("nmc_example_make_pattern", EXAMPLE / "make_pattern.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    shutil.copy(EXAMPLE / "pattern.nmc", tmp_path / "pattern.nmc")
    assert mod.main(["--dir", str(tmp_path), "--trials", "30"]) == 0
    assert cli("compile", tmp_path / "pattern.nmc", "--target", "spinnaker", "-o", tmp_path / "p.nmcb")[0] == 0
    code, out, err = cli("run", tmp_path / "p.nmcb", "--input", tmp_path / "train.npz", "--out", tmp_path / "r.npz")
    assert code == 0, err
    assert "e-prop          29 trials learned from" in out and "overruns        0 " in out
    r = np.load(tmp_path / "r.npz")
    y = r["probe/y.v"][..., 0] / 2 ** 15
    target = np.load(tmp_path / "train.npz")["target"][..., 0]
    mse = ((y - target) ** 2).mean(axis=1)
    assert mse[-5:].mean() < 0.7 * mse[:5].mean(), mse
    capsys.readouterr()
    assert mod.main(["--score", str(tmp_path / "r.npz"), "--dir", str(tmp_path)]) == 0
    assert "lower); e-prop trials learned from: 29" in capsys.readouterr().out


def test_pattern_score_of_a_bad_file_is_one_line(tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("nmc_example_make_pattern_bad", EXAMPLE / "make_pattern.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    for name in ("missing.npz", "junk.npz"):
        assert mod.main(["--score", str(tmp_path / name), "--dir", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("make_pattern.py: error:") and err.count("\n") == 1, err
