"""Parser for the canonical IR text (:mod:`nmc.ir.printer`). Hand-written: the IR is a small,
regular language and may hold long inline arrays, which a table-driven parser handles slowly."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from ..errors import IrError
from .network import Network, Population, Probe, Projection
from .printer import DTYPES_BY_NAME

_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<float>-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|inf\b|nan\b))
  | (?P<int>-?\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<arrow>->)
  | (?P<punct>[{}\[\](),=:@<>])
""", re.VERBOSE)
_SHAPE = re.compile(r"\s*(\d+(?:x\d+)*)")


def _found(tok: tuple[str, str, int]) -> str:
    return "end of input" if tok[0] == "eof" else repr(tok[1])


class _Scanner:
    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.pos = 0
        self._peeked: tuple[str, str, int] | None = None

    def where(self, pos: int) -> str:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return f"{self.filename}:{line}:{col}"

    def error(self, msg: str, pos: int | None = None) -> IrError:
        return IrError(msg, location=self.where(self.pos if pos is None else pos))

    def _scan(self) -> tuple[str, str, int]:
        while True:
            if self.pos >= len(self.text):
                return ("eof", "", self.pos)
            m = _TOKEN.match(self.text, self.pos)
            if not m:
                raise self.error(f"unexpected character {self.text[self.pos]!r}")
            start = self.pos
            self.pos = m.end()
            kind = m.lastgroup
            if kind == "ws":
                continue
            val = m.group()
            if kind == "punct" or kind == "arrow":
                kind = val
            return (kind, val, start)

    def peek(self) -> tuple[str, str, int]:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> tuple[str, str, int]:
        tok = self.peek()
        self._peeked = None
        return tok

    def expect(self, kind: str, what: str | None = None) -> tuple[str, str, int]:
        tok = self.next()
        if tok[0] != kind:
            raise self.error(f"expected {what or repr(kind)}, found {_found(tok)}", tok[2])
        return tok

    def shape(self) -> tuple[int, ...]:
        assert self._peeked is None
        m = _SHAPE.match(self.text, self.pos)
        if not m:
            raise self.error("expected an array shape such as 2x3")
        self.pos = m.end()
        return tuple(int(d) for d in m.group(1).split("x"))


class _Parser:
    def __init__(self, text: str, arrays: dict[str, np.ndarray] | None, filename: str) -> None:
        self.s = _Scanner(text, filename)
        self.arrays = arrays
        self.arrays_file: str | None = None

    def string(self) -> str:
        return json.loads(self.s.expect("string", "a quoted name")[1])

    def value(self) -> Any:
        kind, val, pos = self.s.next()
        if kind == "string":
            return json.loads(val)
        if kind == "int":
            return int(val)
        if kind == "float":
            return float(val)
        if kind == "ident":
            if val == "true":
                return True
            if val == "false":
                return False
            if val == "none":
                return None
            if val == "array":
                return self.array()
            raise self.s.error(f"unexpected name '{val}' where a value was expected", pos)
        if kind == "[":
            items: list[Any] = []
            if self.s.peek()[0] == "]":
                self.s.next()
                return items
            while True:
                items.append(self.value())
                k = self.s.next()
                if k[0] == "]":
                    return items
                if k[0] != ",":
                    raise self.s.error(f"expected ',' or ']', found {_found(k)}", k[2])
        if kind == "{":
            return self.attrdict(opened=True)
        if kind == "@":
            key = self.string()
            if self.arrays is None or key not in self.arrays:
                raise self.s.error(f"array '{key}' is referenced but not provided (missing side .npz?)", pos)
            return np.asarray(self.arrays[key])
        raise self.s.error(f"expected a value, found {_found((kind, val, pos))}", pos)

    def array(self) -> np.ndarray:
        self.s.expect("<")
        _, dname, pos = self.s.expect("ident", "an element type (i64, f64, ...)")
        if dname not in DTYPES_BY_NAME:
            raise self.s.error(f"unknown element type '{dname}'", pos)
        self.s.expect(",")
        shape = self.s.shape()
        self.s.expect(">")
        self.s.expect("[")
        items: list[Any] = []
        if self.s.peek()[0] != "]":
            while True:
                k, v, p = self.s.next()
                if k == "int":
                    items.append(int(v))
                elif k == "float":
                    items.append(float(v))
                else:
                    raise self.s.error(f"expected a number, found {_found((k, v, p))}", p)
                k2 = self.s.next()
                if k2[0] == "]":
                    break
                if k2[0] != ",":
                    raise self.s.error(f"expected ',' or ']', found {_found(k2)}", k2[2])
        else:
            self.s.next()
        n = int(np.prod(shape))
        if len(items) != n:
            raise self.s.error(f"array of shape {'x'.join(map(str, shape))} needs {n} elements, found {len(items)}", pos)
        return np.array(items, dtype=DTYPES_BY_NAME[dname]).reshape(shape)

    def attrdict(self, opened: bool = False) -> dict[str, Any]:
        if not opened:
            self.s.expect("{")
        d: dict[str, Any] = {}
        if self.s.peek()[0] == "}":
            self.s.next()
            return d
        while True:
            kind, val, pos = self.s.next()
            if kind == "ident":
                key = val
            elif kind == "string":
                key = json.loads(val)
            else:
                raise self.s.error(f"expected an attribute name, found {_found((kind, val, pos))}", pos)
            if key in d:
                raise self.s.error(f"attribute '{key}' given twice", pos)
            self.s.expect("=")
            d[key] = self.value()
            k = self.s.next()
            if k[0] == "}":
                return d
            if k[0] != ",":
                raise self.s.error(f"expected ',' or '}}', found {_found(k)}", k[2])

    def module(self) -> Network:
        net: Network | None = None
        while True:
            kind, val, pos = self.s.next()
            if kind == "eof":
                break
            if kind != "ident":
                raise self.s.error(f"expected a declaration, found {_found((kind, val, pos))}", pos)
            if val == "arrays":
                self.arrays_file = self.string()
                continue
            if val == "network":
                if net is not None:
                    raise self.s.error("a second 'network' declaration", pos)
                name = self.string()
                net = Network(name, self.attrdict())
                continue
            if net is None:
                raise self.s.error("expected 'network' before other declarations", pos)
            try:
                if val == "population":
                    name = self.string()
                    net.add_population(self._population(name, self.attrdict(), pos))
                elif val == "projection":
                    name = self.string()
                    self.s.expect(":")
                    pre = self.string()
                    self.s.expect("->")
                    post = self.string()
                    net.add_projection(self._projection(name, pre, post, self.attrdict(), pos))
                elif val == "probe":
                    name = self.string()
                    self.s.expect(":")
                    pop = self.string()
                    a = self.attrdict()
                    net.add_probe(Probe(name, pop, str(a.get("variable", "spikes"))))
                else:
                    raise self.s.error(f"unknown declaration '{val}' (expected network, population, "
                                       "projection, probe or arrays)", pos)
            except IrError as exc:
                if exc.location is None or not exc.location.startswith(self.s.filename):
                    raise IrError(exc.message if exc.location is None else f"{exc.location}: {exc.message}",
                                  location=self.s.where(pos)) from None
                raise
        if net is None:
            raise self.s.error("empty IR: no 'network' declaration")
        return net

    def _population(self, name: str, a: dict[str, Any], pos: int) -> Population:
        for req in ("size", "model"):
            if req not in a:
                raise self.s.error(f"population '{name}' has no '{req}'", pos)
        return Population(name=name, size=int(a.pop("size")), model=str(a.pop("model")),
                          params=dict(a.pop("params", {})), role=str(a.pop("role", "hidden")), attrs=a)

    def _projection(self, name: str, pre: str, post: str, a: dict[str, Any], pos: int) -> Projection:
        for req in ("connectivity", "weights"):
            if req not in a:
                raise self.s.error(f"projection '{name}' has no '{req}'", pos)
        w = a.pop("weights")
        return Projection(
            name=name, pre=pre, post=post, connectivity=str(a.pop("connectivity")),
            weights=np.asarray(w), pre_index=_opt_array(a.pop("pre_index", None)),
            post_index=_opt_array(a.pop("post_index", None)), delay=int(a.pop("delay", 0)),
            sign=a.pop("sign", None), exponent=a.pop("exponent", None), weight_bits=a.pop("weight_bits", None),
            learning=a.pop("learning", None), attrs=a)


def _opt_array(v: Any) -> np.ndarray | None:
    return None if v is None else np.asarray(v)


def parse_ir(text: str, arrays: dict[str, np.ndarray] | None = None, filename: str = "<ir>") -> Network:
    """Parse IR text; ``arrays`` supplies the arrays referenced as ``@"key"``."""
    return _Parser(text, arrays, filename).module()


def referenced_arrays_file(text: str) -> str | None:
    """The side file named by an ``arrays "file.npz"`` line, if any (without parsing the rest)."""
    m = re.search(r'^\s*arrays\s+("(?:[^"\\]|\\.)*")', text, re.MULTILINE)
    return json.loads(m.group(1)) if m else None
