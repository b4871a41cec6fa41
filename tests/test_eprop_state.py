"""Checkpoints of e-prop runs on the SpiNNaker-like interpreter: state() in the middle of a batch
or of a trial, loaded into a fresh interpreter of the same binary, continues exactly as the
straight run does (spikes, probes, counters, plastic weights and every engine attribute)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from test_dsl_eprop import GOOD

from nmc.backend import emit_binary
from nmc.driver import run_passes
from nmc.errors import RunError
from nmc.frontend.dsl import parse_dsl
from nmc.sim.spinnaker import SpiNNakerInterpreter
from nmc.target import load_target

T = 100                                    # GOOD's trial: 100 ms at 1 ms
# GOOD with batches of 2 trials, inputs strong enough that r fires, and a firing-rate regulariser
# away from r's rate, so that a trial's spike counts, psi and zbar sums reach G too; probes of a
# learning and the readout population.
SRC = (GOOD.replace("feedback = random(seed = 1))", "feedback = random(seed = 1), rate_target = 50 Hz, "
                    "rate_reg = 0.5)").replace("x -> r : dense(weights = 1 nA", "x -> r : dense(weights = 4 nA")
       + "schedule batch = 2\nprobe y.v\nprobe r.spikes\nprobe r.v\n")
# Where the straight run stops and saves (trials 2 and 3 are the second batch): mid-trial at the
# start of the batch (trial 2, tick 60, inside the scored window); mid-trial with the batch's
# first trial learned from (trial 3, tick 60); at the end of trial 3 (its regulariser and the
# batch's update pending for the next tick); then the rest (the third batch's update included).
SEGMENTS = (260, 100, 40, 201)


def _binary(src: str = SRC) -> Any:
    target = load_target("spinnaker")
    return emit_binary(run_passes(parse_dsl(src), target), target)


def _inputs() -> list[dict[str, np.ndarray]]:
    steps = sum(SEGMENTS)
    rng = np.random.default_rng(5)
    x = (rng.random((steps, 4)) < 0.25).astype(np.uint8)
    t = np.zeros((steps, 2))
    t[:, 0] = ((np.arange(steps) // T) % 2 == 0)
    t[:, 1] = 1.0 - t[:, 0]
    out, start = [], 0
    for n in SEGMENTS:
        out.append({"x": x[start:start + n], "t": t[start:start + n]})
        start += n
    return out


def _everything(chip: SpiNNakerInterpreter) -> dict[str, Any]:
    """A copy of every array and number of the chip's e-prop engine, its blocks, its kernels, the
    deliveries and the SDRAM words, found by reflection (independently of the lists the engine
    saves), so that an attribute left out of state() shows here right after load_state()."""
    out: dict[str, Any] = {}

    def take(prefix: str, obj: Any) -> None:
        for name, v in vars(obj).items():
            if isinstance(v, np.ndarray):
                out[f"{prefix}{name}"] = v.copy()
            elif isinstance(v, (int, float, bool, np.integer, np.bool_)):
                out[f"{prefix}{name}"] = v
            elif isinstance(v, dict) and all(isinstance(x, (int, np.integer)) for x in v.values()):
                out[f"{prefix}{name}"] = dict(v)

    ep = chip.eprop
    take("eprop.", ep)
    take("learn.", ep.learn)
    take("out.", ep.out)
    for i, k in enumerate(chip.kernels):
        take(f"kernel{i}.", k)
    take("deliveries.", chip.deliveries)
    out["sdram_words"] = chip.sdram_words.copy()
    out["ring"], out["t"] = chip.ring.copy(), chip.t
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(b[key], a[key], err_msg=key)
            assert b[key].dtype == a[key].dtype, key
        else:
            assert b[key] == a[key], key


def _same_result(got: Any, want: Any) -> None:
    for name in want.spikes:
        np.testing.assert_array_equal(got.spikes[name], want.spikes[name], err_msg=name)
    assert sorted(got.probes) == sorted(want.probes)
    for name in want.probes:
        np.testing.assert_array_equal(got.probes[name], want.probes[name], err_msg=name)
    assert got.counters == want.counters
    assert got.overflow == want.overflow
    for key in want.per_core:
        np.testing.assert_array_equal(got.per_core[key], want.per_core[key], err_msg=key)


def test_an_eprop_state_saved_mid_batch_and_mid_trial_continues_exactly(tmp_path: Path) -> None:
    b = _binary()
    inputs = _inputs()
    straight = SpiNNakerInterpreter(b)
    assert straight.eprop.batch == 2
    w0 = straight.plastic_weights()
    saved, results, held = [], [], []
    for k, inp in enumerate(inputs):
        results.append(straight.run(SEGMENTS[k], inp))
        saved.append(straight.state())
        held.append(_everything(straight))
    ep = straight.eprop
    # The saved points are where they should be (SEGMENTS).
    first, middle, second = saved[0], saved[1], saved[2]
    assert int(first["eprop/trials_done"]) == 2 and int(first["eprop/ticks_in_trial"]) == 60
    assert bool(first["eprop/trial_learned"])
    assert int(middle["eprop/trials_done"]) == 3 and int(middle["eprop/ticks_in_trial"]) == 60
    assert int(second["eprop/trials_done"]) == 3 and int(second["eprop/ticks_in_trial"]) == T
    assert np.any(second["eprop/learn/grad"]) and np.any(second["eprop/out/grad"])
    assert np.any(first["eprop/learn/eps"]) and np.any(first["eprop/learn/ebar"])
    assert np.any(first["eprop/count"]) and np.any(first["eprop/L_now"]) and np.any(first["eprop/L_next"])
    # Every saved e-prop value differs from a fresh chip's at a save point, so that leaving one out
    # of state() changes what the resumed chip computes or holds; except the readout's eps~ and
    # ebar (it has none), the saturation counts (zeroed at the end of every run) and the synapse
    # types (no weight changed sign).
    fresh = SpiNNakerInterpreter(b).state()
    always = {"eprop/out/eps", "eprop/out/ebar", "eprop/saturation/eprop_state", "eprop/saturation/weight",
              "eprop/dlv_stype"}
    same = {key for key in fresh if key.startswith("eprop/")
            and all(np.array_equal(st[key], fresh[key]) for st in saved[:-1])}
    assert same == always
    assert ep.trials_done == 6 and sum(int(r.counters["eprop_trials"]) for r in results) == 6
    moved = [not np.array_equal(straight.plastic_weights()[p], w0[p]) for p in w0]
    assert all(moved), "learning moved no weight: the test would not see a lost weight update"
    assert any(r.probes["r.spikes"].sum() > 0 for r in results)
    # No objects: np.savez stores the state and np.load reads it back without pickling.
    for k in range(len(SEGMENTS) - 1):
        np.savez(tmp_path / f"s{k}.npz", **saved[k])
        with np.load(tmp_path / f"s{k}.npz", allow_pickle=False) as z:
            loaded = {key: z[key] for key in z.files}
        resumed = SpiNNakerInterpreter(b)
        resumed.load_state(loaded)
        _same(held[k], _everything(resumed))            # the chip as it was, attribute by attribute
        for j in range(k + 1, len(inputs)):
            _same_result(resumed.run(SEGMENTS[j], inputs[j]), results[j])
            got = resumed.state()
            assert sorted(got) == sorted(saved[j])
            for key, value in saved[j].items():
                np.testing.assert_array_equal(got[key], value, err_msg=key)
                assert got[key].dtype == value.dtype, key
            _same(held[j], _everything(resumed))
        for p, w in straight.plastic_weights().items():
            np.testing.assert_array_equal(resumed.plastic_weights()[p], w, err_msg=p)


def test_an_eprop_state_of_another_binary_is_refused_and_changes_nothing() -> None:
    inputs = _inputs()
    chip = SpiNNakerInterpreter(_binary())
    chip.run(SEGMENTS[0], inputs[0])
    before = chip.state()
    bigger = SpiNNakerInterpreter(_binary(SRC.replace("population r[5]", "population r[6]")))
    bigger.run(SEGMENTS[0], inputs[0])
    no_eprop = SpiNNakerInterpreter(_binary("dt = 1 ms\ninput x[4]\npopulation h[3] : lif(tau_m = 20 ms)\n"
                                            "connect x -> h : dense(weights = 1 nA)\n"))
    for other in (bigger.state(), no_eprop.state()):
        with pytest.raises(RunError, match="does not belong to this binary"):
            chip.load_state(other)
        after = chip.state()
        assert sorted(after) == sorted(before)
        for key, value in before.items():
            np.testing.assert_array_equal(after[key], value, err_msg=key)
    with pytest.raises(RunError, match="does not belong to this binary"):
        no_eprop.load_state(before)
    changed = dict(before)
    changed["eprop/trial_learned"] = np.array(1, dtype=np.int64)     # a bool saved as another dtype
    with pytest.raises(RunError, match="'eprop/trial_learned' is int64"):
        chip.load_state(changed)
