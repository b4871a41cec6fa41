"""The compiler driver: source file -> IR -> pass pipeline -> binary. Used by the CLI and by
Python callers (tests, benchmarks, examples)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backend import emit_binary
from .binary.format import Binary
from .diagnostics import Diagnostics
from .errors import NmcError
from .ir.io import read_ir
from .ir.network import Network
from .passes import DumpOptions, PassContext, parse_pipeline, run_pipeline
from .target import Target, load_target

SOURCE_KINDS = {".nmc": "DSL", ".nmcir": "IR text", ".onnx": "ONNX model", ".nir": "NIR graph"}


def load_network(path: str | Path, *, diagnostics: Diagnostics | None = None, dt: float | None = None,
                 nir_spikes: str = "dirac") -> Network:
    """Read a source file: ``.nmc`` (DSL), ``.nmcir`` (IR text), ``.onnx`` (a trained network,
    converted by the ``convert-ann`` pass) or ``.nir`` (a NIR graph; ``dt`` in ms sets its
    discretisation when the file gives none, ``nir_spikes`` what a spike is). Front ends report
    what they removed or assumed (an ONNX model's Softmax, NIR's discretisation) as remarks to
    ``diagnostics``."""
    path = Path(path)
    if not path.exists():
        raise NmcError(f"input file '{path}' does not exist")
    if path.suffix == ".nmc":
        from .frontend.dsl import load_dsl
        return load_dsl(path)
    if path.suffix == ".nmcir":
        return read_ir(path)
    if path.suffix == ".onnx":
        from .frontend.onnx import load_onnx
        net = load_onnx(path, diagnostics)
        if diagnostics is not None:
            diagnostics.flush()
        return net
    if path.suffix == ".nir":
        from .frontend.nir import load_nir
        net = load_nir(path, dt=dt, diagnostics=diagnostics, spike=nir_spikes)
        if diagnostics is not None:
            diagnostics.flush()
        return net
    kinds = ", ".join(f"{k} ({v})" for k, v in SOURCE_KINDS.items())
    raise NmcError(f"unknown input kind '{path.suffix or path.name}' (expected {kinds})", location=str(path))


def run_passes(net: Network, target: Target, pipeline: str | None = None, *, dump: DumpOptions | None = None,
               diagnostics: Diagnostics | None = None, strict: bool = False,
               reports: list[tuple[str, list[str]]] | None = None,
               calibration: dict[str, np.ndarray] | None = None) -> Network:
    """Apply ``pipeline`` (default: the target's) to ``net``. The passes' reports (pass name, lines)
    are appended to ``reports`` when given; ``calibration`` holds convert-ann's calibration arrays."""
    steps = parse_pipeline(pipeline if pipeline is not None else ",".join(target.default_pipeline))
    ctx = PassContext(target=target, diagnostics=diagnostics or Diagnostics(), strict=strict,
                      calibration=calibration)
    if reports is not None:
        ctx.reports = reports
    return run_pipeline(net, steps, ctx, dump)


def compile_network(net: Network, target: str | Target = "loihi", pipeline: str | None = None, *,
                    dump: DumpOptions | None = None, diagnostics: Diagnostics | None = None,
                    strict: bool = False, calibration: dict[str, np.ndarray] | None = None,
                    reports: list[tuple[str, list[str]]] | None = None) -> Binary:
    """Run the pipeline and the backend; returns the binary."""
    tgt = target if isinstance(target, Target) else load_target(target)
    net = run_passes(net, tgt, pipeline, dump=dump, diagnostics=diagnostics, strict=strict,
                     calibration=calibration, reports=reports)
    return emit_binary(net, tgt)


def compile_file(path: str | Path, target: str | Target = "loihi", pipeline: str | None = None, **kw) -> Binary:
    return compile_network(load_network(path), target, pipeline, **kw)
