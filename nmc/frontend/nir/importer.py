"""Reading a NIR graph (the ``nir`` package's HDF5 files) into nmc's IR (docs/nir.md).

NIR is continuous time; nmc's physical models are too, so the neuron nodes map onto them one to
one and the target's ``map-neurons`` discretises them (exact exponential decays per step). Time
constants in NIR files are in seconds (snnTorch, Lava, Norse write them so); nmc's are in ms.
Voltages map to mV and currents to nA, so a resistance r is r MOhm.

Node by node:

=================  ===============================================================================
NIR node           nmc
=================  ===============================================================================
Input              an input population (spikes)
Output             marks its source population ``output`` (it must be a neuron node)
Affine, Linear,    folded, with everything linear between two neuron nodes, into one projection per
Scale, Conv2d,     source (Conv2d and the pools through onnx.reference's Conv: exact padding rules;
Flatten,           AvgPool2d = SumPool2d then Scale, as NIR defines it); an Affine's bias becomes
SumPool2d,         a constant current of the neurons it reaches
AvgPool2d
Delay              the projection's delay, round(delay / dt) steps on top of the chip's one step
LIF                ``lif``: tau_m = tau, cm = tau / r, v_rest = v_leak, v_th, v_reset; tau_syn = 0
CubaLIF            ``lif`` with tau_syn; weights times w_in / tau_syn (the current jump)
IF                 ``if``: cm = 1 / r (1000 / r per ms), v_th, v_reset
LI, CubaLI, I      the same models with a threshold no input reaches (non-spiking readouts)
Threshold          ``graded``: each step v = sum(w s) + b, a spike when v > threshold
=================  ===============================================================================

Spikes: NIR's equations take a spike as a Dirac pulse of area 1, so through weight W it moves an
LIF's voltage by r W / tau; that is the default (``spike = "dirac"``). snnTorch's exports instead
count a spike as 1 for one step (``spike = "step"``: the charge is W dt). The importer states
which it applied, with the time step, in a remark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...diagnostics import Diagnostics
from ...errors import NmcError
from ...ir.network import Network, Population, Projection
from ..onnx.linear import Lin

SPIKE_CONVENTIONS = ("dirac", "step")
_LINEAR = ("Affine", "Linear", "Scale", "Conv2d", "Conv1d", "Flatten", "SumPool2d", "AvgPool2d", "Delay")
_NEURONS = ("LIF", "CubaLIF", "IF", "LI", "CubaLI", "I", "Threshold")


class NirError(NmcError):
    """A NIR graph nmc cannot import; the message may hold one line per problem."""


@dataclass
class _Expr:
    """What reaches a node: per source population a matrix, a bias, the delay in steps, a shape."""

    terms: dict[str, Lin]
    bias: np.ndarray
    shape: tuple[int, ...]
    delay: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _flat_nodes(graph: Any, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Nested NIRGraphs flattened: nodes named ``outer.inner``; an edge to or from a subgraph goes
    to its Input or from its Output node."""
    import nir
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    subs: dict[str, tuple[list[str], list[str]]] = {}
    for name, node in graph.nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges = _flat_nodes(node, f"{full}.")
            nodes.update(inner)
            edges += inner_edges
            subs[full] = ([k for k, v in inner.items() if isinstance(v, nir.Input) and k.count(".") == full.count(".") + 1],
                          [k for k, v in inner.items() if isinstance(v, nir.Output) and k.count(".") == full.count(".") + 1])
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        s, d = f"{prefix}{src}", f"{prefix}{dst}"
        for a in (subs[s][1] if s in subs else [s]):
            for b in (subs[d][0] if d in subs else [d]):
                edges.append((a, b))
    return nodes, edges


class _Importer:
    def __init__(self, graph: Any, path: Path, dt: float | None, spike: str, diagnostics: Diagnostics | None) -> None:
        self.path = path
        self.diag = diagnostics
        self.spike = spike
        self.nodes, self.edges = _flat_nodes(graph)
        self.preds: dict[str, list[str]] = {k: [] for k in self.nodes}
        self.errors: list[tuple[str, str]] = []
        for s, d in self.edges:
            for end in (s, d):
                if end not in self.nodes:
                    raise NirError(f"an edge names node '{end}', which the graph does not have", location=str(path))
            self.preds[d].append(s)
        self.dt = self._time_step(graph, dt)
        self.net = Network(path.stem, {"dt": self.dt})
        self.exprs: dict[str, _Expr] = {}
        self.visiting: set[str] = set()

    def where(self, name: str) -> str:
        return f"{self.path}:node '{name}'"

    def _time_step(self, graph: Any, dt: float | None) -> float:
        """``--dt`` (ms), else the graph's metadata ``dt`` (s); neither: an error that says so."""
        if dt is not None:
            if not (math.isfinite(dt) and dt > 0):
                raise NirError(f"--dt must be a positive number of ms, got {dt:g}")
            return float(dt)
        meta = getattr(graph, "metadata", None) or {}
        if "dt" in meta:
            value = float(np.asarray(meta["dt"]).reshape(-1)[0])
            if not (math.isfinite(value) and value > 0):
                raise NirError(f"the graph's metadata dt is {value!r}, not a positive number of seconds",
                               location=str(self.path))
            return value * 1000.0
        hint = ""
        ratios = {float(np.round(np.max(_arr(n.tau) / _arr(n.r)), 12)) for n in self.nodes.values()
                  if type(n).__name__ == "LIF" and np.all(_arr(n.r) > 0)}
        if len(ratios) == 1:
            hint = (f"; its LIF nodes all have tau / r = {next(iter(ratios)) * 1000:g} ms, the dt snnTorch's export "
                    "implies")
        raise NirError("the graph gives no time step (no metadata 'dt') and none was given: pass --dt MS, the step "
                       f"its parameters were made for{hint}", location=str(self.path))

    # -- the walk ------------------------------------------------------------------------------
    def run(self) -> Network:
        import nir
        names = list(self.nodes)
        for name in names:
            node = self.nodes[name]
            kind = type(node).__name__
            if kind not in _LINEAR + _NEURONS + ("Input", "Output"):
                why = ("Identity nodes cannot be serialised by nir; drop them" if kind == "Identity" else
                       "NIR nodes nmc maps: Input, Output, Affine, Linear, Scale, Threshold, IF, LIF, CubaLIF, LI, "
                       "CubaLI, I (Integrator), Conv2d, Flatten, SumPool2d, AvgPool2d, Delay")
                self.errors.append((self.where(name), f"unsupported NIR node {kind}: {why}"))
        if self.errors:
            self._raise()
        for name in names:
            if isinstance(self.nodes[name], nir.Input):
                self._input(name)
        for name in names:
            if type(self.nodes[name]).__name__ in _NEURONS:
                self._population(name)
        for name in names:
            if type(self.nodes[name]).__name__ in _NEURONS:
                try:
                    self._connect(name)
                except NirError as exc:
                    self.errors.append((exc.location or self.where(name), exc.message))
        outputs = [n for n in names if isinstance(self.nodes[n], nir.Output)]
        if not outputs:
            self.errors.append((str(self.path), "the graph has no Output node"))
        for name in outputs:
            srcs = self.preds[name]
            if len(srcs) != 1 or type(self.nodes[srcs[0]]).__name__ not in _NEURONS:
                self.errors.append((self.where(name), "an Output must be fed directly by one neuron node (LIF, IF, "
                                                      "CubaLIF, LI, CubaLI, I or Threshold)"))
                continue
            self.net.population(srcs[0]).role = "output"
        self._check_connected(outputs)
        if self.errors:
            self._raise()
        if self.diag is not None:
            self.diag.remark(f"discretised with dt = {self.dt:g} ms (exact decays per step); spikes as "
                             f"{'Dirac pulses of area 1' if self.spike == 'dirac' else 'values of 1 for one step'}; "
                             "reset to v_reset after a spike; a synapse adds one step of latency", location=str(self.path))
        return self.net

    def _raise(self) -> None:
        (loc, msg), rest = self.errors[0], self.errors[1:]
        raise NirError(msg + "".join(f"\n{l}: error: {m}" for l, m in rest), location=loc)

    def _check_connected(self, outputs: list[str]) -> None:
        """nir.read accepts a graph with a missing edge (it adds dangling nodes): every neuron node
        must reach an Output and be reached from an Input."""
        import nir
        succ: dict[str, list[str]] = {k: [] for k in self.nodes}
        for s, d in self.edges:
            succ[s].append(d)

        def reach(starts: list[str], nxt: dict[str, list[str]]) -> set[str]:
            seen, todo = set(starts), list(starts)
            while todo:
                for m in nxt[todo.pop()]:
                    if m not in seen:
                        seen.add(m)
                        todo.append(m)
            return seen

        fwd = reach([n for n, v in self.nodes.items() if isinstance(v, nir.Input)], succ)
        back = reach(outputs, self.preds)
        for name, node in self.nodes.items():
            if type(node).__name__ in _NEURONS and name not in fwd:
                self.errors.append((self.where(name), "no path from an Input reaches this node (a missing edge?)"))
            elif type(node).__name__ in _NEURONS and name not in back:
                self.errors.append((self.where(name), "this node reaches no Output (a missing edge?)"))

    def _input(self, name: str) -> None:
        shape = tuple(int(d) for d in np.asarray(self.nodes[name].input_type["input"]).reshape(-1))
        if not shape or any(d <= 0 for d in shape):
            raise NirError(f"the Input has no usable shape ({list(shape)})", location=self.where(name))
        pop = Population(name, int(np.prod(shape)), "input", role="input")
        self.net.add_population(pop)
        self.exprs[name] = _Expr({name: Lin.identity(pop.size)}, np.zeros(pop.size), shape)

    def _population(self, name: str) -> None:
        node = self.nodes[name]
        kind = type(node).__name__
        shape = self._neuron_shape(name, node)
        size = int(np.prod(shape))
        model, params = _neuron_params(kind, node, size, self.dt)
        pop = Population(name, size, model, params)
        pop.attrs["nir"] = {"node": kind, "shape": list(shape)}
        self.net.add_population(pop)
        self.exprs[name] = _Expr({name: Lin.identity(size)}, np.zeros(size), shape)

    def _neuron_shape(self, name: str, node: Any) -> tuple[int, ...]:
        for field in ("v_threshold", "tau", "tau_mem", "r", "threshold"):
            if hasattr(node, field):
                a = np.asarray(getattr(node, field))
                if a.ndim == 0:
                    raise NirError(f"parameter '{field}' is a scalar; NIR nodes need one value per neuron (shape [n])",
                                   location=self.where(name))
                return tuple(int(d) for d in a.shape)
        raise NirError("the node has no parameter with its shape", location=self.where(name))

    def _connect(self, name: str) -> None:
        """Projections into neuron node ``name`` from every population whose output reaches it."""
        node = self.nodes[name]
        kind = type(node).__name__
        pop = self.net.population(name)
        exprs = [self._expr_of(p) for p in self.preds[name]]
        if not exprs:
            raise NirError("the node has no input edge", location=self.where(name))
        for e in exprs:
            if e.size != pop.size:
                raise NirError(f"it receives {e.size} values for {pop.size} neurons", location=self.where(name))
        scale = _input_scale(kind, node, pop.size, self.dt, self.spike)
        bias = sum(e.bias for e in exprs)
        if np.any(bias):
            key = "bias" if pop.model == "graded" else "i_bias"
            gain = scale[1] if pop.model != "graded" else 1.0 / _arr(node.threshold).reshape(-1)
            pop.params[key] = _compact(bias * gain + (pop.params.get(key, 0.0) if key == "bias" else 0.0))
        for e in exprs:
            for src, lin in e.terms.items():
                lin = lin.scale_columns(scale[0])
                pname = self.net.unique_projection_name(src, name)
                i, j, w = lin.entries()
                if lin.n_in == lin.n_out and i.size == lin.n_in and np.array_equal(i, j) \
                        and np.array_equal(np.sort(i), np.arange(lin.n_in)):
                    diag = np.zeros(lin.n_in)
                    diag[i] = w
                    proj = Projection(pname, src, name, "one_to_one", diag)
                elif lin.kind == "dense":
                    proj = Projection(pname, src, name, "dense", lin.dense.copy())
                else:
                    proj = Projection(pname, src, name, "sparse", w.copy(), pre_index=i.copy(), post_index=j.copy())
                proj.delay = int(e.delay)
                self.net.add_projection(proj)

    def _expr_of(self, name: str) -> _Expr:
        """The affine function of populations that node ``name`` outputs."""
        if name in self.exprs:
            return self.exprs[name]
        if name in self.visiting:
            raise NirError("a cycle of edges through linear nodes only (no neuron on it)", location=self.where(name))
        self.visiting.add(name)
        node = self.nodes[name]
        kind = type(node).__name__
        ins = [self._expr_of(p) for p in self.preds[name]]
        if not ins:
            raise NirError("the node has no input edge", location=self.where(name))
        x = ins[0]
        for other in ins[1:]:  # several edges into one node: their signals add
            if other.shape != x.shape or other.delay != x.delay:
                raise NirError("its inputs differ in shape or delay", location=self.where(name))
            terms = dict(x.terms)
            for k, lin in other.terms.items():
                terms[k] = terms[k].plus(lin) if k in terms else lin
            x = _Expr(terms, x.bias + other.bias, x.shape, x.delay)
        try:
            out = _apply(kind, node, x, self.dt)
        except ValueError as exc:
            raise NirError(str(exc), location=self.where(name)) from None
        self.visiting.discard(name)
        self.exprs[name] = out
        return out


def _compact(v: np.ndarray) -> Any:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    return float(v[0]) if v.size and np.all(v == v[0]) else v


def _apply(kind: str, node: Any, x: _Expr, dt: float) -> _Expr:
    """A linear node applied to what reaches it."""
    if kind in ("Affine", "Linear"):
        w = _arr(node.weight)
        if w.ndim != 2 or w.shape[1] != x.size:
            raise ValueError(f"the weight of shape {list(w.shape)} does not take {x.size} inputs")
        lin = Lin.from_dense(w.T)
        b = _arr(node.bias).reshape(-1) if kind == "Affine" else np.zeros(w.shape[0])
        return _Expr({k: v.then(lin) for k, v in x.terms.items()}, lin.apply(x.bias[None, :])[0] + b, (w.shape[0],),
                     x.delay)
    if kind == "Scale":
        s = np.broadcast_to(_arr(node.scale).reshape(-1), (x.size,)) if _arr(node.scale).size in (1, x.size) else None
        if s is None:
            raise ValueError(f"scale has {_arr(node.scale).size} values for {x.size} inputs")
        return _Expr({k: v.scale_columns(s) for k, v in x.terms.items()}, x.bias * s, x.shape, x.delay)
    if kind == "Flatten":
        start, end = int(node.start_dim), int(node.end_dim)
        shape = list(x.shape)
        end = len(shape) - 1 if end == -1 else end
        if not 0 <= start <= end < len(shape):
            raise ValueError(f"start_dim {start} / end_dim {node.end_dim} do not fit a shape {shape} (NIR counts "
                             "dimensions without a batch)")
        new = (*shape[:start], int(np.prod(shape[start:end + 1])), *shape[end + 1:])
        return _Expr(x.terms, x.bias, tuple(new), x.delay)
    if kind == "Delay":
        d = _arr(node.delay).reshape(-1)
        steps = np.round(d * 1000.0 / dt)
        if not np.all(steps == steps[0]) or steps.size not in (1, x.size):
            raise ValueError("nmc delays a whole projection by one number of steps; the delays differ")
        return _Expr(x.terms, x.bias, x.shape, x.delay + int(steps[0]))
    if kind in ("Conv2d", "Conv1d", "SumPool2d", "AvgPool2d"):
        lin, bias, shape = _conv_operator(kind, node, x.shape)
        return _Expr({k: v.then(lin) for k, v in x.terms.items()}, lin.apply(x.bias[None, :])[0] + bias, shape, x.delay)
    raise ValueError(f"{kind} is not a linear node")


def _pairs(v: Any, n: int) -> list[int]:
    a = np.asarray(v).reshape(-1)
    return [int(a[0])] * n if a.size == 1 else [int(t) for t in a]


def _conv_operator(kind: str, node: Any, shape: tuple[int, ...]) -> tuple[Lin, np.ndarray, tuple[int, ...]]:
    """Convolutions and pools as ONNX Conv nodes evaluated exactly (torch's conventions, which NIR
    follows): SumPool2d a depthwise convolution with a kernel of ones, AvgPool2d that over the
    window size."""
    from onnx import helper

    from ..onnx.importer import probe_linear
    spatial = len(shape) - 1
    consts: dict[str, np.ndarray] = {}
    if kind in ("Conv2d", "Conv1d"):
        w = _arr(node.weight)
        if w.ndim != spatial + 2 or w.shape[1] * int(node.groups) != shape[0]:
            raise ValueError(f"a {kind} of weight {list(w.shape)} does not take an input of shape {list(shape)}")
        consts["w"] = w
        inputs = ["x", "w"]
        if getattr(node, "bias", None) is not None and np.size(node.bias):
            consts["b"] = _arr(node.bias).reshape(-1)
            inputs.append("b")
        kernel, groups = list(w.shape[2:]), int(node.groups)
        stride, dil = _pairs(node.stride, spatial), _pairs(node.dilation, spatial)
        padding = node.padding
    else:
        kernel = _pairs(node.kernel_size, spatial)
        consts["w"] = np.ones((shape[0], 1, *kernel))
        if kind == "AvgPool2d":
            consts["w"] = consts["w"] / float(np.prod(kernel))
        inputs, stride, dil, groups = ["x", "w"], _pairs(node.stride, spatial), [1] * spatial, shape[0]
        padding = node.padding
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": stride, "dilations": dil, "group": groups}
    if isinstance(padding, (str, bytes)):
        mode = padding.decode() if isinstance(padding, bytes) else padding
        if mode == "same":
            attrs["auto_pad"] = "SAME_UPPER"
        elif mode != "valid":
            raise ValueError(f"padding '{mode}' is not 'same', 'valid' or a number")
    else:
        p = _pairs(padding, spatial)
        attrs["pads"] = p + p
    conv = helper.make_node("Conv", inputs, ["y"], **attrs)
    return probe_linear(conv, shape, consts, {"": 17})


def _neuron_params(kind: str, node: Any, size: int, dt: float) -> tuple[str, dict[str, Any]]:
    """The nmc model and parameters of a neuron node (times s -> ms; see the module docstring)."""
    def get(field: str, default: float | None = None) -> np.ndarray:
        v = getattr(node, field, None)
        if v is None:
            if default is None:
                raise NirError(f"{kind} has no '{field}'")
            return np.full(size, float(default))
        return np.broadcast_to(_arr(v).reshape(-1) if _arr(v).size == size else _arr(v), (size,)).astype(np.float64)

    if kind == "Threshold":
        return "graded", {"bias": 0.0}
    if kind in ("LIF", "CubaLIF", "LI", "CubaLI"):
        tau = get("tau" if kind in ("LIF", "LI") else "tau_mem") * 1000.0
        r = get("r")
        params: dict[str, Any] = {"tau_m": _compact(tau), "cm": _compact(tau / r), "v_rest": _compact(get("v_leak"))}
        if kind.startswith("Cuba"):
            params["tau_syn"] = _compact(get("tau_syn") * 1000.0)
        else:
            params["tau_syn"] = 0.0
        if kind.endswith("LIF"):
            params["v_th"] = _compact(get("v_threshold"))
            params["v_reset"] = _compact(get("v_reset", 0.0))
        else:
            params["v_reset"] = params["v_rest"]
            params["v_th"] = _compact(get("v_leak") + _READOUT_SPAN)
        return "lif", params
    # IF and I: dv/dt = r I per second is cm dV/dt = I per ms with cm = 1000 / r.
    r = get("r")
    params = {"cm": _compact(1000.0 / r), "tau_syn": 0.0}
    if kind == "IF":
        params["v_th"] = _compact(get("v_threshold"))
        params["v_reset"] = _compact(get("v_reset", 0.0))
    else:
        params["v_reset"] = 0.0
        params["v_th"] = _READOUT_SPAN
    return "if", params


#: LI, CubaLI and I nodes do not spike: their threshold sits this far above the voltage they start
#: at, which sets the voltage scale of the readout (docs/nir.md).
_READOUT_SPAN = 1000.0


def _input_scale(kind: str, node: Any, size: int, dt: float, spike: str) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron: the factor from NIR weights (what an edge carries) to nmc weights (nA per spike,
    or threshold units for graded), and the factor for a constant input (the Affine bias) to
    i_bias in nA."""
    dt_s = dt / 1000.0
    one = np.ones(size)
    if kind == "Threshold":
        return one / np.broadcast_to(_arr(node.threshold).reshape(-1), (size,)), one
    charge = one / dt_s if spike == "dirac" else one  # current of one step that carries the spike
    if kind.startswith("Cuba"):
        tau_syn = np.broadcast_to(_arr(node.tau_syn).reshape(-1), (size,))
        w_in = np.broadcast_to(_arr(getattr(node, "w_in", 1.0)).reshape(-1), (size,))
        # tau_syn dI/dt = -I + w_in S: a Dirac spike makes I jump by w_in W / tau_syn, a step spike by
        # w_in W dt / tau_syn; a constant input c settles I at w_in c.
        jump = w_in / tau_syn if spike == "dirac" else w_in * dt_s / tau_syn
        return jump, w_in
    return charge, one


def load_nir(path: str | Path, dt: float | None = None, diagnostics: Diagnostics | None = None,
             spike: str = "dirac") -> Network:
    """Import the NIR graph at ``path`` (module docstring). ``dt`` is the time step in ms; without it
    the graph's metadata ``dt`` (seconds) is used, and without that the import fails saying so."""
    path = Path(path)
    if spike not in SPIKE_CONVENTIONS:
        raise NirError(f"unknown spike convention '{spike}' (known: {', '.join(SPIKE_CONVENTIONS)})")
    try:
        import nir
    except ImportError:
        raise NirError("reading NIR needs the nir package (pip install nir)", location=str(path)) from None
    if not path.exists():
        raise NirError(f"input file '{path}' does not exist")
    try:
        # type_check=False: with it, nir.read mends a missing edge by adding Input and Output nodes;
        # the importer checks shapes and connectivity itself.
        graph = nir.read(str(path), type_check=False)
    except Exception as exc:  # h5py and nir raise many kinds for damaged or foreign files
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NirError(f"cannot read the NIR graph ({type(exc).__name__}: {text})", location=str(path)) from None
    return _Importer(graph, path, dt, spike, diagnostics).run()
