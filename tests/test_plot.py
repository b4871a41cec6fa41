"""``nmc plot``: the figure's panels follow what RESULT.npz holds; bad input and a missing
matplotlib are one line each, and nothing is written then."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from nmc.plot import panels

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG = b"\x89PNG\r\n\x1a\n"


def test_stream_result_draws_rasters_traces_and_core_load(cli, small_src: Path, tmp_path: Path) -> None:
    assert cli("compile", small_src, "-o", tmp_path / "s.nmcb")[0] == 0
    np.savez(tmp_path / "in.npz", x=(np.random.default_rng(0).random((300, 20)) < 0.2).astype(np.uint8))
    assert cli("run", tmp_path / "s.nmcb", "--input", tmp_path / "in.npz", "--out", tmp_path / "r.npz")[0] == 0
    r = dict(np.load(tmp_path / "r.npz"))
    kinds = [k for k, _ in panels(r, 2000)]
    assert kinds == ["raster", "trace", "load"]
    assert set(panels(r, 2000)[0][1]) == {"o", "o.spikes"}        # the output and the spike probe
    code, _, err = cli("plot", tmp_path / "r.npz")
    assert code == 0 and err.strip() == f"nmc: wrote {tmp_path / 'r.png'} (raster, trace, load)"
    assert (tmp_path / "r.png").read_bytes().startswith(PNG)
    code, _, err = cli("plot", tmp_path / "r.npz", "-o", tmp_path / "r.svg", "--max-steps", "50")
    assert code == 0 and b"<svg" in (tmp_path / "r.svg").read_bytes()[:400]


def test_training_result_draws_accuracy_per_epoch_and_core_load(cli, tmp_path: Path) -> None:
    assert cli("compile", EXAMPLES / "xor_backprop.nmc", "-o", tmp_path / "x.nmcb")[0] == 0
    assert cli("run", tmp_path / "x.nmcb", "--input", EXAMPLES / "xor.npz", "--test", EXAMPLES / "xor.npz",
               "--epochs", "5", "--out", tmp_path / "t.npz")[0] == 0
    r = dict(np.load(tmp_path / "t.npz"))
    got = dict(panels(r, 2000))
    assert list(got) == ["accuracy", "load"]
    assert set(got["accuracy"]) == {"training (spike readout)", "training (membrane readout)", "test (spike readout)"}
    assert got["load"]["synaptic ops"].shape == (r["core/spikes"].size,) and got["load"]["synaptic ops"].sum() > 0
    code, _, err = cli("plot", tmp_path / "t.npz", "-o", tmp_path / "t.png")
    assert code == 0 and (tmp_path / "t.png").read_bytes().startswith(PNG), err


def test_bad_plot_input_is_one_line_and_writes_nothing(cli, tmp_path: Path) -> None:
    np.savez(tmp_path / "empty.npz", accuracy=np.asarray(0.5))
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    np.savez(tmp_path / "ok.npz", accuracy=np.array([0.5, 0.75]))
    cases = [
        (["plot", tmp_path / "none.npz"], "result file '.*none.npz' does not exist"),
        (["plot", tmp_path / "junk.npz"], "'.*junk.npz' is not an .npz archive"),
        (["plot", tmp_path / "empty.npz"], "the result holds nothing to plot"),
        (["plot", tmp_path / "ok.npz", "-o", tmp_path / "ok.npz"], "would overwrite the result file"),
        (["plot", tmp_path / "ok.npz", "-o", tmp_path / "fig"], "has no extension to name the figure's format"),
        (["plot", tmp_path / "ok.npz", "-o", tmp_path / "fig.xyz"], "cannot write a 'xyz' figure"),
        (["plot", tmp_path / "ok.npz", "-o", tmp_path / "missing" / "f.png"], "directory '.*missing' does not exist"),
        (["plot", tmp_path / "ok.npz", "--max-steps", "0"], "--max-steps must be at least 1"),
    ]
    import re
    for args, pattern in cases:
        before = sorted(p.name for p in tmp_path.iterdir())
        code, _, err = cli(*args)
        assert code == 1 and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1 and re.search(pattern, err), (args, err)
        assert sorted(p.name for p in tmp_path.iterdir()) == before, args


def test_without_matplotlib_the_command_says_how_to_get_it(cli, tmp_path: Path, monkeypatch) -> None:
    np.savez(tmp_path / "ok.npz", accuracy=np.array([0.5, 0.75]))
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib now raises ImportError
    code, _, err = cli("plot", tmp_path / "ok.npz")
    assert code == 1 and err.strip() == "nmc: error: nmc plot needs matplotlib: pip install 'nmc[plot]' (or pip install matplotlib)"
    assert not (tmp_path / "ok.png").exists()
