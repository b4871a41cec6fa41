"""The bundled examples, end to end through the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmc.frontend.dsl import load_dsl
from nmc.ir import parse_ir, print_ir

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits example trained into a temporary folder (train.py writes next to the program)."""
    d = tmp_path_factory.mktemp("digits")
    shutil.copy(EXAMPLES / "digits" / "digits.nmc", d)
    subprocess.run([sys.executable, str(EXAMPLES / "digits" / "train.py"), "--out-dir", str(d)], check=True,
                   capture_output=True)
    return d


@pytest.fixture(scope="module")
def eprop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The e-prop example with its generated weights (make_pattern.py), in a temporary folder."""
    d = tmp_path_factory.mktemp("eprop")
    shutil.copy(EXAMPLES / "eprop" / "pattern.nmc", d)
    subprocess.run([sys.executable, str(EXAMPLES / "eprop" / "make_pattern.py"), "--dir", str(d), "--trials", "1"],
                   check=True, capture_output=True)
    return d


def test_every_example_round_trips(digits_dir: Path, eprop_dir: Path) -> None:
    generated = {EXAMPLES / "digits": digits_dir, EXAMPLES / "eprop": eprop_dir}   # examples whose data are made
    for src in [digits_dir / "digits.nmc", eprop_dir / "pattern.nmc", *EXAMPLES.glob("*/*.nmc")]:
        if src.parent in generated:
            continue  # needs generated arrays; covered by the copy in its temporary folder
        text, arrays = print_ir(load_dsl(src))
        assert print_ir(parse_ir(text, arrays))[0] == text, src


def test_digits_classifier_through_the_cli(cli, digits_dir: Path) -> None:
    out = digits_dir / "digits.nmcb"
    code, _, err = cli("compile", digits_dir / "digits.nmc", "-o", out)
    assert code == 0 and "warning" not in err, err  # train.py writes representable values
    code, text, err = cli("run", out, "--input", digits_dir / "digits_test.npz", "--out", digits_dir / "r.npz")
    assert code == 0, err
    r = np.load(digits_dir / "r.npz")
    assert float(r["accuracy"]) >= 0.93, text
    assert "accuracy" in text and r["spikes/o"].shape[1:] == (32, 10)


def test_training_is_reproducible(digits_dir: Path, tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(EXAMPLES / "digits" / "train.py"), "--out-dir", str(tmp_path)], check=True,
                   capture_output=True)
    for name in ("digits_weights.npz", "digits_test.npz"):
        a, b = np.load(digits_dir / name), np.load(tmp_path / name)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


def test_recurrent_example_bursts(cli, tmp_path: Path) -> None:
    out = tmp_path / "ei.nmcb"
    code, _, err = cli("compile", EXAMPLES / "recurrent" / "ei_network.nmc", "-o", out)
    assert code == 0 and "warning" not in err, err
    assert cli("run", out, "--steps", "400", "--out", tmp_path / "ei.npz")[0] == 0
    r = np.load(tmp_path / "ei.npz")
    rate = r["spikes/e"].sum(axis=1)
    assert r["probe/e.v"].shape == (400, 400) and r["probe/i.spikes"].shape == (400, 100)
    # Population bursts separated by silence: several bursts, each followed by a quiet stretch.
    bursts = np.flatnonzero((rate[1:] >= 5) & (rate[:-1] < 5))
    assert len(bursts) >= 3
    assert (rate == 0).mean() > 0.5


def test_physical_units_example_bursts(cli, tmp_path: Path) -> None:
    """examples/physical/ei_lif.nmc: the same kind of network in ms, mV and nA, through map-neurons."""
    out = tmp_path / "ei_lif.nmcb"
    code, text, err = cli("compile", EXAMPLES / "physical" / "ei_lif.nmc", "-o", out, "--report")
    assert code == 0 and "warning" not in err, err
    assert "population 'e' (lif, 400 neurons)" in text and "step response" in text
    assert cli("run", out, "--steps", "1000", "--out", tmp_path / "r.npz")[0] == 0
    r = np.load(tmp_path / "r.npz")
    rate = r["spikes/e"].sum(axis=1)
    bursts = np.flatnonzero((rate[1:] >= 5) & (rate[:-1] < 5))
    assert len(bursts) >= 5 and (rate == 0).mean() > 0.5
