"""Parser for the canonical IR text (:mod:`nmc.ir.printer`). Hand-written: the IR is a small,
regular language and may hold long inline arrays, which a table-driven parser handles slowly."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from ..errors import IrError
from ..numbers import is_integer
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
_SHAPE = re.compile(r"\s*(\d{1,18}(?:x\d{1,18}){0,7})")  # up to 8 dimensions of up to 18 digits
#: Deepest nesting of lists and dictionaries in a value (annotations nest 4 deep at most).
MAX_NESTING = 32
_INT_MIN, _UINT_MAX = -(1 << 63), (1 << 64) - 1  # integers the IR's arrays can hold
_MAX_INT_DIGITS = 20


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

    def value(self, depth: int = 0) -> Any:
        """One value; lists and dictionaries nest at most ``MAX_NESTING`` deep, so hostile input
        cannot exhaust the recursion limit."""
        kind, val, pos = self.s.next()
        if kind == "string":
            return json.loads(val)
        if kind in ("int", "float"):
            return self.number(kind, val, pos)
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
        if kind in ("[", "{") and depth >= MAX_NESTING:
            raise self.s.error(f"values nested more than {MAX_NESTING} deep", pos)
        if kind == "[":
            items: list[Any] = []
            if self.s.peek()[0] == "]":
                self.s.next()
                return items
            while True:
                items.append(self.value(depth + 1))
                k = self.s.next()
                if k[0] == "]":
                    return items
                if k[0] != ",":
                    raise self.s.error(f"expected ',' or ']', found {_found(k)}", k[2])
        if kind == "{":
            return self.attrdict(opened=True, depth=depth + 1)
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
                if k not in ("int", "float"):
                    raise self.s.error(f"expected a number, found {_found((k, v, p))}", p)
                items.append(self.number(k, v, p))
                k2 = self.s.next()
                if k2[0] == "]":
                    break
                if k2[0] != ",":
                    raise self.s.error(f"expected ',' or ']', found {_found(k2)}", k2[2])
        else:
            self.s.next()
        n = math.prod(shape)
        if len(items) != n:
            raise self.s.error(f"array of shape {'x'.join(map(str, shape))} needs {n} elements, found {len(items)}", pos)
        return self._typed(items, dname, pos).reshape(shape)

    def _typed(self, items: list[int | float], dname: str, pos: int) -> np.ndarray:
        """``items`` as an array of element type ``dname``, refusing what the type cannot hold
        exactly (numpy would truncate 1.5 to 1, wrap 300 in a u8, or read 2 as true)."""
        dtype = DTYPES_BY_NAME[dname]
        if dtype.kind == "f":
            a = np.array(items, dtype=np.float64)
            if dtype != np.float64 and np.any(np.isinf(a.astype(dtype))):
                raise self.s.error(f"a value of the {dname} array is out of its range", pos)
            return a.astype(dtype)
        bad = next((x for x in items if isinstance(x, float)), None)
        if bad is not None:
            raise self.s.error(f"{dname} array holds the non-integer {bad!r}", pos)
        lo, hi = (0, 1) if dtype.kind == "b" else (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
        bad = next((x for x in items if not lo <= x <= hi), None)
        if bad is not None:
            raise self.s.error(f"{dname} array holds {bad}, outside [{lo}, {hi}]", pos)
        return np.array(items, dtype=dtype)

    def number(self, kind: str, val: str, pos: int) -> int | float:
        """An integer (64 bits at most, signed or not) or a finite float."""
        if kind == "int":
            if len(val.lstrip("-")) > _MAX_INT_DIGITS or not _INT_MIN <= (x := int(val)) <= _UINT_MAX:
                raise self.s.error(f"integer {val[:24]}{'...' if len(val) > 24 else ''} is out of range (64 bits)", pos)
            return x
        f = float(val)
        if not math.isfinite(f):
            raise self.s.error(f"number {val} is not finite; the IR holds finite numbers only", pos)
        return f

    def attrdict(self, opened: bool = False, depth: int = 0) -> dict[str, Any]:
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
            d[key] = self.value(depth)
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
                    net.add_probe(Probe(name, pop, self._str(a.get("variable", "spikes"),
                                                            f"probe '{name}': variable", pos)))
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
        what = f"population '{name}'"
        for req in ("size", "model"):
            if req not in a:
                raise self.s.error(f"{what} has no '{req}'", pos)
        return Population(name=name, size=self._int(a.pop("size"), f"{what}: size", pos),
                          model=self._str(a.pop("model"), f"{what}: model", pos),
                          params=self._dict(a.pop("params", {}), f"{what}: params", pos),
                          role=self._str(a.pop("role", "hidden"), f"{what}: role", pos), attrs=a)

    def _projection(self, name: str, pre: str, post: str, a: dict[str, Any], pos: int) -> Projection:
        what = f"projection '{name}'"
        for req in ("connectivity", "weights"):
            if req not in a:
                raise self.s.error(f"{what} has no '{req}'", pos)
        optional = {key: a.pop(key, None) for key in ("sign", "exponent", "weight_bits", "learning")}
        if optional["sign"] is not None:
            self._str(optional["sign"], f"{what}: sign", pos)
        for key in ("exponent", "weight_bits"):
            if optional[key] is not None:
                self._int(optional[key], f"{what}: {key}", pos)
        if optional["learning"] is not None:
            self._dict(optional["learning"], f"{what}: learning", pos)
        return Projection(
            name=name, pre=pre, post=post, connectivity=self._str(a.pop("connectivity"), f"{what}: connectivity", pos),
            weights=self._array(a.pop("weights"), f"{what}: weights", pos),
            pre_index=self._array(a.pop("pre_index", None), f"{what}: pre_index", pos),
            post_index=self._array(a.pop("post_index", None), f"{what}: post_index", pos),
            delay=self._int(a.pop("delay", 0), f"{what}: delay", pos), attrs=a, **optional)

    # Field types: the parser hands the passes a network whose fields have the types the data
    # model says (values and ranges are the verifier's business), whatever the text held.
    def _int(self, v: Any, what: str, pos: int) -> int:
        if not is_integer(v):
            raise self.s.error(f"{what} must be an integer, got {_shown(v)}", pos)
        return v

    def _str(self, v: Any, what: str, pos: int) -> str:
        if not isinstance(v, str):
            raise self.s.error(f"{what} must be a string, got {_shown(v)}", pos)
        return v

    def _dict(self, v: Any, what: str, pos: int) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.s.error(f"{what} must be a dictionary {{...}}, got {_shown(v)}", pos)
        return dict(v)

    def _array(self, v: Any, what: str, pos: int) -> np.ndarray | None:
        """A number or (nested) list of numbers as an array; None stays None."""
        if v is None:
            return None
        try:
            a = np.asarray(v)
        except ValueError:  # a ragged nested list
            raise self.s.error(f"{what} must be a rectangular array of numbers", pos) from None
        if a.dtype.kind not in "biuf":
            raise self.s.error(f"{what} must hold numbers, got {_shown(v)}", pos)
        return a


def _shown(v: Any) -> str:
    """A value as a message quotes it (short)."""
    text = repr(v) if not isinstance(v, np.ndarray) else f"an array of {v.dtype}"
    return text if len(text) <= 40 else text[:37] + "..."


def parse_ir(text: str, arrays: dict[str, np.ndarray] | None = None, filename: str = "<ir>") -> Network:
    """Parse IR text; ``arrays`` supplies the arrays referenced as ``@"key"``."""
    return _Parser(text, arrays, filename).module()


def referenced_arrays_file(text: str) -> str | None:
    """The side file named by an ``arrays "file.npz"`` line, if any (without parsing the rest)."""
    m = re.search(r'^\s*arrays\s+("(?:[^"\\]|\\.)*")', text, re.MULTILINE)
    return json.loads(m.group(1)) if m else None
