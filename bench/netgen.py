"""Generated networks for the partitioning and scaling benches (and their smoke tests).

Two families:

- :func:`layered_fanin` -- the issue's scaling network: an input layer and ``layers`` layers of
  ``width`` ``cuba_lif`` neurons; every neuron has ``fan_in`` distinct sources in the previous
  layer, drawn at random over the whole layer (``local=False``) or from a window around its own
  position (``local=True``). Synapses = layers x width x fan_in.
- :func:`population_graph` -- many small populations (sizes 16..768) wired layer to layer or
  recurrently, each projection a sparse random matrix; the partitioner's packing and traffic
  problem (docs/partitioning.md, "Bench networks"). Every population gets its own estimated firing
  rate (``pop.attrs["rate"]``, spikes per neuron and step), which the partitioner reads as its
  estimate.

All randomness comes from ``numpy.random.default_rng(seed)``: the same arguments give the same
network.
"""

from __future__ import annotations

import numpy as np

from nmc.ir.network import Network, Population, Projection

LIF = {"decay_u": 1024, "decay_v": 256, "threshold": 40, "refractory": 1}
#: Population sizes of :func:`population_graph` (mean 197: 5,000 populations hold about 10^6 neurons).
POP_SIZES = np.array([16, 32, 64, 96, 128, 192, 256, 320, 384, 480])


def distinct_sources(rng: np.random.Generator, n_rows: int, k: int, n_pre: int) -> np.ndarray:
    """(n_rows, k) source indices in [0, n_pre), distinct within each row, sorted.

    Draws with replacement and redraws only the duplicates until none is left (a handful of
    rounds: with k << n_pre few entries collide), so the cost is linear in n_rows x k."""
    if k > n_pre:
        raise ValueError(f"fan-in {k} exceeds the {n_pre} sources")
    out = rng.integers(0, n_pre, size=(n_rows, k))
    while True:
        out.sort(axis=1)
        dup = np.zeros(out.shape, dtype=bool)
        dup[:, 1:] = out[:, 1:] == out[:, :-1]
        n_dup = int(dup.sum())
        if n_dup == 0:
            return out
        out[dup] = rng.integers(0, n_pre, size=n_dup)


def local_sources(rng: np.random.Generator, n_rows: int, k: int, n_pre: int, window: int) -> np.ndarray:
    """Like :func:`distinct_sources`, but row j draws from the ``window`` sources centred on its
    own position in the previous layer (wrapping around)."""
    window = min(max(window, k), n_pre)
    rel = distinct_sources(rng, n_rows, k, window)
    centre = (np.arange(n_rows, dtype=np.int64) * n_pre) // max(n_rows, 1)
    out = (centre[:, None] - window // 2 + rel) % n_pre
    out.sort(axis=1)
    return out


def layered_fanin(width: int, layers: int = 4, fan_in: int = 100, *, local: bool = False, seed: int = 0,
                  window: int | None = None) -> Network:
    """The layered scaling network (see the module docstring)."""
    rng = np.random.default_rng(seed)
    net = Network(f"layered_{'local' if local else 'random'}_{width}x{layers}", {"seed": seed})
    net.add_population(Population("in", width, "input", role="input"))
    prev = "in"
    for layer in range(layers):
        name = f"l{layer}"
        role = "output" if layer == layers - 1 else "hidden"
        net.add_population(Population(name, width, "cuba_lif", params=dict(LIF), role=role))
        if local:
            src = local_sources(rng, width, fan_in, width, window or 2 * fan_in)
        else:
            src = distinct_sources(rng, width, fan_in, width)
        post = np.repeat(np.arange(width, dtype=np.int64), fan_in)
        pre = src.reshape(-1)
        # Sparse synapses in (pre, post) order, as the IR's canonical form lists them.
        order = np.lexsort((post, pre))
        weights = rng.integers(-8, 9, size=pre.size).astype(np.int64)
        net.add_projection(Projection(f"{prev}->{name}", prev, name, "sparse", weights[order],
                                      pre_index=pre[order], post_index=post[order]))
        prev = name
    return net


def population_graph(n_pops: int, *, recurrent: bool = False, seed: int = 0, per_layer: int = 50,
                     synapses_per_neuron: float = 12.0) -> Network:
    """Many small populations (see the module docstring).

    Layered: ``per_layer`` populations per layer, each projecting to 2-4 populations of the next
    layer. Recurrent: populations in clusters of ``per_layer``; each projects to 2-4 populations
    of its own cluster (possibly itself) and, with probability 1/2, to one of the next cluster.
    Every projection is sparse random with a density chosen so that a post neuron receives about
    ``synapses_per_neuron`` synapses in all. One input population of 256 units feeds the first
    layer (cluster). Rates (spikes per neuron and step) are drawn per population from 1-10 %.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.choice(POP_SIZES, size=n_pops)
    net = Network(f"{'recurrent' if recurrent else 'layered'}_{n_pops}", {"seed": seed})
    net.add_population(Population("in", 256, "input", role="input"))
    names = [f"p{i}" for i in range(n_pops)]
    for i, name in enumerate(names):
        params = dict(LIF)
        params["threshold"] = 30 + 10 * int(rng.integers(0, 4))  # a few compartment configs
        net.add_population(Population(name, int(sizes[i]), "cuba_lif", params=params))
    groups = [list(range(a, min(a + per_layer, n_pops))) for a in range(0, n_pops, per_layer)]
    edges: list[tuple[int, int]] = []
    for gi, group in enumerate(groups):
        nxt = groups[gi + 1] if gi + 1 < len(groups) else None
        for i in group:
            if recurrent:
                k = int(rng.integers(2, 5))
                for j in rng.choice(group, size=min(k, len(group)), replace=False):
                    edges.append((i, int(j)))
                if nxt is not None and rng.random() < 0.5:
                    edges.append((i, int(rng.choice(nxt))))
            elif nxt is not None:
                k = int(rng.integers(2, 5))
                for j in rng.choice(nxt, size=min(k, len(nxt)), replace=False):
                    edges.append((i, int(j)))
    fan_in_pops = np.bincount([j for _, j in edges], minlength=n_pops)
    first = groups[0]
    for j in first:
        edges.append((-1, j))
        fan_in_pops[j] += 1
    for i, j in edges:
        pre_name, n_pre = ("in", 256) if i < 0 else (names[i], int(sizes[i]))
        n_post = int(sizes[j])
        per_post = max(1, int(round(synapses_per_neuron / max(int(fan_in_pops[j]), 1))))
        k = min(per_post, n_pre)
        src = distinct_sources(rng, n_post, k, n_pre)
        pre = src.reshape(-1)
        post = np.repeat(np.arange(n_post, dtype=np.int64), k)
        order = np.lexsort((post, pre))
        w = rng.integers(1, 9, size=pre.size).astype(np.int64)
        net.add_projection(Projection(net.unique_projection_name(pre_name, names[j]), pre_name, names[j], "sparse",
                                      w[order], pre_index=pre[order], post_index=post[order]))
    for pop in net.populations:
        pop.attrs["rate"] = 0.05 if pop.is_input else round(float(rng.uniform(0.01, 0.10)), 4)
    return net
