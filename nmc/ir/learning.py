"""Learning rules: ``dw = 4*x0*y0*r1 - 2*x0*y0`` as a sum of products (Loihi's form).

A rule is target-neutral data in the IR (``Projection.learning``)::

    {"rule": "4*x0*y0*r1 - 2*x0*y0",      # the right-hand side of dw
     "epoch": 1,                          # steps per learning epoch
     "traces": {"r1": [1, 0]},            # trace -> [impulse, tau] (tau 0: the trace lasts one step)
     "reward": "bp/r"}                    # population whose spikes drive r1 (the third factor)

Variables (docs/loihi-facts.md §5.1): ``x0``/``y0`` the pre/post spike bit in the epoch
(dependencies), ``x1 x2`` presynaptic traces, ``y1 y2 y3`` postsynaptic traces, ``r1`` the reward
trace. Each product must contain exactly one dependency (``x0`` or ``y0``; a product may hold both,
it is then non-zero only where pre and post both spiked). Constants are integers or powers of two
(``2^-3``), multiplied together into one mantissa * 2^exponent. Equations: docs/learning.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import IrError

PRE_TRACES = ("x1", "x2")
POST_TRACES = ("y1", "y2", "y3")
DEPENDENCIES = ("x0", "y0")
VARIABLES = DEPENDENCIES + PRE_TRACES + POST_TRACES + ("r1",)
TRACES = PRE_TRACES + POST_TRACES + ("r1",)

#: A product's constant m * 2^e must satisfy |m * 2^e| < 2^PRODUCT_LOG2_LIMIT: beyond, the product
#: of up to six 7-bit traces with the constant's 7 fraction bits would not fit 64-bit arithmetic
#: (and every update saturates the 16-bit accumulator long before). Below 2^MIN_PRODUCT_EXPONENT a
#: constant is zero after the fraction shift whatever the traces hold.
PRODUCT_LOG2_LIMIT = 14
MIN_PRODUCT_EXPONENT = -64


_MAX_DIGITS = 18  # longer numbers are out of range anyway; refused before converting them


def product_in_range(mantissa: int, exponent: int) -> bool:
    """Whether the constant ``mantissa * 2^exponent`` is one a learning engine can use."""
    return exponent >= MIN_PRODUCT_EXPONENT and abs(mantissa).bit_length() + exponent <= PRODUCT_LOG2_LIMIT


_TOKEN = re.compile(r"\s*(?:(?P<num>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*^()]))")


@dataclass(frozen=True)
class Product:
    """One term ``mantissa * 2^exponent * Π factors``."""

    mantissa: int
    exponent: int
    factors: tuple[str, ...]   # sorted variable names, dependencies included

    def __str__(self) -> str:
        coef = f"{self.mantissa}" + (f"*2^{self.exponent}" if self.exponent else "")
        return "*".join([coef, *self.factors])


def _normalise(mantissa: int, exponent: int) -> tuple[int, int]:
    while mantissa and mantissa % 2 == 0:
        mantissa //= 2
        exponent += 1
    return mantissa, exponent


def parse_rule(text: str, where: str = "rule") -> list[Product]:
    """Parse ``4*x0*y0*r1 - 2^-2*x1*y0`` into products; raises IrError naming what is wrong."""
    toks: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise IrError(f"learning rule: unexpected character {text[pos:].strip()[0]!r} in '{text}'", location=where)
        kind = m.lastgroup
        if kind == "num" and len(m.group(kind)) > _MAX_DIGITS:
            raise IrError(f"learning rule: the number {m.group(kind)[:24]}... is out of range", location=where)
        toks.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    if not toks:
        raise IrError("learning rule is empty", location=where)
    products: list[Product] = []
    i = 0
    sign = 1
    if toks[0][1] in "+-" and toks[0][0] == "op":
        sign = -1 if toks[0][1] == "-" else 1
        i = 1
    while True:
        mant, exp, factors = sign, 0, []
        while True:
            if i >= len(toks):
                raise IrError(f"learning rule '{text}' ends where a factor was expected", location=where)
            kind, val, _ = toks[i]
            if kind == "num":
                n = int(val)
                if i + 1 < len(toks) and toks[i + 1][1] == "^":
                    if n != 2:
                        raise IrError(f"learning rule '{text}': only powers of two may use '^', got {n}^", location=where)
                    e_sign, j = 1, i + 2
                    if j < len(toks) and toks[j][1] in "+-":
                        e_sign = -1 if toks[j][1] == "-" else 1
                        j += 1
                    if j >= len(toks) or toks[j][0] != "num":
                        raise IrError(f"learning rule '{text}': expected an exponent after '2^'", location=where)
                    exp += e_sign * int(toks[j][1])
                    i = j + 1
                else:
                    mant *= n
                    i += 1
            elif kind == "name":
                if val not in VARIABLES:
                    raise IrError(f"learning rule names an unknown trace '{val}' (known: {', '.join(VARIABLES)})",
                                  location=where)
                factors.append(val)
                i += 1
            else:
                raise IrError(f"learning rule '{text}': unexpected '{val}' where a factor was expected", location=where)
            if i < len(toks) and toks[i][1] == "*":
                i += 1
                continue
            break
        deps = [f for f in factors if f in DEPENDENCIES]
        if not deps:
            raise IrError(f"learning rule '{text}': every product needs a dependency x0 or y0 "
                          f"(the term '{'*'.join(factors) or mant}' has none)", location=where)
        if len(set(factors)) != len(factors):
            raise IrError(f"learning rule '{text}': a variable repeats within one product", location=where)
        m, e = _normalise(mant, exp)
        if m and not product_in_range(m, e):
            raise IrError(f"learning rule '{text}': the constant {m}*2^{e} is out of range (its magnitude must "
                          f"lie below 2^{PRODUCT_LOG2_LIMIT}, its exponent at least {MIN_PRODUCT_EXPONENT})",
                          location=where)
        if m:
            products.append(Product(m, e, tuple(sorted(factors))))
        if i >= len(toks):
            break
        kind, val, _ = toks[i]
        if val not in "+-":
            raise IrError(f"learning rule '{text}': expected '+' or '-', found '{val}'", location=where)
        sign = -1 if val == "-" else 1
        i += 1
    return products


@dataclass(frozen=True)
class TraceSpec:
    impulse: float
    tau: float


def learning_spec(learning: Any, where: str) -> tuple[list[Product], int, dict[str, TraceSpec], str | None]:
    """Check a projection's ``learning`` dict; returns (products, epoch, traces, reward population)."""
    if not isinstance(learning, dict):
        raise IrError(f"learning must be a dictionary, got {learning!r}", location=where)
    unknown = set(learning) - {"rule", "epoch", "traces", "reward"}
    if unknown:
        raise IrError(f"learning has unknown keys {sorted(unknown)} (known: epoch, reward, rule, traces)", location=where)
    if "rule" not in learning:
        raise IrError("learning has no 'rule'", location=where)
    products = parse_rule(str(learning["rule"]), where)
    epoch = learning.get("epoch", 1)
    if not isinstance(epoch, int) or not 1 <= epoch <= 63:
        raise IrError(f"learning epoch must be an integer in 1..63, got {epoch!r}", location=where)
    traces: dict[str, TraceSpec] = {}
    for name, val in dict(learning.get("traces", {})).items():
        if name not in TRACES:
            raise IrError(f"learning names an unknown trace '{name}' (known: {', '.join(TRACES)})", location=where)
        if not (isinstance(val, (list, tuple)) and len(val) == 2 and all(isinstance(x, (int, float)) for x in val)):
            raise IrError(f"trace '{name}' must be [impulse, tau], got {val!r}", location=where)
        if val[0] < 0 or val[1] < 0:
            raise IrError(f"trace '{name}': impulse and tau must be >= 0, got {val!r}", location=where)
        traces[name] = TraceSpec(float(val[0]), float(val[1]))
    used = {f for p in products for f in p.factors}
    for name in sorted(used & set(TRACES)):
        if name not in traces:
            raise IrError(f"learning rule uses trace '{name}' but gives no impulse and tau for it "
                          f"(traces = {{{name} = [impulse, tau]}})", location=where)
    reward = learning.get("reward")
    if "r1" in used and reward is None:
        raise IrError("learning rule uses the reward trace r1 but names no reward population", location=where)
    return products, epoch, traces, reward
