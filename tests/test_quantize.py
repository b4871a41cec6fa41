"""The ``quantize`` pass and the Loihi number formats, from hand-written IR text."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmc.errors import PipelineError, QuantizationError, ResourceError, TargetError
from nmc.formats import loihi as fmt
from nmc.ir import format_ir, parse_ir
from nmc.passes import PassContext, get_pass
from nmc.target import Target, load_target

LOIHI = load_target("loihi")
REPO = Path(__file__).resolve().parent.parent

HEADER = '''// nmc-ir v1
network "n" {}
population "x" {model = "input", role = "input", size = 4}
population "h" {model = "cuba_lif", role = "hidden", size = 1}
'''


def run(text: str, strict: bool = False, target: Target = LOIHI):
    net = parse_ir(text)
    ctx = PassContext(target, strict=strict)
    get_pass("quantize").fn(net, ctx)
    return net, [str(d) for d in ctx.diagnostics.items]


def proj_ir(weights: str, extra: str = "") -> str:
    """A network with one one_to_all projection x->h carrying four weights."""
    return HEADER + ('projection "x->h" : "x" -> "h" {connectivity = "one_to_all", '
                     f'weights = array<f64, 4>[{weights}]{extra}}}\n')


def proj_line(net) -> str:
    return next(line for line in format_ir(net).splitlines() if line.startswith("projection"))


# -- weights ----------------------------------------------------------------------------------
def test_exact_excitatory_weights_keep_exponent_zero():
    net, diags = run(proj_ir("0.0, 1.0, 128.0, 255.0"))
    assert proj_line(net) == ('projection "x->h" : "x" -> "h" {connectivity = "one_to_all", delay = 0, '
                              'exponent = 0, sign = "excitatory", weight_bits = 8, '
                              'weights = array<i64, 4>[0, 1, 128, 255]}')
    assert diags == []
    assert net.attrs["quantized"] == "loihi"


def test_exponent_is_the_smallest_that_fits_and_rounding_is_reported():
    net, diags = run(proj_ir("1.0, 3.0, 5.0, 300.0"))
    proj = net.projection("x->h")
    assert proj.exponent == 1
    # 0.5 -> 1, 1.5 -> 2, 2.5 -> 3 (ties away from zero), 150
    assert proj.weights.tolist() == [1, 2, 3, 150]
    assert proj.weights.dtype == np.int64
    assert diags == ["projection 'x->h': warning: 3 of 4 weights rounded to the format "
                     "(8-bit excitatory, exponent 1); max abs error 1 (effective weight units)"]


def test_inhibitory_weights():
    net, diags = run(proj_ir("0.0, -1.0, -255.0, -2.5"))
    proj = net.projection("x->h")
    assert (proj.sign, proj.exponent) == ("inhibitory", 0)
    assert proj.weights.tolist() == [0, -1, -255, -3]
    assert len(diags) == 1 and "1 of 4 weights rounded" in diags[0]


def test_mixed_8_bit_weights_are_even():
    net, _ = run(proj_ir("-3.0, 5.0, 100.0, -256.0"))
    proj = net.projection("x->h")
    assert (proj.sign, proj.exponent) == ("mixed", 0)
    assert proj.weights.tolist() == [-4, 6, 100, -256]


def test_mixed_weight_255_needs_exponent_one():
    # 255 would round to 256 > 254 at exponent 0
    net, _ = run(proj_ir("-4.0, 255.0, -1.0, 0.0"))
    proj = net.projection("x->h")
    assert proj.exponent == 1
    assert proj.weights.tolist() == [-2, 128, 0, 0]  # -1 -> -0.5 -> nearest even 0


def test_fewer_weight_bits_coarsen_the_mantissa():
    net, _ = run(proj_ir("0.0, 8.0, 24.0, 240.0", ", weight_bits = 4"))
    proj = net.projection("x->h")
    assert (proj.weight_bits, proj.exponent) == (4, 0)
    assert proj.weights.tolist() == [0, 16, 32, 240]


def test_user_exponent_saturates_with_warning():
    net, diags = run(proj_ir("0.0, 4.0, 2000.0, 1020.0", ", exponent = 2"))
    proj = net.projection("x->h")
    assert proj.weights.tolist() == [0, 1, 255, 255]
    assert diags == ["projection 'x->h': warning: 1 of 4 weights saturated at 1020 (the largest effective "
                     "weights of the format 8-bit excitatory, exponent 2)"]


def test_no_exponent_fits_saturates_at_max_exponent():
    net, diags = run(proj_ir("0.0, 1000000.0, 0.0, 0.0"))
    proj = net.projection("x->h")
    assert proj.exponent == 7 and proj.weights.tolist() == [0, 255, 0, 0]
    assert "saturated at 32640" in diags[0]
    assert "no exponent up to synapse.weight_exp_max = 7 fits max |w| = 1000000" in diags[0]


def test_negative_exponent_notes_per_weight_shift():
    net, diags = run(proj_ir("0.25, 1.25, 2.0, 0.0", ", exponent = -2"))
    proj = net.projection("x->h")
    # mantissas are pre-rounded to multiples of 4 so that floor(m / 4) loses nothing avoidable
    assert proj.weights.tolist() == [0, 4, 8, 0]
    assert fmt.effective_weight(proj.weights, -2).tolist() == [0, 1, 2, 0]
    assert len(diags) == 1
    assert "2 of 4 weights rounded" in diags[0] and "max abs error 0.25" in diags[0]
    assert "per-weight shifts lose the low bits" in diags[0]


def test_user_sign_is_checked():
    with pytest.raises(QuantizationError) as exc:
        run(proj_ir("1.0, -2.0, 0.0, 0.0", ', sign = "excitatory"'))
    assert str(exc.value).startswith("projection 'x->h': error: sign is 'excitatory' but 1 of 4 weights "
                                     "have the opposite sign (e.g. -2)")


def test_user_sign_mixed_is_kept_for_positive_weights():
    net, _ = run(proj_ir("1.0, 2.0, 0.0, 0.0", ', sign = "mixed"'))
    proj = net.projection("x->h")
    assert proj.sign == "mixed" and proj.weights.tolist() == [2, 2, 0, 0]


def test_unsupported_weight_bits():
    with pytest.raises(QuantizationError) as exc:
        run(proj_ir("1.0, 2.0, 0.0, 0.0", ", weight_bits = 7"))
    assert str(exc.value) == ("projection 'x->h': error: weight_bits 7 is not supported "
                              "(synapse.weight_bits_allowed = [1, 2, 3, 4, 5, 6, 8])")


def test_exponent_out_of_range():
    with pytest.raises(QuantizationError) as exc:
        run(proj_ir("1.0, 2.0, 0.0, 0.0", ", exponent = 8"))
    assert "[synapse.weight_exp_min, synapse.weight_exp_max] = [-8, 7]" in str(exc.value)


def test_strict_mode_turns_rounding_into_an_error():
    with pytest.raises(QuantizationError) as exc:
        run(proj_ir("0.5, 0.0, 0.0, 0.0"), strict=True)
    assert exc.value.location == "projection 'x->h'"
    run(proj_ir("1.0, 0.0, 0.0, 0.0"), strict=True)  # exact: fine


def test_delay_over_the_limit():
    with pytest.raises(ResourceError) as exc:
        run(proj_ir("1.0, 0.0, 0.0, 0.0", ", delay = 70"))
    assert str(exc.value).startswith("projection 'x->h': error: delay (70) exceeded max "
                                     "(synapse.max_delay = 62) by 8")


# -- neuron parameters ------------------------------------------------------------------------
def test_cuba_lif_parameters():
    text = ('network "n" {}\n'
            'population "h" {model = "cuba_lif", role = "hidden", size = 4, params = {decay_u = 5000, '
            'decay_v = 4096, threshold = 99.5, refractory = 0, '
            'bias = array<f64, 4>[1.4, 5000.0, -10000.0, 10000000.0]}}\n')
    net, diags = run(text)
    pop = net.population("h")
    assert pop.params["decay_u"] == 4095 and type(pop.params["decay_u"]) is int
    assert pop.params["decay_v"] == 4096
    assert pop.params["threshold"] == 100
    assert pop.params["refractory"] == 1
    assert pop.params["bias"].dtype == np.int64
    assert pop.params["bias"].tolist() == [1, 5000, -10000, 4095 << 7]
    assert diags == [
        "population 'h': warning: decay_u 5000 saturated to 4095 (range [0, neuron.decay_u_max])",
        "population 'h': warning: threshold 99.5 rounded to 100 (range [0, neuron.threshold_mant_max])",
        "population 'h': warning: refractory 0 saturated to 1 (range [neuron.refractory_min, neuron.refractory_max])",
        "population 'h': warning: bias: 1 of 4 values rounded to representable values (max abs error 0.4; "
        "bias = bm * 2^be, bm in [neuron.bias_mant_min, neuron.bias_mant_max], be in [0, neuron.bias_exp_max])",
        "population 'h': warning: bias: 1 of 4 values saturated at 524160 (bias = bm * 2^be, bm in "
        "[neuron.bias_mant_min, neuron.bias_mant_max], be in [0, neuron.bias_exp_max])",
    ]


def test_scalar_bias_rounds_to_a_coarser_grid():
    text = 'network "n" {}\npopulation "h" {model = "cuba_lif", params = {bias = 4097}, size = 1}\n'
    net, diags = run(text)
    assert net.population("h").params["bias"] == 4098  # 2049 * 2^1
    assert diags == ["population 'h': warning: bias 4097 rounded to 4098 (bias = bm * 2^be, bm in "
                     "[neuron.bias_mant_min, neuron.bias_mant_max], be in [0, neuron.bias_exp_max])"]


# -- idempotence, targets ---------------------------------------------------------------------
def test_quantize_twice_changes_nothing():
    text = proj_ir("1.0, 3.0, -5.0, 300.0") + \
        'population "o" {model = "cuba_lif", params = {bias = 5000.6, threshold = 7.2}, size = 2}\n'
    net, diags = run(text)
    assert diags
    once = format_ir(net)
    ctx = PassContext(LOIHI)
    get_pass("quantize").fn(net, ctx)
    assert ctx.diagnostics.items == []
    assert format_ir(net) == once
    # and from the printed text again
    net2, diags2 = run(once)
    assert diags2 == [] and format_ir(net2) == once


def test_edited_quantized_ir_is_rejected():
    net, _ = run(proj_ir("1.0, 2.0, 0.0, 0.0"))
    text = format_ir(net).replace("weights = array<i64, 4>[1, 2, 0, 0]", "weights = array<i64, 4>[1, 256, 0, 0]")
    with pytest.raises(QuantizationError) as exc:
        run(text)
    assert "1 weights are not mantissas of the format (8-bit excitatory: multiples of 1 in [0, 255])" in str(exc.value)


def test_a_target_without_parts_is_refused():
    other = Target(name="toy", data={"name": "toy"})
    with pytest.raises(TargetError) as exc:
        run(proj_ir("1.0, 0.0, 0.0, 0.0"), target=other)
    assert "the target has no [parts] table" in str(exc.value)


def test_a_target_naming_an_unknown_part_is_refused(tmp_path):
    text = (REPO / "targets" / "loihi.toml").read_text().replace('backend = "loihi"', 'backend = "nosuch"')
    path = tmp_path / "odd.toml"
    path.write_text(text)
    with pytest.raises(TargetError) as exc:
        load_target(str(path))
    assert str(exc.value) == (f"{path}: error: [parts] backend = 'nosuch' is not a registered backend part "
                              "(known: loihi, loihi2, spinnaker)")


def test_network_quantized_for_another_target():
    text = proj_ir("1.0, 0.0, 0.0, 0.0").replace('network "n" {}', 'network "n" {quantized = "spinnaker"}')
    with pytest.raises(PipelineError):
        run(text)


def test_formats_read_limits_from_the_target():
    data = copy.deepcopy(LOIHI.data)
    data["neuron"]["decay_u_max"] = 255
    data["synapse"]["weight_bits_allowed"] = [1, 2, 4, 6]
    small = Target("loihi", data)
    assert fmt.mantissa_range(6, "excitatory", small) == (0, 63, 1)
    assert fmt.mantissa_range(6, "mixed", small) == (-64, 62, 2)
    net, _ = run('network "n" {}\npopulation "h" {model = "cuba_lif", params = {decay_u = 300}, size = 1}\n',
                 target=small)
    assert net.population("h").params["decay_u"] == 255


# -- format functions -------------------------------------------------------------------------
@pytest.mark.parametrize("bits,sign,expected", [
    (8, "excitatory", (0, 255, 1)), (8, "inhibitory", (-255, 0, 1)), (8, "mixed", (-256, 254, 2)),
    (4, "excitatory", (0, 240, 16)), (4, "mixed", (-256, 224, 32)), (1, "excitatory", (0, 128, 128)),
])
def test_mantissa_range(bits, sign, expected):
    assert fmt.mantissa_range(bits, sign, LOIHI) == expected


def test_effective_weight_shifts_arithmetically():
    assert fmt.effective_weight(np.array([3, -3, 255]), 2).tolist() == [12, -12, 1020]
    assert fmt.effective_weight(np.array([3, -3, -1]), -1).tolist() == [1, -2, -1]


def test_synapse_memory_formulas():
    assert [fmt.delay_bits(d) for d in (0, 1, 2, 3, 4, 7, 8, 62)] == [0, 1, 2, 2, 3, 3, 4, 6]
    assert fmt.synapse_bits_per_synapse(8, 0, "dense", LOIHI) == 8
    assert fmt.synapse_bits_per_synapse(4, 3, "sparse", LOIHI) == 4 + 2 + 10
    assert fmt.synapse_bits_per_synapse(8, 0, "one_to_one", LOIHI) == 18
    # groups of 64: (10 + 64*8) bits -> 9 words; (10 + 54*8) -> 7 words
    assert fmt.synapse_group_bits(np.array([0, 1, 64, 118]), 8, LOIHI).tolist() == [0, 64, 576, 1024]


def test_bias_to_mant_exp_rejects_unrepresentable_values():
    mant, exp = fmt.bias_to_mant_exp(np.array([0, 4095, 4096, -4096, -4098, 524160]), LOIHI)
    assert (mant << exp).tolist() == [0, 4095, 4096, -4096, -4098, 524160]
    assert exp.tolist() == [0, 0, 1, 0, 1, 7]
    with pytest.raises(QuantizationError):
        fmt.bias_to_mant_exp(np.array([4097]), LOIHI)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-2e6, 2e6, allow_nan=False), min_size=1, max_size=20))
def test_quantized_bias_is_exactly_representable(values):
    q = fmt.quantize_bias(np.array(values), LOIHI)
    mant, exp = fmt.bias_to_mant_exp(q.values, LOIHI)
    assert np.array_equal(mant << exp, q.values)
    assert np.all((mant >= -4096) & (mant <= 4095) & (exp >= 0) & (exp <= 7))
    lo, hi = fmt.bias_range(LOIHI)
    inside = (np.array(values) >= lo) & (np.array(values) <= hi)
    # in range: off by at most half a step of the chosen exponent
    err = np.abs(q.values - np.array(values))[inside]
    assert np.all(err <= 2.0 ** q.exp[inside] / 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e5, 1e5, allow_nan=False), min_size=1, max_size=20),
       st.sampled_from([1, 2, 3, 4, 5, 6, 8]), st.integers(-8, 7))
def test_quantized_weights_are_valid_mantissas(values, bits, exponent):
    w = np.array(values)
    sign = fmt.infer_sign(w)
    q = fmt.quantize_weights(w, bits, sign, exponent, LOIHI)
    assert fmt.invalid_mantissas(q.mantissas, bits, sign, LOIHI) == 0
    if q.report.n_saturated == 0 and exponent >= 0:
        step = fmt.mantissa_range(bits, sign, LOIHI)[2]
        assert q.report.max_error <= step * 2.0 ** exponent / 2
