"""Tests of the DSL front end (nmc.frontend.dsl): building networks, seeds, npz files, the IR
round trip, and one test per class of error with its exact location and message."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl_checks import assert_dsl_error
from nmc.errors import DslError
from nmc.frontend.dsl import _lark, load_dsl, parse_dsl
from nmc.ir import parse_ir, print_ir

PROGRAM = """\
# a complete program using every statement
network demo
seed 7

neuron fast = cuba_lif(decay_u = 4095, decay_v = 0, threshold = 256, refractory = 2)
input x[6]
population h[5] : fast(bias = 20)
population o[4] : cuba_lif(threshold = 2.5,
                           bias = uniform(0, 100, seed = 1))   # a statement may span lines
population a[3] : fast
population b[3] : cuba_lif
input g[2]
output o

connect x -> h : dense(weights = npz("weights.npz", "w1"))
connect h -> o : dense(weights = normal(0, 30, seed = 3), delay = 2, sign = mixed, exponent = 1)
connect o -> o : sparse(p = 0.5, weights = uniform(-64, 64), seed = 4)
connect h -> h : sparse(file = npz("syn.npz"))
connect a -> b : one_to_one(weights = 100)
connect g -> b : one_to_all(weights = 8192 + 512)
connect a -> b as ab_fast : dense(weights = -(2 * 3) / 4, sign = inhibitory, exponent = -2)
connect h -> o : dense(weights = uniform(-1, 1))
probe h.v
probe o.spikes
"""

W1 = np.arange(30, dtype=np.int32).reshape(6, 5)
SYN_PRE = np.array([3, 1, 1, 0])
SYN_POST = np.array([0, 4, 2, 3])
SYN_W = np.array([1.0, 2.0, 3.0, 4.0])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory holding PROGRAM as prog.nmc and the npz files it reads."""
    np.savez(tmp_path / "weights.npz", w1=W1, other=np.zeros(3))
    np.savez(tmp_path / "syn.npz", pre=SYN_PRE, post=SYN_POST, weights=SYN_W)
    (tmp_path / "prog.nmc").write_text(PROGRAM)
    return tmp_path


@pytest.fixture
def net(project: Path):
    return load_dsl(project / "prog.nmc")


# -- building -------------------------------------------------------------------------------------

def test_populations_sizes_roles_and_models(net) -> None:
    assert net.name == "demo"
    assert net.attrs == {"seed": 7}
    summary = [(p.name, p.size, p.model, p.role) for p in net.populations]
    assert summary == [
        ("x", 6, "input", "input"), ("h", 5, "cuba_lif", "hidden"), ("o", 4, "cuba_lif", "output"),
        ("a", 3, "cuba_lif", "hidden"), ("b", 3, "cuba_lif", "hidden"), ("g", 2, "input", "input"),
    ]
    assert net.population("x").params == {}


def test_params_merge_defaults_then_neuron_then_population(net) -> None:
    h = net.population("h").params
    assert h == {"decay_u": 4095, "decay_v": 0, "threshold": 256, "bias": 20, "refractory": 2}
    assert all(type(v) is int for v in h.values())  # written as integers -> Python ints
    a = net.population("a").params
    assert a["bias"] == 0 and a["threshold"] == 256  # model default bias, neuron's threshold
    b = net.population("b").params
    assert b == {"decay_u": 0, "decay_v": 0, "threshold": 100, "bias": 0, "refractory": 1}


def test_float_param_and_per_neuron_bias(net) -> None:
    o = net.population("o").params
    assert type(o["threshold"]) is float and o["threshold"] == 2.5
    expected = np.random.default_rng(1).uniform(0, 100, size=4)
    assert o["bias"].dtype == np.float64
    np.testing.assert_array_equal(o["bias"], expected)


def test_projection_shapes_and_fields(net) -> None:
    by_name = {p.name: p for p in net.projections}
    assert list(by_name) == ["x->h", "h->o", "o->o", "h->h", "a->b", "g->b", "ab_fast", "h->o#1"]
    for proj in net.projections:
        assert proj.weights.dtype == np.float64
    dense = by_name["x->h"]
    assert dense.connectivity == "dense" and dense.weights.shape == (6, 5)
    np.testing.assert_array_equal(dense.weights, W1.astype(np.float64))  # integral floats, not quantized
    ho = by_name["h->o"]
    assert (ho.delay, ho.sign, ho.exponent) == (2, "mixed", 1)
    np.testing.assert_array_equal(ho.weights, np.random.default_rng(3).normal(0, 30, size=(5, 4)))
    assert dense.delay == 0 and dense.sign is None and dense.exponent is None
    one = by_name["a->b"]
    assert one.connectivity == "one_to_one"
    np.testing.assert_array_equal(one.weights, [100.0, 100.0, 100.0])
    all_ = by_name["g->b"]
    assert all_.connectivity == "one_to_all"
    np.testing.assert_array_equal(all_.weights, [8704.0, 8704.0])
    fast = by_name["ab_fast"]
    assert (fast.pre, fast.post, fast.sign, fast.exponent) == ("a", "b", "inhibitory", -2)
    np.testing.assert_array_equal(fast.weights, np.full((3, 3), -1.5))


def test_sparse_random_draws_mask_then_weights_from_its_seed(net) -> None:
    proj = net.projection("o->o")
    rng = np.random.default_rng(4)
    pre, post = np.nonzero(rng.random((4, 4)) < 0.5)
    weights = rng.uniform(-64, 64, size=pre.size)
    assert proj.pre_index.dtype == np.int64 and proj.post_index.dtype == np.int64
    np.testing.assert_array_equal(proj.pre_index, pre)
    np.testing.assert_array_equal(proj.post_index, post)
    np.testing.assert_array_equal(proj.weights, weights)


def test_sparse_file_is_sorted_by_pre_then_post(net) -> None:
    proj = net.projection("h->h")
    np.testing.assert_array_equal(proj.pre_index, [0, 1, 1, 3])
    np.testing.assert_array_equal(proj.post_index, [3, 2, 4, 0])
    np.testing.assert_array_equal(proj.weights, [4.0, 3.0, 2.0, 1.0])
    assert proj.pre_index.dtype == np.int64


def test_unseeded_initialiser_uses_the_derived_stream(net) -> None:
    # 8th connect statement (index 7) of a network with seed 7.
    expected = np.random.default_rng([7, 1, 7]).uniform(-1, 1, size=(5, 4))
    np.testing.assert_array_equal(net.projection("h->o#1").weights, expected)


def test_probes(net) -> None:
    assert [(p.name, p.population, p.variable) for p in net.probes] == [("h.v", "h", "v"),
                                                                       ("o.spikes", "o", "spikes")]


def test_defaults_without_network_and_seed() -> None:
    net = parse_dsl("input x[2]")
    assert net.name == "network" and net.attrs == {"seed": 0}
    assert parse_dsl("input x[2]", filename="dir/my_net.nmc").name == "my_net"
    assert parse_dsl('network "two words"\ninput x[1]').name == "two words"


def test_global_statements_apply_wherever_they_appear() -> None:
    late = parse_dsl("input x[2]\npopulation h[2] : cuba_lif\nconnect x -> h : dense(weights = normal(0, 1))\n"
                     "seed 5\nnetwork late")
    early = parse_dsl("seed 5\ninput x[2]\npopulation h[2] : cuba_lif\nconnect x -> h : dense(weights = normal(0, 1))")
    assert late.name == "late"
    np.testing.assert_array_equal(late.projections[0].weights, early.projections[0].weights)


SEEDED = """\
seed {seed}
input x[8]
population h[8] : cuba_lif(bias = normal(5, 2))
connect x -> h : dense(weights = uniform(-1, 1))
connect h -> h : sparse(p = 0.3, weights = normal(0, 1))
connect x -> h : dense(weights = uniform(-1, 1, seed = 9))
"""


def _arrays(net) -> list[np.ndarray]:
    out = [net.population("h").params["bias"]]
    for p in net.projections:
        out += [p.weights] + ([p.pre_index, p.post_index] if p.pre_index is not None else [])
    return out


def test_same_source_and_seed_give_identical_arrays() -> None:
    first, second = _arrays(parse_dsl(SEEDED.format(seed=11))), _arrays(parse_dsl(SEEDED.format(seed=11)))
    assert len(first) == len(second) == 6  # bias, dense, sparse x3, dense
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_network_seed_changes_only_unseeded_draws() -> None:
    a, b = parse_dsl(SEEDED.format(seed=1)), parse_dsl(SEEDED.format(seed=2))
    assert not np.array_equal(a.population("h").params["bias"], b.population("h").params["bias"])
    assert not np.array_equal(a.projections[0].weights, b.projections[0].weights)
    assert not np.array_equal(a.projections[1].pre_index, b.projections[1].pre_index)
    np.testing.assert_array_equal(a.projections[2].weights, b.projections[2].weights)


def test_streams_of_different_objects_are_independent() -> None:
    net = parse_dsl("input x[4]\npopulation h[4] : cuba_lif\n"
                    "connect x -> h : dense(weights = uniform(0, 1))\nconnect x -> h : dense(weights = uniform(0, 1))")
    assert not np.array_equal(net.projections[0].weights, net.projections[1].weights)


@pytest.mark.parametrize("p, expected", [(0, 0), (1, 400), (0.25, None)])
def test_sparse_density(p: float, expected: int | None) -> None:
    net = parse_dsl(f"population a[20] : cuba_lif\nconnect a -> a : sparse(p = {p}, weights = 1, seed = 2)")
    n = net.projections[0].n_synapses
    if expected is None:
        assert 60 < n < 140  # 400 candidates at p = 0.25: mean 100, sd ~9
    else:
        assert n == expected
    assert np.all(net.projections[0].weights == 1.0)


@pytest.mark.parametrize("expr, value", [
    ("8192 + 512", 8704), ("2 * 3 - 4", 2), ("-(2 * 3) / 4", -1.5), ("10 / 4", 2.5), ("+-3", -3),
    ("1.5e2", 150.0), (".5 * 4", 2.0), ("2 - 3 - 4", -5), ("12 / 2 / 3", 2.0), ("1 + 2 * 3", 7),
])
def test_expressions(expr: str, value: float) -> None:
    net = parse_dsl(f"population a[1] : cuba_lif(threshold = {expr})")
    got = net.population("a").params["threshold"]
    assert got == value and type(got) is type(value)


_numbers = st.one_of(st.integers(0, 50).map(str), st.sampled_from(["0.5", "2.0", "1e1", ".25"]))
_expressions = st.recursive(
    _numbers,
    lambda sub: st.one_of(
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda e: f"-{e}"),
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(_expressions)
def test_expressions_follow_python_arithmetic(expr: str) -> None:
    try:
        expected = eval(expr)  # the DSL's arithmetic is Python's, restricted to + - * / and unary minus
    except ZeroDivisionError:
        with pytest.raises(DslError, match="division by zero"):
            parse_dsl(f"population a[1] : cuba_lif(threshold = {expr})")
        return
    got = parse_dsl(f"population a[1] : cuba_lif(threshold = {expr})").population("a").params["threshold"]
    assert got == expected and type(got) is type(expected)


def test_neuron_from_neuron_bias_npz_and_constant(tmp_path: Path) -> None:
    np.savez(tmp_path / "b.npz", bias=np.arange(3), alt=np.ones(3))
    net = parse_dsl("neuron base = cuba_lif(threshold = 300, decay_v = 7)\n"
                    "neuron slow = base(threshold = 400)\n"
                    'population a[3] : slow(bias = npz("b.npz"))\n'
                    'population b[3] : base(bias = npz("b.npz", "alt"), refractory = constant(3))\n',
                    base_dir=tmp_path)
    a, b = net.population("a").params, net.population("b").params
    assert (a["threshold"], a["decay_v"], b["threshold"]) == (400, 300 - 293, 300)
    np.testing.assert_array_equal(a["bias"], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(b["bias"], [1.0, 1.0, 1.0])
    assert b["refractory"] == 3 and type(b["refractory"]) is int


def test_npz_resolves_relative_to_the_source_file(project: Path, tmp_path_factory, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    net = load_dsl(project / "prog.nmc")
    np.testing.assert_array_equal(net.projection("x->h").weights, W1)


def test_output_list_and_keywords_usable_as_names() -> None:
    net = parse_dsl("population seed[2] : cuba_lif\npopulation as[2] : cuba_lif\noutput seed, as\n"
                    "connect seed -> as as input : dense(weights = uniform(0, 1, seed = 1))")
    assert [p.role for p in net.populations] == ["output", "output"]
    assert net.projections[0].name == "input"


def test_parser_is_built_once() -> None:
    assert _lark() is _lark()


# -- IR round trip --------------------------------------------------------------------------------

def test_print_parse_print_is_identity(net) -> None:
    text, arrays = print_ir(net)
    assert arrays  # the program has arrays too large to inline, so the side table is exercised
    again = parse_ir(text, arrays)
    text2, arrays2 = print_ir(again)
    assert text2 == text
    assert arrays2.keys() == arrays.keys()
    for key in arrays:
        np.testing.assert_array_equal(arrays2[key], arrays[key])
        assert arrays2[key].dtype == arrays[key].dtype


# -- errors ---------------------------------------------------------------------------------------

BASE = "input x[4]\npopulation h[3] : cuba_lif\n"  # line 3 is the statement under test

ERRORS = [
    # syntax
    ("population h -> x", "1:14", "unexpected '->', expected '['"),
    ("population h[3", "1:15", "unexpected end of input, expected ']'"),
    ("population h[3] :", "1:18", "unexpected end of input, expected a name"),
    ("input x[4] extra", "1:12", "unexpected 'extra', expected one of: 'connect', 'dt', 'gate', 'inject', 'input', "
                                 "'learn', 'network', 'neuron', 'output', 'population', 'probe', 'readout', "
                                 "'rule', 'schedule', 'score', 'seed', 'veto', end of input"),
    ("input x[4 +]", "1:12", "unexpected ']', expected one of: '(', '+', '-', a name, a number, a string"),
    ("probe h.$", "1:9", "unexpected character '$', expected a name"),
    (BASE + 'connect x -> h : dense(weights = npz("w.npz))', "3:38",
     'unterminated string (strings end with " on the same line)'),
    ("network 3", "1:9", "unexpected '3', expected one of: a name, a string"),
    # sizes and integers
    ("input x[2.5]", "1:9", "population size must be a positive integer, got 2.5"),
    ("input x[0]", "1:9", "population size must be a positive integer, got 0"),
    ("seed -3", "1:6", "seed must be a non-negative integer, got -3"),
    # neuron models and parameters
    (BASE + "population q[3] : cuba_lif(tau = 3)", "3:28",
     "unknown parameter 'tau' for neuron model 'cuba_lif' (known: bias, decay_u, decay_v, refractory, threshold)"),
    (BASE + "population q[3] : cuba_lf", "3:19",
     "unknown neuron model or neuron 'cuba_lf' (models: alif, cuba_lif, eprop_alif, eprop_li, graded, if, if_curr_exp, li, lif, linear, lprnn, relu, sdn, sigma_delta) (did you mean 'cuba_lif'?)"),
    (BASE + "neuron fast = cuba_lif\npopulation q[3] : slow", "4:19",
     "unknown neuron model or neuron 'slow' (models: alif, cuba_lif, eprop_alif, eprop_li, graded, if, if_curr_exp, li, lif, linear, lprnn, relu, sdn, sigma_delta; neurons: fast)"),
    (BASE + "population q[3] : fast\nneuron fast = cuba_lif", "3:19",
     "neuron 'fast' is used before its definition at line 4"),
    (BASE + "population q[3] : input", "3:19",
     "model 'input' is for input ports; declare them with 'input NAME[SIZE]'"),
    (BASE + "neuron f = cuba_lif(3)", "3:21", "neuron parameters must be named, e.g. threshold = 100"),
    (BASE + "neuron f = cuba_lif(bias = 1, bias = 2)", "3:31", "parameter 'bias' is given twice"),
    (BASE + "neuron f = graded(bias = uniform(0, 1))", "3:26",
     "parameter 'bias' takes one number for all neurons (per-neuron values are allowed for: none)"),
    (BASE + "neuron f = cuba_lif(threshold = fast)", "3:33",
     "parameter 'threshold' must be a number, got the name 'fast'"),
    # duplicates
    (BASE + "population h[2] : cuba_lif", "3:12", "population 'h' is defined twice (first at line 2)"),
    (BASE + "input h[2]", "3:7", "population 'h' is defined twice (first at line 2)"),
    (BASE + "neuron f = cuba_lif\nneuron f = cuba_lif", "4:8", "neuron 'f' is defined twice (first at line 3)"),
    (BASE + "neuron cuba_lif = cuba_lif", "3:8", "neuron 'cuba_lif' would hide the built-in neuron model of that name"),
    (BASE + "connect x -> h as p : dense(weights = 1)\nconnect x -> h as p : dense(weights = 1)", "4:19",
     "projection 'p' is defined twice (first at line 3)"),
    (BASE + "probe h.v\nprobe h.v", "4:1", "probe 'h.v' is defined twice (first at line 3)"),
    (BASE + "seed 3\nseed 4", "4:1", "'seed' is given twice (first at line 3)"),
    (BASE + "output h\noutput h", "4:8", "population 'h' is already an output (line 3)"),
    # unknown populations, outputs and probes
    (BASE + "connect x -> hh : dense(weights = 1)", "3:14", "unknown population 'hh' (did you mean 'h'?)"),
    (BASE + "connect x -> q : dense(weights = 1)\npopulation q[3] : cuba_lif", "3:14",
     "population 'q' is used before its definition at line 4"),
    (BASE + "output zz", "3:8", "unknown population 'zz'"),
    (BASE + "output x", "3:8", "'x' is an input population; it cannot also be an output"),
    (BASE + "probe nope.v", "3:7", "unknown population 'nope'"),
    (BASE + "probe h.w", "3:9", "cannot probe 'w' of population 'h': model 'cuba_lif' allows spikes, u, v"),
    (BASE + "probe x.v", "3:9", "cannot probe 'v' of population 'x': model 'input' allows spikes"),
    # connectivity and arguments
    (BASE + "connect x -> h : full(weights = 1)", "3:18",
     "unknown connectivity 'full' (known: dense, one_to_all, one_to_one, sparse)"),
    (BASE + "connect x -> h : dense(weight = 1)", "3:24",
     "unknown argument 'weight' for dense (known: delay, exponent, reward, rule, sign, weights)"),
    (BASE + "connect x -> h : dense()", "3:18", "missing argument 'weights' for dense"),
    (BASE + "connect x -> h : dense(weights = 1, weights = 2)", "3:37", "argument 'weights' is given twice"),
    (BASE + "connect x -> h : dense(1, 2)", "3:27", "too many positional arguments for dense (takes weights; "
                                                   "name the others)"),
    (BASE + "connect x -> h : dense(weights = uniform(seed = 1, 0, 1))", "3:52",
     "positional argument after a named argument"),
    (BASE + "connect x -> h : dense(weights = 1, sign = positive)", "3:44",
     "sign must be one of mixed, excitatory, inhibitory, got the name 'positive'"),
    (BASE + "connect x -> h : dense(weights = 1, delay = -1)", "3:45", "delay must be a non-negative integer, got -1"),
    (BASE + "connect x -> h : dense(weights = 1, exponent = 0.5)", "3:48", "exponent must be an integer, got 0.5"),
    (BASE + "connect x -> h : one_to_one(weights = 1)", "3:18",
     "one_to_one needs populations of equal size, got 'x' (4) -> 'h' (3)"),
    (BASE + "connect h -> x : dense(weights = 1)", "3:14", "cannot connect into input population 'x' "
                                                           "(inputs are fed from data)"),
    (BASE + "connect x -> h : sparse(p = 1.5, weights = 1)", "3:29",
     "p must be a probability between 0 and 1, got 1.5"),
    (BASE + "connect x -> h : sparse(p = 0.5)", "3:18", "missing argument 'weights' for sparse"),
    (BASE + "connect x -> h : sparse(weights = 1)", "3:18",
     "sparse needs either p = ... (with weights = ...) or file = npz(...)"),
    (BASE + 'connect x -> h : sparse(p = 0.5, weights = 1, file = npz("syn.npz"))', "3:25",
     "sparse takes either file = npz(...) or p = ... with weights = ..., not both"),
    (BASE + "connect x -> h : sparse(0.5, 1, 2)", "3:33", "too many positional arguments for sparse (takes p, weights; "
                                                         "name the others)"),
    # initialisers and expressions
    (BASE + "connect x -> h : dense(weights = gauss(0, 1))", "3:34",
     "unknown initialiser 'gauss' (known: constant, normal, npz, randint, uniform)"),
    (BASE + "connect x -> h : dense(weights = uniform(0))", "3:34", "missing argument 'hi' for uniform"),
    (BASE + "connect x -> h : dense(weights = uniform(3, 1))", "3:34", "uniform needs lo <= hi, got lo = 3, hi = 1"),
    (BASE + "connect x -> h : dense(weights = normal(0, -1))", "3:44", "normal needs std >= 0, got -1"),
    (BASE + "connect x -> h : dense(weights = normal(0, 1, seed = 1.5))", "3:54",
     "seed must be a non-negative integer, got 1.5"),
    (BASE + 'connect x -> h : dense(weights = "abc")', "3:34",
     'weights must be a number or an initialiser (constant, normal, npz, randint, uniform), got the string "abc"'),
    (BASE + "connect x -> h : dense(weights = 1 / (2 - 2))", "3:39", "division by zero"),
    (BASE + "connect x -> h : dense(weights = 2 * -mixed)", "3:39", "'-' needs numbers, got the name 'mixed'"),
    (BASE + "connect x -> h : dense(weights = 1e999)", "3:34", "number out of range"),
    (BASE + "population big[100000] : cuba_lif\nconnect big -> big : dense(weights = 1)", "4:38",
     "an array of shape (100000, 100000) (10000000000 elements) is too large (limit 268435456)"),
]


@pytest.mark.parametrize("source, where, message", ERRORS, ids=[m[:40] for _, _, m in ERRORS])
def test_error(source: str, where: str, message: str) -> None:
    assert_dsl_error(source, where, message)


NPZ_ERRORS = [
    ('dense(weights = npz("missing.npz"))', "3:38",
     "cannot read npz file '{dir}/missing.npz': No such file or directory"),
    ('dense(weights = npz("weights.npz", "zz"))', "3:53", "'weights.npz' has no array 'zz' (it has: w1, other)"),
    ('dense(weights = npz("weights.npz"))', "3:34", "'weights.npz' has no array 'weights' (it has: w1, other)"),
    ('dense(weights = npz("weights.npz", "w1"))', "3:34",
     "array 'w1' in 'weights.npz' has shape (6, 5), expected (4, 3) (dense weights x -> h)"),
    ('dense(weights = npz("prog.nmc"))', "3:38", "'prog.nmc' is not an .npz archive"),
    ('dense(weights = npz(3))', "3:38", "npz file name must be a string in double quotes, got 3"),
    ('sparse(file = npz("syn.npz", "pre"))', "3:47",
     "a sparse file takes no key: it must hold arrays 'pre', 'post' and 'weights'"),
    ('sparse(file = npz("weights.npz"))', "3:32", "'weights.npz' has no array 'pre' (it has: w1, other)"),
    ('sparse(file = 3)', "3:32", 'file must be npz("FILE.npz"), got 3'),
    # problems only the IR verifier sees are reported at the statement that made the object
    ('sparse(file = npz("syn.npz"))', "3:1", "sparse indices out of range (pre size 4, post size 3)"),
]


@pytest.mark.parametrize("connectivity, where, message", NPZ_ERRORS, ids=[m[:40] for _, _, m in NPZ_ERRORS])
def test_npz_error(project: Path, connectivity: str, where: str, message: str) -> None:
    assert_dsl_error(BASE + f"connect x -> h : {connectivity}", where, message.format(dir=project), project)


def test_sparse_file_with_duplicate_synapse(tmp_path: Path) -> None:
    np.savez(tmp_path / "dup.npz", pre=[0, 0], post=[1, 1], weights=[1.0, 2.0])
    with pytest.raises(DslError, match=r"^prog.nmc:3:1: error: sparse projection lists the same synapse twice$"):
        parse_dsl(BASE + 'connect x -> h : sparse(file = npz("dup.npz"))', "prog.nmc", base_dir=tmp_path)


def test_sparse_file_needs_integer_indices(tmp_path: Path) -> None:
    np.savez(tmp_path / "f.npz", pre=[0.0], post=[1.0], weights=[1.0])
    with pytest.raises(DslError, match=r"^prog.nmc:3:32: error: array 'pre' in 'f.npz' must hold integers"):
        parse_dsl(BASE + 'connect x -> h : sparse(file = npz("f.npz"))', "prog.nmc", base_dir=tmp_path)


def test_load_dsl_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.nmc"
    with pytest.raises(DslError) as info:
        load_dsl(path)
    assert str(info.value) == f"{path}: error: cannot read DSL file: No such file or directory"


def test_reference_example_builds(tmp_path: Path) -> None:
    """The complete example in docs/dsl.md stays valid."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "dsl.md").read_text()
    source = re.search(r"## A complete example\n\n```\n(.*?)```", doc, re.S).group(1)
    (tmp_path / "digits.nmc").write_text(source)
    np.savez(tmp_path / "weights.npz", w1=np.ones((64, 100)))
    np.savez(tmp_path / "recurrent.npz", pre=[0, 5], post=[7, 1], weights=[1.5, -2.0])
    net = load_dsl(tmp_path / "digits.nmc")
    assert [p.name for p in net.projections] == ["x->h", "h->o", "o->inh", "lateral", "h->h"]
    assert [p.role for p in net.populations] == ["input", "hidden", "output", "hidden"]


def test_randint_gives_inclusive_integers_and_scalar_npz_parameter(tmp_path) -> None:
    np.savez(tmp_path / "p.npz", theta=np.array(1100.0), pair=np.array([1.0, 2.0]))
    src = ("input x[50]\npopulation h[40] : cuba_lif(threshold = npz(\"p.npz\", \"theta\"))\n"
           "connect x -> h : dense(weights = randint(-3, 3, seed = 2))\n")
    (tmp_path / "a.nmc").write_text(src)
    net = load_dsl(tmp_path / "a.nmc")
    w = net.projection("x->h").weights
    assert np.array_equal(w, np.round(w)) and w.min() == -3 and w.max() == 3
    assert net.population("h").params["threshold"] == 1100
    assert isinstance(net.population("h").params["threshold"], int)
    (tmp_path / "b.nmc").write_text(src.replace('"theta"', '"pair"'))
    with pytest.raises(DslError, match=r"b\.nmc:2:41: error: array 'pair' in 'p.npz' has shape \(2,\), expected "
                                       r"\(40,\) \(threshold of population 'h'\)"):
        load_dsl(tmp_path / "b.nmc")
