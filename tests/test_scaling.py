"""Compile time grows linearly with the source, and no recursion depth depends on it.

A source of n statements (populations, connections, probes in equal parts) is compiled at two
sizes four times apart: linear work takes about four times as long, quadratic work sixteen.
CPU time of this process is measured (not wall time), so other work on the machine matters
little. docs/dsl.md records the same measurement up to 300,000 statements.
"""

from __future__ import annotations

import time

from nmc.driver import compile_network
from nmc.frontend.dsl import parse_dsl


def _source(n: int) -> str:
    lines = ["input x[4]"]
    for i in range(n // 3):
        lines += [f"population p{i}[1] : cuba_lif", f"connect x -> p{i} : dense(weights = 1)", f"probe p{i}.v"]
    return "\n".join(lines) + "\n"


def _compile_seconds(n: int) -> float:
    text = _source(n)
    start = time.process_time()
    compile_network(parse_dsl(text), "loihi")
    return time.process_time() - start


def test_compile_time_is_linear_in_the_number_of_statements() -> None:
    small, large = 1200, 4800
    t_small = min(_compile_seconds(small) for _ in range(2))
    t_large = _compile_seconds(large)
    assert t_large / t_small < 7, f"{small} statements: {t_small:.2f} s, {large}: {t_large:.2f} s"


def test_long_expressions_and_deep_nesting_compile() -> None:
    """500 terms, 5000 signs and 2000 nested parentheses: values, not RecursionError."""
    terms = " + ".join(["1"] * 500)
    signs = "-" * 5000 + "7"
    parens = "(" * 2000 + "3" + ")" * 2000
    net = parse_dsl(f"population a[{terms}] : cuba_lif\npopulation b[{signs}] : cuba_lif\n"
                    f"population c[{parens}] : cuba_lif\n")
    assert [p.size for p in net.populations] == [500, 7, 3]
