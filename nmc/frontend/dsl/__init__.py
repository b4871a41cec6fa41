"""The nmc network description language: source text -> :class:`nmc.ir.Network`.

Language reference: docs/dsl.md. Grammar: grammar/nmc.lark.

Three steps turn text into a network:

1. lark parses the text (LALR). A syntax error becomes one :class:`DslError` naming the offending
   token and the tokens that would have been accepted (:mod:`.syntax`).
2. A small evaluator turns each expression into a value: a number, a string, a bare name such as
   ``mixed``, or a call such as ``uniform(0, 1)``. Calls stay unevaluated until the statement that
   uses them knows the array shape and random stream they need (:mod:`.values`).
3. A builder walks the statements in source order, resolves names, checks arguments, materialises
   arrays and adds populations, projections and probes to a :class:`Network`. Finally the IR
   verifier runs; its first complaint is reported at the statement that created the object
   (:mod:`.builder`, with :mod:`.scope`, :mod:`.initialisers`, :mod:`.learning` and
   :mod:`.backprop`).

Every error is a :class:`DslError` located ``file:line:col`` at the offending token.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import DslError
from ...ir.network import Network
from .builder import Builder
from .initialisers import MAX_ARRAY_ELEMENTS  # public in the single-module front end; kept importable
from .syntax import lark_parser as _lark  # the name tests (and older callers) know the parser by
from .syntax import parse_tree

if TYPE_CHECKING:
    from ...lowering.common import SizeLimit

__all__ = ["parse_dsl", "load_dsl"]


def parse_dsl(text: str, filename: str = "<string>", base_dir: Path | None = None,
              size_limit: SizeLimit | None = None) -> Network:
    """Build a :class:`Network` from DSL source ``text``.

    ``filename`` is used in error locations (``file:line:col``) and, unless it looks like a
    pseudo-name such as ``<string>``, its stem is the default network name. ``npz("...")`` paths
    resolve against ``base_dir``; by default the directory of ``filename`` (the current directory
    for pseudo-names).

    ``size_limit`` (a target's, :class:`nmc.lowering.common.SizeLimit`) refuses a population too
    large for the machine at its statement, before any array of its size is made.

    Raises :class:`nmc.errors.DslError` for any syntax or semantic error.
    """
    pseudo = filename.startswith("<")
    if base_dir is None:
        base_dir = Path.cwd() if pseudo else Path(filename).parent
    default_name = "network" if pseudo else Path(filename).stem
    tree = parse_tree(text, filename)
    return Builder(filename=filename, base_dir=Path(base_dir), default_name=default_name,
                   size_limit=size_limit).build(tree)


def load_dsl(path: str | Path, size_limit: SizeLimit | None = None) -> Network:
    """Read and build the DSL file ``path``; npz paths in it are relative to its directory."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DslError(f"cannot read DSL file: {exc.strerror or exc}", location=str(path)) from None
    except UnicodeDecodeError:
        raise DslError("DSL file is not UTF-8 text", location=str(path)) from None
    return parse_dsl(text, filename=str(path), base_dir=path.parent, size_limit=size_limit)
