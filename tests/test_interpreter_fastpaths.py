"""The interpreter's shortcuts change nothing: merged plastic copies, whole-row weight updates and
accounting by source class give the same weights, spikes and counters as the plain paths."""

from __future__ import annotations

import numpy as np
import pytest

import nmc.sim.loihi as loihi
from nmc.driver import compile_network
from nmc.ir import Network, Population, Projection
from nmc.sim.loihi import LoihiInterpreter

FOLLOWER = {"decay_u": 4095, "decay_v": 4096, "threshold": 50, "bias": 0, "refractory": 1}


def _copies_net(rule: str, n_pre: int = 12, n_post: int = 9, seed: int = 0) -> Network:
    """x -> y1, x -> y2 (same rule: mergeable), x -> y1 again (overlaps y1: not with it), each
    post population driven by its own port so that post spikes can be placed at random."""
    rng = np.random.default_rng(seed)
    net = Network("copies", {"seed": 5})
    net.add_population(Population("x", n_pre, "input", role="input"))
    for name in ("y1", "y2"):
        net.add_population(Population(name, n_post, "cuba_lif", dict(FOLLOWER)))
        net.add_population(Population(f"d_{name}", n_post, "input", role="input"))
        net.add_projection(Projection(f"d_{name}->{name}", f"d_{name}", name, "one_to_one", np.full(n_post, 100.0)))
    learning = {"rule": rule, "epoch": 1, "traces": {}}
    for name, post in (("a", "y1"), ("b", "y2"), ("c", "y1")):
        w0 = 2 * rng.integers(-10, 10, size=(n_pre, n_post))
        net.add_projection(Projection(name, "x", post, "dense", w0.astype(float), learning=dict(learning)))
    return net


def _inputs(steps: int, n_pre: int = 12, n_post: int = 9, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Dense and sparse post activity both occur, so both update paths (whole rows, elements) run.
    p_post = np.where(np.arange(steps)[:, None] % 2 == 0, 0.6, 0.1)
    return {"x": (rng.random((steps, n_pre)) < 0.5).astype(float),
            "d_y1": (rng.random((steps, n_post)) < p_post).astype(float),
            "d_y2": (rng.random((steps, n_post)) < p_post).astype(float)}


def _run(net: Network, steps: int, monkeypatch: pytest.MonkeyPatch | None = None, plain: bool = False):
    if plain:
        assert monkeypatch is not None
        monkeypatch.setattr(LoihiInterpreter, "_plastic_units", staticmethod(lambda plastic, n_cx: list(plastic)))
        monkeypatch.setattr(loihi, "_MAX_SOURCE_CLASSES", 0)
    chip = LoihiInterpreter(compile_network(net, "loihi"))
    res = chip.run(steps, _inputs(steps))
    return chip, res


@pytest.mark.parametrize("rule, merged", [("4*x0*y0 - 2*x0*y0", True), ("-2*x0*y0", True), ("1*x0*y0", False)])
def test_merged_copies_equal_separate_projections(rule: str, merged: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    net = _copies_net(rule)
    fast, r_fast = _run(net, 60)
    # a and b run as one unit; c shares y1 with a and stays apart. A rule with fractional
    # changes draws random numbers per synapse and is never merged.
    assert len(fast.plastic_units) == (2 if merged else 3)
    plain, r_plain = _run(net, 60, monkeypatch, plain=True)
    assert len(plain.plastic_units) == 3 and plain.src_class is None
    wf, wp = fast.plastic_weights(), plain.plastic_weights()
    assert wf.keys() == wp.keys() == {"a", "b", "c"}
    for name in wf:
        np.testing.assert_array_equal(wf[name], wp[name], err_msg=name)
    assert any(not np.array_equal(wf[n], w) for n, w in zip("abc", _initial(net)))  # learning happened
    assert r_fast.counters == r_plain.counters
    for key in r_fast.per_core:
        np.testing.assert_array_equal(r_fast.per_core[key], r_plain.per_core[key])
    assert r_fast.overflow == r_plain.overflow


def _initial(net: Network) -> list[np.ndarray]:
    by_name = {p.name: p for p in net.projections}
    return [np.asarray(by_name[n].weights).astype(np.int64) for n in "abc"]


def test_saturation_is_counted_the_same_on_the_row_path(monkeypatch: pytest.MonkeyPatch) -> None:
    net = _copies_net("32*x0*y0", seed=3)      # +32 per coincidence: weights reach 254 quickly
    fast, r_fast = _run(net, 80)
    plain, r_plain = _run(net, 80, monkeypatch, plain=True)
    assert r_fast.overflow["weight_saturation"] == r_plain.overflow["weight_saturation"] > 0
    for name, w in fast.plastic_weights().items():
        np.testing.assert_array_equal(w, plain.plastic_weights()[name])
        assert w.max() == 254


def test_accounting_without_classes_equals_accounting_by_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources without classes are accounted per spike, by expanding each spiking source's (core,
    count) entries; that gives the counters of the class path."""
    from conftest import SMALL
    from nmc.frontend.dsl import parse_dsl
    from nmc.target import Target, load_target

    base = load_target("loihi")
    data = {**base.data, "core": {**base.data["core"], "max_compartments": 4}}   # many cores
    binary = compile_network(parse_dsl(SMALL), Target(name="loihi", data=data, source="small cores"))
    inputs = {"x": (np.random.default_rng(2).random((120, 20)) < 0.3).astype(np.uint8)}
    by_class = LoihiInterpreter(binary)
    assert by_class.src_class is not None and by_class.n_cores > 8
    want = by_class.run(120, inputs)
    monkeypatch.setattr(loihi, "_MAX_SOURCE_CLASSES", 0)
    chip = LoihiInterpreter(binary)
    assert chip.src_class is None
    got = chip.run(120, inputs)
    assert want.counters["synaptic_ops"] > 0
    assert got.counters == want.counters
    for key in want.per_core:
        np.testing.assert_array_equal(got.per_core[key], want.per_core[key], err_msg=key)


def test_per_core_counts_give_a_core_without_compartments_zero() -> None:
    """Activity per core from per-compartment bits, also for cores that hold no compartment (in the
    middle and at the end of the table), against a plain loop."""
    from nmc.sim.loihi import per_core_counts

    rng = np.random.default_rng(0)
    bits = rng.random((7, 10)) < 0.5
    for offsets in ([0, 3, 3, 7, 10], [0, 4, 10, 10], [0, 0, 10], [0, 10]):
        off = np.array(offsets)
        want = np.stack([bits[:, a:b].sum(axis=1) for a, b in zip(off[:-1], off[1:])], axis=1)
        np.testing.assert_array_equal(per_core_counts(bits, off), want, err_msg=str(offsets))
    assert per_core_counts(np.zeros((3, 0), dtype=bool), np.array([0, 0])).shape == (3, 1)
