"""Canonical text form of the IR.

::

    // nmc-ir v1
    network "xor" {seed = 0}
    population "x" {model = "input", role = "input", size = 2}
    population "h" {model = "cuba_lif", params = {bias = 0, decay_u = 4095, ...}, role = "hidden", size = 4}
    projection "x->h" : "x" -> "h" {connectivity = "dense", delay = 0, weights = array<f64, 2x4>[...]}
    probe "h.v" : "h" {variable = "v"}

Keys are printed sorted, floats with ``repr`` (shortest round-trip form), so print -> parse ->
print is the identity. Arrays with more than ``inline_limit`` elements are printed as references
``@"owner/field"`` into a side ``.npz`` (see :func:`nmc.ir.io.write_ir`). Grammar: docs/ir.md.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from .network import Network, Population, Probe, Projection

IR_HEADER = "// nmc-ir v1"
DEFAULT_INLINE_LIMIT = 16

DTYPE_NAMES = {
    np.dtype(np.bool_): "bool",
    np.dtype(np.int8): "i8", np.dtype(np.int16): "i16", np.dtype(np.int32): "i32", np.dtype(np.int64): "i64",
    np.dtype(np.uint8): "u8", np.dtype(np.uint16): "u16", np.dtype(np.uint32): "u32", np.dtype(np.uint64): "u64",
    np.dtype(np.float32): "f32", np.dtype(np.float64): "f64",
}
DTYPES_BY_NAME = {v: k for k, v in DTYPE_NAMES.items()}

_PROJECTION_FIELDS = ("connectivity", "weights", "pre_index", "post_index", "delay", "sign",
                      "exponent", "weight_bits", "learning")


def format_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(float(x))


class _Printer:
    def __init__(self, inline_limit: int) -> None:
        self.inline_limit = inline_limit
        self.arrays: dict[str, np.ndarray] = {}

    def value(self, v: Any, path: str) -> str:
        if v is None:
            return "none"
        if isinstance(v, (bool, np.bool_)):
            return "true" if v else "false"
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            return format_float(float(v))
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, np.ndarray):
            return self.array(v, path)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(self.value(x, f"{path}/{i}") for i, x in enumerate(v)) + "]"
        if isinstance(v, dict):
            return self.attrdict(v, path)
        raise TypeError(f"cannot print IR value of type {type(v).__name__} at {path}")

    def array(self, a: np.ndarray, path: str) -> str:
        if a.dtype not in DTYPE_NAMES:
            raise TypeError(f"unsupported array dtype {a.dtype} at {path}")
        if a.size > self.inline_limit or a.ndim == 0:
            self.arrays[path] = a
            return "@" + json.dumps(path, ensure_ascii=False)
        shape = "x".join(str(d) for d in a.shape)
        flat = a.reshape(-1)
        if a.dtype.kind == "f":
            items = ", ".join(format_float(float(x)) for x in flat)
        else:
            items = ", ".join(str(int(x)) for x in flat)
        return f"array<{DTYPE_NAMES[a.dtype]}, {shape}>[{items}]"

    def attrdict(self, d: dict[str, Any], path: str) -> str:
        parts = []
        for k in sorted(d):
            key = k if _is_ident(k) else json.dumps(k, ensure_ascii=False)
            parts.append(f"{key} = {self.value(d[k], f'{path}/{k}')}")
        return "{" + ", ".join(parts) + "}"


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = frozenset({"true", "false", "none", "inf", "nan", "array"})


def _is_ident(s: str) -> bool:
    """Keys print bare only if the parser would read them back as the same identifier."""
    return _IDENT.fullmatch(s) is not None and s not in _KEYWORDS


def population_attrs(p: Population) -> dict[str, Any]:
    d: dict[str, Any] = {"size": p.size, "model": p.model, "role": p.role}
    if p.params:
        d["params"] = dict(p.params)
    d.update(p.attrs)
    return d


def projection_attrs(p: Projection) -> dict[str, Any]:
    d: dict[str, Any] = {"connectivity": p.connectivity, "weights": p.weights, "delay": p.delay}
    for f in ("pre_index", "post_index", "sign", "exponent", "weight_bits", "learning"):
        v = getattr(p, f)
        if v is not None:
            d[f] = v
    d.update(p.attrs)
    return d


def probe_attrs(p: Probe) -> dict[str, Any]:
    return {"variable": p.variable}


def print_ir(net: Network, inline_limit: int = DEFAULT_INLINE_LIMIT) -> tuple[str, dict[str, np.ndarray]]:
    """Print ``net``; returns the text and the arrays it references (for the side ``.npz``)."""
    pr = _Printer(inline_limit)
    q = lambda s: json.dumps(s, ensure_ascii=False)  # noqa: E731
    # Network attributes' side arrays are keyed "#network/...": no population path starts with '#'.
    lines = [IR_HEADER, f"network {q(net.name)} {pr.attrdict(net.attrs, '#network')}"]
    for pop in net.populations:
        lines.append(f"population {q(pop.name)} {pr.attrdict(population_attrs(pop), pop.name)}")
    for proj in net.projections:
        lines.append(f"projection {q(proj.name)} : {q(proj.pre)} -> {q(proj.post)} "
                     f"{pr.attrdict(projection_attrs(proj), proj.name)}")
    for probe in net.probes:
        lines.append(f"probe {q(probe.name)} : {q(probe.population)} {pr.attrdict(probe_attrs(probe), probe.name)}")
    return "\n".join(lines) + "\n", pr.arrays


def format_ir(net: Network, inline_limit: int = DEFAULT_INLINE_LIMIT) -> str:
    """The text form alone (large arrays appear as references); for dumps and inspection."""
    return print_ir(net, inline_limit)[0]
