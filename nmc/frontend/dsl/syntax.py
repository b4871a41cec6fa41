"""Parsing DSL text into a lark tree, and syntax errors as one-line DslErrors.

The grammar is grammar/nmc.lark (found through :func:`nmc.resources.data_dir`), parsed LALR. A
syntax error becomes one :class:`DslError` located ``file:line:col`` at the offending token, naming
it and the tokens that would have been accepted.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterable

from lark import Lark, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from ...errors import DslError
from ...resources import data_dir


@functools.lru_cache(maxsize=1)
def lark_parser() -> Lark:
    """The parser, built once per process, and its tables kept between processes in the user's
    cache directory (lark checks the grammar's hash before using them and rebuilds on any
    mismatch or damage): building the LALR tables costs more than parsing most files."""
    grammar = (data_dir("grammar") / "nmc.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, cache=_cache_file() or False)


def _cache_file() -> str | None:
    """Where lark keeps the parser tables: ``$XDG_CACHE_HOME/nmc`` (default ``~/.cache/nmc``),
    a directory only the user writes; None (no caching) where it cannot be made."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nmc"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return str(root / "dsl-parser.lark-cache")


def parse_tree(text: str, filename: str) -> Tree:
    """The syntax tree of ``text``; ``filename`` locates a syntax error."""
    try:
        return lark_parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, filename) from None


# Readable names of the grammar's pattern terminals; keywords and punctuation print as themselves.
_TERMINAL_NAMES = {
    "$END": "end of input",
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    try:
        pattern = lark_parser().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if isinstance(pattern, PatternStr) else name.lower()


def _expected_list(terminals: Iterable[str]) -> str:
    names = set(terminals)
    if {"INT", "FLOAT"} <= names:
        names.discard("INT")  # "a number" covers both; listing "an integer" too only confuses
    words = {_describe_terminal(n) for n in names}
    # Literal tokens first (sorted), then descriptions such as "a name".
    ordered = sorted(words, key=lambda w: (not w.startswith("'"), w))
    if len(ordered) == 1:
        return f"expected {ordered[0]}"
    return "expected one of: " + ", ".join(ordered)


def _syntax_error(exc: UnexpectedInput, filename: str) -> DslError:
    """One-line error for a lark parse failure."""
    expected: Iterable[str] = ()
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            # lark gives the end marker the position of the last token; point just past it,
            # where the missing text belongs.
            line = tok.end_line or exc.line
            col = tok.end_column or exc.column
            what = "unexpected end of input"
        else:
            line, col = tok.line, tok.column
            what = f"unexpected string {tok.value}" if tok.type == "STRING" else f"unexpected '{tok.value}'"
        expected = exc.accepts or exc.expected or ()
    elif isinstance(exc, UnexpectedCharacters):
        line, col = exc.line, exc.column
        if exc.char == '"':  # the only way a quote fails to lex; what was expected does not matter
            return DslError("unterminated string (strings end with \" on the same line)",
                            location=f"{filename}:{line}:{col}")
        what = f"unexpected character {exc.char!r}"
        expected = exc.allowed or ()
    elif isinstance(exc, UnexpectedEOF):  # Earley only; kept so a parser switch stays safe
        line, col = exc.line, exc.column
        what = "unexpected end of input"
        expected = exc.expected or ()
    else:
        line, col = exc.line, exc.column
        what = "syntax error"
    message = what if not expected else f"{what}, {_expected_list(expected)}"
    return DslError(message, location=f"{filename}:{max(line, 1)}:{max(col, 1)}")
