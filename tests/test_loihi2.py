"""The Loihi-2-like interpreter: the Loihi-1 datapath unchanged, and the sdn unit and graded
routing equal to an independent numpy transcription of their equations (docs/interpreter.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmc.driver import compile_network, load_network
from nmc.ir.network import Network, Population, Probe, Projection
from nmc.sim import interpreter_for

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PIPELINE = "verify,quantize,partition,allocate"


def test_loihi1_networks_run_the_same_on_loihi2() -> None:
    net = load_network(EXAMPLES / "recurrent" / "ei_network.nmc")
    a = interpreter_for(compile_network(net, "loihi")).run(300, {})
    b = interpreter_for(compile_network(load_network(EXAMPLES / "recurrent" / "ei_network.nmc"), "loihi2")).run(300, {})
    assert a.spikes.keys() == b.spikes.keys()
    for k in a.spikes:
        assert a.spikes[k].sum() > 0
        np.testing.assert_array_equal(a.spikes[k], b.spikes[k])


def _sdn_net(w1: np.ndarray, w2: np.ndarray, p1: dict, p2: dict) -> Network:
    net = Network("sdn")
    x = net.add_population(Population("x", w1.shape[0], "input", role="input"))
    x.attrs["graded_scale"] = 1.0
    net.add_population(Population("a", w1.shape[1], "sdn", dict(p1)))
    net.add_population(Population("b", w2.shape[1], "sdn", dict(p2), role="output"))
    net.add_projection(Projection("x->a", "x", "a", "dense", w1.astype(np.float64)))
    net.add_projection(Projection("a->b", "a", "b", "dense", w2.astype(np.float64)))
    for pop in ("a", "b"):
        net.add_probe(Probe(f"{pop}.u", pop, "u"))
        net.add_probe(Probe(f"{pop}.v", pop, "v"))
    return net


def _oracle(payloads: np.ndarray, w1: np.ndarray, w2: np.ndarray, p1: dict, p2: dict) -> dict[str, np.ndarray]:
    """The documented sdn step, written out independently: a payload sent at step t reaches its
    targets at t + 1; integer state; D(x, k) = sgn(x) floor(|x| (4096 - k) / 4096)."""
    def unit(p: dict, n: int) -> dict:
        return {"p": p, "sigma": np.zeros(n, dtype=np.int64), "low": np.zeros(n, dtype=np.int64),
                "sent": np.zeros(n, dtype=np.int64)}

    def step(u: dict, a_in: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = u["p"]
        s = u["sigma"] + a_in
        s = ((s + 2 ** 23) % 2 ** 24) - 2 ** 23
        y = np.floor_divide(s, 2 ** p["shift"]) + p["bias"]
        if p["relu"]:
            y = np.maximum(y, 0)
        if p["clip"]:
            y = np.minimum(y, p["clip"])
        if p["decay"] == 4096:
            act = y
        else:
            keep = 4096 - p["decay"]
            low = np.sign(u["low"]) * ((np.abs(u["low"]) * keep) // 4096) + (y * 256 * p["decay"]) // 4096
            u["low"] = low
            act = np.floor_divide(low, 256)
        delta = act - u["sent"]
        pay = np.where(np.abs(delta) >= p["threshold"], delta, 0)
        u["sent"] = u["sent"] + pay
        u["sigma"] = s
        return s, act, pay

    a, b = unit(p1, w1.shape[1]), unit(p2, w2.shape[1])
    pay_x, pay_a = np.zeros(w1.shape[0], dtype=np.int64), np.zeros(w1.shape[1], dtype=np.int64)
    out = {k: [] for k in ("a.u", "a.v", "b.u", "b.v")}
    for t in range(payloads.shape[0]):
        sa, aa, new_a = step(a, pay_x @ w1)
        sb, ab, _ = step(b, pay_a @ w2)
        out["a.u"].append(sa)
        out["a.v"].append(aa)
        out["b.u"].append(sb)
        out["b.v"].append(ab)
        pay_x, pay_a = payloads[t], new_a
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("decay", [4096, 700])
def test_sdn_units_equal_the_oracle(decay: int) -> None:
    rng = np.random.default_rng(decay)
    w1 = 2 * rng.integers(-60, 60, (4, 5))
    w2 = 2 * rng.integers(-40, 40, (5, 3))
    p1 = {"threshold": 40, "shift": 3, "relu": 1, "clip": 3000, "decay": 4096, "bias": -16}
    p2 = {"threshold": 25, "shift": 4, "relu": 0, "clip": 0, "decay": decay, "bias": 64}
    net = _sdn_net(w1, w2, p1, p2)
    chip = interpreter_for(compile_network(net, "loihi2", PIPELINE))
    payloads = np.where(rng.random((80, 4)) < 0.3, rng.integers(-200, 400, (80, 4)), 0)
    res = chip.run(80, {"x": payloads})
    want = _oracle(payloads, w1, w2, p1, p2)
    assert np.abs(want["b.v"]).max() > 50  # the units are driven
    for key in want:
        np.testing.assert_array_equal(res.probes[key], want[key], err_msg=key)
    assert res.spikes["b"].sum() > 0  # b's graded events are its output spikes


def test_the_oracle_comparison_can_fail() -> None:
    """A threshold of 200 instead of 40 on the first layer changes what it sends."""
    rng = np.random.default_rng(4096)
    w1 = 2 * rng.integers(-60, 60, (4, 5))
    w2 = 2 * rng.integers(-40, 40, (5, 3))
    p1 = {"threshold": 40, "shift": 3, "relu": 1, "clip": 3000, "decay": 4096, "bias": -16}
    p2 = {"threshold": 25, "shift": 4, "relu": 0, "clip": 0, "decay": 4096, "bias": 64}
    chip = interpreter_for(compile_network(_sdn_net(w1, w2, {**p1, "threshold": 200}, p2), "loihi2", PIPELINE))
    payloads = np.where(rng.random((80, 4)) < 0.3, rng.integers(-200, 400, (80, 4)), 0)
    got = chip.run(80, {"x": payloads}).probes["b.u"]
    assert not np.array_equal(got, _oracle(payloads, w1, w2, p1, p2)["b.u"])


def test_graded_ports_take_integer_payloads() -> None:
    from nmc.errors import RunError
    w1, w2 = np.full((4, 5), 2), np.full((5, 3), 2)
    p = {"threshold": 1, "shift": 0, "relu": 1, "clip": 0, "decay": 4096, "bias": 0}
    chip = interpreter_for(compile_network(_sdn_net(w1, w2, p, p), "loihi2", PIPELINE))
    with pytest.raises(RunError, match="graded payloads must be integers"):
        chip.run(2, {"x": np.full((2, 4), 0.5)})
    with pytest.raises(RunError, match=r"payloads must lie within \+-8388607"):
        chip.run(2, {"x": np.full((2, 4), 2 ** 24)})
