"""Checkpoint and resume: the interpreter's state round trip, and training runs (XOR from the CLI,
stopped by a real SIGTERM; a digits run stopped mid-epoch) that end, once resumed, exactly as
runs that were never stopped."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from checkpoint_helpers import run_stopped_by_sigterm, same_result
from conftest import SMALL
from nmc.reference.golden_backprop import digits_data
from nmc.driver import compile_network
from nmc.errors import RunError
from nmc.frontend.dsl import parse_dsl
from nmc.sim.checkpoint import CheckpointDir, TrainingInterrupted
from nmc.sim.loihi import LoihiInterpreter
from nmc.sim.schedule_runner import Training, train

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Traces with a fractional decay and impulse, and a rule with a fraction: every step draws from
# the learning engine's generator, so a state without it (or without the traces) would diverge.
STDP = """network stdp_state
seed 11
input pre[30]
population post[12] : cuba_lif(decay_u = 1024, decay_v = 256, threshold = 300, refractory = 3)
rule pair = learning(dw = "2^-2*x1*y0 - 2^-1*y1*x0", x1 = trace(impulse = 21.3, tau = 5), y1 = trace(impulse = 17.7, tau = 3))
connect pre -> post : dense(weights = randint(0, 40), rule = pair, delay = 2)
connect post -> post : one_to_all(weights = -60, delay = 1)
probe post.v
probe post.spikes
"""


def _chip(src: str) -> LoihiInterpreter:
    return LoihiInterpreter(compile_network(parse_dsl(src), "loihi"))


def _same_run(a, b) -> None:
    for part in ("spikes", "probes", "counters", "overflow"):
        x, y = getattr(a, part), getattr(b, part)
        assert x.keys() == y.keys(), part
        for k in x:
            assert np.array_equal(x[k], y[k]), f"{part}/{k}"


@pytest.mark.parametrize("src", [STDP, SMALL], ids=["stdp-traces", "recurrent-delays"])
def test_state_round_trip_continues_bit_for_bit(src: str) -> None:
    rng = np.random.default_rng(4)
    chip = _chip(src)
    port, size = next(iter(chip.port_size.items()))
    first, second = ((rng.random((n, size)) < 0.3).astype(np.uint8) for n in (157, 150))
    chip.run(157, {port: first})
    saved = chip.state()
    want = chip.run(150, {port: second})
    again = _chip(src)
    again.load_state(saved)
    got = again.run(150, {port: second})
    _same_run(want, got)
    for k, w in chip.plastic_weights().items():
        assert np.array_equal(w, again.plastic_weights()[k]), k
    assert again.t == chip.t == 307
    # The saved state matters: without it the continuation differs.
    assert not np.array_equal(_chip(src).run(150, {port: second}).probes[next(iter(want.probes))],
                              want.probes[next(iter(want.probes))])


def test_state_of_another_binary_is_refused_and_changes_nothing() -> None:
    chip, other = _chip(STDP), _chip(SMALL)
    before = chip.state()
    with pytest.raises(RunError, match="does not belong to this binary"):
        chip.load_state(other.state())
    bad = dict(before)
    bad["u"] = bad["u"][:-1]
    with pytest.raises(RunError, match=r"'u' is int64\[11\], expected int64\[12\]"):
        chip.load_state(bad)
    assert all(np.array_equal(before[k], v) for k, v in chip.state().items())


def _results_equal(a: Training, b: Training) -> None:
    x, y = a.to_npz_dict(), b.to_npz_dict()
    assert x.keys() == y.keys()
    for k in x:
        assert np.array_equal(x[k], y[k]), k


def _digits_src() -> str:
    return ("network digits_bp\nseed 3\ninput x[64]\ninput t[10]\npopulation h[24] : graded\n"
            "population o[10] : graded\noutput o\n"
            "learn backprop(x -> h -> o, target = t, window = -1, weights = he_normal(seed = 3))\n")


def test_digits_run_stopped_mid_epoch_resumes_to_the_same_result(tmp_path: Path) -> None:
    """SIGINT in the middle of epoch 2 (raised from inside the interpreter's run): the epoch is
    dropped, the checkpoint keeps epoch 1, and the resumed run ends with the weights, per-epoch
    accuracies, averaged weights and counters of a run that went straight through."""
    X, T, Xt, Tt = digits_data(seed=0)
    data = {"x": X[:80].astype(np.uint8), "t": T[:80].astype(np.uint8)}
    test = {"x": Xt[:30].astype(np.uint8), "t": Tt[:30].astype(np.uint8)}
    kw = {"epochs": 3, "test": test, "seed": 5, "average_last": 2}
    straight = train(_chip(_digits_src()), data, **kw)
    per_epoch = 80 * 12 + 12 + 30 * 12 + 12  # training presentations, drain, test, drain
    steps = {"n": 0}

    def interrupt_in_epoch_2(k: int) -> None:
        steps["n"] += k
        if steps["n"] == per_epoch + 500:
            os.kill(os.getpid(), signal.SIGINT)

    ck = tmp_path / "ck"
    with pytest.raises(TrainingInterrupted, match=r"SIGINT during epoch 2 of 3: that epoch is dropped; .* holds "
                                                  r"the state after epoch 1") as info:
        train(_chip(_digits_src()), data, checkpoint=ck, progress=interrupt_in_epoch_2, **kw)
    assert info.value.signum == signal.SIGINT
    assert CheckpointDir(ck).read(meta_only=True)[1]["epoch"] == 1
    resumed = train(_chip(_digits_src()), data, resume=ck, **kw)
    _results_equal(straight, resumed)
    assert len(resumed.test_accuracy) == 3 and resumed.average_epochs == 2
    # The checkpoint now holds the end; resuming it again trains nothing and gives the same.
    _results_equal(straight, train(_chip(_digits_src()), data, resume=ck, **kw))


def test_resume_refuses_what_does_not_match(tmp_path: Path) -> None:
    X, T, _, _ = digits_data(seed=0)
    data = {"x": X[:30].astype(np.uint8), "t": T[:30].astype(np.uint8)}
    ck = tmp_path / "ck"
    train(_chip(_digits_src()), data, epochs=2, seed=1, checkpoint=ck)
    with pytest.raises(RunError, match="already holds a checkpoint; continue it with --resume"):
        train(_chip(_digits_src()), data, epochs=2, seed=1, checkpoint=ck)
    with pytest.raises(RunError, match="was made with other training data"):
        train(_chip(_digits_src()), {"x": data["x"][::-1], "t": data["t"]}, epochs=3, seed=1, resume=ck)
    with pytest.raises(RunError, match="was made with another binary"):
        train(_chip(_digits_src().replace("seed = 3", "seed = 4")), data, epochs=3, seed=1, resume=ck)
    with pytest.raises(RunError, match="was made with seed 1, this run has 2"):
        train(_chip(_digits_src()), data, epochs=3, seed=2, resume=ck)
    with pytest.raises(RunError, match="is at epoch 2, past the 1 epoch"):
        train(_chip(_digits_src()), data, epochs=1, seed=1, resume=ck)
    with pytest.raises(RunError, match="holds no checkpoint.npz"):
        train(_chip(_digits_src()), data, epochs=3, seed=1, resume=tmp_path)


def test_xor_cli_stopped_by_sigterm_resumes_to_the_same_result(cli, tmp_path: Path) -> None:
    """`nmc run --checkpoint` as a process, stopped by a real SIGTERM: exit status 143, one line
    naming the epoch kept, no traceback; `--resume` then ends with the RESULT.npz of a straight run."""
    binary = tmp_path / "xor.nmcb"
    assert cli("compile", EXAMPLES / "xor_backprop.nmc", "-o", binary)[0] == 0
    epochs = "150"
    args = ["run", binary, "--input", EXAMPLES / "xor.npz", "--test", EXAMPLES / "xor.npz", "--epochs", epochs,
            "--average-last", "4"]
    assert cli(*args, "--out", tmp_path / "straight.npz")[0] == 0
    ck = tmp_path / "ck"
    epoch, code, out, err = run_stopped_by_sigterm(args, ck, tmp_path / "stopped.npz", timeout=60)
    assert 1 <= epoch < int(epochs), f"the run was not caught mid-way (checkpoint at epoch {epoch})"
    assert code == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and not (tmp_path / "stopped.npz").exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nmc: interrupted by SIGTERM "), err
    kept = CheckpointDir(ck).read(meta_only=True)[1]["epoch"]
    assert f"holds the state after epoch {kept} (continue with --resume {ck})" in lines[0]
    assert not [p for p in ck.iterdir() if p.name != "checkpoint.npz"]   # no temporary file left
    code, text, err = cli(*args, "--resume", ck, "--out", tmp_path / "resumed.npz")
    assert code == 0, err
    assert f"resuming '{ck}' after epoch {kept} of {epochs}" in text
    same_result(tmp_path / "straight.npz", tmp_path / "resumed.npz")


def test_checkpoint_flags_need_a_learning_schedule(cli, small_src: Path, tmp_path: Path) -> None:
    assert cli("compile", small_src, "-o", tmp_path / "s.nmcb")[0] == 0
    np.savez(tmp_path / "in.npz", x=np.zeros((10, 20), np.uint8))
    code, _, err = cli("run", tmp_path / "s.nmcb", "--input", tmp_path / "in.npz", "--checkpoint", tmp_path / "ck")
    assert code == 1 and err.strip() == (f"nmc: error: --checkpoint needs a binary with a learning schedule; "
                                         f"'{tmp_path / 's.nmcb'}' has none")


def test_damaged_checkpoint_is_one_line(cli, tmp_path: Path) -> None:
    binary = tmp_path / "xor.nmcb"
    assert cli("compile", EXAMPLES / "xor_backprop.nmc", "-o", binary)[0] == 0
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = cli("run", binary, "--input", EXAMPLES / "xor.npz", "--resume", tmp_path / "ck")
    assert code == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "cannot read checkpoint" in err, err
    # A readable file with a forged meta document: still one line.
    from nmc.sim.checkpoint import json_array
    for meta, msg in (({"kind": "nmc-training-checkpoint", "format": 1, "epoch": "x"}, "is damaged: its epoch is 'x'"),
                      ({"kind": "something else"}, "is not an nmc training checkpoint"),
                      ({"kind": "nmc-training-checkpoint", "format": 99, "epoch": 1}, "has format 99")):
        np.savez(tmp_path / "ck" / "checkpoint.npz", **{"meta.json": json_array(meta)})
        code, _, err = cli("run", binary, "--input", EXAMPLES / "xor.npz", "--resume", tmp_path / "ck")
        assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and msg in err, err
