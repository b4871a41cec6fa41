"""convert-ann and what it needs downstream: reset by subtraction on the Loihi-like compartment,
sigma-delta units on loihi2, the host's encoding and readout, and nmc compile/run on ONNX files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmc.conversion.ann import predict
from nmc.driver import compile_network, load_network, run_passes
from nmc.frontend.dsl import parse_dsl
from nmc.sim import interpreter_for
from nmc.sim.runner import run_session
from nmc.target import load_target

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# -- reset by subtraction on the Loihi-like chip -------------------------------------------------
SOFT = """\
network soft
dt = 1 ms
input x[1]
population n[5] : if(soft_reset = 1, init_charge = 0.5, v_th = 1 mV, i_bias = npz("bias.npz", "b"))
output n
"""


def test_soft_reset_counts_round_the_integrated_input(tmp_path: Path) -> None:
    """With reset by subtraction and half a threshold of initial charge, n spikes after T steps of
    a constant bias b (applied from step 1) are round((T - 1) b): nothing above threshold is lost.
    The current register's leak of 1/4096 per step costs at most a fraction of a spike here."""
    bias = np.array([0.05, 0.13, 0.37, 0.5, 0.91])
    np.savez(tmp_path / "bias.npz", b=bias)
    (tmp_path / "soft.nmc").write_text(SOFT)
    net = parse_dsl(SOFT, filename=str(tmp_path / "soft.nmc"))
    chip = interpreter_for(compile_network(net, "loihi"))
    steps = 200
    counts = chip.run(steps, {}).spikes["n"].sum(axis=0)
    assert np.all(np.abs(counts - np.round((steps - 1) * bias)) <= 1), counts
    # A hard reset (v = 0) would lose the charge above threshold at every spike: fewer spikes.
    hard = parse_dsl(SOFT.replace("soft_reset = 1, init_charge = 0.5, ", ""), filename=str(tmp_path / "soft.nmc"))
    hard_counts = interpreter_for(compile_network(hard, "loihi")).run(steps, {}).spikes["n"].sum(axis=0)
    assert hard_counts[2] <= counts[2] - 6  # b = 0.37: a hard reset fires every 3 steps (66), not 74


def test_soft_reset_registers(tmp_path: Path) -> None:
    np.savez(tmp_path / "bias.npz", b=np.full(5, 0.25))
    net = parse_dsl(SOFT, filename=str(tmp_path / "soft.nmc"))
    net = run_passes(net, load_target("loihi"), "verify,map-neurons")
    pop = net.population("n")
    assert pop.model == "cuba_lif"
    assert (pop.params["decay_u"], pop.params["decay_v"], pop.params["threshold"]) == (0, 4096, 512)
    self_proj = next(p for p in net.projections if p.pre == p.post == "n")
    np.testing.assert_array_equal(self_proj.weights, np.full(5, -1024.0))  # -2^16 in u: one threshold span
    bias_proj = next(p for p in net.projections if p.pre == "n/bias")
    np.testing.assert_array_equal(bias_proj.weights, np.full((1, 5), 256.0))


def test_soft_reset_needs_an_instant_synapse(tmp_path: Path) -> None:
    from nmc.errors import IrError
    np.savez(tmp_path / "bias.npz", b=np.zeros(5))
    net = parse_dsl(SOFT.replace("soft_reset = 1,", "soft_reset = 1, tau_syn = 5 ms,"), filename=str(tmp_path / "s.nmc"))
    with pytest.raises(IrError, match="realises soft_reset = 1 with its current register as the integrator"):
        run_passes(net, load_target("loihi"), "verify,map-neurons")


# -- the conversions ------------------------------------------------------------------------------
def _compile(path: Path, target: str, digits: dict, **kw) -> object:
    return compile_network(load_network(path), target, calibration={"input": digits["x_train"]}, **kw)


@pytest.mark.parametrize("target", ["loihi", "loihi2"])
def test_converted_accuracy_matches_the_float_network(mlp_path: Path, digits: dict, target: str) -> None:
    float_acc = float(np.mean(predict(load_network(mlp_path), {"input": digits["x"]}) == digits["y"]))
    binary = _compile(mlp_path, target, digits)
    s = run_session(interpreter_for(binary), {"input": digits["x"], "labels": digits["y"]}, None)
    assert s.accuracy >= float_acc - (0.02 if target == "loihi" else 0.005), (s.accuracy, float_acc)
    assert binary.meta["encoding"]["kind"] == ("rate" if target == "loihi" else "graded")


def test_sigma_delta_readout_equals_the_float_outputs(mlp_path: Path, digits: dict) -> None:
    """After depth + 1 steps the sigma-delta network holds every activation to within its threshold
    (2^-10 of the layer's scale) and its weights to 8 bits: the readout is the float network's
    output to within 2 % of the output scale (the weights' rounding is most of it)."""
    from nmc.conversion.ann import forward, output_population
    binary = _compile(mlp_path, "loihi2", digits)
    s = run_session(interpreter_for(binary), {"input": digits["x"][:50]}, None)
    net = load_network(mlp_path)
    want = forward(net, {"input": digits["x"][:50]}).y[output_population(net).name][:, -1]
    scale = float(binary.meta["readout"]["unit"])
    assert np.max(np.abs(s.readout - want)) < 0.02 * scale
    wrong = s.readout + 0.05 * scale * np.sign(np.random.default_rng(0).normal(size=s.readout.shape))
    assert np.max(np.abs(wrong - want)) >= 0.02 * scale  # the bound is not vacuous


def test_cli_compile_and_run_an_onnx_model(cli, mlp_path: Path, digits: dict, tmp_path: Path) -> None:
    calib, data = tmp_path / "calib.npz", tmp_path / "test.npz"
    np.savez(calib, input=digits["x_train"])
    np.savez(data, input=digits["x"], labels=digits["y"])
    out = tmp_path / "m.nmcb"
    code, _, err = cli("compile", mlp_path, "--target", "loihi", "--calibrate", calib, "-o", out,
                       "--print-ir-after", "convert-ann")
    assert code == 0, err
    dump = err.split("// -----// IR Dump After convert-ann //----- //")[1]
    assert 'model = "if"' in dump and "soft_reset = 1" in dump and 'model = "relu"' not in dump
    code, stdout, err = cli("run", out, "--input", data, "--out", tmp_path / "r.npz")
    assert code == 0, err
    with np.load(tmp_path / "r.npz") as r:
        assert 0.85 <= float(r["accuracy"]) <= 1.0
        assert r["readout"].shape == (len(digits["y"]), 10)
    assert "accuracy" in stdout


def test_calibration_problems_are_one_line(cli, mlp_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, pixels=np.zeros((3, 64)))
    code, _, err = cli("compile", mlp_path, "--calibrate", bad, "-o", tmp_path / "x.nmcb")
    assert code == 1  # after the import's remarks (the Softmax it removed), one error line
    assert [line for line in err.splitlines() if "error" in line] == [
        "nmc: error: the calibration data has no array 'input' for the network's input (it has: pixels)"]
    neg = tmp_path / "neg.npz"
    np.savez(neg, input=-np.ones((3, 64)))
    code, _, err = cli("compile", mlp_path, "--target", "loihi", "--calibrate", neg, "-o", tmp_path / "x.nmcb")
    assert code == 1 and err.splitlines()[-1].startswith("convert-ann: error: rate coding needs non-negative inputs")
    code, _, err = cli("compile", mlp_path, "-o", tmp_path / "x.nmcb")
    assert code == 0 and "convert-ann: warning: no calibration data" in err


def test_run_checks_the_real_input_shape(cli, mlp_path: Path, digits: dict, tmp_path: Path) -> None:
    out = tmp_path / "m.nmcb"
    assert cli("compile", mlp_path, "--target", "loihi2", "-o", out)[0] == 0
    data = tmp_path / "d.npz"
    np.savez(data, input=np.zeros((4, 63)))
    code, _, err = cli("run", out, "--input", data)
    assert code == 1
    assert err == "nmc: error: input 'input' must hold real values shaped (samples, 64) (one row per sample), got (4, 63)\n"


def test_onnx_example_out_of_the_box(cli, tmp_path: Path) -> None:
    """examples/onnx: make the models, compile each for both targets, run the held-out digits."""
    shutil.copy(EXAMPLES / "onnx" / "make_models.py", tmp_path)
    subprocess.run([sys.executable, str(tmp_path / "make_models.py"), "--epochs", "8", "--out-dir", str(tmp_path)],
                   check=True, capture_output=True)
    for model in ("digits_mlp", "digits_cnn"):
        for target in ("loihi", "loihi2"):
            out = tmp_path / f"{model}_{target}.nmcb"
            code, _, err = cli("compile", tmp_path / f"{model}.onnx", "--target", target, "--calibrate",
                               tmp_path / "digits_calib.npz", "-o", out)
            assert code == 0, err
            code, stdout, err = cli("run", out, "--input", tmp_path / "digits_test.npz", "--out", tmp_path / "r.npz")
            assert code == 0, err
            with np.load(tmp_path / "r.npz") as r:
                assert float(r["accuracy"]) > 0.85, (model, target, float(r["accuracy"]))


def test_a_renamed_copy_of_loihi2_compiles_and_runs_identically(mlp_path: Path, digits: dict, tmp_path: Path) -> None:
    """Targets are data plus parts: loihi2.toml under another name gives the same binary but for the
    name, and the same run."""
    text = (Path(__file__).resolve().parents[1] / "targets" / "loihi2.toml").read_text()
    copy = tmp_path / "graded_copy.toml"
    copy.write_text(text.replace('name = "loihi2"', 'name = "graded_copy"'))
    a = _compile(mlp_path, "loihi2", digits)
    b = _compile(mlp_path, str(copy), digits)
    assert (a.target, b.target) == ("loihi2", "graded_copy") and a.meta == b.meta
    assert a.sections.keys() == b.sections.keys()
    assert all(np.array_equal(a.sections[k], b.sections[k]) for k in a.sections)
    ra = run_session(interpreter_for(a), {"input": digits["x"][:20]}, None)
    rb = run_session(interpreter_for(b), {"input": digits["x"][:20]}, None)
    np.testing.assert_array_equal(ra.readout, rb.readout)
