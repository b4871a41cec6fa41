"""The graph IR: populations (nodes) and projections (edges) in a networkx MultiDiGraph.

The IR is target-neutral until passes annotate it: ``quantize`` turns weights into integer
mantissas with an exponent, ``partition`` adds a ``placement`` to every population, ``allocate``
records per-core resource use. Each annotation is an ordinary attribute, so the text form
(:mod:`nmc.ir.printer`) shows it and the parser reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import networkx as nx
import numpy as np

from ..errors import IrError

ROLES = ("input", "hidden", "output")
CONNECTIVITIES = ("dense", "one_to_one", "one_to_all", "sparse")
SIGNS = ("mixed", "excitatory", "inhibitory")


@dataclass
class Population:
    """A group of ``size`` neurons sharing one neuron model.

    ``params`` holds the model's parameters (scalars, or arrays of length ``size`` where the
    model allows per-neuron values). ``attrs`` holds pass annotations such as ``placement``
    (a list of ``[core, start, stop]`` slices).
    """

    name: str
    size: int
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    role: str = "hidden"
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_input(self) -> bool:
        return self.model == "input"

    def param_array(self, key: str) -> np.ndarray:
        """Parameter ``key`` broadcast to one value per neuron; the model's default when absent."""
        if key in self.params:
            value = self.params[key]
        else:
            from .models import NEURON_MODELS
            value = NEURON_MODELS[self.model].params[key].default
        return np.broadcast_to(np.asarray(value), (self.size,))


@dataclass
class Projection:
    """Synapses from population ``pre`` to population ``post``.

    Weight storage by connectivity:

    - ``dense``: ``weights`` shape (n_pre, n_post)
    - ``one_to_one``: ``weights`` shape (n,), pre i -> post i (n_pre == n_post)
    - ``one_to_all``: ``weights`` shape (n_pre,), pre i -> every post neuron with weight[i]
    - ``sparse``: ``weights``, ``pre_index``, ``post_index`` all shape (n_synapses,)

    ``exponent`` is None until chosen (by the user or by ``quantize``); after ``quantize``,
    ``weights`` are integer mantissas and the effective weight is ``mantissa * 2**exponent``.
    ``learning`` is the slot for a learning rule (None: static synapses).
    """

    name: str
    pre: str
    post: str
    connectivity: str
    weights: np.ndarray
    pre_index: np.ndarray | None = None
    post_index: np.ndarray | None = None
    delay: int = 0
    sign: str | None = None
    exponent: int | None = None
    weight_bits: int | None = None
    learning: Any = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_synapses(self) -> int:
        return int(self.coo()[0].size)

    def coo(self, n_pre: int | None = None, n_post: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All synapses as (pre_idx, post_idx, weight) arrays, in a canonical order.

        ``n_post`` is needed for ``one_to_all`` (the post size is not stored on the projection).
        """
        w = np.asarray(self.weights)
        if self.connectivity == "dense":
            pre, post = np.nonzero(np.ones(w.shape, dtype=bool))
            return pre, post, w.reshape(-1)
        if self.connectivity == "one_to_one":
            idx = np.arange(w.shape[0])
            return idx, idx.copy(), w
        if self.connectivity == "one_to_all":
            if n_post is None:
                raise ValueError("one_to_all needs n_post")
            pre = np.repeat(np.arange(w.shape[0]), n_post)
            post = np.tile(np.arange(n_post), w.shape[0])
            return pre, post, np.repeat(w, n_post)
        if self.connectivity == "sparse":
            return np.asarray(self.pre_index), np.asarray(self.post_index), w
        raise IrError(f"unknown connectivity '{self.connectivity}'", location=f"projection '{self.name}'")

    def dense_matrix(self, n_pre: int, n_post: int) -> np.ndarray:
        """The weights as a (n_pre, n_post) matrix (absent synapses are 0)."""
        pre, post, w = self.coo(n_pre, n_post)
        out = np.zeros((n_pre, n_post), dtype=np.asarray(self.weights).dtype)
        np.add.at(out, (pre, post), w)
        return out


@dataclass
class Probe:
    """Record ``variable`` ("spikes", "u" or "v") of every neuron of ``population``."""

    name: str
    population: str
    variable: str


class Network:
    """A spiking network: an ordered MultiDiGraph of populations and projections, plus probes.

    Node keys are population names (node attribute ``population``); edge keys are projection
    names (edge attribute ``projection``). Insertion order is the canonical print order.
    """

    def __init__(self, name: str = "network", attrs: dict[str, Any] | None = None) -> None:
        self.name = name
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.graph = nx.MultiDiGraph()
        self._projection_order: list[tuple[str, str, str]] = []
        # Projection name -> creation number: O(1) lookups and duplicate checks, and the canonical
        # order of the projections into or out of one population without scanning them all.
        self._projection_seq: dict[str, int] = {}
        self._projection_ends: dict[str, tuple[str, str]] = {}
        self._next_seq = 0
        self.probes: list[Probe] = []

    # -- construction -------------------------------------------------------------------------
    def add_population(self, pop: Population) -> Population:
        if pop.name in self.graph:
            raise IrError(f"population '{pop.name}' is defined twice")
        self.graph.add_node(pop.name, population=pop)
        return pop

    def add_projection(self, proj: Projection) -> Projection:
        for end in (proj.pre, proj.post):
            if end not in self.graph:
                raise IrError(f"unknown population '{end}'", location=f"projection '{proj.name}'")
        if proj.name in self._projection_seq:
            raise IrError(f"projection '{proj.name}' is defined twice")
        self.graph.add_edge(proj.pre, proj.post, key=proj.name, projection=proj)
        self._projection_order.append((proj.pre, proj.post, proj.name))
        self._projection_seq[proj.name] = self._next_seq
        self._projection_ends[proj.name] = (proj.pre, proj.post)
        self._next_seq += 1
        return proj

    def add_probe(self, probe: Probe) -> Probe:
        if any(p.name == probe.name for p in self.probes):
            raise IrError(f"probe '{probe.name}' is defined twice")
        self.probes.append(probe)
        return probe

    def remove_projection(self, name: str) -> None:
        if name not in self._projection_seq:
            raise KeyError(name)
        for i, (u, v, k) in enumerate(self._projection_order):
            if k == name:
                self.graph.remove_edge(u, v, key=k)
                del self._projection_order[i]
                del self._projection_seq[name]
                del self._projection_ends[name]
                return

    def unique_projection_name(self, pre: str, post: str) -> str:
        base = f"{pre}->{post}"
        names = self._projection_seq
        if base not in names:
            return base
        i = 1
        while f"{base}#{i}" in names:
            i += 1
        return f"{base}#{i}"

    # -- access -------------------------------------------------------------------------------
    @property
    def populations(self) -> list[Population]:
        return [data["population"] for _, data in self.graph.nodes(data=True)]

    @property
    def projections(self) -> list[Projection]:
        return [self.graph.edges[u, v, k]["projection"] for u, v, k in self._projection_order]

    @property
    def n_populations(self) -> int:
        return self.graph.number_of_nodes()

    @property
    def n_projections(self) -> int:
        return len(self._projection_order)

    def population(self, name: str) -> Population:
        try:
            return self.graph.nodes[name]["population"]
        except KeyError:
            raise IrError(f"unknown population '{name}'") from None

    def projection(self, name: str) -> Projection:
        ends = self._projection_ends.get(name)
        if ends is None:
            raise IrError(f"unknown projection '{name}'")
        return self.graph.edges[ends[0], ends[1], name]["projection"]

    def projections_into(self, post: str) -> list[Projection]:
        """The projections onto ``post``, in network order (its in-edges only, not all)."""
        return self._ordered(self.graph.in_edges(post, keys=True, data="projection"))

    def projections_from(self, pre: str) -> list[Projection]:
        """The projections from ``pre``, in network order (its out-edges only, not all)."""
        return self._ordered(self.graph.out_edges(pre, keys=True, data="projection"))

    def _ordered(self, edges: Any) -> list[Projection]:
        found = [(self._projection_seq[k], proj) for _, _, k, proj in edges]
        return [proj for _, proj in sorted(found, key=lambda x: x[0])]

    def __iter__(self) -> Iterator[Population]:
        return iter(self.populations)

    def __repr__(self) -> str:
        return (f"Network({self.name!r}, {len(self.populations)} populations, "
                f"{len(self.projections)} projections, {len(self.probes)} probes)")
