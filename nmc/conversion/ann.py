"""The float64 reference of the artificial (non-spiking) part of an IR network.

Imported networks arrive as populations of the ``relu``, ``linear`` and ``lprnn`` models
(nmc.ir.models) joined by ordinary projections whose weights are the network's weights. This
module evaluates such a network on data: it is what ``convert-ann`` calibrates on and what tests
and benchmarks compare the spiking network against.

Semantics, per item t of the input sequence (one item for a static input):

    z[t] = sum over feed-forward projections  W^T y_pre[t]
         + sum over recurrent projections     W^T y_pre[t-1]      (attrs["recurrent"] = true)
         + bias
    relu:   y = min(max(z, 0), clip)     linear: y = z
    lprnn:  y[t] = alpha y[t-1] + (1 - alpha) max(z[t], 0)

Feed-forward projections must form a DAG; a cycle is an error naming a projection on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from ..errors import IrError
from ..ir.models import NEURON_MODELS
from ..ir.network import Network, Population, Projection


def is_ann_population(pop: Population) -> bool:
    """True for the non-spiking units of an imported network (relu, linear, lprnn)."""
    model = NEURON_MODELS.get(pop.model)
    return bool(model is not None and model.ann)


def has_ann(net: Network) -> bool:
    """True when the network holds artificial units that convert-ann must turn into spiking ones."""
    return any(is_ann_population(p) for p in net.populations)


def is_recurrent(proj: Projection) -> bool:
    """A projection that carries the previous item's activation (an RNN's recurrent weights)."""
    return bool(proj.attrs.get("recurrent", False))


class SparseOperator:
    """A (n_pre, n_post) matrix kept as its non-zero entries, sorted by column, so that
    ``x @ op`` sums each column's products with one ``np.add.reduceat`` (a convolution expanded
    to a dense matrix would be mostly zeros)."""

    __array_ufunc__ = None  # makes ``ndarray @ op`` defer to __rmatmul__

    def __init__(self, pre: np.ndarray, post: np.ndarray, w: np.ndarray, n_post: int) -> None:
        order = np.argsort(post, kind="stable")
        self.pre, self.post, self.w = pre[order], post[order], np.asarray(w, dtype=np.float64)[order]
        self.cols, self.starts = np.unique(self.post, return_index=True)
        self.n_post = n_post

    def __rmatmul__(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros((x.shape[0], self.n_post))
        if self.w.size:
            out[:, self.cols] = np.add.reduceat(x[:, self.pre] * self.w, self.starts, axis=1)
        return out


def projection_operator(proj: Projection, n_pre: int, n_post: int) -> np.ndarray | SparseOperator:
    """The projection as a (n_pre, n_post) operator for ``x @ op``: a dense array, or a
    :class:`SparseOperator` for sparse and one-to-one projections."""
    w = np.asarray(proj.weights, dtype=np.float64)
    if proj.connectivity == "dense":
        return w
    if proj.connectivity == "one_to_all":
        return np.repeat(w[:, None], n_post, axis=1)
    pre, post, val = proj.coo(n_pre, n_post)
    return SparseOperator(np.asarray(pre, dtype=np.int64), np.asarray(post, dtype=np.int64), val, n_post)


def evaluation_order(net: Network) -> list[Population]:
    """Non-input populations in an order where every feed-forward pre comes before its post."""
    g = nx.DiGraph()
    g.add_nodes_from(p.name for p in net.populations)
    for proj in net.projections:
        if not is_recurrent(proj):
            g.add_edge(proj.pre, proj.post, name=proj.name)
    try:
        order = list(nx.lexicographical_topological_sort(g, key=[p.name for p in net.populations].index))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(g)
        name = g.edges[cycle[0][0], cycle[0][1]]["name"]
        raise IrError("the feed-forward projections of the network form a cycle; mark the recurrent "
                      "ones with attrs recurrent = true", location=f"projection '{name}'") from None
    return [net.population(n) for n in order if not net.population(n).is_input]


@dataclass
class Activations:
    """What :func:`forward` computed: per population, the pre-activation z and the activation y,
    shaped (samples, items, neurons)."""

    z: dict[str, np.ndarray] = field(default_factory=dict)
    y: dict[str, np.ndarray] = field(default_factory=dict)


def _as_sequences(x: np.ndarray, n: int, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, None, :]
    if a.ndim != 3 or a.shape[-1] != n:
        raise IrError(f"input '{name}' needs shape (samples, {n}) or (samples, items, {n}), got {np.shape(x)}")
    return a


def forward(net: Network, inputs: dict[str, np.ndarray]) -> Activations:
    """Evaluate the network on ``inputs`` (input population -> (samples, n) or (samples, items, n)).

    Populations of spiking models are not allowed: this is the reference of the network as it was
    imported, before convert-ann."""
    order = evaluation_order(net)
    for pop in order:
        if not is_ann_population(pop):
            raise IrError(f"model '{pop.model}' is not an artificial unit; the float reference evaluates "
                          "relu, linear and lprnn populations only", location=f"population '{pop.name}'")
    out = Activations()
    n_items = None
    for pop in net.populations:
        if not pop.is_input:
            continue
        if pop.name not in inputs:
            raise IrError(f"no data for input '{pop.name}'")
        seq = _as_sequences(inputs[pop.name], pop.size, pop.name)
        n_items = seq.shape[1] if n_items is None else n_items
        if seq.shape[1] != n_items:
            raise IrError("inputs disagree on the number of items per sample")
        out.y[pop.name] = seq
    n_samples = next(iter(out.y.values())).shape[0]
    sizes = {p.name: p.size for p in net.populations}
    ops = {pr.name: projection_operator(pr, sizes[pr.pre], sizes[pr.post]) for pr in net.projections}
    for pop in order:
        out.z[pop.name] = np.zeros((n_samples, n_items, pop.size))
        out.y[pop.name] = np.zeros((n_samples, n_items, pop.size))
    incoming = {pop.name: net.projections_into(pop.name) for pop in order}
    for t in range(n_items or 0):
        for pop in order:
            z = np.broadcast_to(pop.param_array("bias").astype(np.float64), (n_samples, pop.size)).copy()
            for proj in incoming[pop.name]:
                if is_recurrent(proj):
                    if t == 0:
                        continue
                    src = out.y[proj.pre][:, t - 1]
                else:
                    src = out.y[proj.pre][:, t]
                z += src @ ops[proj.name]
            out.z[pop.name][:, t] = z
            out.y[pop.name][:, t] = activation(pop, z, out.y[pop.name][:, t - 1] if t else None)
    return out


def activation(pop: Population, z: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """The unit's output for pre-activation ``z`` (and its previous output, for lprnn)."""
    if pop.model == "relu":
        return np.minimum(np.maximum(z, 0.0), pop.param_array("clip").astype(np.float64))
    if pop.model == "linear":
        return z
    alpha = pop.param_array("alpha").astype(np.float64)
    prev = np.zeros_like(z) if previous is None else previous
    return alpha * prev + (1.0 - alpha) * np.maximum(z, 0.0)


def output_population(net: Network) -> Population:
    """The network's single output population (role ``output``)."""
    outs = [p for p in net.populations if p.role == "output"]
    if len(outs) != 1:
        raise IrError(f"the network needs exactly one output population, it has {len(outs)}")
    return outs[0]


def predict(net: Network, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Class predictions of the float network: argmax of the output at the last item."""
    acts = forward(net, inputs)
    return acts.y[output_population(net).name][:, -1].argmax(axis=1)
