"""Reading an ONNX model into nmc's IR (see the package docstring and docs/onnx.md).

Values flowing through the graph are of four kinds:

- :class:`Const` -- initializers, ``Constant`` nodes and everything computed from them alone
  (shape arithmetic of torch exports is folded with ``onnx.reference``);
- :class:`Data` -- an affine function of populations: per source population a :class:`Lin`
  matrix, plus a bias, with the tensor's shape per sample (the batch dimension is dropped);
- :class:`Head` -- what a classifier computes from its scores after the last layer (Softmax,
  ArgMax, scikit-learn's label and ZipMap nodes); nmc reads the argmax of the scores instead;
- :class:`Poison` -- the output of a node that could not be imported (its error is reported
  once, at that node; nodes downstream are not blamed for it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...diagnostics import Diagnostics
from ...errors import NmcError
from ...ir.network import Network, Population, Projection
from .linear import Lin

#: The custom operator that carries a low-pass RNN layer (docs/onnx.md, "nmc.LpRNN").
LPRNN_DOMAIN = "nmc"
LPRNN_OP = "LpRNN"
#: Oldest default-domain opset whose operator definitions the importer follows.
_OLDEST_OPSET = 9
#: Linear operators whose matrix is obtained by evaluating the operator on a basis with
#: onnx.reference (exact ONNX padding and averaging rules); rows per evaluation.
_PROBE_CHUNK = 1024
_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16 (onnx.TensorProto)


def supported_opsets() -> tuple[int, int]:
    """The range of default-domain (ai.onnx) opsets the importer reads."""
    import onnx.defs
    return _OLDEST_OPSET, int(onnx.defs.onnx_opset_version())


class OnnxError(NmcError):
    """An ONNX model nmc cannot import; the message may hold one line per problem."""


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------
@dataclass
class Const:
    value: np.ndarray
    name: str = ""  # the initializer or tensor it came from, for messages


@dataclass
class Data:
    terms: dict[str, Lin]
    bias: np.ndarray
    shape: tuple[int, ...]
    sequence: bool = False   # one value per item of the input sequence (before nmc.LpRNN)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def then(self, lin: Lin, bias: np.ndarray | float = 0.0, shape: tuple[int, ...] | None = None) -> "Data":
        """Apply the linear map ``lin`` and add ``bias``."""
        terms = {k: v.then(lin) for k, v in self.terms.items()}
        b = lin.apply(self.bias[None, :])[0] + np.broadcast_to(np.asarray(bias, dtype=np.float64), (lin.n_out,))
        return Data(terms, b, shape if shape is not None else self.shape, self.sequence)

    def scaled(self, s: np.ndarray, shift: np.ndarray) -> "Data":
        """Elementwise ``x * s + shift`` (s, shift flattened to this shape)."""
        terms = {k: v.scale_columns(s) for k, v in self.terms.items()}
        return Data(terms, self.bias * s + shift, self.shape, self.sequence)

    def reshaped(self, shape: tuple[int, ...]) -> "Data":
        return Data(dict(self.terms), self.bias, shape, self.sequence)


@dataclass
class Head:
    """Computed from the class scores after the last layer."""


@dataclass
class Poison:
    """The output of a node that failed to import."""


class _Unsupported(Exception):
    """A node nmc cannot turn into spiking neurons, with the reason."""


class _Bad(Exception):
    """A node whose inputs are wrong (NaN weights, inconsistent shapes)."""


# ---------------------------------------------------------------------------------------------
# Reading and checking the file
# ---------------------------------------------------------------------------------------------
def _read_model(path: Path) -> Any:
    import onnx
    from google.protobuf.message import DecodeError
    if not path.exists():
        raise OnnxError(f"input file '{path}' does not exist")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OnnxError(f"cannot read ONNX file: {exc.strerror or exc}", location=str(path)) from None
    if not data:
        raise OnnxError("the file is empty, not an ONNX model", location=str(path))
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OnnxError(f"cannot parse the ONNX model: the file is corrupt or truncated "
                        f"({type(exc).__name__}: {_first_line(exc)})", location=str(path)) from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.input):
        raise OnnxError("the file holds no ONNX graph (corrupt, truncated or not an ONNX model)",
                        location=str(path))
    return model


def _validate(model: Any, path: Path) -> Any:
    """The ONNX checker, then shape inference (whose shapes the importer checks its own against)."""
    import onnx
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise OnnxError(f"invalid ONNX model (the file may be truncated): {_first_line(exc)}",
                        location=str(path)) from None
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except onnx.shape_inference.InferenceError as exc:
        raise OnnxError(f"ONNX shape inference failed: {_first_line(exc)}", location=str(path)) from None
    return model


def _inferred_shapes(graph: Any) -> dict[str, tuple[int, ...]]:
    """Per-sample shapes (batch dimension dropped) ONNX shape inference fixed completely."""
    out: dict[str, tuple[int, ...]] = {}
    for vi in list(graph.value_info) + list(graph.output):
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if len(dims) >= 1 and all(d.HasField("dim_value") for d in dims[1:]):
            out[vi.name] = tuple(int(d.dim_value) for d in dims[1:])
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_opsets(model: Any, path: Path) -> int:
    lo, hi = supported_opsets()
    version = None
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            version = int(imp.version)
    if version is None:
        raise OnnxError("the model imports no default-domain (ai.onnx) opset", location=str(path))
    if not lo <= version <= hi:
        raise OnnxError(f"opset {version} of domain 'ai.onnx' is not supported (nmc reads opsets {lo} to {hi}); "
                        "export the model with an opset in that range", location=str(path))
    return version


# ---------------------------------------------------------------------------------------------
# The importer
# ---------------------------------------------------------------------------------------------
_ELEMENTWISE = ("Add", "Sub", "Mul", "Div")
#: Nodes allowed after the class scores (they compute labels and probabilities from them).
_HEAD_OPS = {("", "Softmax"), ("", "LogSoftmax"), ("", "ArgMax"), ("", "Identity"), ("", "Cast"),
             ("", "Reshape"), ("", "Flatten"), ("", "Squeeze"), ("", "Unsqueeze"),
             ("ai.onnx.ml", "ZipMap"), ("ai.onnx.ml", "ArrayFeatureExtractor")}
#: Why nmc refuses common operators that have no spiking equivalent.
_REFUSED = {
    "MaxPool": "max pooling has no rate- or sigma-delta-coded equivalent; nmc does not replace it by an "
               "approximation: use AveragePool",
    "GlobalMaxPool": "max pooling has no spiking equivalent; use GlobalAveragePool",
    "Sigmoid": "spiking units compute rectified linear activations; retrain with Relu",
    "Tanh": "spiking units compute rectified linear activations; retrain with Relu",
    "LeakyRelu": "negative activations cannot be carried by spike rates; use Relu",
    "PRelu": "negative activations cannot be carried by spike rates; use Relu",
    "Elu": "spiking units compute rectified linear activations; use Relu",
    "Selu": "spiking units compute rectified linear activations; use Relu",
    "HardSigmoid": "spiking units compute rectified linear activations; use Relu or Clip(0, max)",
    "HardSwish": "spiking units compute rectified linear activations; use Relu",
    "Softplus": "spiking units compute rectified linear activations; use Relu",
    "RNN": "recurrent layers must be nmc.LpRNN (docs/onnx.md)",
    "LSTM": "LSTM cells have no spiking mapping in nmc; use the low-pass RNN nmc.LpRNN",
    "GRU": "GRU cells have no spiking mapping in nmc; use the low-pass RNN nmc.LpRNN",
}


def _node_label(node: Any, index: int) -> str:
    return f"node '{node.name}'" if node.name else f"node {index} ({node.op_type})"


class _Importer:
    def __init__(self, model: Any, path: Path, opset: int, diagnostics: Diagnostics | None) -> None:
        self.model = model
        self.graph = model.graph
        self.path = path
        self.opset = opset
        self.opsets = {imp.domain or "": int(imp.version) for imp in model.opset_import}
        self.diag = diagnostics
        self.values: dict[str, Any] = {}
        self.errors: list[tuple[str, str]] = []
        self.removed: list[str] = []
        self.net = Network(path.stem)
        self.scores: Data | None = None
        self.scores_node = ""
        self.names: set[str] = set()
        self.sequence_items: int | None = None
        self.inferred = _inferred_shapes(self.graph)

    # -- helpers -------------------------------------------------------------------------------
    def where(self, label: str) -> str:
        return f"{self.path}:{label}"

    def fail(self, label: str, message: str) -> None:
        self.errors.append((self.where(label), message))

    def unique(self, hint: str) -> str:
        base = hint or "layer"
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}#{i}"
        self.names.add(name)
        return name

    def const(self, node: Any, k: int, what: str, optional: bool = False) -> np.ndarray | None:
        """Constant input ``k`` of ``node`` (checked finite), or None when absent and optional."""
        if k >= len(node.input) or not node.input[k]:
            if optional:
                return None
            raise _Bad(f"{what} (input {k}) is missing")
        v = self.values.get(node.input[k])
        if isinstance(v, Data):
            raise _Unsupported(f"its {what} comes from the network's data; nmc needs it constant")
        if not isinstance(v, Const):
            raise _Bad(f"{what} '{node.input[k]}' is not defined")
        a = v.value
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            bad = int(np.count_nonzero(~np.isfinite(a)))
            kinds = "NaN" if np.isnan(a).any() else "infinite"
            raise _Bad(f"{what} '{v.name or node.input[k]}' holds {bad} {kinds} value(s); the weights must be finite")
        return a

    def attrs(self, node: Any) -> dict[str, Any]:
        from onnx import helper
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    # -- the walk ------------------------------------------------------------------------------
    def run(self) -> Network:
        from onnx import numpy_helper
        for init in self.graph.initializer:
            self.values[init.name] = Const(numpy_helper.to_array(init), init.name)
        has_lprnn = any(n.domain == LPRNN_DOMAIN and n.op_type == LPRNN_OP for n in self.graph.node)
        self._inputs(has_lprnn)
        if self.errors:
            self._raise()
        for index, node in enumerate(self.graph.node):
            self._node(node, index)
        if not self.errors:
            self._outputs()
        if self.errors:
            self._raise()
        if self.removed and self.diag is not None:
            for label, why in self.removed:
                self.diag.remark(f"removed: {why}", location=self.where(label))
        return self.net

    def _raise(self) -> None:
        (loc, msg), rest = self.errors[0], self.errors[1:]
        raise OnnxError(msg + "".join(f"\n{l}: error: {m}" for l, m in rest), location=loc)

    def _inputs(self, has_lprnn: bool) -> None:
        inits = {i.name for i in self.graph.initializer}
        data_inputs = [i for i in self.graph.input if i.name not in inits]
        if len(data_inputs) != 1:
            names = ", ".join(f"'{i.name}'" for i in data_inputs) or "none"
            self.fail("graph", f"nmc imports models with exactly one data input; this one has {len(data_inputs)} ({names})")
            return
        inp = data_inputs[0]
        label = f"input '{inp.name}'"
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type") or tt.elem_type not in _FLOAT_TYPES:
            self.fail(label, "the input must be a real-valued (float) tensor")
            return
        if not tt.HasField("shape"):
            self.fail(label, "the input has no shape (dynamic rank); export it with a fixed shape")
            return
        dims = list(tt.shape.dim)
        if len(dims) < 2:
            self.fail(label, f"the input has rank {len(dims)}; nmc expects a batch dimension first, then the "
                             "sample's dimensions")
            return
        shape = []
        for k, d in enumerate(dims[1:], start=1):
            if d.HasField("dim_value") and d.dim_value > 0:
                shape.append(int(d.dim_value))
            else:
                what = f"'{d.dim_param}'" if d.HasField("dim_param") else "unknown"
                self.fail(label, f"dynamic shape: dimension {k} of the input is {what}; nmc needs fixed sizes "
                                 "(only the batch dimension, the first, may vary)")
                return
        if has_lprnn:
            if len(shape) != 2:
                self.fail(label, f"a model with {LPRNN_DOMAIN}.{LPRNN_OP} takes sequences shaped (batch, items, "
                                 f"features); this input is {['batch', *shape]}")
                return
            self.sequence_items = shape[0]
            shape = shape[1:]
        n = int(np.prod(shape))
        pop = self.net.add_population(Population(self.unique(inp.name), n, "input", role="input"))
        self.values[inp.name] = Data({pop.name: Lin.identity(n)}, np.zeros(n), tuple(shape), has_lprnn)
        self.net.attrs["source"] = {"format": "onnx", "file": self.path.name, "input": inp.name,
                                    "input_shape": list(shape), "opset": self.opset}
        if has_lprnn:
            self.net.attrs["source"]["items"] = self.sequence_items

    def _node(self, node: Any, index: int) -> None:
        label = _node_label(node, index)
        key = (node.domain or "", node.op_type)
        ins = [self.values.get(name) if name else None for name in node.input]
        poisoned = any(isinstance(v, Poison) for v in ins)
        missing = [name for name, v in zip(node.input, ins) if name and v is None]
        handler = _HANDLERS.get(key)
        try:
            if missing:
                raise _Bad(f"input '{missing[0]}' is not produced by any earlier node")
            if poisoned:
                if handler is None and key not in _HEAD_OPS:
                    raise _Unsupported(self._why_unsupported(key))
                self._set(node, [Poison()] * len(node.output))
                return
            if any(isinstance(v, Head) for v in ins):
                if key not in _HEAD_OPS:
                    raise _Unsupported("it computes from the classifier's outputs after the last layer; nmc reads "
                                       "the argmax of the last layer and cannot carry this on")
                self.removed.append((label, f"{node.op_type} after the class scores (nmc reads the argmax of "
                                            "the output layer)"))
                self._set(node, [Head()] * len(node.output))
                return
            data_in = any(isinstance(v, Data) for v in ins)
            if not data_in and key != (LPRNN_DOMAIN, LPRNN_OP):
                self._set(node, self._fold(node))
                return
            if key in (("", "Softmax"), ("", "LogSoftmax"), ("", "ArgMax")):
                self._head(node, label, ins[0])
                return
            if handler is None:
                raise _Unsupported(self._why_unsupported(key))
            self._set(node, handler(self, node, label, ins))
        except _Unsupported as exc:
            self.fail(label, f"unsupported {node.op_type}: {exc}")
            self._set(node, [Poison()] * len(node.output))
        except _Bad as exc:
            self.fail(label, str(exc))
            self._set(node, [Poison()] * len(node.output))

    def _why_unsupported(self, key: tuple[str, str]) -> str:
        domain, op = key
        if domain not in ("", "ai.onnx"):
            return f"operator {op} of domain '{domain}' is not one nmc knows"
        return _REFUSED.get(op, "nmc has no spiking equivalent of this operator (docs/onnx.md lists the supported ones)")

    def _set(self, node: Any, outs: list[Any]) -> None:
        for name, v in zip(node.output, outs):
            if not name:
                continue
            if isinstance(v, Data) and not v.sequence:
                inferred = self.inferred.get(name)
                if inferred is not None and inferred != v.shape:
                    raise _Bad(f"output '{name}': ONNX shape inference gives {list(inferred)} per sample, nmc "
                               f"computed {list(v.shape)}")
            self.values[name] = v

    def _fold(self, node: Any) -> list[Any]:
        """Evaluate a node whose inputs are all constant (shape arithmetic, Constant nodes)."""
        from onnx import helper
        from onnx.reference import ReferenceEvaluator
        feeds = {}
        for name in node.input:
            if name:
                feeds[name] = self.values[name].value
        try:
            graph = helper.make_graph([node], "fold", [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                                                       for n, v in feeds.items()],
                                      [helper.make_tensor_value_info(o, 0, None) for o in node.output if o])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in self.opsets.items()])
            outs = ReferenceEvaluator(model).run(None, feeds)
        except Exception as exc:  # onnx.reference raises many kinds: report, do not crash
            raise _Bad(f"cannot evaluate this constant {node.op_type} node ({_first_line(exc)})") from None
        return [Const(np.asarray(o), name) for o, name in zip(outs, [o for o in node.output if o])]

    def _head(self, node: Any, label: str, x: Any) -> None:
        if not isinstance(x, Data):
            raise _Bad("its input is not the network's data")
        if len(x.shape) != 1:
            raise _Unsupported(f"the class scores must be a vector per sample, got shape {list(x.shape)}")
        if self.scores is not None and self.scores is not x:
            raise _Unsupported(f"a second readout of class scores (the first is at {self.scores_node})")
        self.scores, self.scores_node = x, label
        self.removed.append((label, f"{node.op_type} on the class scores (nmc reads the argmax of the output layer, "
                                    f"which {node.op_type} does not change)"))
        self._set(node, [Head()] * len(node.output))

    def _outputs(self) -> None:
        if self.scores is None:
            data_out = [o.name for o in self.graph.output if isinstance(self.values.get(o.name), Data)]
            if len(data_out) != 1:
                names = ", ".join(f"'{n}'" for n in data_out) or "none"
                self.fail("graph", f"nmc reads one output computed from the data; the model has "
                                   f"{len(data_out)} ({names})")
                return
            self.scores = self.values[data_out[0]]
            self.scores_node = f"output '{data_out[0]}'"
        x = self.scores
        if x.sequence:
            self.fail("graph", f"the output is a sequence; read the last state of {LPRNN_DOMAIN}.{LPRNN_OP} (its "
                               "output Y_h) through a layer")
            return
        if len(x.terms) == 1 and not np.any(x.bias):
            (name, lin), = x.terms.items()
            pop = self.net.population(name)
            if lin.kind == "id" and not pop.is_input:
                pop.role = "output"
                return
        pop = self.materialise(x, "linear", {}, "output")
        pop.role = "output"
        self.net.attrs["source"]["output"] = pop.name

    # -- building populations ------------------------------------------------------------------
    def materialise(self, x: Data, model: str, params: dict[str, Any], hint: str,
                    self_recurrent: Lin | None = None) -> Population:
        """A population of ``model`` units receiving ``x``'s affine terms as projections (and, for
        a recurrent layer, ``self_recurrent`` from itself, carrying the previous item's state)."""
        n = x.size
        pop = Population(self.unique(hint), n, model, params={**params})
        if np.any(x.bias):
            pop.params["bias"] = _compact(x.bias)
        self.net.add_population(pop)
        for src, lin in x.terms.items():
            self._project(src, pop.name, lin, recurrent=False)
        if self_recurrent is not None:
            self._project(pop.name, pop.name, self_recurrent, recurrent=True)
        return pop

    def _project(self, pre: str, post: str, lin: Lin, recurrent: bool) -> None:
        name = self.net.unique_projection_name(pre, post)
        if lin.kind == "id":
            proj = Projection(name, pre, post, "one_to_one", np.ones(lin.n_in))
        elif lin.kind == "dense":
            proj = Projection(name, pre, post, "dense", lin.dense.copy())
        else:
            i, j, w = lin.entries()
            if w.size == 0:
                return  # a map with no non-zero entry connects nothing
            proj = Projection(name, pre, post, "sparse", w.copy(), pre_index=i.astype(np.int64),
                              post_index=j.astype(np.int64))
        if recurrent:
            proj.attrs["recurrent"] = True
        self.net.add_projection(proj)

    def data_of_population(self, pop: Population, shape: tuple[int, ...], sequence: bool = False) -> Data:
        return Data({pop.name: Lin.identity(pop.size)}, np.zeros(pop.size), shape, sequence)


def _compact(v: np.ndarray) -> Any:
    """A per-neuron parameter: a plain float when all values agree (the IR prints it inline)."""
    v = np.asarray(v, dtype=np.float64)
    if v.size and np.all(v == v[0]):
        return float(v[0])
    return v


# ---------------------------------------------------------------------------------------------
# Operator handlers: (importer, node, label, input values) -> output values
# ---------------------------------------------------------------------------------------------
def _data(ins: list[Any], k: int, what: str = "input") -> Data:
    v = ins[k] if k < len(ins) else None
    if not isinstance(v, Data):
        raise _Unsupported(f"its {what} must be the network's data")
    return v


def _static(x: Data, node: Any) -> None:
    if x.sequence:
        raise _Unsupported(f"it acts on every item of a sequence; nmc maps sequences only through "
                           f"{LPRNN_DOMAIN}.{LPRNN_OP}")


def _relu(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    x = _data(ins, 0)
    _static(x, node)
    pop = imp.materialise(x, "relu", {}, node.name or node.output[0])
    return [imp.data_of_population(pop, x.shape)]


def _clip(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    x = _data(ins, 0)
    _static(x, node)
    a = imp.attrs(node)
    if imp.opset < 11:
        lo, hi = float(a.get("min", -math.inf)), float(a.get("max", math.inf))
    else:
        lo_a, hi_a = imp.const(node, 1, "min", optional=True), imp.const(node, 2, "max", optional=True)
        lo = -math.inf if lo_a is None else float(lo_a)
        hi = math.inf if hi_a is None else float(hi_a)
    if lo != 0.0:
        raise _Unsupported(f"Clip({lo:g}, {hi:g}): spiking units need a lower bound of 0 (a rectifier, "
                           "optionally bounded above)")
    if not hi > 0:
        raise _Unsupported(f"Clip(0, {hi:g}) has no positive range")
    params = {} if math.isinf(hi) else {"clip": hi}
    pop = imp.materialise(x, "relu", params, node.name or node.output[0])
    return [imp.data_of_population(pop, x.shape)]


def _identity(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    x = _data(ins, 0)
    outs: list[Any] = [x]
    if node.op_type == "Dropout" and len(node.output) > 1:
        outs.append(Const(np.ones(x.shape, dtype=bool), node.output[1]))  # inference: keep everything
    return outs


def _cast(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    x = _data(ins, 0)
    if int(imp.attrs(node).get("to", 1)) not in _FLOAT_TYPES:
        raise _Unsupported("it casts the data to a non-real type")
    return [x]


def _reshape_like(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    """Flatten, Reshape, Squeeze, Unsqueeze: the C-order flat index is unchanged; only the shape
    per sample changes, computed by running the node on a zero tensor of batch 1."""
    x = _data(ins, 0)
    _static(x, node)
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    feeds: dict[str, np.ndarray] = {node.input[0]: np.zeros((1, *x.shape), dtype=np.float32)}
    for k in range(1, len(node.input)):
        if node.input[k]:
            feeds[node.input[k]] = imp.const(node, k, "shape argument")
    try:
        graph = helper.make_graph([node], "shape", [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                                                     for n, v in feeds.items()],
                                  [helper.make_tensor_value_info(node.output[0], 0, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in imp.opsets.items()])
        out = np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])
    except Exception as exc:  # a bad target shape: report at the node
        raise _Bad(f"cannot apply {node.op_type} to a sample of shape {list(x.shape)} ({_first_line(exc)})") from None
    if out.ndim == 0 or out.shape[0] != 1 or out.size != x.size:
        raise _Unsupported(f"it moves the batch dimension (output shape {list(out.shape)} for a batch of 1); "
                           "nmc keeps the batch dimension first")
    return [x.reshaped(tuple(int(d) for d in out.shape[1:]))]


def _gemm(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    x = _data(ins, 0, "first operand")
    _static(x, node)
    a = imp.attrs(node)
    if int(a.get("transA", 0)):
        raise _Unsupported("transA = 1 transposes the batch with the features")
    if len(x.shape) != 1:
        raise _Bad(f"Gemm needs a vector per sample, got shape {list(x.shape)}")
    b = imp.const(node, 1, "weight")
    if b.ndim != 2:
        raise _Bad(f"the weight must be a matrix, got shape {list(b.shape)}")
    if int(a.get("transB", 0)):
        b = b.T
    if b.shape[0] != x.size:
        raise _Bad(f"the weight has {b.shape[0]} rows for {x.size} inputs")
    c = imp.const(node, 2, "bias", optional=True)
    bias = 0.0 if c is None else float(a.get("beta", 1.0)) * np.broadcast_to(c.reshape(-1) if c.size == b.shape[1] else c, (b.shape[1],))
    return [x.then(Lin.from_dense(float(a.get("alpha", 1.0)) * b), bias, (b.shape[1],))]


def _matmul(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    if not isinstance(ins[0], Data) or isinstance(ins[1], Data):
        raise _Unsupported("nmc maps data @ constant matrix only (the data must be the left operand)")
    x = ins[0]
    _static(x, node)
    w = imp.const(node, 1, "weight")
    if w.ndim != 2 or len(x.shape) < 1 or w.shape[0] != x.shape[-1]:
        raise _Bad(f"cannot multiply a sample of shape {list(x.shape)} by a matrix of shape {list(w.shape)}")
    lead = int(np.prod(x.shape[:-1], dtype=np.int64))
    if lead == 1:
        lin = Lin.from_dense(w)
    else:  # the same matrix for every leading index: block diagonal
        k, m = w.shape
        bi, ri, ci = np.meshgrid(np.arange(lead), np.arange(k), np.arange(m), indexing="ij")
        lin = Lin.from_entries((bi * k + ri).ravel(), (bi * m + ci).ravel(), np.broadcast_to(w, (lead, k, m)).ravel(),
                               lead * k, lead * m)
    return [x.then(lin, 0.0, (*x.shape[:-1], w.shape[1]))]


def _broadcast_const(c: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A constant broadcast to one sample's shape (a leading batch dimension of 1 is allowed)."""
    try:
        out = np.broadcast_to(c, (1, *shape)) if c.ndim == len(shape) + 1 else np.broadcast_to(c, shape)
    except ValueError:
        raise _Bad(f"the {what} of shape {list(c.shape)} does not broadcast to a sample of shape {list(shape)}") from None
    if out.size != int(np.prod(shape, dtype=np.int64)):
        raise _Unsupported(f"the {what} would broadcast the data to a larger shape")
    return np.asarray(out, dtype=np.float64).reshape(-1)


def _elementwise(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    op = node.op_type
    a, b = ins[0], ins[1]
    if isinstance(a, Data) and isinstance(b, Data):
        if op not in ("Add", "Sub"):
            raise _Unsupported(f"the {op.lower()} of two data tensors has no spiking equivalent")
        if a.shape != b.shape:
            raise _Unsupported(f"adding data tensors of shapes {list(a.shape)} and {list(b.shape)} (broadcast) is not "
                               "supported")
        if a.sequence != b.sequence:
            raise _Bad("it mixes a sequence with a single value")
        sign = 1.0 if op == "Add" else -1.0
        terms = dict(a.terms)
        for k, lin in b.terms.items():
            lin = lin if sign > 0 else lin.scale_columns(np.full(lin.n_out, -1.0))
            terms[k] = terms[k].plus(lin) if k in terms else lin
        return [Data(terms, a.bias + sign * b.bias, a.shape, a.sequence)]
    x = a if isinstance(a, Data) else b
    k = 1 if x is a else 0
    _static(x, node)
    c = _broadcast_const(imp.const(node, k, "constant operand"), x.shape, "constant operand")
    n = x.size
    if op == "Add":
        return [x.scaled(np.ones(n), c)]
    if op == "Sub":
        return [x.scaled(np.ones(n), -c) if x is a else x.scaled(-np.ones(n), c)]
    if op == "Mul":
        return [x.scaled(c, np.zeros(n))]
    if x is b:
        raise _Unsupported("dividing by the data has no spiking equivalent")
    if np.any(c == 0):
        raise _Bad("it divides by zero")
    return [x.scaled(1.0 / c, np.zeros(n))]


def _neg(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    x = _data(ins, 0)
    return [x.scaled(-np.ones(x.size), np.zeros(x.size))]


def _batchnorm(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    """Folded into the weights: y = (x - mean) / sqrt(var + eps) * scale + B, per channel."""
    x = _data(ins, 0)
    _static(x, node)
    a = imp.attrs(node)
    if int(a.get("training_mode", 0)) or len([o for o in node.output if o]) > 1:
        raise _Unsupported("training mode (batch statistics) cannot be folded; export the model in eval mode")
    scale, bias = imp.const(node, 1, "scale"), imp.const(node, 2, "bias")
    mean, var = imp.const(node, 3, "mean"), imp.const(node, 4, "variance")
    eps = float(a.get("epsilon", 1e-5))
    c = x.shape[0]
    if any(v.size != c for v in (scale, bias, mean, var)):
        raise _Bad(f"its parameters do not have one value per channel ({c})")
    s = scale.reshape(-1) / np.sqrt(var.reshape(-1) + eps)
    t = bias.reshape(-1) - mean.reshape(-1) * s
    per = int(np.prod(x.shape[1:], dtype=np.int64))
    return [x.scaled(np.repeat(s, per), np.repeat(t, per))]


def probe_linear(node: Any, in_shape: tuple[int, ...], consts: dict[str, np.ndarray],
                 opsets: dict[str, int]) -> tuple[Lin, np.ndarray, tuple[int, ...]]:
    """The exact matrix and bias of a linear ONNX operator (Conv, AveragePool, GlobalAveragePool)
    on one sample of ``in_shape``: the operator run by onnx.reference on the zero sample (the
    bias) and on chunks of the unit basis. Raises ValueError when onnx.reference cannot run it."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    names = [n for n in node.input if n]
    n_in = int(np.prod(in_shape, dtype=np.int64))
    inputs = [helper.make_tensor_value_info(names[0], 1, [None, *in_shape])]
    inputs += [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(consts[n].dtype), consts[n].shape)
               for n in names[1:]]
    graph = helper.make_graph([node], "probe", inputs, [helper.make_tensor_value_info(node.output[0], 1, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    try:
        ev = ReferenceEvaluator(model)

        def run(batch: np.ndarray) -> np.ndarray:
            feeds = {names[0]: batch.astype(np.float64).reshape(batch.shape[0], *in_shape)}
            feeds.update({n: consts[n].astype(np.float64) if consts[n].dtype.kind == "f" else consts[n] for n in names[1:]})
            return np.asarray(ev.run(None, feeds)[0], dtype=np.float64)

        zero = run(np.zeros((1, n_in)))
    except Exception as exc:  # bad attributes or shapes: the caller reports it at the node
        raise ValueError(_first_line(exc)) from None
    out_shape = tuple(int(d) for d in zero.shape[1:])
    bias = zero.reshape(-1)
    rows, cols, vals = [], [], []
    for start in range(0, n_in, _PROBE_CHUNK):
        stop = min(n_in, start + _PROBE_CHUNK)
        basis = np.zeros((stop - start, n_in))
        basis[np.arange(stop - start), np.arange(start, stop)] = 1.0
        m = run(basis).reshape(stop - start, -1) - bias[None, :]
        i, j = np.nonzero(m)
        rows.append(i + start)
        cols.append(j)
        vals.append(m[i, j])
    lin = Lin.from_entries(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), n_in, bias.size)
    return lin, bias, out_shape


def _probe(imp: _Importer, node: Any, x: Data, consts: dict[str, np.ndarray]) -> tuple[Lin, np.ndarray, tuple[int, ...]]:
    try:
        return probe_linear(node, x.shape, consts, imp.opsets)
    except ValueError as exc:
        raise _Bad(f"cannot evaluate {node.op_type} on a sample of shape {list(x.shape)} ({exc})") from None


def _conv(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    x = _data(ins, 0)
    _static(x, node)
    w = imp.const(node, 1, "weight")
    consts = {node.input[1]: w}
    b = imp.const(node, 2, "bias", optional=True)
    if b is not None:
        consts[node.input[2]] = b
    if len(x.shape) != w.ndim - 1:
        raise _Bad(f"a sample of shape {list(x.shape)} does not match a {w.ndim - 2}-D kernel of shape {list(w.shape)}")
    lin, bias, shape = _probe(imp, node, x, consts)
    return [x.then(lin, bias, shape)]


def _pool(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    x = _data(ins, 0)
    _static(x, node)
    if len(x.shape) < 2:
        raise _Bad(f"pooling needs (channels, spatial...) per sample, got {list(x.shape)}")
    lin, bias, shape = _probe(imp, node, x, {})
    return [x.then(lin, bias, shape)]


def _lprnn(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    """nmc.LpRNN(X, W, R, B) with attribute alpha (one value or one per unit): a population of
    lprnn units; outputs Y (every item's state, a sequence) and Y_h (the last state)."""
    x = _data(ins, 0, "sequence input X")
    if not x.sequence:
        raise _Unsupported("its input X must be the model's input sequence (batch, items, features) or the Y of "
                           "another LpRNN")
    if len(x.shape) != 1:
        raise _Bad(f"X must be (batch, items, features), got a per-item shape {list(x.shape)}")
    a = imp.attrs(node)
    w = imp.const(node, 1, "input weight W")
    r = imp.const(node, 2, "recurrent weight R")
    b = imp.const(node, 3, "bias B", optional=True)
    hidden = w.shape[0]
    if w.ndim != 2 or w.shape[1] != x.size:
        raise _Bad(f"W must be (hidden, {x.size}), got {list(w.shape)}")
    if r.shape != (hidden, hidden):
        raise _Bad(f"R must be ({hidden}, {hidden}), got {list(r.shape)}")
    if "alpha" not in a:
        raise _Bad("attribute alpha (retention per item, one value or one per unit) is missing")
    alpha = np.broadcast_to(np.asarray(a["alpha"], dtype=np.float64).reshape(-1), (hidden,)) \
        if np.size(a["alpha"]) in (1, hidden) else None
    if alpha is None:
        raise _Bad(f"alpha must have 1 or {hidden} values, got {np.size(a['alpha'])}")
    if not np.all(np.isfinite(alpha)) or np.any(alpha < 0) or np.any(alpha >= 1):
        raise _Bad("alpha must lie in [0, 1)")
    bias = 0.0 if b is None else np.broadcast_to(b.reshape(-1), (hidden,))
    pre = x.then(Lin.from_dense(w.T), bias, (hidden,))
    pop = imp.materialise(pre, "lprnn", {"alpha": _compact(alpha)}, node.name or node.output[0],
                          self_recurrent=Lin.from_dense(r.T))
    outs: list[Any] = [imp.data_of_population(pop, (hidden,), sequence=True),
                       imp.data_of_population(pop, (hidden,), sequence=False)]
    return outs[:len(node.output)]


def _shape(imp: _Importer, node: Any, label: str, ins: list[Any]) -> list[Any]:
    x = _data(ins, 0)
    a = imp.attrs(node)
    full = np.array([1, *x.shape], dtype=np.int64)  # the batch counts as 1
    return [Const(full[int(a.get("start", 0)):a.get("end", None)], node.output[0])]


_Handler = Callable[[_Importer, Any, str, list[Any]], list[Any]]
_HANDLERS: dict[tuple[str, str], _Handler] = {
    ("", "Relu"): _relu,
    ("", "Clip"): _clip,
    ("", "Identity"): _identity,
    ("", "Dropout"): _identity,
    ("", "Cast"): _cast,
    ("", "Flatten"): _reshape_like,
    ("", "Reshape"): _reshape_like,
    ("", "Squeeze"): _reshape_like,
    ("", "Unsqueeze"): _reshape_like,
    ("", "Gemm"): _gemm,
    ("", "MatMul"): _matmul,
    ("", "Add"): _elementwise,
    ("", "Sub"): _elementwise,
    ("", "Mul"): _elementwise,
    ("", "Div"): _elementwise,
    ("", "Neg"): _neg,
    ("", "BatchNormalization"): _batchnorm,
    ("", "Conv"): _conv,
    ("", "AveragePool"): _pool,
    ("", "GlobalAveragePool"): _pool,
    ("", "Shape"): _shape,
    (LPRNN_DOMAIN, LPRNN_OP): _lprnn,
}


def load_onnx(path: str | Path, diagnostics: Diagnostics | None = None) -> Network:
    """Import the ONNX model at ``path`` as a network of artificial units (module docstring).

    Raises :class:`OnnxError` naming the file and node of every problem; ``diagnostics`` receives
    a remark for every node removed on purpose (Softmax and the classifier head)."""
    path = Path(path)
    model = _read_model(path)
    opset = _check_opsets(model, path)
    model = _validate(model, path)
    return _Importer(model, path, opset, diagnostics).run()
