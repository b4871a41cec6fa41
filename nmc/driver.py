"""The compiler driver: source file -> IR -> pass pipeline -> binary. Used by the CLI and by
Python callers (tests, benchmarks, examples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .backend import emit_binary
from .binary.format import Binary
from .diagnostics import Diagnostics
from .errors import NmcError, ResourceError
from .ir.io import read_ir
from .ir.network import Network
from .ir.verify import verify_network
from .passes import DumpOptions, PassContext, parse_pipeline, run_pipeline
from .target import Target, load_target

SOURCE_KINDS = {".nmc": "DSL", ".nmcir": "IR text", ".onnx": "ONNX model", ".nir": "NIR graph"}


def check_source(path: str | Path) -> Path:
    """A source file that exists, is a file and is of a kind nmc reads; cheap, so that commands
    can check it (and their outputs) before any work."""
    path = Path(path)
    if not path.exists():
        raise NmcError(f"input file '{path}' does not exist")
    if path.is_dir():
        raise NmcError(f"input '{path}' is a directory, not a source file")
    if path.suffix not in SOURCE_KINDS:
        kinds = ", ".join(f"{k} ({v})" for k, v in SOURCE_KINDS.items())
        raise NmcError(f"unknown input kind '{path.suffix or path.name}' (expected {kinds})", location=str(path))
    return path


def load_network(path: str | Path, target: Target | None = None, *, diagnostics: Diagnostics | None = None,
                 dt: float | None = None, nir_spikes: str = "dirac") -> Network:
    """Read a source file: ``.nmc`` (DSL), ``.nmcir`` (IR text), ``.onnx`` (a trained network,
    converted by the ``convert-ann`` pass) or ``.nir`` (a NIR graph; ``dt`` in ms sets its
    discretisation when the file gives none, ``nir_spikes`` what a spike is). Front ends report
    what they removed or assumed (an ONNX model's Softmax, NIR's discretisation) as remarks to
    ``diagnostics``. With ``target``, population sizes are held to what its chip can hold as soon
    as they are read, before any array that grows with them is made
    (:class:`nmc.lowering.common.SizeLimit`). A network without neurons is refused."""
    path = check_source(path)
    if path.suffix == ".nmc":
        from .frontend.dsl import load_dsl
        net = load_dsl(path, size_limit=target.part("layout")(target).size_limit() if target is not None else None)
    else:
        if path.suffix == ".nmcir":
            net = read_ir(path)
        elif path.suffix == ".onnx":
            from .frontend.onnx import load_onnx
            net = load_onnx(path, diagnostics)
        else:
            from .frontend.nir import load_nir
            net = load_nir(path, dt=dt, diagnostics=diagnostics, spike=nir_spikes)
        if diagnostics is not None:
            diagnostics.flush()
        if target is not None:
            try:
                check_sizes(net, target)
            except ResourceError as exc:
                raise ResourceError(f"{exc.location}: {exc.message}", location=str(path)) from None
    check_not_empty(net, str(path))
    return net


def check_sizes(net: Network, target: Target) -> None:
    """Hold every population's size to the target's machine (ResourceError at the first too big)."""
    limit = target.part("layout")(target).size_limit()
    for pop in net.populations:
        limit.admit(pop.name, pop.size, pop.is_input)


def check_not_empty(net: Network, where: str | None = None) -> None:
    """Refuse a network without neurons: it would compile to a binary that computes nothing."""
    if not any(not pop.is_input for pop in net.populations):
        what = "defines no population" if not net.populations else "has only input populations, no neurons"
        raise NmcError(f"the program {what}; there is nothing to compile", location=where)


def run_passes(net: Network, target: Target, pipeline: str | None = None, *, dump: DumpOptions | None = None,
               diagnostics: Diagnostics | None = None, strict: bool = False,
               reports: list[tuple[str, list[str]]] | None = None,
               calibration: dict[str, np.ndarray] | None = None,
               settings: dict[str, Any] | None = None) -> Network:
    """Apply ``pipeline`` (default: the target's) to ``net``. The passes' reports (pass name, lines)
    are appended to ``reports`` when given; ``calibration`` holds convert-ann's calibration arrays;
    ``settings`` are what the command line tells passes (:attr:`nmc.passes.registry.PassContext.settings`)."""
    steps = parse_pipeline(pipeline if pipeline is not None else ",".join(target.default_pipeline))
    check_not_empty(net)
    check_sizes(net, target)  # a network built in Python has not met the limit yet
    if not steps or steps[0].name != "verify":
        verify_network(net)  # passes assume a well-formed network, whatever pipeline was asked for
    ctx = PassContext(target=target, diagnostics=diagnostics or Diagnostics(), strict=strict,
                      calibration=calibration, settings=dict(settings or {}))
    if reports is not None:
        ctx.reports = reports
    return run_pipeline(net, steps, ctx, dump)


def compile_network(net: Network, target: str | Target = "loihi", pipeline: str | None = None, *,
                    dump: DumpOptions | None = None, diagnostics: Diagnostics | None = None,
                    strict: bool = False, calibration: dict[str, np.ndarray] | None = None,
                    reports: list[tuple[str, list[str]]] | None = None,
                    settings: dict[str, Any] | None = None) -> Binary:
    """Run the pipeline and the backend; returns the binary."""
    tgt = target if isinstance(target, Target) else load_target(target)
    net = run_passes(net, tgt, pipeline, dump=dump, diagnostics=diagnostics, strict=strict,
                     calibration=calibration, reports=reports, settings=settings)
    return emit_binary(net, tgt)


def compile_file(path: str | Path, target: str | Target = "loihi", pipeline: str | None = None, **kw) -> Binary:
    return compile_network(load_network(path), target, pipeline, **kw)
