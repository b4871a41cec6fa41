"""The compiler driver: source file -> IR -> pass pipeline -> binary. Used by the CLI and by
Python callers (tests, benchmarks, examples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .backend import emit_binary
from .binary.format import Binary
from .diagnostics import Diagnostics
from .errors import NmcError
from .ir.io import read_ir
from .ir.network import Network
from .passes import DumpOptions, PassContext, parse_pipeline, run_pipeline
from .target import Target, load_target

SOURCE_KINDS = {".nmc": "DSL", ".nmcir": "IR text"}


def load_network(path: str | Path) -> Network:
    """Read a source file: ``.nmc`` (DSL) or ``.nmcir`` (IR text)."""
    path = Path(path)
    if not path.exists():
        raise NmcError(f"input file '{path}' does not exist")
    if path.suffix == ".nmc":
        from .frontend.dsl import load_dsl
        return load_dsl(path)
    if path.suffix == ".nmcir":
        return read_ir(path)
    kinds = ", ".join(f"{k} ({v})" for k, v in SOURCE_KINDS.items())
    raise NmcError(f"unknown input kind '{path.suffix or path.name}' (expected {kinds})", location=str(path))


def run_passes(net: Network, target: Target, pipeline: str | None = None, *, dump: DumpOptions | None = None,
               diagnostics: Diagnostics | None = None, strict: bool = False,
               reports: list[tuple[str, list[str]]] | None = None,
               settings: dict[str, Any] | None = None) -> Network:
    """Apply ``pipeline`` (default: the target's) to ``net``. The passes' reports (pass name, lines)
    are appended to ``reports`` when given; ``settings`` are what the command line tells passes
    (:attr:`nmc.passes.registry.PassContext.settings`)."""
    steps = parse_pipeline(pipeline if pipeline is not None else ",".join(target.default_pipeline))
    ctx = PassContext(target=target, diagnostics=diagnostics or Diagnostics(), strict=strict,
                      settings=dict(settings or {}))
    if reports is not None:
        ctx.reports = reports
    return run_pipeline(net, steps, ctx, dump)


def compile_network(net: Network, target: str | Target = "loihi", pipeline: str | None = None, *,
                    dump: DumpOptions | None = None, diagnostics: Diagnostics | None = None,
                    strict: bool = False) -> Binary:
    """Run the pipeline and the backend; returns the binary."""
    tgt = target if isinstance(target, Target) else load_target(target)
    net = run_passes(net, tgt, pipeline, dump=dump, diagnostics=diagnostics, strict=strict)
    return emit_binary(net, tgt)


def compile_file(path: str | Path, target: str | Target = "loihi", pipeline: str | None = None, **kw) -> Binary:
    return compile_network(load_network(path), target, pipeline, **kw)
