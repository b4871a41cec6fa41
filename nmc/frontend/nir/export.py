"""Writing a network of target-neutral models back to NIR (docs/nir.md, "Export").

The inverse of the importer's conventions: ``lif`` -> LIF (CubaLIF when tau_syn > 0; LI / CubaLI
for populations imported from those nodes), ``if`` -> IF (I for imported integrators),
``graded`` -> Threshold(1); every projection -> an Affine (weight (out, in) as NIR stores it,
the post population's bias current as its bias) or a Linear, followed by a Delay when it has
one; ``dt`` in the metadata, in seconds. Spikes are Dirac pulses of area 1 unless ``spike`` is
"step". Register-level models (cuba_lif, sdn), sigma_delta units, artificial units and the
soft reset have no NIR node: exporting them is an error naming the population.
"""

from __future__ import annotations

import os

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import NmcError
from ...ir.network import Network, Population
from .importer import NirError, _input_scale


def _f(pop: Population, key: str) -> np.ndarray:
    return pop.param_array(key).astype(np.float64).copy()


def _neuron_node(pop: Population, dt: float) -> tuple[Any, str]:
    """The NIR node of a population and its kind (as the importer names kinds)."""
    import nir
    loc = f"population '{pop.name}'"
    kind = (pop.attrs.get("nir") or {}).get("node")
    if pop.model == "graded":
        return nir.Threshold(threshold=np.ones(pop.size)), "Threshold"
    if pop.model == "lif":
        if np.any(_f(pop, "t_ref") != 0):
            raise NirError("NIR has no refractory time; t_ref must be 0", location=loc)
        tau, cm, tau_syn = _f(pop, "tau_m"), _f(pop, "cm"), _f(pop, "tau_syn")
        common = {"r": tau / cm, "v_leak": _f(pop, "v_rest")}
        cuba = bool(np.any(tau_syn > 0))
        if cuba and np.any(tau_syn <= 0):
            raise NirError("tau_syn must be positive for every neuron or for none (CubaLIF or LIF)", location=loc)
        if kind in ("LI", "CubaLI"):
            if cuba:
                return nir.CubaLI(tau_syn=tau_syn / 1000, tau_mem=tau / 1000, **common), "CubaLI"
            return nir.LI(tau=tau / 1000, **common), "LI"
        spiking = {"v_threshold": _f(pop, "v_th"), "v_reset": _f(pop, "v_reset")}
        if cuba:
            return nir.CubaLIF(tau_syn=tau_syn / 1000, tau_mem=tau / 1000, **common, **spiking), "CubaLIF"
        return nir.LIF(tau=tau / 1000, **common, **spiking), "LIF"
    if pop.model == "if":
        if int(np.asarray(pop.params.get("soft_reset", 0))):
            raise NirError("NIR's IF resets to v_reset; reset by subtraction has no NIR node", location=loc)
        if np.any(_f(pop, "init_charge") != 0):
            raise NirError("NIR's IF has no start voltage; init_charge must be 0", location=loc)
        if np.any(_f(pop, "tau_syn") != 0) or np.any(_f(pop, "t_ref") != 0):
            raise NirError("NIR's IF has no synaptic current and no refractory time; tau_syn and t_ref must be 0",
                           location=loc)
        if kind == "I":
            return nir.I(r=1000.0 / _f(pop, "cm")), "I"
        return nir.IF(r=1000.0 / _f(pop, "cm"), v_threshold=_f(pop, "v_th"), v_reset=_f(pop, "v_reset")), "IF"
    raise NirError(f"NIR has no node for model '{pop.model}'; export before map-neurons, from lif, if and graded "
                   "populations", location=loc)


def to_nir_graph(net: Network, spike: str = "dirac") -> Any:
    """The network as a ``nir.NIRGraph`` (module docstring)."""
    import nir
    dt = net.attrs.get("dt")
    if not isinstance(dt, (int, float)) or not dt > 0:
        raise NirError("the network has no time step dt (ms); NIR's metadata needs one", location="network")
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    kinds: dict[str, tuple[Any, str]] = {}
    for pop in net.populations:
        if pop.is_input:
            nodes[pop.name] = nir.Input(input_type=np.array([pop.size]))
            continue
        kinds[pop.name] = _neuron_node(pop, float(dt))
        nodes[pop.name] = kinds[pop.name][0]
    biased: set[str] = set()
    for proj in net.projections:
        post = net.population(proj.post)
        node, kind = kinds[post.name]
        w, b_scale = _input_scale(kind, node, post.size, float(dt), spike)
        weight = proj.dense_matrix(net.population(proj.pre).size, post.size).astype(np.float64) / w[None, :]
        key = "bias" if post.model == "graded" else "i_bias"
        bias = _f(post, key) if key in post.params else np.zeros(post.size)
        name = f"{proj.pre}->{proj.post}" if f"{proj.pre}->{proj.post}" not in nodes else proj.name
        if post.name not in biased and np.any(bias):
            gain = 1.0 / node.threshold if kind == "Threshold" else b_scale
            nodes[name] = nir.Affine(weight=weight.T.copy(), bias=bias / gain)
            biased.add(post.name)
        else:
            nodes[name] = nir.Linear(weight=weight.T.copy())
        edges.append((proj.pre, name))
        if proj.delay:
            nodes[f"{name}.delay"] = nir.Delay(delay=np.full(post.size, proj.delay * float(dt) / 1000.0))
            edges.append((name, f"{name}.delay"))
            name = f"{name}.delay"
        edges.append((name, proj.post))
    for pop in net.populations:
        if pop.is_input or pop.name in biased:
            continue
        key = "bias" if pop.model == "graded" else "i_bias"
        if key in pop.params and np.any(_f(pop, key)):
            raise NirError("the population has a bias but no incoming projection to carry it (NIR puts biases in "
                           "Affine nodes)", location=f"population '{pop.name}'")
    for pop in net.populations:
        if pop.role == "output":
            nodes[f"{pop.name}.output"] = nir.Output(output_type=np.array([pop.size]))
            edges.append((pop.name, f"{pop.name}.output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": float(dt) / 1000.0}, type_check=False)


def export_nir(net: Network, path: str | Path, spike: str = "dirac") -> None:
    """Write ``net`` (target-neutral models, before map-neurons) as a NIR file at ``path``."""
    try:
        import nir
    except ImportError:
        raise NmcError("writing NIR needs the nir package (pip install nir)") from None
    graph = to_nir_graph(net, spike)
    # nir.write writes in place: write a temporary file beside the target and rename it over the
    # target, so a failure leaves the previous file intact and no partial one (docs/robustness.md).
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        nir.write(str(tmp), graph)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

