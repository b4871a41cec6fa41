"""The ``allocate`` pass and ``build_layout``, from hand-written IR with a given placement."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from nmc.errors import IrError, PipelineError, ResourceError
from nmc.ir import Network, Population, Projection, format_ir, parse_ir
from nmc.passes import PassContext, get_pass, parse_pipeline, run_pipeline
from nmc.lowering.loihi_layout import build_layout
from nmc.target import Target, load_target

LOIHI = load_target("loihi")


def target_with(**limits: int) -> Target:
    data = copy.deepcopy(LOIHI.data)
    for key, value in limits.items():
        section, name = key.split("__")
        data[section][name] = value
    return Target("loihi", data)


def allocate(text: str, target: Target = LOIHI):
    net = parse_ir(text)
    get_pass("allocate").fn(net, PassContext(target))
    return net


# x (input, 2) --dense--> h (3) --sparse, delay 3--> o (2)
# h: neurons 0-1 on core 0, neuron 2 on core 1; o: both neurons on core 1.
EXAMPLE = '''// nmc-ir v1
network "n" {quantized = "loihi"}
population "x" {model = "input", role = "input", size = 2}
population "h" {model = "cuba_lif", params = {threshold = 10}, placement = [[0, 0, 2], [1, 2, 3]], size = 3}
population "o" {model = "cuba_lif", params = {threshold = 50}, placement = [[1, 0, 2]], role = "output", size = 2}
projection "x->h" : "x" -> "h" {connectivity = "dense", exponent = 0, sign = "mixed", weight_bits = 8, weights = array<i64, 2x3>[2, 4, 0, -6, 8, 10]}
projection "h->o" : "h" -> "o" {connectivity = "sparse", delay = 3, exponent = 0, sign = "excitatory", weight_bits = 8, weights = array<i64, 2>[5, 7], pre_index = array<i64, 2>[0, 2], post_index = array<i64, 2>[1, 0]}
'''


def test_layout_of_the_worked_example():
    layout = build_layout(parse_ir(EXAMPLE), LOIHI)
    assert layout.n_cores == 2
    assert layout.pop_core["h"].tolist() == [0, 0, 1] and layout.pop_local["h"].tolist() == [0, 1, 0]
    assert layout.pop_core["o"].tolist() == [1, 1] and layout.pop_local["o"].tolist() == [1, 2]
    assert "x" not in layout.pop_core
    assert layout.core_compartments.tolist() == [2, 3]
    # axons: core 0 <- x0, x1; core 1 <- x0, x1 (to h2), h0 (to o1), h2 (to o0)
    assert layout.axon_core.tolist() == [0, 0, 1, 1, 1, 1]
    assert layout.axon_src_pop.tolist() == [0, 0, 0, 0, 1, 1]
    assert layout.axon_src_neuron.tolist() == [0, 1, 0, 1, 0, 2]
    assert layout.axon_local.tolist() == [0, 1, 0, 1, 2, 3]
    assert layout.syn_axon.tolist() == [0, 0, 1, 1, 2, 3, 4, 5]
    assert layout.syn_proj.tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    assert layout.syn_local.tolist() == [0, 1, 0, 1, 0, 0, 2, 1]
    assert layout.syn_weight.tolist() == [2, 4, -6, 8, 0, 10, 5, 7]  # the zero weight is kept
    assert layout.core_input_axons.tolist() == [2, 4]
    assert layout.core_output_axons.tolist() == [1, 1]  # h0 -> core 1, h2 -> core 1
    # each axon holds one group; dense 8 bits, sparse 8 + 2 (delay 3) + 10 (index) bits: one word each
    assert layout.core_synapse_bits.tolist() == [2 * 64, 4 * 64]
    assert layout.core_compartment_configs.tolist() == [1, 2]
    assert layout.core_synapse_formats.tolist() == [1, 2]
    for arr in (layout.axon_core, layout.syn_axon, layout.syn_weight, layout.core_synapse_bits):
        assert arr.dtype == np.int64


def test_allocate_records_cores_in_the_ir():
    net = allocate(EXAMPLE)
    assert format_ir(net).splitlines()[1] == (
        'network "n" {cores = ['
        '{compartment_configs = 1, compartments = 2, core = 0, input_axons = 2, output_axons = 1, '
        'populations = ["h"], synapse_bits = 128, synapse_formats = 1}, '
        '{compartment_configs = 2, compartments = 3, core = 1, input_axons = 4, output_axons = 1, '
        'populations = ["h", "o"], synapse_bits = 256, synapse_formats = 2}], quantized = "loihi"}')
    # the table round-trips through the text form
    assert format_ir(parse_ir(format_ir(net))) == format_ir(net)


def test_missing_placement():
    text = EXAMPLE.replace(', placement = [[1, 0, 2]]', '')
    with pytest.raises(PipelineError) as exc:
        allocate(text)
    assert str(exc.value) == "error: allocate: population 'o' has no placement; run partition first"


def test_output_axon_limit():
    # o split over cores 1 and 2 and fed densely by h: each h neuron sends to 2 cores
    text = '''network "n" {}
population "h" {model = "cuba_lif", placement = [[0, 0, 2]], size = 2}
population "o" {model = "cuba_lif", placement = [[1, 0, 1], [2, 1, 2]], size = 2}
projection "h->o" : "h" -> "o" {connectivity = "dense", weights = array<i64, 2x2>[1, 1, 1, 1]}
'''
    net = allocate(text)
    assert [c["output_axons"] for c in net.attrs["cores"]] == [4, 0, 0]
    with pytest.raises(ResourceError) as exc:
        allocate(text, target_with(core__max_output_axons=3))
    assert str(exc.value).startswith("core 0 (populations 'h'): error: output axons (4) exceeded max "
                                     "(core.max_output_axons = 3) by 1; ")


def test_other_limits_are_checked_again():
    with pytest.raises(ResourceError) as exc:
        allocate(EXAMPLE, target_with(core__max_compartments=2))
    assert str(exc.value).startswith("core 1 (populations 'h', 'o'): error: compartments (3) exceeded max "
                                     "(core.max_compartments = 2) by 1")
    with pytest.raises(ResourceError) as exc:
        allocate(EXAMPLE, target_with(core__synapse_memory_bits=128, core__max_input_axons=3))
    assert "input axons (4) exceeded max (core.max_input_axons = 3) by 1" in str(exc.value)
    with pytest.raises(ResourceError) as exc:
        allocate(EXAMPLE, target_with(chip__cores=1))
    assert "network needs 2 cores, exceeded max (chip.cores x chip.chips = 1) by 1" in str(exc.value)


@pytest.mark.parametrize("placement,message", [
    ("[[0, 0, 2]]", "placement puts neuron 2 on 0 cores"),
    ("[[0, 0, 2], [1, 1, 3]]", "placement puts neuron 1 on 2 cores"),
    ("[[0, 0, 4]]", "out of range"),
])
def test_bad_placements(placement, message):
    text = EXAMPLE.replace("[[0, 0, 2], [1, 2, 3]]", placement)
    with pytest.raises(IrError) as exc:
        allocate(text)
    assert message in str(exc.value) and exc.value.location == "population 'h'"


def test_unquantized_weights_are_rejected():
    text = EXAMPLE.replace("array<i64, 2x3>[2, 4, 0, -6, 8, 10]", "array<f64, 2x3>[2.5, 4.0, 0.0, -6.0, 8.0, 10.0]")
    with pytest.raises(IrError) as exc:
        allocate(text)
    assert str(exc.value) == "projection 'x->h': error: weights are not integer mantissas; run quantize first"


def _dense_network(n: int) -> Network:
    net = Network("big")
    net.add_population(Population("x", n, "input", role="input"))
    net.add_population(Population("h", n, "cuba_lif", {"threshold": 100}))
    w = np.random.default_rng(0).integers(-100, 100, (n, n)).astype(np.float64)
    net.add_projection(Projection("x->h", "x", "h", "dense", w))
    return net


def test_million_synapses_are_laid_out_quickly():
    net = _dense_network(1000)
    ctx = PassContext(LOIHI)
    run_pipeline(net, parse_pipeline("quantize,partition"), ctx)
    layout = build_layout(net, LOIHI)   # its speed is bench/compile_scale.py's to measure, not a test's
    assert layout.syn_axon.size == 1_000_000
    # synapses sorted by (axon, projection, local); axons by (core, population, neuron)
    key = layout.syn_axon * 4096 + layout.syn_local
    assert np.all(np.diff(key) > 0)
    akey = layout.axon_core * 10_000 + layout.axon_src_pop * 2000 + layout.axon_src_neuron
    assert np.all(np.diff(akey) > 0)
    # every synapse reproduces the quantized matrix
    h = net.population("h")
    proj = net.projection("x->h")
    src = layout.axon_src_neuron[layout.syn_axon]
    core = layout.axon_core[layout.syn_axon]
    neuron_at = np.full((layout.n_cores, 1024), -1)
    neuron_at[layout.pop_core["h"], layout.pop_local["h"]] = np.arange(h.size)
    post = neuron_at[core, layout.syn_local]
    assert np.array_equal(layout.syn_weight, proj.weights[src, post])
    assert layout.core_input_axons.tolist() == [1000] * layout.n_cores
    get_pass("allocate").fn(net, ctx)
    assert sum(c["compartments"] for c in net.attrs["cores"]) == 1000


def test_default_pipeline_end_to_end_is_deterministic():
    rng = np.random.default_rng(3)

    def build() -> Network:
        net = Network("r")
        net.add_population(Population("x", 30, "input", role="input"))
        net.add_population(Population("h", 200, "cuba_lif", {"threshold": 64.3, "bias": rng.normal(0, 100, 200)}))
        net.add_population(Population("o", 10, "cuba_lif", {"threshold": 90}, role="output"))
        net.add_projection(Projection("x->h", "x", "h", "dense", rng.normal(0, 40, (30, 200))))
        pre, post = np.divmod(rng.choice(2000, 300, replace=False), 10)
        net.add_projection(Projection("h->o", "h", "o", "sparse", rng.normal(0, 5, 300), pre, post, delay=5))
        net.add_projection(Projection("o->h", "o", "h", "one_to_all", -np.abs(rng.normal(0, 5, 10))))
        return net

    texts = []
    for _ in range(2):
        rng = np.random.default_rng(3)
        net = build()
        small = target_with(core__max_compartments=64)
        run_pipeline(net, parse_pipeline(",".join(small.default_pipeline)), PassContext(small))
        texts.append(format_ir(net))
    assert texts[0] == texts[1]
    assert "cores = [" in texts[0] and "cores_used = 4" in texts[0]
