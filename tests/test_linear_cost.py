"""The linear-cost rewrites against the straightforward code they replace: the backend's per-core
tables, the interpreter's synaptic-ops table and source classes, the IR's projection lookups."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from nmc.backend.loihi import _per_core_tables
from nmc.driver import compile_network
from nmc.ir.network import Network, Population, Projection
from nmc.sim.loihi import LoihiInterpreter
from nmc.target import Target, load_target


@pytest.mark.parametrize("seed", range(6))
def test_per_core_tables_equal_np_unique_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, n_cores = int(rng.integers(1, 400)), int(rng.integers(1, 7))
    core = rng.integers(0, n_cores, n)
    if seed % 2:
        core = np.sort(core)
    scale = [1, 1000, 10 ** 9][seed % 3]  # wide values exercise the re-ranking
    rows = rng.integers(-3, 4, (n, int(rng.integers(1, 6)))) * scale
    uniq, inverse = np.unique(np.column_stack([core, rows]), axis=0, return_inverse=True)
    offs = np.concatenate([[0], np.cumsum(np.bincount(uniq[:, 0], minlength=n_cores))])
    table, got_offs, local = _per_core_tables(core, rows, n_cores)
    np.testing.assert_array_equal(table, uniq[:, 1:])
    np.testing.assert_array_equal(got_offs, offs)
    np.testing.assert_array_equal(local, inverse.reshape(-1) - offs[core])


def _net(n_pops: int, seed: int) -> Network:
    rng = np.random.default_rng(seed)
    net = Network("acc", {"seed": seed})
    net.add_population(Population("x", 30, "input", role="input"))
    names = []
    for i in range(n_pops):
        name = f"p{i}"
        net.add_population(Population(name, 20 + 5 * i, "cuba_lif", params={"threshold": 20, "decay_u": 2048},
                                      role="output" if i == n_pops - 1 else "hidden"))
        names.append(name)
    pres = ["x"] + names
    sizes = {"x": 30, **{f"p{i}": 20 + 5 * i for i in range(n_pops)}}
    for i, post in enumerate(names):
        for pre in {pres[i], pres[int(rng.integers(0, i + 1))]}:
            n_pre, n_post = sizes[pre], sizes[post]
            flat = rng.choice(n_pre * n_post, size=n_pre * n_post // 3, replace=False)
            net.add_projection(Projection(f"{pre}->{post}", pre, post, "sparse",
                                          rng.integers(5, 40, flat.size), delay=int(rng.integers(0, 3)),
                                          pre_index=flat // n_post, post_index=flat % n_post))
    return net


@pytest.mark.parametrize("n_pops", [3, 12])
def test_synaptic_ops_table_and_source_classes(n_pops: int) -> None:
    base = load_target("loihi")
    data = copy.deepcopy(base.data)
    data["core"]["max_compartments"] = 16  # many cores, many distinct source rows
    target = Target("loihi", data)
    binary = compile_network(_net(n_pops, n_pops), target)
    chip = LoihiInterpreter(binary)
    # The dense table the loader used to build, from the binary's own tables.
    dense = np.zeros((chip.n_src, chip.n_cores), dtype=np.int64)
    owner = np.repeat(np.arange(chip.n_src), np.diff(chip.synops_ptr))
    np.add.at(dense, (owner, chip.synops_core), chip.synops_count)
    b = binary.sections
    ax_off = b["core_axon_offset"].astype(np.int64)
    axon_core = np.repeat(np.arange(chip.n_cores), np.diff(ax_off))
    n_syn_axon = np.diff(b["axon_syn_ptr"].astype(np.int64))
    ref = np.zeros_like(dense)
    src = np.repeat(np.arange(chip.n_cx), np.diff(b["cx_out_ptr"].astype(np.int64)))
    axon = ax_off[b["out_core"].astype(np.int64)] + b["out_axon"].astype(np.int64)
    np.add.at(ref, (src, axon_core[axon]), n_syn_axon[axon])
    base_id = chip.n_cx
    for port in binary.meta["inputs"]:
        key = port["section"]
        psrc = base_id + np.repeat(np.arange(port["size"]), np.diff(b[f"{key}_ptr"].astype(np.int64)))
        pax = ax_off[b[f"{key}_core"].astype(np.int64)] + b[f"{key}_axon"].astype(np.int64)
        np.add.at(ref, (psrc, axon_core[pax]), n_syn_axon[pax])
        base_id += port["size"]
    np.testing.assert_array_equal(dense, ref)
    # Class accounting (when it applies) counts exactly what per-source accounting counts.
    spikes = (np.random.default_rng(0).random((60, 30)) < 0.3).astype(np.int8)
    res = chip.run(60, {"x": spikes})
    chip.class_attr, chip.src_class = None, None
    chip.reset()
    res2 = chip.run(60, {"x": spikes})
    assert res.counters == res2.counters
    for k in res.per_core:
        np.testing.assert_array_equal(res.per_core[k], res2.per_core[k])


def test_projection_lookups_and_order() -> None:
    net = Network("n")
    for name in "abc":
        net.add_population(Population(name, 2, "cuba_lif"))
    for pre, post in (("a", "b"), ("c", "b"), ("a", "c"), ("b", "b"), ("a", "b")):
        net.add_projection(Projection(net.unique_projection_name(pre, post), pre, post, "one_to_all", np.ones(2)))
    assert [p.name for p in net.projections_into("b")] == ["a->b", "c->b", "b->b", "a->b#1"]
    assert [p.name for p in net.projections_from("a")] == ["a->b", "a->c", "a->b#1"]
    assert net.projection("c->b").pre == "c" and net.n_projections == 5
    net.remove_projection("c->b")
    assert [p.name for p in net.projections_into("b")] == ["a->b", "b->b", "a->b#1"]
    with pytest.raises(Exception, match="unknown projection"):
        net.projection("c->b")
    assert net.unique_projection_name("c", "b") == "c->b"
