"""Backprop circuits with two hidden layers: the construct expands for any depth, its weights
follow the deep golden model exactly, and it learns digits."""

from __future__ import annotations

import numpy as np
import pytest

from nmc.reference import golden_backprop as g1
from nmc.reference.golden_backprop_deep import DeepState, he_normal_all, train_sample
from nmc.driver import compile_network
from nmc.frontend.dsl import parse_dsl
from nmc.sim.loihi import LoihiInterpreter
from nmc.sim.schedule_runner import ScheduleRunner, train


def _src(sizes: list[int], seed: int, mode: str = "train", margin: float = 0.0, extra: str = "") -> str:
    names = ["x"] + [f"h{i}" for i in range(1, len(sizes) - 1)] + ["o"]
    pops = "".join(f"population {n}[{s}] : graded\n" for n, s in zip(names[1:], sizes[1:]))
    return (f"network deep\nseed {seed}\ninput x[{sizes[0]}]\ninput t[{sizes[-1]}]\n{pops}output o\n"
            f"learn backprop({' -> '.join(names)}, target = t, window = -1, margin = {margin},{extra} "
            f"weights = he_normal(seed = {seed}), mode = {mode})\n")


def test_deep_golden_equals_the_one_hidden_layer_golden() -> None:
    """Two independent transcriptions agree where both apply (one hidden layer)."""
    X, T, _, _ = g1.digits_data(seed=0)
    ref = g1.init_state(64, 30, 10, seed=5)
    deep = DeepState([ref.W1, ref.W2])
    for i in range(150):
        g1.train_sample(ref, X[i], T[i], lo=-1.0, hi=1.0)
        train_sample(deep, X[i], T[i])
        assert np.array_equal(deep.W[1], ref.W1) and np.array_equal(deep.W[2], ref.W2)
        assert np.array_equal(deep.Tp[2], ref.W2Tp) and np.array_equal(deep.Tm[2], ref.W2Tm)


@pytest.mark.parametrize("margin, lo_h, d_th", [(0.0, None, 0.0), (0.25, 0.0, 0.0625)])
def test_two_hidden_layers_follow_the_golden_model(margin: float, lo_h: float | None, d_th: float) -> None:
    X, T, _, _ = g1.digits_data(seed=0)
    sizes = [64, 40, 30, 10]
    hidden = ("" if lo_h is None else f" window_hidden = {lo_h},") + (f" error_threshold = {d_th}," if d_th else "")
    chip = LoihiInterpreter(compile_network(parse_dsl(_src(sizes, 3, margin=margin, extra=hidden)), "loihi"))
    gold = DeepState(he_normal_all(sizes, 3))
    run = ScheduleRunner(chip)
    data = {"x": X.astype(np.uint8), "t": T.astype(np.uint8)}
    names = {1: "bp/x->h1", 2: "h1->h2", 3: "h2->o"}
    extra = ["h2->bp/o_pos", "h2->bp/o_neg"] if margin else []   # the margin's copies of W3
    for i in range(120 if not margin else 60):
        train_sample(gold, X[i], T[i], margin=margin, lo_h=lo_h, d_th=d_th)
        run.present(data, np.array([i]), learn=True)
        run.drain()
        w = chip.plastic_weights()
        for l, nm in names.items():
            assert np.array_equal(w[nm], gold.W[l]), (i, nm)
        for nm in extra:
            assert np.array_equal(w[nm], gold.W[3]), (i, nm)
        assert np.array_equal(w["h3->bp/h2T"] if "h3->bp/h2T" in w else w["o->bp/h2T"], gold.Tp[3]), i
        assert np.array_equal(w["bp/h3T_minus->bp/h2T"], gold.Tm[3]), i
        assert np.array_equal(w["h2->bp/h1T"], gold.Tp[2]) and np.array_equal(w["bp/h2T_minus->bp/h1T"], gold.Tm[2]), i


def test_two_hidden_layers_learn_digits_on_the_chip() -> None:
    """448-200-100-10 on the thermometer-coded digits, two epochs on the chip (the golden model
    gives the same numbers; five epochs reach ~88 % spike / ~95 % membrane: bench/backprop_digits.py)."""
    X, T, Xt, Tt = g1.digits_thermometer(seed=0)
    chip = LoihiInterpreter(compile_network(parse_dsl(_src([448, 200, 100, 10], 1)), "loihi"))
    r = train(chip, {"x": X.astype(np.uint8), "t": T.astype(np.uint8)}, epochs=2,
              test={"x": Xt.astype(np.uint8), "t": Tt.astype(np.uint8)}, seed=1)
    assert r.test_accuracy[-1] >= 0.68, r.test_accuracy
    assert r.test_accuracy_membrane[-1] >= 0.78, r.test_accuracy_membrane


def test_deep_inference_compile() -> None:
    chip = LoihiInterpreter(compile_network(parse_dsl(_src([8, 6, 5, 3], 1, mode="inference")), "loihi"))
    assert chip.meta["schedule"]["cycle"] == 6 and not chip.plastic
