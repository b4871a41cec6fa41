"""Tests of the learning statements of the DSL (nmc.frontend.dsl): learning rules on projections, the
built-in `graded` neuron, schedules and the backprop construct. Each statement is checked against
the exact IR it must produce, the IR round trip, and one test per error with its location."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from dsl_checks import assert_dsl_error
from nmc.frontend.dsl import load_dsl, parse_dsl
from nmc.ir import parse_ir, print_ir, read_ir, write_ir

GRADED = {"bias": -8.0}

PROGRAM = """\
network gated
seed 5
input x[6]
input r[1]
input t[3]
population h[4] : graded
population h_lt[4] : graded(bias = -4)
population o[3] : graded
population p[6] : cuba_lif

rule bp = learning(dw = "4*x0*y0*r1 - 2*x0*y0", epoch = 1, r1 = trace(impulse = 1, tau = 0))
rule stdp = learning(dw = "2^-2*x1*y0 - 2^-2*y1*x0", x1 = trace(impulse = 20, tau = 8),
                     y1 = trace(impulse = 20, tau = 8))
rule slow = learning("x0*y2", epoch = 4, y2 = trace(impulse = 0.5, tau = 2.0))

connect x -> h : dense(weights = randint(-50, 50), rule = bp, reward = r)
connect h -> o : dense(weights = 2, rule = stdp)
connect x -> p : one_to_one(weights = 1, rule = slow)
connect h -> o as h_all : one_to_all(weights = 3, rule = bp, reward = r)
connect x -> h as sp : sparse(p = 0.5, weights = 1, seed = 1, rule = stdp, reward = t)
connect h -> h_lt : dense(weights = 1)

schedule cycle = 12    # ticks per sample
gate h in 2 at 0.5
gate h_lt in 2 at -1
gate o in 3 at 0.5
veto h in 0
veto o in 0
inject x at 1
inject t at 3
readout o at 4

learn backprop(x -> h -> o, target = t, window = -1, weights = he_normal(seed = 3), mode = train, name = bp)
"""


@pytest.fixture(scope="module")
def net():
    return parse_dsl(PROGRAM, filename="gated.nmc")


def he_normal_reference(seed: int, sizes: list[int]) -> list[np.ndarray]:
    """The paper's initialisation, written out independently of the front end."""
    rng = np.random.default_rng(seed)
    out = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        w = rng.normal(0, math.sqrt(2 / (n_in + n_out)), size=(n_in, n_out)) * 1024
        out.append(np.floor(np.clip(w, -240, 240) / 2) * 2)
    return out


# -- learning rules -------------------------------------------------------------------------------

def test_learning_rules_on_every_connectivity(net) -> None:
    learning = {p.name: p.learning for p in net.projections}
    assert learning == {
        "x->h": {"rule": "4*x0*y0*r1 - 2*x0*y0", "epoch": 1, "traces": {"r1": [1, 0]}, "reward": "r"},
        "h->o": {"rule": "2^-2*x1*y0 - 2^-2*y1*x0", "epoch": 1, "traces": {"x1": [20, 8], "y1": [20, 8]}},
        "x->p": {"rule": "x0*y2", "epoch": 4, "traces": {"y2": [0.5, 2]}},
        "h_all": {"rule": "4*x0*y0*r1 - 2*x0*y0", "epoch": 1, "traces": {"r1": [1, 0]}, "reward": "r"},
        "sp": {"rule": "2^-2*x1*y0 - 2^-2*y1*x0", "epoch": 1, "traces": {"x1": [20, 8], "y1": [20, 8]},
               "reward": "t"},
        "h->h_lt": None,
    }
    assert [type(v) for v in learning["x->h"]["traces"]["r1"]] == [int, int]
    assert [type(v) for v in learning["x->p"]["traces"]["y2"]] == [float, int]  # 2.0 is integral: an int


def test_rule_and_reward_do_not_change_the_weights(net) -> None:
    np.testing.assert_array_equal(net.projection("x->h").weights,
                                  np.random.default_rng([5, 1, 0]).integers(-50, 50, size=(6, 4), endpoint=True))
    sparse = net.projection("sp")
    rng = np.random.default_rng(1)
    pre, post = np.nonzero(rng.random((6, 4)) < 0.5)
    np.testing.assert_array_equal(sparse.pre_index, pre)
    np.testing.assert_array_equal(sparse.post_index, post)


def test_projections_sharing_a_rule_get_separate_dicts(net) -> None:
    a, b = net.projection("x->h").learning, net.projection("h_all").learning
    assert a == b and a is not b and a["traces"] is not b["traces"]


# -- the graded neuron ----------------------------------------------------------------------------

def test_graded_is_a_neuron_model_with_a_bias(net) -> None:
    assert net.population("h").model == "graded"
    assert net.population("h").params == GRADED
    assert net.population("h_lt").params == {"bias": -4}


def test_graded_can_be_the_base_of_a_named_neuron() -> None:
    net = parse_dsl("neuron weak = graded(bias = -6)\npopulation a[2] : weak\npopulation b[2] : weak(bias = -3)")
    assert net.population("a").params == {"bias": -6}
    assert net.population("b").params == {"bias": -3}


# -- schedules ------------------------------------------------------------------------------------

def test_schedule(net) -> None:
    assert net.attrs["schedule"] == {
        "cycle": 12,
        "gates": [{"population": "h", "phase": 2, "threshold": 0.5},
                  {"population": "h_lt", "phase": 2, "threshold": -1.0},
                  {"population": "o", "phase": 3, "threshold": 0.5}],
        "vetoes": [{"population": "h", "phase": 0}, {"population": "o", "phase": 0}],
        "inputs": {"x": 1, "t": 3},
        "readout": {"population": "o", "tick": 4},
    }
    assert all(type(g["threshold"]) is float for g in net.attrs["schedule"]["gates"])


def test_schedule_without_readout_and_cycle_anywhere() -> None:
    net = parse_dsl("input x[2]\ninject x at 0\npopulation h[2] : graded\ngate h in 1 at 1\nschedule cycle = 2")
    assert net.attrs["schedule"] == {"cycle": 2, "gates": [{"population": "h", "phase": 1, "threshold": 1.0}],
                                     "vetoes": [], "inputs": {"x": 0}}
    assert parse_dsl("schedule cycle = 4").attrs == {"seed": 0, "schedule": {"cycle": 4, "gates": [],
                                                                              "vetoes": [], "inputs": {}}}


def test_no_learning_statements_no_attributes() -> None:
    net = parse_dsl("input x[2]\npopulation h[2] : graded\nconnect x -> h : dense(weights = 1)")
    assert net.attrs == {"seed": 0}
    assert net.projections[0].learning is None


def test_new_keywords_are_reserved_only_at_statement_start() -> None:
    net = parse_dsl("input in[2]\ninput at[2]\npopulation gate[2] : graded\npopulation rule[2] : cuba_lif\n"
                    "population cycle[2] : cuba_lif\npopulation learn[2] : cuba_lif\n"
                    "rule veto = learning(dw = \"x0*y0\")\nrule schedule = learning(dw = \"x0\")\n"
                    "connect in -> gate as readout : dense(weights = 1, rule = veto, reward = at)\n"
                    "schedule cycle = 3\ngate gate in 1 at 0\nveto rule in 2\ninject in at 0\nreadout cycle at 2\n"
                    "learn backprop(at -> rule -> learn, target = in, mode = inference, name = inject)")
    assert net.projection("readout").learning == {"rule": "x0*y0", "epoch": 1, "traces": {}, "reward": "at"}
    assert net.attrs["schedule"]["gates"] == [{"population": "gate", "phase": 1, "threshold": 0.0}]
    assert net.attrs["schedule"]["vetoes"] == [{"population": "rule", "phase": 2}]
    assert net.attrs["backprop"]["layers"] == ["at", "rule", "learn"]
    assert net.attrs["backprop"]["name"] == "inject" and net.attrs["backprop"]["mode"] == "inference"


# -- the backprop construct -----------------------------------------------------------------------

def test_backprop(net) -> None:
    bp = dict(net.attrs["backprop"])
    weights = bp.pop("weights")
    assert bp == {"name": "bp", "layers": ["x", "h", "o"], "target": "t", "window": [-1.0, 1.0],
                  "window_hidden": None, "margin": 0.0, "error_threshold": 0.0, "mode": "train"}
    assert [type(v) for v in bp["window"]] == [float, float]
    assert [w.shape for w in weights] == [(6, 4), (4, 3)]
    for got, want in zip(weights, he_normal_reference(3, [6, 4, 3])):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)


def test_backprop_defaults_and_derived_seed() -> None:
    src = ("seed 9\ninput x[5]\ninput t[2]\npopulation h[7] : graded\npopulation o[2] : graded\n"
           "learn backprop(x -> h -> o, target = t{extra})")
    bp = parse_dsl(src.format(extra="")).attrs["backprop"]
    assert (bp["name"], bp["mode"], bp["window"], bp["margin"]) == ("bp", "train", [-1.0, 1.0], 0.0)
    rng = np.random.default_rng([9, 3, 0])  # the backprop stream of network seed 9
    for got, (n_in, n_out) in zip(bp["weights"], [(5, 7), (7, 2)]):
        w = rng.normal(0, math.sqrt(2 / (n_in + n_out)), size=(n_in, n_out)) * 1024
        np.testing.assert_array_equal(got, np.floor(np.clip(w, -240, 240) / 2) * 2)
    explicit = parse_dsl(src.format(extra=", weights = he_normal()")).attrs["backprop"]["weights"]
    for a, b in zip(explicit, bp["weights"]):
        np.testing.assert_array_equal(a, b)  # he_normal() without a seed is the default draw
    custom = parse_dsl(src.format(extra=", window = 0, window_high = 1.5, margin = 0.5, mode = inference, "
                                        "name = \"net 1\""))
    bp = custom.attrs["backprop"]
    assert (bp["name"], bp["mode"], bp["window"], bp["margin"]) == ("net 1", "inference", [0.0, 1.5], 0.5)


def test_he_normal_is_deterministic_even_and_bounded() -> None:
    src = ("input x[60]\ninput t[20]\npopulation h1[50] : graded\npopulation h2[40] : graded\n"
           "population o[20] : graded\nlearn backprop(x -> h1 -> h2 -> o, target = t, weights = he_normal(seed = 11))")
    first, second = (parse_dsl(src).attrs["backprop"]["weights"] for _ in range(2))
    assert [w.shape for w in first] == [(60, 50), (50, 40), (40, 20)]
    for a, b, want in zip(first, second, he_normal_reference(11, [60, 50, 40, 20])):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, want)
        assert np.all(a % 2 == 0) and a.min() >= -240 and a.max() <= 240
        assert np.unique(a).size > 50  # not everything is clipped: the draws are really used
    other = parse_dsl(src.replace("seed = 11", "seed = 12")).attrs["backprop"]["weights"]
    assert not np.array_equal(first[0], other[0])


def test_he_normal_by_hand() -> None:
    """A 2 -> 2 -> 1 chain: W1 takes the first four normal draws, W2 the next two; std sqrt(2/4) and
    sqrt(2/3); values are scaled by 1024, clipped to 240 and rounded down to even integers."""
    z = np.random.default_rng(0).standard_normal(6)
    expected = []
    for k, std in enumerate([math.sqrt(0.5)] * 4 + [math.sqrt(2 / 3)] * 2):
        w = max(-240.0, min(240.0, z[k] * std * 1024))
        expected.append(2 * math.floor(w / 2))
    net = parse_dsl("input x[2]\ninput t[1]\npopulation h[2] : graded\npopulation o[1] : graded\n"
                    "learn backprop(x -> h -> o, target = t, weights = he_normal(seed = 0))")
    w1, w2 = net.attrs["backprop"]["weights"]
    np.testing.assert_array_equal(w1, np.reshape(expected[:4], (2, 2)))
    np.testing.assert_array_equal(w2, np.reshape(expected[4:], (2, 1)))
    # the draws of seed 0 include values that exercise both ends of the rule
    assert 240.0 in np.abs(w1) or 240.0 in np.abs(w2)
    assert any(2 * math.floor(v / 2) != 2 * int(v / 2) for v in z * 1024 * math.sqrt(0.5))  # rounds down, not to 0


def test_backprop_weights_from_npz(tmp_path: Path) -> None:
    w1, w2 = np.arange(12).reshape(4, 3) * 2 - 10, np.array([[2, -4], [6, 8], [-240, 240]], dtype=np.int16)
    np.savez(tmp_path / "w.npz", W1=w1, W2=w2, extra=np.zeros(1))
    (tmp_path / "bp.nmc").write_text("input x[4]\ninput t[2]\npopulation h[3] : graded\npopulation o[2] : graded\n"
                                     'learn backprop(x -> h -> o, target = t, weights = npz("w.npz"))\n')
    weights = load_dsl(tmp_path / "bp.nmc").attrs["backprop"]["weights"]
    assert [w.dtype for w in weights] == [np.float64, np.float64]
    np.testing.assert_array_equal(weights[0], w1)
    np.testing.assert_array_equal(weights[1], w2)


# -- IR round trip --------------------------------------------------------------------------------

@pytest.mark.parametrize("inline_limit", [16, 1000])
def test_print_parse_print_is_identity(net, inline_limit: int) -> None:
    text, arrays = print_ir(net, inline_limit=inline_limit)
    assert "learning = {" in text and "schedule = {" in text and "backprop = {" in text
    again = parse_ir(text, arrays)
    text2, arrays2 = print_ir(again, inline_limit=inline_limit)
    assert text2 == text
    assert arrays2.keys() == arrays.keys()
    for key in arrays:
        np.testing.assert_array_equal(arrays2[key], arrays[key])
    assert again.attrs["schedule"] == net.attrs["schedule"]
    assert again.projection("x->h").learning == net.projection("x->h").learning
    for a, b in zip(again.attrs["backprop"]["weights"], net.attrs["backprop"]["weights"]):
        np.testing.assert_array_equal(a, b)


def test_ir_files_round_trip(net, tmp_path: Path) -> None:
    write_ir(net, tmp_path / "gated.nmcir")  # the backprop weights go to the side .npz
    again = read_ir(tmp_path / "gated.nmcir")
    assert print_ir(again)[0] == print_ir(net)[0]
    np.testing.assert_array_equal(again.attrs["backprop"]["weights"][0], net.attrs["backprop"]["weights"][0])


@pytest.mark.parametrize("section", ["Learning rules", "Schedules", "The backprop construct"])
def test_documented_examples_build(section: str) -> None:
    """The first example of each learning section of docs/dsl.md stays valid and means what the
    section says."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "dsl.md").read_text()
    source = re.search(rf"## {section}\n.*?```\n(.*?)```", doc, re.S).group(1)
    net = parse_dsl(source)
    if section == "Learning rules":
        assert net.projection("x->h").learning == {"rule": "4*x0*y0*r1 - 2*x0*y0", "epoch": 1,
                                                   "traces": {"r1": [1, 0]}, "reward": "r"}
    elif section == "Schedules":
        assert net.attrs["schedule"]["readout"] == {"population": "o", "tick": 4}
        assert net.attrs["schedule"]["inputs"] == {"x": 1, "t": 3}
    else:
        assert [w.shape for w in net.attrs["backprop"]["weights"]] == [(2, 4), (4, 1)]


# -- errors ---------------------------------------------------------------------------------------

BASE = "input x[4]\ninput r[1]\ninput t[2]\npopulation h[3] : graded\npopulation o[2] : graded\n"  # test: line 6
RULE = BASE + 'rule bp = learning(dw = "4*x0*y0*r1 - 2*x0*y0", r1 = trace(impulse = 1, tau = 0))\n'  # line 6
SCHED = BASE + "schedule cycle = 12\n"  # test: line 7

ERRORS = [
    # learning rules
    (BASE + 'rule bp = learning(dw = "4*x0*y0*z1")', "6:25",
     "learning rule names an unknown trace 'z1' (known: x0, y0, x1, x2, y1, y2, y3, r1)"),
    (BASE + 'rule bp = learning(dw = "4*x0*y0 -")', "6:25",
     "learning rule '4*x0*y0 -' ends where a factor was expected"),
    (BASE + 'rule bp = learning(dw = "x1*y1", x1 = trace(1, 2), y1 = trace(1, 2))', "6:25",
     "learning rule 'x1*y1': every product needs a dependency x0 or y0 (the term 'x1*y1' has none)"),
    (BASE + 'rule bp = learning(dw = "x0*y1")', "6:25",
     "learning rule uses trace 'y1' but gives no impulse and tau for it (add y1 = trace(impulse = ..., tau = ...))"),
    (BASE + 'rule bp = learning(dw = "x0*y0", epoch = 64)', "6:42",
     "learning epoch must be an integer in 1..63, got 64"),
    (BASE + 'rule bp = learning(dw = "x0*y0", epoch = 1.5)', "6:42", "epoch must be an integer, got 1.5"),
    (BASE + 'rule bp = learning(dw = "x0*y1", y1 = trace(impulse = -1, tau = 0))', "6:39",
     "trace 'y1': impulse and tau must be >= 0, got [-1, 0]"),
    (BASE + 'rule bp = learning(dw = "x0*y1", y1 = 3)', "6:39", "y1 must be trace(impulse = ..., tau = ...), got 3"),
    (BASE + 'rule bp = learning(dw = "x0*y1", y1 = trace(1))', "6:39", "missing argument 'tau' for trace"),
    (BASE + 'rule bp = learning(dw = "x0*z1", z1 = trace(1, 0))', "6:34",
     "unknown argument 'z1' for learning (known: dw, epoch, r1, x1, x2, y1, y2, y3)"),
    (BASE + "rule bp = learning(dw = 3)", "6:25", "dw must be a string in double quotes, got 3"),
    (BASE + "rule bp = learning(epoch = 2)", "6:11", "missing argument 'dw' for learning"),
    (BASE + 'rule bp = hebb(dw = "x0*y0")', "6:11", "unknown kind of rule 'hebb' (known: learning, eprop)"),
    (RULE + 'rule bp = learning(dw = "x0*y0")', "7:6", "learning rule 'bp' is defined twice (first at line 6)"),
    (RULE + "connect x -> h : dense(weights = 1, rule = bpp, reward = r)", "7:44",
     "unknown learning rule 'bpp' (did you mean 'bp'?)"),
    (BASE + 'connect x -> h : dense(weights = 1, rule = bp)\nrule bp = learning(dw = "x0*y0")', "6:44",
     "learning rule 'bp' is used before its definition at line 7"),
    (RULE + "connect x -> h : dense(weights = 1, rule = 3)", "7:44", "rule must be the name of a learning rule, got 3"),
    (RULE + "connect x -> h : dense(weights = 1, rule = bp, reward = rr)", "7:57",
     "unknown population 'rr' (did you mean 'r'?)"),
    (RULE + 'connect x -> h : dense(weights = 1, rule = bp, reward = "r")', "7:57",
     'reward must be the name of a population, got the string "r"'),
    (RULE + "connect x -> h : dense(weights = 1, reward = r)", "7:37", "reward needs a learning rule (rule = NAME)"),
    (RULE + "connect x -> h : sparse(p = 0.5, weights = 1, rule = bp)", "7:18",
     "learning rule uses the reward trace r1 but names no reward population"),
    (RULE + "connect h -> t : dense(weights = 1, rule = bp, reward = r)", "7:14",
     "plastic projection 'h->t' cannot target input port 't'"),
    (RULE + "connect h -> t as back : one_to_all(weights = 1, rule = bp)", "7:14",
     "plastic projection 'back' cannot target input port 't'"),
    # the graded neuron
    (BASE + "neuron graded = cuba_lif(threshold = 3)", "6:8",
     "neuron 'graded' would hide the built-in neuron model of that name"),
    (BASE + "population q[3] : graded(tau = 1)", "6:26", "unknown parameter 'tau' for neuron model 'graded' (known: bias)"),
    # schedules
    (BASE + "gate h in 2 at 0.5", "6:1", "'gate' needs the length of the cycle: add 'schedule cycle = N'"),
    (BASE + "veto h in 0", "6:1", "'veto' needs the length of the cycle: add 'schedule cycle = N'"),
    (BASE + "inject x at 1", "6:1", "'inject' needs the length of the cycle: add 'schedule cycle = N'"),
    (BASE + "readout o at 4", "6:1", "'readout' needs the length of the cycle: add 'schedule cycle = N'"),
    (SCHED + "schedule cycle = 4", "7:1", "'schedule cycle' is given twice (first at line 6)"),
    (BASE + "schedule cycle = 0", "6:18", "cycle must be a positive integer, got 0"),
    (SCHED + "gate hh in 2 at 0.5", "7:6", "unknown population 'hh' (did you mean 'h'?)"),
    (SCHED + "gate x in 2 at 0.5", "7:6",
     "cannot gate input port 'x' (its spikes come from data; schedule them with 'inject')"),
    (SCHED + "veto t in 0", "7:6",
     "cannot veto input port 't' (its spikes come from data; schedule them with 'inject')"),
    (SCHED + "inject h at 1", "7:8", "cannot inject into 'h': it is not an input port"),
    (SCHED + "inject q at 1", "7:8", "unknown population 'q'"),
    (SCHED + "readout x at 4", "7:9", "cannot read out input port 'x'"),
    (SCHED + "gate h in 12 at 0.5", "7:11", "phase must be in 0..11 (schedule cycle = 12), got 12"),
    (SCHED + "veto h in -1", "7:11", "phase must be in 0..11 (schedule cycle = 12), got -1"),
    (SCHED + "veto h in 1.5", "7:11", "phase must be an integer, got 1.5"),
    (SCHED + "inject x at 12", "7:13", "tick must be in 0..11 (schedule cycle = 12), got 12"),
    (SCHED + "readout o at 20 - 21", "7:14", "tick must be in 0..11 (schedule cycle = 12), got -1"),
    (SCHED + 'gate h in 2 at "high"', "7:16", 'gate threshold must be a number, got the string "high"'),
    (SCHED + "gate h in 2 at 0.5\ngate o in 2 at 0.5\ngate h in 2 at 0", "9:6",
     "population 'h' is gated twice in phase 2 (first at line 7)"),
    (SCHED + "veto h in 0\nveto h in 0", "8:6", "population 'h' is vetoed twice in phase 0 (first at line 7)"),
    (SCHED + "gate h in 2 at 0.5\nveto h in 2", "8:6", "population 'h' is both gated and vetoed in phase 2 "
                                                       "(gate at line 7)"),
    (SCHED + "inject x at 1\ninject x at 2", "8:8", "input 'x' is injected twice (first at line 7)"),
    (SCHED + "readout o at 4\nreadout h at 5", "8:1", "'readout' is given twice (first at line 7)"),
    # the backprop construct
    (BASE + "learn backprop(x -> h -> q, target = t)", "6:26", "unknown population 'q'"),
    (BASE + "learn backprop(x -> h -> h, target = t)", "6:26", "layer 'h' appears twice in the backprop chain"),
    (BASE + "learn backprop(r -> h -> o, target = r)", "6:38", "target 'r' cannot also be a layer"),
    (BASE + "learn backprop(h -> o -> o, target = t)", "6:16",
     "the first layer of backprop must be an input port, 'h' is not"),
    (BASE + "learn backprop(x -> r -> o, target = t)", "6:21",
     "layer 'r' of backprop is an input port; only the first layer may be one"),
    (BASE + "learn backprop(x -> o, target = t)", "6:16",
     "backprop needs at least one hidden layer between input and output, got 'x -> o'"),
    (BASE + "learn backprop(x -> h -> o)", "6:7", "missing argument 'target' for backprop"),
    (BASE + "learn backprop(x -> h -> o, target = h)", "6:38",
     "target 'h' must be an input port (the labels come from data)"),
    (BASE + "learn backprop(x -> h -> o, target = r)", "6:38",
     "target 'r' has 1 neurons, but the output layer 'o' has 2"),
    (BASE + "learn backprop(x -> h -> o, target = 3)", "6:38", "target must be the name of an input port, got 3"),
    (BASE + "learn backprop(x -> h -> o, target = tt)", "6:38", "unknown population 'tt' (did you mean 't'?)"),
    (BASE + "learn backprop(x -> h -> o, target = t, mode = test)", "6:48",
     "mode must be one of train, inference, got the name 'test'"),
    (BASE + "learn backprop(x -> h -> o, target = t, window = 1)", "6:50",
     "window must lie below window_high, got window = 1.0, window_high = 1.0"),
    (BASE + "learn backprop(x -> h -> o, target = t, window_high = -2)", "6:55",
     "window must lie below window_high, got window = -1.0, window_high = -2.0"),
    (BASE + "learn backprop(x -> h -> o, target = t, windw = 1)", "6:41",
     "unknown argument 'windw' for backprop (known: error_threshold, margin, mode, name, target, weights, window, "
     "window_hidden, window_high)"),
    (BASE + "learn backprop(x -> h -> o, target = t, error_threshold = 0.5)", "6:59",
     "error_threshold must lie in [0, 0.5), got 0.5"),
    (BASE + "learn backprop(x -> h -> o, target = t, window_hidden = 0.5)", "6:57",
     "window_hidden must lie below 0.5 and window_high, got 0.5"),
    (BASE + "learn backprop(x -> h -> o, target = t, window = 0, margin = 0.75)", "6:62",
     "margin must be >= 0 and keep 0.5 - margin and 0.5 + margin inside the window (0, 1], got margin = 0.75"),
    (BASE + "learn backprop(x -> h -> o, target = t, margin = -0.1)", "6:50",
     "margin must be >= 0 and keep 0.5 - margin and 0.5 + margin inside the window (-1, 1], got margin = -0.1"),
    (BASE + "learn backprop(x -> h -> o, target = t, weights = normal(0, 1))", "6:51",
     "weights must be he_normal(seed = S) or npz(\"FILE.npz\"), got 'normal(...)'"),
    (BASE + "learn backprop(x -> h -> o, target = t, weights = he_normal(seed = -1))", "6:68",
     "seed must be a non-negative integer, got -1"),
    (BASE + "learn backprop(x -> h -> o, target = t, weights = he_normal(3))", "6:61",
     "he_normal takes only named arguments, e.g. seed = ..."),
    (BASE + "learn backprop(x -> h -> o, target = t)\nlearn backprop(x -> h -> o, target = t)", "7:1",
     "'learn' is given twice (first at line 6)"),
    (BASE + "learn backprob(x -> h -> o, target = t)", "6:7",
     "unknown learning construct 'backprob' (known: backprop) (did you mean 'backprop'?)"),
    # syntax
    (BASE + "schedule cycl = 12", "6:10", "unknown schedule setting 'cycl' (known: cycle, trial, batch) (did you mean 'cycle'?)"),
    (BASE + "gate h at 2", "6:8", "unexpected 'at', expected 'in'"),
    (BASE + "learn backprop(x, target = t)", "6:17", "unexpected ',', expected '->'"),
]


@pytest.mark.parametrize("source, where, message", ERRORS, ids=[m[:50] for _, _, m in ERRORS])
def test_error(source: str, where: str, message: str) -> None:
    assert_dsl_error(source, where, message)


NPZ_ERRORS = [
    ('npz("w.npz")', "6:51", "'w.npz' has no array 'W2' (it has: W1)"),
    ('npz("bad.npz")', "6:51", "array 'W1' in 'bad.npz' has shape (3, 4), expected (4, 3) (backprop weights x -> h)"),
    ('npz("half.npz")', "6:51", "array 'W2' in 'half.npz' must hold integer weights (units of 1/1024 of the threshold, "
     "as a run's weights/W1 ... are), got 0.5"),
    ('npz("w.npz", "average")', "6:51", "'w.npz' has no array 'average/W1' (it has: W1)"),
    ('npz("w.npz", key = 3)', "6:70", "weight group must be a string in double quotes, got 3"),
    ('npz("nope.npz")', "6:55", "cannot read npz file '{dir}/nope.npz': No such file or directory"),
]


@pytest.mark.parametrize("weights, where, message", NPZ_ERRORS, ids=[m[:50] for _, _, m in NPZ_ERRORS])
def test_npz_error(tmp_path: Path, weights: str, where: str, message: str) -> None:
    np.savez(tmp_path / "w.npz", W1=np.zeros((4, 3)))
    np.savez(tmp_path / "bad.npz", W1=np.zeros((3, 4)), W2=np.zeros((3, 2)))
    np.savez(tmp_path / "half.npz", W1=np.zeros((4, 3)), W2=np.full((3, 2), 0.5))
    source = BASE + f"learn backprop(x -> h -> o, target = t, weights = {weights})"
    assert_dsl_error(source, where, message.format(dir=tmp_path), tmp_path)
