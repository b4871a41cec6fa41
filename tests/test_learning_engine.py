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
