"""The ``partition`` pass (first fit) and its resource model, from hand-written IR text."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from nmc.errors import PipelineError, ResourceError
from nmc.ir import format_ir, parse_ir
from nmc.passes import PassContext, get_pass, parse_pipeline, run_pipeline
from nmc.lowering.loihi_layout import CORE_LIMITS, CoreUsage, ResourceModel, build_layout, core_limit_violations
from nmc.passes.partition import available_partitioners
from nmc.target import Target, load_target

LOIHI = load_target("loihi")


def target_with(**limits: int) -> Target:
    """The Loihi target with some limits replaced: ``target_with(core__max_compartments=3)``."""
    data = copy.deepcopy(LOIHI.data)
    for key, value in limits.items():
        section, name = key.split("__")
        data[section][name] = value
    return Target("loihi", data)


def partition(text: str, target: Target = LOIHI, arrays=None, **options):
    net = parse_ir(text, arrays)
    get_pass("partition").fn(net, PassContext(target), **options)
    return net


def placements(net) -> dict:
    return {p.name: p.attrs.get("placement") for p in net.populations}


SMALL = '''// nmc-ir v1
network "n" {}
population "x" {model = "input", role = "input", size = 3}
population "h" {model = "cuba_lif", params = {threshold = 10}, size = 4}
population "o" {model = "cuba_lif", params = {threshold = 20}, size = 2}
projection "x->h" : "x" -> "h" {connectivity = "dense", weights = array<i64, 3x4>[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}
projection "h->o" : "h" -> "o" {connectivity = "one_to_all", weights = array<i64, 4>[1, 1, 1, 1]}
'''


def test_everything_on_one_core():
    net = partition(SMALL)
    assert placements(net) == {"x": None, "h": [[0, 0, 4]], "o": [[0, 0, 2]]}
    assert net.attrs["cores_used"] == 1
    assert net.attrs["partition"]["cores"] == net.attrs["partition"]["cores_lb"] == 1
    net = partition(SMALL, solver="first-fit")  # first fit writes no partition summary
    lines = format_ir(net).splitlines()
    assert lines[1] == 'network "n" {cores_used = 1}'
    assert lines[3] == ('population "h" {model = "cuba_lif", params = {threshold = 10}, '
                        'placement = [[0, 0, 4]], role = "hidden", size = 4}')


def test_compartment_limit_splits_and_packs():
    net = partition(SMALL, target_with(core__max_compartments=3))
    # h fills core 0 and part of core 1; o takes core 1's last slot, then opens core 2
    assert placements(net) == {"x": None, "h": [[0, 0, 3], [1, 3, 4]], "o": [[1, 0, 2]]}
    net = partition(SMALL, target_with(core__max_compartments=2))
    assert placements(net)["h"] == [[0, 0, 2], [1, 2, 4]]
    assert placements(net)["o"] == [[2, 0, 2]]
    assert net.attrs["cores_used"] == 3


def test_compartment_config_limit_keeps_different_parameters_apart():
    net = partition(SMALL, target_with(core__max_compartment_configs=1))
    assert placements(net) == {"x": None, "h": [[0, 0, 4]], "o": [[1, 0, 2]]}


def test_synapse_memory_limits_a_dense_population():
    w = np.ones((1000, 1000), dtype=np.int64)
    text = ('network "n" {}\npopulation "x" {model = "input", role = "input", size = 1000}\n'
            'population "h" {model = "cuba_lif", size = 1000}\n'
            'projection "x->h" : "x" -> "h" {connectivity = "dense", exponent = 0, sign = "excitatory", '
            'weight_bits = 8, weights = @"w"}\n')
    net = partition(text, arrays={"w": w})
    # per axon: 118 synapses = 64 + 54 -> 9 + 7 words of 64 bits; 1000 axons -> 1,024,000 bits <= 1,048,576
    # while 119 synapses need 9 + 8 words -> 1,088,000 bits
    place = placements(net)["h"]
    assert place[0] == [0, 0, 118] and place[-1] == [8, 944, 1000] and len(place) == 9


def test_single_neuron_over_the_input_axon_limit():
    text = ('network "n" {}\npopulation "x" {model = "input", role = "input", size = 5000}\n'
            'population "h" {model = "cuba_lif", size = 2}\n'
            'projection "x->h" : "x" -> "h" {connectivity = "one_to_all", weights = @"w"}\n')
    with pytest.raises(ResourceError) as exc:
        partition(text, arrays={"w": np.ones(5000)})
    assert str(exc.value) == ("population 'h': error: input axons for one neuron (5000) exceeded max "
                              "(core.max_input_axons = 4096) by 904; reduce the fan-in")


def test_sources_placed_later_still_count():
    # o is placed after h, but its feedback into h uses h's input axons all the same
    text = SMALL + 'projection "o->h" : "o" -> "h" {connectivity = "dense", weights = array<i64, 2x4>[1, 1, 1, 1, 1, 1, 1, 1]}\n'
    with pytest.raises(ResourceError) as exc:
        partition(text, target_with(core__max_input_axons=4))
    assert str(exc.value).startswith("population 'h': error: input axons for one neuron (5) exceeded max "
                                     "(core.max_input_axons = 4) by 1")


def test_single_neuron_over_the_synapse_format_limit():
    text = SMALL + 'projection "x->h#1" : "x" -> "h" {connectivity = "dense", delay = 3, weights = array<i64, 3x4>[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}\n'
    with pytest.raises(ResourceError) as exc:
        partition(text, target_with(core__max_synapse_formats=1))
    assert str(exc.value).startswith("population 'h': error: synapse formats for one neuron (2) exceeded max "
                                     "(core.max_synapse_formats = 1) by 1; use fewer distinct")


def test_too_many_cores():
    # a: 10 neurons on core 0; b: 1014 more on core 0, then 139 full cores -> 140 cores
    text = 'network "n" {}\npopulation "a" {model = "cuba_lif", size = 10}\npopulation "b" {model = "cuba_lif", size = 143350}\n'
    with pytest.raises(ResourceError) as exc:
        partition(text)
    assert str(exc.value) == ("error: network needs 140 cores, exceeded max (chip.cores x chip.chips = 128) by 12; "
                              "populations using the most cores: 'b' (140), 'a' (1); shrink the network or "
                              "raise chip.chips")


@pytest.mark.parametrize("solver", ["first-fit", "ffd", "cpsat"])
def test_network_that_exactly_fills_the_chip(solver):
    text = 'network "n" {}\npopulation "a" {model = "cuba_lif", size = 10}\npopulation "b" {model = "cuba_lif", size = 131062}\n'
    net = partition(text, solver=solver)
    assert net.attrs["cores_used"] == 128
    if solver == "first-fit":
        assert placements(net)["b"][0] == [0, 0, 1014]
    else:  # maximal slices of b, and its remainder shares a core with a
        assert sorted(b - a for _, a, b in placements(net)["b"]) == [1014] + [1024] * 127


def test_unknown_solver():
    with pytest.raises(PipelineError) as exc:
        partition(SMALL, solver="magic")
    assert str(exc.value) == "error: partition: unknown solver 'magic' (available: cpsat, ffd, first-fit)"
    assert {"first-fit", "ffd", "cpsat"} <= set(available_partitioners())


def test_solver_option_in_a_pipeline():
    net = parse_ir(SMALL)
    run_pipeline(net, parse_pipeline("partition{solver=first-fit}"), PassContext(LOIHI))
    assert net.attrs["cores_used"] == 1


def test_input_placement_is_dropped_and_rerun_is_stable():
    text = SMALL.replace('role = "input", size = 3}', 'placement = [[0, 0, 3]], role = "input", size = 3}')
    net = partition(text, target_with(core__max_compartments=3))
    assert "placement" not in net.population("x").attrs
    once = format_ir(net)
    get_pass("partition").fn(net, PassContext(target_with(core__max_compartments=3)))
    assert format_ir(net) == once


def _random_network(seed: int) -> str:
    """IR text of a random network mixing every connectivity, delays and weight formats."""
    rng = np.random.default_rng(seed)
    sizes = {"x": 40, "a": 60, "b": 50, "c": 50}
    lines = ['network "r" {}', 'population "x" {model = "input", role = "input", size = 40}']
    for i, name in enumerate("abc"):
        lines.append(f'population "{name}" {{model = "cuba_lif", params = {{threshold = {10 + i % 2}}}, '
                     f'size = {sizes[name]}}}')
    edges = [("x", "a", "dense"), ("x", "b", "sparse"), ("a", "b", "one_to_all"), ("b", "c", "one_to_one"),
             ("c", "a", "sparse"), ("a", "c", "dense"), ("x", "c", "sparse")]
    arrays = {}
    for k, (pre, post, conn) in enumerate(edges):
        n_pre, n_post = sizes[pre], sizes[post]
        delay = int(rng.integers(0, 9))
        bits = int(rng.choice([2, 4, 8]))
        extra = f'delay = {delay}, weight_bits = {bits}, sign = "excitatory", exponent = 0'
        if conn == "dense":
            arrays[f"w{k}"] = rng.integers(0, 3, (n_pre, n_post))
            body = f'weights = @"w{k}"'
        elif conn == "one_to_all":
            arrays[f"w{k}"] = rng.integers(0, 3, n_pre)
            body = f'weights = @"w{k}"'
        elif conn == "one_to_one":
            arrays[f"w{k}"] = rng.integers(0, 3, n_pre)
            body = f'weights = @"w{k}"'
        else:
            flat = rng.choice(n_pre * n_post, size=int(n_pre * n_post * 0.2), replace=False)
            arrays[f"p{k}"], arrays[f"q{k}"] = np.divmod(flat, n_post)
            arrays[f"w{k}"] = rng.integers(0, 3, flat.size)
            body = f'weights = @"w{k}", pre_index = @"p{k}", post_index = @"q{k}"'
        lines.append(f'projection "{pre}->{post}" : "{pre}" -> "{post}" {{connectivity = "{conn}", {body}, {extra}}}')
    return "\n".join(lines) + "\n", arrays


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resource_model_agrees_with_the_layout(seed):
    text, arrays = _random_network(seed)
    target = target_with(core__max_compartments=37, core__max_input_axons=100, core__synapse_memory_bits=20000,
                         core__max_synapse_formats=3)
    net = partition(text, target, arrays)
    layout = build_layout(net, target)
    assert [v for v in core_limit_violations(layout, target) if v[1] != "output axons"] == []
    # recount every core with the partitioner's model: same numbers as the layout
    model = ResourceModel(net, target)
    cores = [CoreUsage() for _ in range(layout.n_cores)]
    for pop in net.populations:
        for core, start, stop in pop.attrs.get("placement") or []:
            model.commit(cores[core], model.demand(pop, start, stop))
    assert [c.compartments for c in cores] == layout.core_compartments.tolist()
    assert [c.sources.size for c in cores] == layout.core_input_axons.tolist()
    assert [c.synapse_bits for c in cores] == layout.core_synapse_bits.tolist()
    assert [len(c.configs) for c in cores] == layout.core_compartment_configs.tolist()
    assert [len(c.formats) for c in cores] == layout.core_synapse_formats.tolist()
    # first fit: every slice but a population's last is maximal on its core at the time it was placed,
    # so the same IR gives the same placement
    again = partition(text, target, arrays)
    assert format_ir(again) == format_ir(net)


def test_core_limits_table_names_target_keys():
    for _, field, key, _ in CORE_LIMITS:
        assert LOIHI.get(key) > 0 and field.startswith("core_")
