"""Checkpoint and resume of e-prop runs (nmc run --epochs E --checkpoint/--resume on a binary that
learns trial by trial; nmc/sim/trial_runner.py): a run stopped at an epoch boundary, or by a real
SIGTERM in the middle of an epoch, ends once resumed with exactly the RESULT.npz of a run that went
straight through; resuming with another binary or other data is one line."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np

from checkpoint_helpers import run_stopped_by_sigterm, same_result
from test_dsl_eprop import GOOD, _one_line_error
from nmc.sim.checkpoint import CheckpointDir


def _setup(cli, tmp_path: Path, trials: int = 6, steps: int = 100, seed: int = 0) -> tuple[Path, Path]:
    src = tmp_path / "ep.nmc"
    src.write_text(GOOD + "probe y.v\noutput r\n")   # output r: spikes and accuracy of the last epoch
    binary = tmp_path / "ep.nmcb"
    assert cli("compile", src, "--target", "spinnaker", "-o", binary)[0] == 0
    rng = np.random.default_rng(seed)
    x = (rng.random((trials, steps, 4)) < 0.2).astype(np.uint8)
    t = np.zeros((trials, steps, 2))
    t[:, :, 0] = 1.0
    data = tmp_path / f"data{seed}.npz"
    np.savez(data, x=x, t=t, labels=np.zeros(trials, dtype=np.int64))
    return binary, data


def test_eprop_run_resumed_from_a_checkpoint_ends_as_a_straight_run(cli, tmp_path: Path) -> None:
    binary, data = _setup(cli, tmp_path)
    run = ("run", binary, "--input", data)
    code, straight, err = cli(*run, "--epochs", "3", "--out", tmp_path / "straight.npz")
    assert code == 0, err
    r = np.load(tmp_path / "straight.npz")
    assert int(r["epochs"]) == 3 and int(r["eprop_trials"]) == 17          # totals of all epochs
    assert r["probe/y.v"].shape[0] == 6 and r["spikes/r"].shape[0] == 6     # the last epoch's trials
    assert "weights/x->r" in r.files and "accuracy" in r.files
    ck = tmp_path / "ck"
    code, out, err = cli(*run, "--epochs", "1", "--checkpoint", ck, "--out", tmp_path / "one.npz")
    assert code == 0, err
    assert CheckpointDir(ck).read(meta_only=True)[1]["epoch"] == 1
    code, out, err = cli(*run, "--epochs", "3", "--resume", ck, "--out", tmp_path / "resumed.npz")
    assert code == 0, err
    assert f"resuming '{ck}' after epoch 1 of 3" in out
    assert "epoch 2/3" in out and "epoch 1/3" not in out
    same_result(tmp_path / "straight.npz", tmp_path / "resumed.npz")
    assert out[out.index("nmc run:"):] == straight[straight.index("nmc run:"):]   # the same summary
    # A checkpoint at the last epoch resumes to the same result without running.
    code, out, err = cli(*run, "--epochs", "3", "--resume", ck, "--out", tmp_path / "again.npz")
    assert code == 0 and "epoch 3/3" not in out, err
    same_result(tmp_path / "straight.npz", tmp_path / "again.npz")
    # One epoch with --checkpoint is the plain one-epoch run.
    assert cli(*run, "--out", tmp_path / "plain.npz")[0] == 0
    same_result(tmp_path / "plain.npz", tmp_path / "one.npz")


def test_eprop_run_stopped_by_sigterm_in_epoch_2_resumes_to_thesame_result(cli, tmp_path: Path) -> None:
    binary, data = _setup(cli, tmp_path, trials=30, steps=200)
    epochs = "5"
    args = ["run", binary, "--input", data, "--epochs", epochs]
    assert cli(*args, "--out", tmp_path / "straight.npz")[0] == 0
    ck = tmp_path / "ck"
    epoch, code, out, err = run_stopped_by_sigterm(args, ck, tmp_path / "stopped.npz", timeout=120)
    assert epoch == 1, f"the run was not caught in epoch 2 (checkpoint at epoch {epoch})"
    assert code == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and not (tmp_path / "stopped.npz").exists()
    lines = err.strip().splitlines()
    # The signal lands in epoch 2, or, when the saver is still returning from epoch 1's write
    # (the file already renamed into place), just after epoch 1: either way epoch 1 is kept.
    kept = f"'{ck}' holds the state after epoch 1 (continue with --resume {ck})"
    assert lines in ([f"nmc: interrupted by SIGTERM during epoch 2 of {epochs}: that epoch is dropped; {kept}"],
                     [f"nmc: interrupted by SIGTERM after epoch 1 of {epochs}; {kept}"]), err
    assert not [p for p in ck.iterdir() if p.name != "checkpoint.npz"]   # no temporary file left
    code, text, err = cli(*args, "--resume", ck, "--out", tmp_path / "resumed.npz")
    assert code == 0, err
    assert f"resuming '{ck}' after epoch 1 of {epochs}" in text
    same_result(tmp_path / "straight.npz", tmp_path / "resumed.npz")


def test_eprop_resume_with_other_data_or_another_binary_is_one_line(cli, tmp_path: Path) -> None:
    binary, data = _setup(cli, tmp_path)
    ck = tmp_path / "ck"
    assert cli("run", binary, "--input", data, "--epochs", "1", "--checkpoint", ck)[0] == 0
    _, other = _setup(cli, tmp_path, seed=1)
    err = _one_line_error(cli, "run", binary, "--input", other, "--epochs", "2", "--resume", ck)
    assert f"checkpoint '{ck}' was made with other training data; resume with the same binary and data" in err
    src = tmp_path / "ep2.nmc"
    src.write_text(GOOD.replace("eta = 0.1", "eta = 0.2"))
    assert cli("compile", src, "--target", "spinnaker", "-o", tmp_path / "ep2.nmcb")[0] == 0
    err = _one_line_error(cli, "run", tmp_path / "ep2.nmcb", "--input", data, "--epochs", "2", "--resume", ck)
    assert f"checkpoint '{ck}' was made with another binary; resume with the same binary and data" in err
    err = _one_line_error(cli, "run", binary, "--input", data, "--epochs", "2", "--checkpoint", ck)
    assert "already holds a checkpoint" in err
    err = _one_line_error(cli, "run", binary, "--input", data, "--epochs", "2", "--steps", "50", "--resume", ck)
    assert f"checkpoint '{ck}' was made with --steps None, this run has 50" in err
