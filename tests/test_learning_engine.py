"""The learning engine of the Loihi-like interpreter, on small hand-built networks."""

from __future__ import annotations

import numpy as np
import pytest

from nmc.binary import decode_binary, encode_binary
from nmc.driver import compile_network
from nmc.errors import IrError
from nmc.ir import Network, Population, Projection
from nmc.sim.loihi import LoihiInterpreter

# A memoryless post neuron (u = a, v = u) that fires in the step after its drive spike (weight
# 100) arrives; plastic weights below 50 cannot fire it on their own.
FOLLOWER = {"decay_u": 4095, "decay_v": 4096, "threshold": 50, "bias": 0, "refractory": 1}


def _net(rule: str, w0: np.ndarray, traces: dict | None = None, epoch: int = 1, reward: bool = False) -> Network:
    net = Network("learn", {"seed": 11})
    n_pre, n_post = w0.shape
    net.add_population(Population("x", n_pre, "input", role="input"))
    net.add_population(Population("y", n_post, "cuba_lif", dict(FOLLOWER)))
    net.add_population(Population("drive", n_post, "input", role="input"))
    learning = {"rule": rule, "epoch": epoch, "traces": traces or {}}
    if reward:
        net.add_population(Population("r", 1, "input", role="input"))
        learning["reward"] = "r"
    net.add_projection(Projection("x->y", "x", "y", "dense", w0.astype(float), learning=learning))
    # The post neurons are driven by their own port, so pre and post spikes can be placed freely.
    net.add_projection(Projection("drive->y", "drive", "y", "one_to_one", np.full(n_post, 100.0)))
    return net


def _run(net: Network, steps: int, **inputs: np.ndarray) -> LoihiInterpreter:
    chip = LoihiInterpreter(decode_binary(encode_binary(compile_network(net, "loihi"))))
    chip.run(steps, inputs)
    return chip


def test_reward_gated_coincidences_move_weights_by_one_lsb() -> None:
    w0 = np.array([[10, -20], [30, 0]])
    net = _net("4*x0*y0*r1 - 2*x0*y0", w0, traces={"r1": [1, 0]}, reward=True)
    x = np.zeros((8, 2)); d = np.zeros((8, 2)); r = np.zeros((8, 1))
    # drive at t -> y spikes at t+1. Pre x0 spikes at t = 3 with y0 (driven at 2) and reward: +2.
    x[3, 0] = 1; d[2, 0] = 1; r[3, 0] = 1
    # t = 5: x1 and y1 coincide without reward: -2. t = 6: x1 alone: nothing.
    x[5, 1] = 1; d[4, 1] = 1; x[6, 1] = 1
    chip = _run(net, 8, x=x, drive=d, r=r)
    np.testing.assert_array_equal(chip.plastic_weights()["x->y"], [[12, -20], [30, -2]])


def test_weights_saturate_at_the_format_range_and_are_counted() -> None:
    w0 = np.array([[250]])
    net = _net("4*x0*y0", w0)
    x = np.zeros((6, 1)); d = np.zeros((6, 1))
    x[1:5, 0] = 1; d[0:4, 0] = 1            # four coincidences at t = 1..4: +4 each
    chip = LoihiInterpreter(compile_network(net, "loihi"))
    res = chip.run(6, {"x": x, "drive": d})
    assert chip.plastic_weights()["x->y"][0, 0] == 254  # mixed 8-bit maximum
    assert res.overflow["weight_saturation"] == 4 - 1   # 250 -> 254 fits once, then clips


def test_traces_and_products_follow_the_documented_arithmetic() -> None:
    """dw = 3*x1*y0 - 2^-1*x0*y1 with one-step traces (tau 0): x1 = impulse on the pre spike's
    step, y1 likewise; epoch 2 sums x0/y0 over two steps and reads the traces at the epoch end."""
    w0 = np.zeros((1, 1))
    net = _net("3*x1*y0 - 2^-1*x0*y1", w0, traces={"x1": [6, 0], "y1": [8, 0]}, epoch=2)
    x = np.zeros((4, 1)); d = np.zeros((4, 1))
    x[1, 0] = 1          # pre at t=1 (end of epoch 0..1): x1 = 6 at t=1
    d[0, 0] = 1          # post at t=1: y0 = 1, y1 = 8 at t=1
    chip = _run(net, 4, x=x, drive=d)
    # epoch [0, 1]: 3*6*1 - 0.5*1*8 = 18 - 4 = 14 -> +14 (exact multiple of the step 2)
    assert chip.plastic_weights()["x->y"][0, 0] == 14


def test_stochastic_rounding_is_reproducible_and_unbiased() -> None:
    """+0.25 per coincidence on a format with step 2: the weight moves by 2 with probability 1/8."""
    n = 400
    w0 = np.zeros((1, n))
    net = _net("2^-2*x0*y0", w0)
    steps = 41
    x = np.zeros((steps, 1)); x[1:steps, 0] = 1
    d = np.zeros((steps, n)); d[0:steps - 1, :] = 1
    w1 = _run(net, steps, x=x, drive=d).plastic_weights()["x->y"]
    w2 = _run(net, steps, x=x, drive=d).plastic_weights()["x->y"]
    np.testing.assert_array_equal(w1, w2)
    mean = w1.mean()
    assert abs(mean - 0.25 * (steps - 1)) < 1.0, mean  # 40 coincidences -> expected +10


def test_plastic_synapses_deliver_their_learned_weights() -> None:
    """A pre spike sent in the step of an update is delivered with the updated weight
    (the learning phase writes before the destination reads), and later spikes too."""
    from nmc.ir import Probe
    net = _net("4*x0*y0", np.array([[10]]))
    net.add_probe(Probe("y.u", "y", "u"))
    x = np.zeros((6, 1)); d = np.zeros((6, 1))
    x[1, 0] = 1; d[0, 0] = 1   # coincidence at t=1: 10 -> 14; the t=1 spike arrives at t=2
    x[4, 0] = 1                # arrives at t=5
    chip = LoihiInterpreter(compile_network(net, "loihi"))
    u = chip.run(6, {"x": x, "drive": d}).probes["y.u"][:, 0]
    assert chip.plastic_weights()["x->y"][0, 0] == 14
    assert u[2] == 64 * 14 and u[5] == 64 * 14


@pytest.mark.parametrize("learning,fragment", [
    ({"rule": "4*x0*z1"}, "unknown trace 'z1'"),
    ({"rule": "x1*y1", "traces": {"x1": [1, 0], "y1": [1, 0]}}, "needs a dependency x0 or y0"),
    ({"rule": "x0*r1", "traces": {"r1": [1, 0]}}, "names no reward population"),
    ({"rule": "x0*x1"}, "gives no impulse and tau for it"),
])
def test_bad_rules_are_reported(learning: dict, fragment: str) -> None:
    net = _net("4*x0*y0", np.zeros((1, 1)))
    net.projection("x->y").learning = learning
    with pytest.raises(IrError, match=fragment):
        compile_network(net, "loihi")


def test_stdp_rule_from_the_dsl_through_the_cli(cli, tmp_path) -> None:
    """A trace-based pair rule written in the DSL learns during a plain `nmc run`: inputs that
    fire just before the post neuron are potentiated, inputs that fire just after are depressed,
    and RESULT.npz holds the learned weights."""
    src = """network stdp
seed 3
input pre[2]
input drive[1]
population post[1] : cuba_lif(decay_u = 4095, decay_v = 4096, threshold = 50)
rule pair = learning(dw = "2^-2*x1*y0 - 2^-2*y1*x0", x1 = trace(impulse = 40, tau = 4), y1 = trace(impulse = 40, tau = 4))
connect pre -> post : dense(weights = 20, rule = pair)
connect drive -> post : one_to_one(weights = 100)
probe post.spikes
"""
    (tmp_path / "stdp.nmc").write_text(src)
    assert cli("compile", tmp_path / "stdp.nmc", "-o", tmp_path / "stdp.nmcb")[0] == 0
    steps = 200
    pre = np.zeros((steps, 2), np.uint8)
    drive = np.zeros((steps, 1), np.uint8)
    for t0 in range(10, steps - 10, 20):
        drive[t0, 0] = 1          # the post neuron fires at t0 + 1
        pre[t0 - 1, 0] = 1        # input 0 two steps before the post spike
        pre[t0 + 3, 1] = 1        # input 1 two steps after it
    np.savez(tmp_path / "in.npz", pre=pre, drive=drive)
    code, _, err = cli("run", tmp_path / "stdp.nmcb", "--input", tmp_path / "in.npz", "--out", tmp_path / "r.npz")
    assert code == 0, err
    w = np.load(tmp_path / "r.npz")["weights/pre->post"]
    assert w.shape == (2, 1)
    assert w[0, 0] > 20 and w[1, 0] < 20, w


def _reference_learning(rule, traces, epoch, w0, pre, post, reward):
    """Independent transcription of the engine for one-step traces (tau 0) and rules whose
    products are whole format steps (no stochastic rounding): per epoch ending at step t,
    x0/y0 = spiked within the epoch, a trace = its impulse if its neuron spiked at t, r1 likewise
    from the reward; dw = sum m * 2^e * prod(factors); w = clip(w + dw) to [-256, 254]."""
    from nmc.ir.learning import parse_rule
    w = w0.astype(np.int64).copy()
    steps = pre.shape[0]
    for t in range(epoch - 1, steps, epoch):
        lo = t - epoch + 1
        val = {"x0": pre[lo:t + 1].any(axis=0).astype(np.int64)[:, None],
               "y0": post[lo:t + 1].any(axis=0).astype(np.int64)[None, :]}
        for name in ("x1", "x2"):
            val[name] = (traces.get(name, [0, 0])[0] * pre[t]).astype(np.int64)[:, None]
        for name in ("y1", "y2", "y3"):
            val[name] = (traces.get(name, [0, 0])[0] * post[t]).astype(np.int64)[None, :]
        val["r1"] = np.array([[traces.get("r1", [0, 0])[0] * int(reward[t])]], dtype=np.int64)
        dw = np.zeros_like(w)
        for p in parse_rule(rule):
            term = np.full((1, 1), p.mantissa * 2 ** p.exponent, dtype=np.int64)
            for f in p.factors:
                term = term * val[f]
            dw = dw + term
        w = np.clip(w + dw, -256, 254)
    return w


@pytest.mark.parametrize("seed", range(12))
def test_random_rules_match_an_independent_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = ["x1", "x2", "y1", "y2", "y3", "r1"]
    terms, traces = [], {}
    for _ in range(rng.integers(1, 4)):
        dep = rng.choice(["x0", "y0", "x0*y0"])
        extra = [n for n in names if rng.random() < 0.3]
        m = int(rng.integers(-3, 4)) or 1
        terms.append(f"{m}*2^{int(rng.integers(1, 3))}*" + "*".join([dep, *extra]))
        for n in extra:
            traces.setdefault(n, [int(rng.integers(1, 4)), 0])
    rule = " + ".join(terms).replace("+ -", "- ")
    epoch = int(rng.integers(1, 4))
    n_pre, n_post, steps = 4, 3, 60
    w0 = 2 * rng.integers(-40, 40, (n_pre, n_post))
    pre = (rng.random((steps, n_pre)) < 0.3).astype(np.uint8)
    post = (rng.random((steps, n_post)) < 0.3).astype(np.uint8)
    reward = (rng.random((steps, 1)) < 0.4).astype(np.uint8)
    net = _net(rule, w0, traces=traces, epoch=epoch, reward="r1" in traces)
    from nmc.ir import Probe
    net.add_probe(Probe("y.spikes", "y", "spikes"))
    # drive[t] makes post spike at t + 1; the plastic weights may add spikes of their own, so the
    # reference takes the post raster the chip produced (the engine is checked given real activity).
    drive = np.zeros_like(post)
    drive[:-1] = post[1:]
    inputs = {"x": pre, "drive": drive}
    if "r1" in traces:
        inputs["r"] = reward
    chip = LoihiInterpreter(compile_network(net, "loihi"))
    post_seen = chip.run(steps, inputs).probes["y.spikes"].astype(np.uint8)
    want = _reference_learning(rule, traces, epoch, w0, pre, post_seen,
                               reward[:, 0] if "r1" in traces else np.zeros(steps))
    np.testing.assert_array_equal(chip.plastic_weights()["x->y"], want, err_msg=f"rule {rule}, epoch {epoch}")
