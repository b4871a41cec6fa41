"""IR data model, canonical text form and verifier."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmc.errors import IrError
from nmc.ir import Network, Population, Probe, Projection, parse_ir, print_ir, read_ir, write_ir
from nmc.ir.verify import verify_network

# -- hypothesis: random IR round-trips -----------------------------------------------------------
names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
scalars = st.one_of(st.integers(-2**40, 2**40), finite, st.booleans(), st.none(), names)
attr_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=3)), max_leaves=8)
DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.float32, np.float64, np.bool_]


@st.composite
def arrays(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    dtype = draw(st.sampled_from(DTYPES))
    n = int(np.prod(shape))
    if dtype == np.bool_:
        vals = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    elif np.dtype(dtype).kind == "f":
        width = 32 if dtype == np.float32 else 64
        vals = draw(st.lists(st.floats(width=width, allow_nan=False, allow_infinity=False), min_size=n, max_size=n))
    else:
        info = np.iinfo(dtype)
        vals = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n))
    return np.array(vals, dtype=dtype).reshape(shape)


@st.composite
def networks(draw: st.DrawFn) -> Network:
    net = Network(draw(names), draw(st.dictionaries(names, attr_values, max_size=3)))
    pop_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    sizes = {}
    for i, name in enumerate(pop_names):
        size = draw(st.integers(1, 6))
        sizes[name] = size
        is_input = i == 0 and draw(st.booleans())
        params = {} if is_input else {"threshold": draw(st.integers(0, 1000)),
                                      "bias": draw(st.one_of(finite, arrays((size,))))}
        attrs = draw(st.dictionaries(st.sampled_from(["placement", "note", "x y"]), attr_values, max_size=2))
        net.add_population(Population(name, size, "input" if is_input else "cuba_lif", params,
                                      "input" if is_input else draw(st.sampled_from(["hidden", "output"])), attrs))
    for _ in range(draw(st.integers(0, 4))):
        pre, post = draw(st.sampled_from(pop_names)), draw(st.sampled_from(pop_names))
        kind = draw(st.sampled_from(["dense", "one_to_all", "sparse"]))
        n_pre, n_post = sizes[pre], sizes[post]
        kw = {}
        if kind == "dense":
            w = draw(arrays((n_pre, n_post)))
        elif kind == "one_to_all":
            w = draw(arrays((n_pre,)))
        else:
            k = draw(st.integers(0, 5))
            w = draw(arrays((k,)))
            kw = {"pre_index": draw(arrays((k,))), "post_index": draw(arrays((k,)))}
        net.add_projection(Projection(net.unique_projection_name(pre, post), pre, post, kind, w,
                                      delay=draw(st.integers(0, 62)),
                                      sign=draw(st.sampled_from([None, "mixed", "excitatory"])),
                                      exponent=draw(st.one_of(st.none(), st.integers(-8, 7))), **kw))
    for name in draw(st.lists(names, max_size=2, unique=True)):
        net.add_probe(Probe(name, draw(st.sampled_from(pop_names)), draw(st.sampled_from(["v", "u", "spikes"]))))
    return net


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.integers(0, 40))
def test_print_parse_print_is_identity(net: Network, inline_limit: int) -> None:
    text, arrays_ = print_ir(net, inline_limit)
    again, arrays2 = print_ir(parse_ir(text, arrays_), inline_limit)
    assert again == text
    assert arrays2.keys() == arrays_.keys()
    for k in arrays_:
        assert arrays2[k].dtype == arrays_[k].dtype
        np.testing.assert_array_equal(arrays2[k], arrays_[k])


def _small_net() -> Network:
    net = Network("small", {"seed": 3})
    net.add_population(Population("x", 4, "input", role="input"))
    net.add_population(Population("h", 30, "cuba_lif", {"threshold": 10, "bias": np.arange(30)}))
    net.add_projection(Projection("x->h", "x", "h", "dense", np.ones((4, 30))))
    net.add_probe(Probe("h.v", "h", "v"))
    return net


def test_write_read_with_side_arrays(tmp_path) -> None:
    net = _small_net()
    path = tmp_path / "n.nmcir"
    write_ir(net, path)
    assert (tmp_path / "n.nmcir.npz").exists()
    text = path.read_text()
    assert 'arrays "n.nmcir.npz"' in text and '@"x->h/weights"' in text
    again = read_ir(path)
    assert print_ir(again)[0] == print_ir(net)[0]
    write_ir(again, tmp_path / "m.nmcir")
    assert (tmp_path / "m.nmcir.npz").read_bytes() == (tmp_path / "n.nmcir.npz").read_bytes()


@pytest.mark.parametrize("text,fragment", [
    ('population "x" {size = 1, model = "input"}', "expected 'network' before"),
    ('network "n" {}\npopulation "x" {size = 1}', "has no 'model'"),
    ('network "n" {}\npopulation "x" {size = 1, model = "input", size = 2}', "given twice"),
    ('network "n" {}\nprojection "p" : "a" -> "b" {connectivity = "dense", weights = 1}', "unknown population 'a'"),
    ('network "n" {a = array<i64, 2x2>[1, 2, 3]}', "needs 4 elements, found 3"),
    ('network "n" {a = @"w"}', "array 'w' is referenced but not provided"),
    ('network "n" {a = $}', "unexpected character"),
    ('network "n" {a = 1', "expected ',' or '}', found end of input"),
    ('network "n" {}\nfoo "x" {}', "unknown declaration 'foo'"),
])
def test_parse_errors_are_located(text: str, fragment: str) -> None:
    with pytest.raises(IrError) as exc:
        parse_ir(text, filename="t.nmcir")
    assert fragment in str(exc.value)
    assert str(exc.value).startswith("t.nmcir:")


def test_verifier_reports_every_problem() -> None:
    net = Network("bad")
    net.add_population(Population("x", 3, "input", role="input"))
    net.add_population(Population("h", 2, "cuba_lif", {"tau": 3}))
    net.add_population(Population("g", 2, "izhikevich"))
    net.add_projection(Projection("x->h", "x", "h", "dense", np.ones((2, 2))))
    net.add_projection(Projection("h->x", "h", "x", "one_to_one", np.ones(2)))
    net.add_probe(Probe("p", "h", "w"))
    with pytest.raises(IrError) as exc:
        verify_network(net)
    msg = str(exc.value)
    for frag in ["unknown parameter 'tau' for neuron model 'cuba_lif'", "unknown neuron model 'izhikevich'",
                 "dense weights must have shape (3, 2), got (2, 2)", "cannot project onto input population 'x'",
                 "one_to_one needs equal sizes", "variable 'w' cannot be probed"]:
        assert frag in msg, frag


def test_coo_and_dense_agree_for_every_connectivity() -> None:
    d = Projection("d", "a", "b", "dense", np.arange(6.0).reshape(2, 3))
    o = Projection("o", "a", "b", "one_to_all", np.array([5.0, 7.0]))
    s = Projection("s", "a", "b", "sparse", np.array([1.0, 2.0]), pre_index=np.array([0, 1]), post_index=np.array([2, 0]))
    np.testing.assert_array_equal(d.dense_matrix(2, 3), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(o.dense_matrix(2, 3), [[5, 5, 5], [7, 7, 7]])
    np.testing.assert_array_equal(s.dense_matrix(2, 3), [[0, 0, 1], [2, 0, 0]])
    one = Projection("1", "a", "b", "one_to_one", np.array([3.0, 4.0]))
    np.testing.assert_array_equal(one.dense_matrix(2, 2), [[3, 0], [0, 4]])
