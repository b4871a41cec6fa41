"""The ``ffd`` and ``cpsat`` partitioners (nmc/partitioning): exactness of the result on the chip,
limits, errors before long work, reproducibility, the bounds and the protocol's vector view."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from typing import Callable
from pathlib import Path

import numpy as np
import pytest

from nmc.binary.format import encode_binary
from nmc.driver import compile_network
from nmc.errors import NmcError, ResourceError
from nmc.ir.network import Network, Population, Probe, Projection
from nmc.lowering.loihi_layout import build_layout, core_limit_violations
from nmc.passes import PassContext, get_pass, parse_pipeline, run_pipeline
from nmc.partitioning.bounds import l2_bound, lower_bound
from nmc.partitioning.problem import build_problem
from nmc.sim import interpreter_for
from nmc.target import Target, load_target

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from netgen import distinct_sources, population_graph  # noqa: E402

#: Targets the partitioner must serve. Another target joins by its name here, with the limits that
#: make its cores small (see with_limits) and its test network (NETWORKS).
TARGETS = ["loihi", "spinnaker"]
SMALL_LIMITS = {"loihi": {"core": {"max_compartments": 16, "max_input_axons": 256, "max_output_axons": 400,
                                   "synapse_memory_bits": 40_000}},
                # 16 neurons per core and 4 cores per chip: slices on several chips, routes between them.
                "spinnaker": {"core": {"max_neurons": 16}, "chip": {"cores": 4}}}
LIF = {"tau_m": 20.0, "tau_syn": 5.0, "cm": 1.0, "v_rest": -65.0, "v_reset": -65.0, "v_th": -50.0, "t_ref": 2.0}


def with_limits(name: str, limits: dict, chips: int | None = None) -> Target:
    base = load_target(name)
    data = copy.deepcopy(base.data)
    for section, values in limits.items():
        data[section].update(values)
    if chips is not None:
        data["chip"]["chips"] = chips
    return Target(base.name, data)


#: The graph of the mixed test networks: population sizes and (pre, post, connectivity, delay).
MIXED_SIZES = {"x": 40, "a": 60, "b": 50, "c": 45, "d": 30}
MIXED_EDGES = [("x", "a", "dense", 0), ("x", "b", "sparse", 2), ("a", "b", "one_to_all", 1), ("a", "c", "sparse", 0),
               ("b", "c", "dense", 3), ("c", "a", "sparse", 1), ("c", "d", "sparse", 0), ("b", "d", "one_to_all", 0),
               ("d", "d", "sparse", 2)]


def _mixed_graph(net: Network, rng: np.random.Generator, model: str, params: Callable[[int], dict],
                 weights: Callable[[str, int], np.ndarray]) -> Network:
    """Populations of ``model`` (``params(i)`` for the i-th), MIXED_EDGES with ``weights(conn, n)``
    drawn per projection (a sparse one keeps a fifth of the pairs), and probes."""
    net.add_population(Population("x", MIXED_SIZES["x"], "input", role="input"))
    for i, name in enumerate("abcd"):
        net.add_population(Population(name, MIXED_SIZES[name], model, params=params(i),
                                      role="output" if name == "d" else "hidden"))
    for pre, post, conn, delay in MIXED_EDGES:
        n_pre, n_post = MIXED_SIZES[pre], MIXED_SIZES[post]
        kw: dict = {}
        if conn == "dense":
            w = weights(conn, n_pre * n_post).reshape(n_pre, n_post)
        elif conn == "one_to_all":
            w = weights(conn, n_pre)
        else:
            flat = rng.choice(n_pre * n_post, size=n_pre * n_post // 5, replace=False)
            kw = {"pre_index": flat // n_post, "post_index": flat % n_post}
            w = weights(conn, flat.size)
        net.add_projection(Projection(f"{pre}->{post}", pre, post, conn, w, delay=delay, **kw))
    for name in "abcd":
        net.add_probe(Probe(f"{name}.spikes", name, "spikes"))
    net.add_probe(Probe("c.v", "c", "v"))
    return net


def mixed_network(seed: int = 0) -> Network:
    """Every connectivity, delays, a recurrent loop, probes on every population's spikes; each
    population fits one core of the full target."""
    rng = np.random.default_rng(seed)
    low = {"dense": (-30, 60), "one_to_all": (-10, 20), "sparse": (-20, 80)}

    def params(i: int) -> dict:
        return {"decay_u": 1024 + 512 * (i % 2), "decay_v": 256, "threshold": 30 + 5 * i, "refractory": 1 + i % 3,
                "bias": int(rng.integers(0, 200))}

    return _mixed_graph(Network("mixed", {"seed": seed}), rng, "cuba_lif", params,
                        lambda conn, n: rng.integers(*low[conn], size=n).astype(np.int64))


def lif_mixed_network(seed: int = 4) -> Network:
    """:func:`mixed_network` in physical units (``lif``, weights in nA), for targets whose
    registers map-neurons derives (SpiNNaker-like). Seed 4 gives populations a and c one weight
    -shift pair and b and d another, so that slices of different populations can share a core
    (one pair per core)."""
    rng = np.random.default_rng(seed)
    span = {"dense": (-0.5, 1.0), "one_to_all": (-0.2, 0.4), "sparse": (-0.4, 1.6)}

    def params(i: int) -> dict:
        return dict(LIF, tau_m=20.0 + 5 * (i % 2), t_ref=1.0 + i % 3, i_bias=float(rng.uniform(0, 0.3)))

    return _mixed_graph(Network("mixed_lif", {"seed": seed, "dt": 1.0}), rng, "lif", params,
                        lambda conn, n: rng.uniform(*span[conn], size=n).round(3))


#: The test network of each target: the same graph (every connectivity, delays, a loop, probes)
#: in the neuron models the target takes.
NETWORKS = {"loihi": mixed_network, "spinnaker": lif_mixed_network}


def one_population_per_core(net: Network, target: Target):
    """The reference: map and quantize, then every population alone on its own core."""
    ctx = PassContext(target)
    run_pipeline(net, parse_pipeline("verify,map-neurons,quantize"), ctx)
    core = 0
    for pop in net.populations:
        if not pop.is_input:
            pop.attrs["placement"] = [[core, 0, pop.size]]
            core += 1
    run_pipeline(net, parse_pipeline("allocate"), ctx)
    from nmc.backend import emit_binary
    return emit_binary(net, target)


def run_binary(binary, steps: int = 80, seed: int = 1) -> dict[str, np.ndarray]:
    chip = interpreter_for(binary)
    rng = np.random.default_rng(seed)
    spikes = (rng.random((steps, 40)) < 0.3).astype(np.int8)
    res = chip.run(steps, {"x": spikes})
    out = {f"out/{k}": v for k, v in res.spikes.items()}
    out.update({f"probe/{k}": v for k, v in res.probes.items()})
    out["synaptic_ops"] = np.array(res.counters["synaptic_ops"])
    return out


@pytest.mark.parametrize("target_name", TARGETS)
@pytest.mark.parametrize("solver", ["cpsat", "ffd", "first-fit"])
def test_partitioned_network_spikes_like_one_population_per_core(target_name: str, solver: str) -> None:
    full = load_target(target_name)
    reference = run_binary(one_population_per_core(NETWORKS[target_name](), full))
    small = with_limits(target_name, SMALL_LIMITS[target_name])
    net = NETWORKS[target_name]()
    binary = compile_network(net, small, f"verify,map-neurons,quantize,partition{{solver={solver},time=2}},allocate")
    placement = {p.name: p.attrs["placement"] for p in net.populations if not p.is_input}
    # The small cores force splits, and slices of different populations share cores.
    assert net.attrs["cores_used"] > 4
    assert all(len(sl) > 1 for sl in placement.values())
    shared = {}
    for name, sl in placement.items():
        for core, *_ in sl:
            shared.setdefault(core, set()).add(name)
    assert any(len(v) > 1 for v in shared.values())
    got = run_binary(binary)
    assert got.keys() == reference.keys()
    assert any(v.any() for k, v in reference.items() if k.startswith("probe/") and k.endswith(".spikes"))
    for key in reference:
        np.testing.assert_array_equal(got[key], reference[key], err_msg=key)


@pytest.mark.parametrize("solver", ["cpsat", "ffd"])
def test_every_limit_holds_output_axons_included(solver: str) -> None:
    # A random fan-out layer: neurons reach many slices, so output axons bind before compartments.
    rng = np.random.default_rng(2)
    net = Network("fanout", {"seed": 0})
    net.add_population(Population("x", 300, "input", role="input"))
    net.add_population(Population("h", 300, "cuba_lif"))
    net.add_population(Population("o", 300, "cuba_lif", role="output"))
    for pre, post in (("x", "h"), ("h", "o")):
        src = distinct_sources(rng, 300, 40, 300)
        p, q = src.reshape(-1), np.repeat(np.arange(300), 40)
        net.add_projection(Projection(f"{pre}->{post}", pre, post, "sparse", np.ones(p.size, dtype=np.int64),
                                      pre_index=p, post_index=q))
    target = with_limits("loihi", {"core": {"max_compartments": 64, "max_input_axons": 512, "max_output_axons": 256}})
    ctx = PassContext(target)
    run_pipeline(net, parse_pipeline(f"quantize,partition{{solver={solver},time=2}}"), ctx)
    layout = build_layout(net, target)
    assert core_limit_violations(layout, target) == []
    assert layout.core_output_axons.max() <= 256
    # first fit does not count output axons: the same network is refused by allocate
    net2 = copy.deepcopy(net)
    with pytest.raises(ResourceError, match="output axons"):
        run_pipeline(net2, parse_pipeline("partition{solver=first-fit},allocate"), PassContext(target))


@pytest.mark.parametrize("solver", ["cpsat", "ffd"])
def test_a_neuron_over_the_fan_in_is_one_line_naming_it(solver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    net = Network("n")
    net.add_population(Population("x", 5000, "input", role="input"))
    net.add_population(Population("big", 20000, "cuba_lif"))  # sliced first, were it not for the check
    net.add_population(Population("h", 300, "cuba_lif"))
    net.add_projection(Projection("x->big", "x", "big", "sparse", np.ones(20000, dtype=np.int64),
                                  pre_index=np.arange(20000) % 5000, post_index=np.arange(20000)))
    # neuron 123 of h hears all 5000 inputs; the others one each
    pre = np.concatenate([np.arange(5000), np.arange(299)])
    post = np.concatenate([np.full(5000, 123), np.delete(np.arange(300), 123)])
    net.add_projection(Projection("x->h", "x", "h", "sparse", np.ones(pre.size, dtype=np.int64),
                                  pre_index=pre, post_index=post))
    import nmc.partitioning.problem as problem

    def no_slicing(*_a: object, **_k: object) -> None:
        raise AssertionError("sliced before checking the widest neurons")

    monkeypatch.setattr(problem._Slicer, "slices", no_slicing)
    with pytest.raises(ResourceError) as exc:
        get_pass("partition").fn(net, PassContext(with_limits("loihi", {}, chips=64)), solver=solver)
    assert str(exc.value) == ("population 'h': error: input axons for one neuron (5000) exceeded max "
                              "(core.max_input_axons = 4096) by 904; reduce the fan-in")


def test_a_neuron_over_the_fan_out_is_one_line_naming_it() -> None:
    net = Network("n")
    net.add_population(Population("a", 1, "cuba_lif"))
    net.add_population(Population("b", 40, "cuba_lif"))
    net.add_projection(Projection("a->b", "a", "b", "one_to_all", np.ones(1, dtype=np.int64)))
    target = with_limits("loihi", {"core": {"max_compartments": 4, "max_output_axons": 5}})
    with pytest.raises(ResourceError) as exc:
        get_pass("partition").fn(net, PassContext(target), solver="ffd")
    msg = str(exc.value)
    assert msg.startswith("population 'a' (neuron 0): error: output axons for one neuron (up to 10: its targets lie "
                          "in 10 slices) exceeded max (core.max_output_axons = 5) by 5")
    assert "\n" not in msg


def test_a_network_larger_than_the_machine_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10^8 neurons: refused from the sizes alone, without slicing (no demand of any slice is asked).
    from nmc.lowering import loihi_layout

    def no_slicing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the partitioner sliced a population before checking the machine's size")

    monkeypatch.setattr(loihi_layout.ResourceModel, "demand", no_slicing)
    net = Network("big")
    net.add_population(Population("x", 100, "input", role="input"))
    net.add_population(Population("h", 100_000_000, "cuba_lif"))
    net.add_projection(Projection("x->h", "x", "h", "one_to_all", np.ones(100, dtype=np.int64)))
    with pytest.raises(ResourceError) as exc:
        get_pass("partition").fn(net, PassContext(load_target("loihi")))
    assert str(exc.value).startswith("error: network needs 97657 cores, exceeded max (chip.cores x chip.chips = 128) "
                                     "by 97529; populations using the most cores: 'h' (97657)")


def test_a_network_over_the_machine_by_its_bound_is_refused_before_the_search() -> None:
    # Neurons alone would fit one core, but no two share a core's 100 input axons: 200 cores.
    rng = np.random.default_rng(0)
    net = Network("n")
    net.add_population(Population("x", 1000, "input", role="input"))
    net.add_population(Population("h", 200, "cuba_lif"))
    src = distinct_sources(rng, 200, 60, 1000)
    net.add_projection(Projection("x->h", "x", "h", "sparse", np.ones(200 * 60, dtype=np.int64),
                                  pre_index=src.reshape(-1), post_index=np.repeat(np.arange(200), 60)))
    target = with_limits("loihi", {"core": {"max_input_axons": 100}}, chips=1)
    with pytest.raises(ResourceError) as exc:
        get_pass("partition").fn(net, PassContext(target), solver="cpsat")
    assert str(exc.value).startswith("error: network needs 200 cores, exceeded max (chip.cores x chip.chips = 128) "
                                     "by 72; populations using the most cores: 'h' (200)")


def test_cpsat_binaries_are_reproducible() -> None:
    target = with_limits("loihi", {}, chips=4)
    blobs = []
    for _ in range(2):
        net = population_graph(40, recurrent=True, seed=3, per_layer=10)
        binary = compile_network(net, target, "verify,quantize,partition{solver=cpsat,time=1},allocate")
        blobs.append(encode_binary(binary))
        assert binary.meta["partition"]["windows"] > 0  # CP-SAT did run
    assert blobs[0] == blobs[1]


def test_cpsat_cuts_traffic_at_ffd_core_count() -> None:
    target = with_limits("loihi", {}, chips=4)
    out = {}
    for solver, extra in (("ffd", ""), ("cpsat", ",objective=traffic,time=4")):
        net = population_graph(50, recurrent=True, seed=1, per_layer=10)
        run_pipeline(net, parse_pipeline(f"quantize,partition{{solver={solver}{extra}}}"), PassContext(target))
        out[solver] = net.attrs["partition"]
    assert out["cpsat"]["cores"] == out["ffd"]["cores"]
    assert out["cpsat"]["inter_core_spikes"] < 0.8 * out["ffd"]["inter_core_spikes"]


def test_cpsat_reaches_the_bound_where_ffd_does_not() -> None:
    target = with_limits("loihi", {}, chips=4)
    out = {}
    for solver in ("ffd", "cpsat"):
        net = population_graph(200, seed=1, per_layer=40)
        run_pipeline(net, parse_pipeline(f"quantize,partition{{solver={solver},time=2}}"), PassContext(target))
        out[solver] = net.attrs["partition"]
    assert out["ffd"]["cores"] > out["ffd"]["cores_lb"]
    assert out["cpsat"]["cores"] <= 1.05 * out["cpsat"]["cores_lb"]


def test_l2_bound() -> None:
    # Martello-Toth's example shape: three items over half a bin need three bins whatever the volume.
    assert l2_bound(np.array([60, 60, 60]), 100) == 3
    assert l2_bound(np.array([60, 60, 60, 30, 30, 30]), 100) == 3
    assert l2_bound(np.array([60, 60, 60, 45, 45, 45]), 100) == 5  # the 45s fit two to a bin, none beside a 60
    assert l2_bound(np.array([10] * 25), 100) == 3
    assert l2_bound(np.zeros(0, dtype=np.int64), 100) == 0


def test_bound_holds_and_vectors_are_exact_for_one_slice() -> None:
    net = mixed_network()
    target = with_limits("loihi", SMALL_LIMITS["loihi"])
    run_pipeline(net, parse_pipeline("quantize"), PassContext(target))
    model = target.part("layout")(target).resource_model(net)
    problem = build_problem(net, model)
    lb, why = lower_bound(problem)
    assert lb >= -(-sum(p.size for p in net.populations if not p.is_input) // 24)
    alone = problem.alone()
    res = model.resources()
    for g in range(problem.n_groups):  # a slice alone: the vector view equals the exact count
        pop = net.populations[int(problem.group_pop[g])]
        d = model.demand(pop, int(problem.group_start[g]), int(problem.group_stop[g]))
        core = model.new_core()
        model.commit(core, d)
        exact = {"core.max_compartments": core.compartments, "core.max_input_axons": core.sources.size,
                 "core.synapse_memory_bits": core.synapse_bits, "core.max_compartment_configs": len(core.configs),
                 "core.max_synapse_formats": len(core.formats)}
        for r, resource in enumerate(res):
            if resource.key in exact:
                assert alone[g, r] == exact[resource.key], (g, resource.key)
    net2 = copy.deepcopy(net)
    run_pipeline(net2, parse_pipeline("partition{time=2}"), PassContext(target))
    assert net2.attrs["cores_used"] >= lb


def _spinnaker_view_network(seed: int = 0) -> Network:
    """Twelve small populations with one weight-shift pair (equal inputs), delays of 1 to 41
    ticks (delay-bit counts 1 to 6), a dense and a sparse input each."""
    rng = np.random.default_rng(seed)
    net = Network("view", {"seed": seed, "dt": 1.0})
    net.add_population(Population("x", 40, "input", role="input"))
    net.add_population(Population("y", 300, "input", role="input"))
    for k, delay in enumerate([0, 1, 3, 10, 40, 0, 2, 5, 0, 1, 20, 0]):
        n = int(rng.integers(10, 60))
        net.add_population(Population(f"p{k}", n, "lif", dict(LIF), role="output"))
        net.add_projection(Projection(f"x->p{k}", "x", f"p{k}", "dense", np.full((40, n), 0.3), delay=delay))
        flat = rng.choice(300 * n, size=300 * n // 10, replace=False)
        net.add_projection(Projection(f"y->p{k}", "y", f"p{k}", "sparse", np.full(flat.size, 0.3),
                                      pre_index=flat // n, post_index=flat % n))
    return net


def test_spinnaker_packing_view_bounds_the_exact_model() -> None:
    """The SpiNNaker-like vector view (docs/spinnaker.md §6): a slice alone exactly as the exact
    model counts it, but for the ring buffer, charged at its size on the fullest core of the
    slice's delay bits; any set of slices at least as the exact model counts it, so a core the
    view accepts the exact model accepts. DTCM is made tight (24,000 bytes) so that it decides."""
    from nmc.lowering.spinnaker_layout import ring_bits
    target = with_limits("spinnaker", {"chip": {"dtcm_bytes": 24_000}})
    net = _spinnaker_view_network()
    run_pipeline(net, parse_pipeline("verify,map-neurons,quantize"), PassContext(target))
    model = target.part("layout")(target).resource_model(net)
    problem = build_problem(net, model)
    keys = [r.key for r in problem.resources]
    NEURONS, RING, ROW, DTCM = (keys.index(k) for k in ("core.max_neurons", "core.max_ring_buffer_bits",
                                                         "core.max_row_length", "chip.dtcm_bytes"))
    per_core = problem.per_core
    pops = net.populations
    demands = [model.demand(pops[int(problem.group_pop[g])], int(problem.group_start[g]), int(problem.group_stop[g]))
               for g in range(problem.n_groups)]
    assert {n_bits_of(d.max_delay) for d in demands} == {1, 2, 3, 4, 5, 6}

    def view(groups: list[int]) -> np.ndarray:
        items = np.unique(np.concatenate([problem.shared_of(g) for g in groups]))
        return problem.amounts[groups].sum(axis=0) + problem.shared_cost[items].sum(axis=0)

    for g, d in enumerate(demands):  # alone
        n, bits, row, dtcm = model._usage(model.new_core(), d)
        v = view([g])
        assert np.all(v[per_core] <= problem.cap[per_core]), g  # the slicer kept it placeable
        ring = model.budget.ring_entry << sum(ring_bits(n, d.max_delay, model.budget.types))
        full_ring = int(problem.shared_cost[problem.shared_keys.index(("ring", n_bits_of(d.max_delay))), DTCM])
        assert (v[NEURONS], v[ROW], v[DTCM]) == (n, row, dtcm - ring + full_ring), g
    rng = np.random.default_rng(0)
    accepted = tight = mixed = 0
    for _ in range(600):
        groups = rng.choice(problem.n_groups, size=int(rng.integers(2, 5)), replace=False).tolist()
        core = model.new_core()
        for g in groups[:-1]:
            model.commit(core, demands[g])
        n, bits, row, dtcm = model._usage(core, demands[groups[-1]])
        v = view(groups)
        assert v[NEURONS] == n and v[ROW] >= row
        if v[RING] <= problem.cap[RING]:  # then the ring buffer is at most the one the view charges
            assert v[DTCM] >= dtcm, groups
        if np.all(v[per_core] <= problem.cap[per_core]):
            accepted += 1
            tight += dtcm > 0.7 * problem.cap[DTCM]
            mixed += len({n_bits_of(demands[g].max_delay) for g in groups}) > 1
            core = model.new_core()
            for g in groups:
                assert model.violation(core, demands[g]) is None, groups
                model.commit(core, demands[g])
    assert accepted > 50 and tight > 10 and mixed > 10, (accepted, tight, mixed)


def n_bits_of(delay: int) -> int:
    from nmc.formats.spinnaker import n_bits
    return n_bits(delay)


def test_spinnaker_sdram_and_router_views_hold_on_the_layout() -> None:
    """Per core, the view's SDRAM is at least the layout's; on one chip (no route passes through
    it) the view's router entries are at least the entries the backend makes there."""
    from nmc.lowering.spinnaker_layout import build_layout
    from nmc.partitioning import run
    from nmc.partitioning.traffic import ChipLoad, core_usage
    from nmc.passes.partition import PartitionOptions
    target = load_target("spinnaker")
    net = _spinnaker_view_network()
    run_pipeline(net, parse_pipeline("verify,map-neurons,quantize"), PassContext(target))
    result = run(net, target, PartitionOptions(solver="ffd"), use_cpsat=False)
    for name, sl in result.placement.items():
        net.population(name).attrs["placement"] = sl
    keys = [r.key for r in result.problem.resources]
    n = int(result.assign.max()) + 1
    use = core_usage(result.problem, result.assign, n)
    lay = build_layout(net, target)
    assert np.all(use[lay.core_position, keys.index("chip.sdram_bytes")] >= lay.core_sdram)
    ctx = PassContext(target)
    run_pipeline(net, parse_pipeline("allocate"), ctx)
    from nmc.backend import emit_binary
    chips = emit_binary(net, target).meta["chips"]
    assert len(chips) == 1 and chips[0]["router_entries_raw"] > 0
    entries = ChipLoad(result.problem, result.assign, n).of(list(range(n))).used[keys.index("router.usable_entries")]
    assert entries >= chips[0]["router_entries_raw"]


def test_spinnaker_geometry_is_where_the_layout_puts_cores_and_how_far_routes_go() -> None:
    """SpiNNakerGeometry: between any two cores of a partitioned network, as many hops as the
    backend's route between the chips the layout put them on; and on one-core chips, where core
    ids are chips, every packet of a chain passes hops + 1 routers (the interpreter's count)."""
    from nmc.backend import emit_binary
    from nmc.backend.spinnaker import mesh_path
    target = with_limits("spinnaker", {"core": {"max_neurons": 16}, "chip": {"cores": 2}})
    geometry = target.part("layout")(target).geometry()
    net = lif_mixed_network()
    b = compile_network(net, target, "verify,map-neurons,quantize,partition{time=1},allocate")
    chip = {c["position"]: tuple(int(v) for v in c["chip"].split(",")) for c in b.meta["cores"]}
    ids = np.array(sorted(chip))
    assert len(set(chip.values())) >= 5
    a, c = np.meshgrid(ids, ids)
    want = [len(mesh_path(chip[i], chip[j])) for i, j in zip(a.ravel().tolist(), c.ravel().tolist())]
    assert geometry.hops(a.ravel(), c.ravel()).tolist() == want

    one = with_limits("spinnaker", {"chip": {"cores": 1}})
    geometry = one.part("layout")(one).geometry()
    chain = Network("chain", {"dt": 1.0, "seed": 0})
    chain.add_population(Population("x", 10, "input", role="input"))
    names = ["a", "b", "c", "d", "e"]
    for name in names:
        chain.add_population(Population(name, 10, "lif", dict(LIF, i_bias=0.2)))
        chain.add_probe(Probe(f"{name}.spikes", name, "spikes"))
    for pre, post in zip(["x"] + names, names):
        chain.add_projection(Projection(f"{pre}->{post}", pre, post, "dense", np.full((10, 10), 2.0)))
    run_pipeline(chain, parse_pipeline("verify,map-neurons,quantize"), PassContext(one))
    where = {"a": 3, "b": 17, "c": 40, "d": 5, "e": 29}  # scattered over the mesh: routes of 1 to 7 hops
    for name, core in where.items():
        chain.population(name).attrs["placement"] = [[core, 0, 10]]
    run_pipeline(chain, parse_pipeline("allocate"), PassContext(one))
    res = interpreter_for(emit_binary(chain, one)).run(60, {"x": np.ones((60, 10), dtype=np.int8)})
    hops = geometry.hops(np.array([0, 3, 17, 40, 5]), np.array([3, 17, 40, 5, 29]))  # the host chip is core 0's
    assert hops.tolist() == [1, 3, 7, 6, 3]
    packets = [600] + [int(res.probes[f"{n}.spikes"].sum()) for n in names[:-1]]
    assert all(packets)
    assert res.counters["router_traversals"] == sum(k * (h + 1) for k, h in zip(packets, hops.tolist()))


def test_spinnaker_a_chip_closed_by_its_sdram_leaves_ids_unused_and_the_spikes_unchanged() -> None:
    """With 40,000 bytes of SDRAM per chip (about two of these cores), the partitioner closes each
    chip early: core ids skip the rest of the chip, the layout numbers only the cores in use and
    puts each on the chip its id names, and the network runs as one population per core. First
    fit fills chips in core order and the layout refuses the first chip over its SDRAM."""
    reference = run_binary(one_population_per_core(lif_mixed_network(), load_target("spinnaker")))
    small = with_limits("spinnaker", {"core": {"max_neurons": 16}, "chip": {"cores": 4, "sdram_bytes": 40_000}})
    net = lif_mixed_network()
    binary = compile_network(net, small, "verify,map-neurons,quantize,partition{time=1},allocate")
    cores = binary.meta["cores"]
    positions = [c["position"] for c in cores]
    assert binary.meta["n_cores"] == len(cores) == net.attrs["cores_used"] < max(positions) + 1
    assert all(c["chip"] == cores[0]["chip"] for c in cores if c["position"] < 4)
    assert all(c["sdram_bytes"] <= 40_000 for c in binary.meta["chips"])
    got = run_binary(binary)
    for key in reference:
        np.testing.assert_array_equal(got[key], reference[key], err_msg=key)
    with pytest.raises(ResourceError, match=r"^chip \(\d+, \d+\): error: SDRAM bytes of the chip's cores \(\d+\) "
                                            r"exceeded max \(chip.sdram_bytes = 40000\)"):
        compile_network(lif_mixed_network(), small, "verify,map-neurons,quantize,partition{solver=first-fit},allocate")


def test_spinnaker_cpsat_binaries_are_reproducible(tmp_path: Path) -> None:
    """The same network gives the same bytes with the default partitioner (CP-SAT ran), in one
    process and in two with different hash seeds."""
    from nmc.ir.io import write_ir
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from spinnaker_mapping import net_c
    blobs = []
    for _ in range(2):
        binary = compile_network(net_c(2), "spinnaker", settings={"partition.time": 1.0})
        assert binary.meta["partition"]["windows"] > 0
        blobs.append(encode_binary(binary))
    assert blobs[0] == blobs[1]
    write_ir(net_c(2), tmp_path / "net.nmcir")
    for hash_seed in ("1", "2"):
        out = tmp_path / f"b{hash_seed}.nmcb"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run([sys.executable, "-m", "nmc", "compile", str(tmp_path / "net.nmcir"), "--target",
                               "spinnaker", "--partition-time", "1", "-o", str(out)],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        blobs.append(out.read_bytes())
    assert blobs[2] == blobs[3]


def test_rates_from_a_previous_run(tmp_path: Path, cli) -> None:
    src = tmp_path / "n.nmc"
    src.write_text((Path(__file__).resolve().parents[1] / "examples" / "recurrent" / "ei_network.nmc").read_text())
    assert cli("compile", src, "-o", tmp_path / "a.nmcb")[0] == 0
    assert cli("run", tmp_path / "a.nmcb", "--steps", "50", "--out", tmp_path / "r.npz")[0] == 0
    code, out, err = cli("compile", src, "-o", tmp_path / "b.nmcb", "--rates", tmp_path / "r.npz", "--report",
                         "--partition-time", "1")
    assert code == 0, err
    assert "rates measured for" in out
    bad = tmp_path / "bad.npz"
    np.savez(bad, counts=np.zeros(3))
    code, out, err = cli("compile", src, "-o", tmp_path / "c.nmcb", "--rates", bad)
    assert code == 1 and err.count("\n") == 1 and "holds no spike trains" in err


def test_compile_report_and_inspect_placement(tmp_path: Path, small_src: Path, cli) -> None:
    out_path = tmp_path / "s.nmcb"
    code, out, err = cli("compile", small_src, "-o", out_path, "--report")
    assert code == 0, err
    assert "// partition report" in out and "lower bound" in out and "inter-core" in out
    code, out, err = cli("inspect", out_path, "--placement")
    assert code == 0 and out.startswith("partition: solver cpsat")
    code, out, err = cli("compile", small_src, "-o", out_path, "--partition-time", "-1")
    assert code == 1 and "--partition-time must be a non-negative" in err


def test_placement_plot(tmp_path: Path, small_src: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    out_path = tmp_path / "s.nmcb"
    assert cli("compile", small_src, "-o", out_path)[0] == 0
    try:
        import matplotlib  # noqa: F401
        have = True
    except ImportError:
        have = False
    spin = tmp_path / "spin.nmcb"  # the SpiNNaker-like part's first report column is a chip name
    example = Path(__file__).resolve().parents[1] / "examples" / "physical" / "ei_lif.nmc"
    assert cli("compile", example, "--target", "spinnaker", "-o", spin)[0] == 0
    code, out, err = cli("inspect", spin, "--placement")
    assert code == 0 and out.startswith("partition: solver cpsat") and "per chip (packing model)" in out, err
    if have:
        code, _, err = cli("inspect", out_path, "--placement-plot", tmp_path / "p.svg")
        assert code == 0, err
        assert (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml")
        code, _, err = cli("inspect", spin, "--placement-plot", tmp_path / "s.svg")
        assert code == 0, err
        assert (tmp_path / "s.svg").read_text().lstrip().startswith("<?xml")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    code, _, err = cli("inspect", out_path, "--placement-plot", tmp_path / "q.svg")
    assert code == 1 and err.strip() == ("nmc: error: --placement-plot needs matplotlib, which is not installed "
                                         "(pip install 'nmc[plot]')")


def test_bad_partition_options_are_one_line() -> None:
    net = mixed_network()
    for opts, msg in ((dict(objective="speed"), "objective must be 'cores'"), (dict(time=-1.0), "time must be"),
                      (dict(workers=0), "workers must be at least 1")):
        with pytest.raises(NmcError, match=msg):
            get_pass("partition").fn(copy.deepcopy(net), PassContext(load_target("loihi")), **opts)


def test_reproducible_across_processes(tmp_path: Path) -> None:
    """Two compiler processes with different hash seeds write the same bytes (cpsat ran)."""
    from nmc.ir.io import write_ir
    net = population_graph(40, recurrent=True, seed=4, per_layer=10)
    write_ir(net, tmp_path / "net.nmcir")
    text = (Path(__file__).resolve().parents[1] / "targets" / "loihi.toml").read_text()
    (tmp_path / "four.toml").write_text(text.replace("chips = 1 ", "chips = 4 "))
    blobs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"b{hash_seed}.nmcb"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run([sys.executable, "-m", "nmc", "compile", str(tmp_path / "net.nmcir"), "--target",
                               str(tmp_path / "four.toml"), "--partition-time", "1", "-o", str(out)],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        blobs.append(out.read_bytes())
    assert blobs[0] == blobs[1]


def test_network_larger_than_the_machine_from_the_dsl_is_one_line(tmp_path: Path, cli) -> None:
    src = tmp_path / "big.nmc"
    src.write_text("network big\nneuron n = cuba_lif(threshold = 10)\ninput x[4]\npopulation h[200000] : n\n"
                   "connect x -> h : one_to_all(weights = 1)\n")
    code, out, err = cli("compile", src, "-o", tmp_path / "big.nmcb")
    assert code == 1 and err.count("\n") == 1
    # The DSL holds sizes to the machine as it reads them (docs/robustness.md): refused before partition.
    assert "exceeded max (chip.cores x chip.chips" in err and "'h'" in err
