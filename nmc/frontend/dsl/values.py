"""Values of DSL expressions, call signatures, and the evaluator that makes and checks them.

An expression folds into a number, a string, a bare name such as ``mixed``, or a call such as
``uniform(0, 1)``. A number written with a unit (``20 ms``, ``-65 mV``) is a quantity: its value
is converted to the unit the IR stores that dimension in (ms, mV, nA, nF, Hz) and it remembers its
dimension, so a time cannot be given where a voltage is expected. Calls stay unevaluated (:class:`Call`) until the statement that uses them knows
the array shape and random stream they need. :class:`Evaluator`, the root of the builder, locates
errors, folds expression trees, binds call arguments to a :class:`Signature` and coerces values to
what a statement needs.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Iterable, Union

from lark import Token, Tree

from ...errors import DslError
from ...ir.models import UNITS

#: Unit -> (dimension, factor to the IR's unit of that dimension).
UNIT_SCALE: dict[str, tuple[str, float]] = {
    "s": ("time", 1e3), "ms": ("time", 1.0), "us": ("time", 1e-3),
    "V": ("voltage", 1e3), "mV": ("voltage", 1.0), "uV": ("voltage", 1e-3),
    "mA": ("current", 1e6), "uA": ("current", 1e3), "nA": ("current", 1.0), "pA": ("current", 1e-3),
    "uF": ("capacitance", 1e3), "nF": ("capacitance", 1.0), "pF": ("capacitance", 1e-3),
    "Hz": ("frequency", 1.0), "kHz": ("frequency", 1e3),
}


def units_of(dimension: str) -> str:
    """The units a dimension may be written in, for messages: "ms, s, us"."""
    return ", ".join(u for u, (d, _) in sorted(UNIT_SCALE.items(), key=lambda kv: kv[1][1]) if d == dimension)


#: Expression nodes without operands.
_LEAVES = frozenset({"int", "float", "string", "word", "quantity"})
_INT_LIMIT = 1 << 63
_MAX_INT_DIGITS = 19  # digits of 2^63: longer literals are out of range without converting them


@dataclass(frozen=True)
class Pos:
    line: int
    col: int


@dataclass(frozen=True)
class Num:
    value: int | float  # an int only when written with integers and + - * (never /)
    pos: Pos
    dim: str | None = None  # a quantity's dimension ("time", ...); value in the IR's unit of it


@dataclass(frozen=True)
class Text:
    value: str
    pos: Pos


@dataclass(frozen=True)
class Word:
    """A bare name used as a value, such as ``mixed`` in ``sign = mixed``."""

    name: str
    pos: Pos


@dataclass(frozen=True)
class Argument:
    name: str | None  # None: positional
    value: "Value"
    pos: Pos  # of the name for named arguments, of the value otherwise


@dataclass(frozen=True)
class Call:
    name: str
    pos: Pos
    arguments: tuple[Argument, ...]


Value = Union[Num, Text, Word, Call]


def describe(value: Value) -> str:
    """A value as it appears in error messages."""
    if isinstance(value, Num):
        if value.dim is not None:
            return f"{value.value:g} {UNITS.get(value.dim, 'Hz')}"
        return repr(value.value)
    if isinstance(value, Text):
        return f'the string "{value.value}"'
    if isinstance(value, Word):
        return f"the name '{value.name}'"
    return f"'{value.name}(...)'"


def token_pos(tok: Token) -> Pos:
    return Pos(tok.line, tok.column)


def tree_pos(tree: Tree) -> Pos:
    return Pos(tree.meta.line, tree.meta.column)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _argument(key: Token | None, value: Value) -> Argument:
    """A positional (``key`` None) or named argument, located at its name or its value."""
    return Argument(None if key is None else key.value, value, value.pos if key is None else token_pos(key))


@dataclass(frozen=True)
class Signature:
    """The arguments a call accepts, for binding and error messages."""

    name: str
    params: tuple[str, ...]  # in positional order
    required: frozenset[str] = frozenset()
    positional: int = 0  # how many leading params may be passed without a name


@dataclass(kw_only=True)
class Evaluator:
    """Errors located in the source file, expressions, call arguments and value coercions."""

    filename: str

    # -- errors -----------------------------------------------------------------------------------
    def error(self, message: str, pos: Pos) -> DslError:
        return DslError(message, location=f"{self.filename}:{pos.line}:{pos.col}")

    # -- calls and arguments ----------------------------------------------------------------------
    def _call(self, tree: Tree) -> Call:
        """A call's syntax tree as a :class:`Call` with evaluated arguments."""
        call = self._evaluate(tree)
        assert isinstance(call, Call)
        return call

    @staticmethod
    def _argument_trees(arg_list: Tree | None) -> list[tuple[Token | None, Tree]]:
        """A call's arguments as (name token or None, expression tree)."""
        out: list[tuple[Token | None, Tree]] = []
        for arg in arg_list.children if arg_list is not None else ():
            if isinstance(arg, Tree) and arg.data == "keyword_argument":
                out.append((arg.children[0], arg.children[1]))
            else:
                out.append((None, arg))
        return out

    def _arguments(self, arg_list: Tree | None) -> tuple[Argument, ...]:
        """The evaluated arguments of an argument list."""
        return tuple(_argument(key, self._evaluate(expr)) for key, expr in self._argument_trees(arg_list))

    def _bind(self, call: Call, sig: Signature) -> dict[str, Value]:
        """Match a call's arguments to ``sig``; returns only the arguments that were given."""
        bound: dict[str, Value] = {}
        named_seen = False
        for i, arg in enumerate(call.arguments):
            if arg.name is None:
                if named_seen:
                    raise self.error("positional argument after a named argument", arg.pos)
                if i >= sig.positional:
                    if sig.positional == 0:
                        raise self.error(f"{sig.name} takes only named arguments, e.g. {sig.params[0]} = ...", arg.pos)
                    names = ", ".join(sig.params[:sig.positional])
                    raise self.error(f"too many positional arguments for {sig.name} (takes {names}; "
                                     f"name the others)", arg.pos)
                bound[sig.params[i]] = arg.value
                continue
            named_seen = True
            if arg.name not in sig.params:
                raise self.error(f"unknown argument '{arg.name}' for {sig.name} "
                                 f"(known: {', '.join(sorted(sig.params))})", arg.pos)
            if arg.name in bound:
                raise self.error(f"argument '{arg.name}' is given twice", arg.pos)
            bound[arg.name] = arg.value
        for name in sig.params:
            if name in sig.required and name not in bound:
                raise self.error(f"missing argument '{name}' for {sig.name}", call.pos)
        return bound

    # -- expressions ------------------------------------------------------------------------------
    def _evaluate(self, node: Tree) -> Value:
        """Fold an expression tree into a value; arithmetic is checked and exact for integers.

        Iterative (an explicit stack, children before their parent), so neither a sum of many
        terms nor deeply nested calls or signs can exhaust Python's recursion limit."""
        todo: list[tuple[Tree, bool]] = [(node, False)]
        done: list[Value] = []
        while todo:
            tree, children_done = todo.pop()
            kind = tree.data
            if kind in _LEAVES:
                done.append(self._leaf(tree))
                continue
            operands = ([expr for _, expr in self._argument_trees(tree.children[1])] if kind == "call"
                        else tree.children)
            if not children_done:
                todo.append((tree, True))
                todo.extend((child, False) for child in reversed(operands))
                continue
            values = done[len(done) - len(operands):]
            del done[len(done) - len(operands):]
            done.append(self._combine(tree, values))
        return done[0]

    def _leaf(self, node: Tree) -> Value:
        kind = node.data
        if kind == "quantity":
            number, unit = node.children
            dim, factor = UNIT_SCALE[unit.value]
            return self._finite(float(number.value) * factor, token_pos(number), dim)
        tok = node.children[0]
        pos = token_pos(tok)
        if kind == "int":
            if len(tok.value) > _MAX_INT_DIGITS:
                raise self.error(f"integer of {len(tok.value)} digits is out of range", pos)
            return self._integer(int(tok.value), pos)
        if kind == "float":
            return self._finite(float(tok.value), pos)
        if kind == "string":
            return Text(tok.value[1:-1], pos)
        return Word(tok.value, pos)

    def _combine(self, node: Tree, values: list[Value]) -> Value:
        """The value of a call, sign or operator node from the values of its operands."""
        kind = node.data
        if kind == "call":
            name_tok, arg_list = node.children
            arguments = tuple(_argument(key, value) for (key, _), value in zip(self._argument_trees(arg_list), values))
            return Call(name_tok.value, token_pos(name_tok), arguments)
        if kind in ("neg", "pos"):
            inner = values[0]
            operand = self._operand(inner, "-" if kind == "neg" else "+")
            return Num(-operand if kind == "neg" else operand, tree_pos(node), inner.dim)  # type: ignore[union-attr]
        left_value, right_value = values
        symbol = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[kind]
        left, right = self._operand(left_value, symbol), self._operand(right_value, symbol)
        dim = self._result_dim(kind, left_value, right_value, symbol)  # type: ignore[arg-type]
        pos = left_value.pos
        if kind == "add":
            result = left + right
        elif kind == "sub":
            result = left - right
        elif kind == "mul":
            result = left * right
        else:
            if right == 0:
                raise self.error("division by zero", right_value.pos)
            result = left / right  # true division: always a float, like Python
        if isinstance(result, float):
            return self._finite(result, pos, dim)
        return self._integer(result, pos, dim)

    def _result_dim(self, kind: str, left: Num, right: Num, symbol: str) -> str | None:
        """Dimensions combine as in physics: sums of one dimension, products and quotients with a
        plain number, and a quantity over one of its own dimension is a plain number."""
        a, b = left.dim, right.dim
        if kind in ("add", "sub"):
            if a != b:
                raise self.error(f"'{symbol}' needs quantities of one dimension, got {describe(left)} and "
                                 f"{describe(right)}", left.pos)
            return a
        if kind == "mul":
            if a is not None and b is not None:
                raise self.error(f"'*' of two quantities ({describe(left)}, {describe(right)}) is not supported",
                                 left.pos)
            return a or b
        if b is None:
            return a
        if a == b:
            return None
        raise self.error(f"'/' of {describe(left)} by {describe(right)} is not supported", right.pos)

    def _operand(self, value: Value, symbol: str) -> int | float:
        if not isinstance(value, Num):
            raise self.error(f"'{symbol}' needs numbers, got {describe(value)}", value.pos)
        return value.value

    def _integer(self, x: int, pos: Pos, dim: str | None = None) -> Num:
        """Integers stay within 64 bits: every number ends up in a 64-bit array, and unbounded
        integers would make long products cost time that grows faster than the source."""
        if not -_INT_LIMIT <= x < _INT_LIMIT:
            raise self.error("integer out of range (beyond 64 bits)", pos)
        return Num(x, pos, dim)

    def _finite(self, x: float, pos: Pos, dim: str | None = None) -> Num:
        if not math.isfinite(x):
            raise self.error("number out of range", pos)
        return Num(x, pos, dim)

    # -- value coercions --------------------------------------------------------------------------
    def _as_number(self, value: Value, what: str) -> int | float:
        if not isinstance(value, Num):
            raise self.error(f"{what} must be a number, got {describe(value)}", value.pos)
        if value.dim is not None:
            raise self.error(f"{what} must be a plain number, got {describe(value)}", value.pos)
        try:
            float(value.value)  # a huge integer would overflow later, in numpy, with a traceback
        except OverflowError:
            raise self.error(f"{what} is out of range", value.pos) from None
        return value.value

    def _as_quantity(self, value: Value, what: str, dimension: str | None) -> int | float:
        """A number in the IR's unit of ``dimension`` (ms, mV, nA, nF, Hz): a quantity of that
        dimension, or a plain number taken as already in that unit. ``dimension`` None: a plain number."""
        if dimension is None:
            return self._as_number(value, what)
        if not isinstance(value, Num):
            raise self.error(f"{what} must be a {dimension} ({units_of(dimension)}), got {describe(value)}",
                             value.pos)
        if value.dim not in (None, dimension):
            raise self.error(f"{what} must be a {dimension} ({units_of(dimension)}), got {describe(value)}",
                             value.pos)
        return self._as_number(Num(value.value, value.pos), what)

    def _as_int(self, value: Value, what: str, minimum: int | None = None) -> int:
        kind = {0: "a non-negative", 1: "a positive"}.get(minimum, "an")  # type: ignore[arg-type]
        if not (isinstance(value, Num) and isinstance(value.value, int)) \
                or (minimum is not None and value.value < minimum):
            raise self.error(f"{what} must be {kind} integer, got {describe(value)}", value.pos)
        return value.value

    def _as_text(self, value: Value, what: str) -> Text:
        if not isinstance(value, Text):
            raise self.error(f"{what} must be a string in double quotes, got {describe(value)}", value.pos)
        return value
