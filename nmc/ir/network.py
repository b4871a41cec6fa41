"""The graph IR: populations (nodes) and projections (edges), plus probes.

The IR is target-neutral until passes annotate it: ``quantize`` turns weights into integer
mantissas with an exponent, ``partition`` adds a ``placement`` to every population, ``allocate``
records per-core resource use. Each annotation is an ordinary attribute, so the text form
(:mod:`nmc.ir.printer`) shows it and the parser reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

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
    """A spiking network: a directed multigraph whose nodes are populations and whose edges are
    projections (two projections may join the same pair), plus probes. Insertion order is the
    canonical print order. :attr:`graph` gives it as a networkx MultiDiGraph for graph algorithms.
    """

    def __init__(self, name: str = "network", attrs: dict[str, Any] | None = None) -> None:
        self.name = name
        self.attrs: dict[str, Any] = dict(attrs or {})
        # Name indexes, so that adding, finding and listing objects costs the same however many
        # there are (a source of many statements must build in linear time).
        self._populations: dict[str, Population] = {}    # by name, in insertion (canonical) order
        self._projections: dict[str, Projection] = {}    # by name, in insertion (canonical) order
        self._into: dict[str, list[Projection]] = {}     # post population -> its projections, in order
        self._from: dict[str, list[Projection]] = {}     # pre population -> its projections, in order
        self._next_suffix: dict[str, int] = {}           # unique_projection_name: next #i to try per base
        self._probe_names: set[str] = set()
        self.probes: list[Probe] = []

    # -- construction -------------------------------------------------------------------------
    def add_population(self, pop: Population) -> Population:
        if pop.name in self._populations:
            raise IrError(f"population '{pop.name}' is defined twice")
        self._populations[pop.name] = pop
        return pop

    def add_projection(self, proj: Projection) -> Projection:
        for end in (proj.pre, proj.post):
            if end not in self._populations:
                raise IrError(f"unknown population '{end}'", location=f"projection '{proj.name}'")
        if proj.name in self._projections:
            raise IrError(f"projection '{proj.name}' is defined twice")
        self._projections[proj.name] = proj
        self._into.setdefault(proj.post, []).append(proj)
        self._from.setdefault(proj.pre, []).append(proj)
        return proj

    def add_probe(self, probe: Probe) -> Probe:
        if probe.name in self._probe_names:
            raise IrError(f"probe '{probe.name}' is defined twice")
        self._probe_names.add(probe.name)
        self.probes.append(probe)
        return probe

    def remove_projection(self, name: str) -> None:
        proj = self._projections.pop(name)  # KeyError for an unknown name, as before
        self._into[proj.post].remove(proj)
        self._from[proj.pre].remove(proj)
        self._next_suffix.clear()  # a freed "#i" may be handed out again

    def unique_projection_name(self, pre: str, post: str) -> str:
        base = f"{pre}->{post}"
        if base not in self._projections:
            return base
        i = self._next_suffix.get(base, 1)
        while f"{base}#{i}" in self._projections:
            i += 1
        self._next_suffix[base] = i  # names below i are taken and stay taken unless removed
        return f"{base}#{i}"

    # -- access -------------------------------------------------------------------------------
    @property
    def graph(self) -> Any:
        """The network as a networkx MultiDiGraph (node keys: population names, node attribute
        ``population``; edge keys: projection names, edge attribute ``projection``), built on
        each access: a view for graph algorithms, not a way to change the network."""
        import networkx as nx  # only here: importing it costs more than most compiles

        g = nx.MultiDiGraph()
        for name, pop in self._populations.items():
            g.add_node(name, population=pop)
        for name, proj in self._projections.items():
            g.add_edge(proj.pre, proj.post, key=name, projection=proj)
        return g

    @property
    def populations(self) -> list[Population]:
        return list(self._populations.values())

    @property
    def n_populations(self) -> int:
        return len(self._populations)

    @property
    def projections(self) -> list[Projection]:
        return list(self._projections.values())

    @property
    def n_projections(self) -> int:
        return len(self._projections)

    def population(self, name: str) -> Population:
        try:
            return self._populations[name]
        except KeyError:
            raise IrError(f"unknown population '{name}'") from None

    def projection(self, name: str) -> Projection:
        try:
            return self._projections[name]
        except KeyError:
            raise IrError(f"unknown projection '{name}'") from None

    def projections_into(self, post: str) -> list[Projection]:
        return list(self._into.get(post, ()))

    def projections_from(self, pre: str) -> list[Projection]:
        return list(self._from.get(pre, ()))

    def __iter__(self) -> Iterator[Population]:
        return iter(self.populations)

    def __repr__(self) -> str:
        return (f"Network({self.name!r}, {len(self.populations)} populations, "
                f"{len(self.projections)} projections, {len(self.probes)} probes)")
