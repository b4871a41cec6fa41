"""The ``nmc`` command line: ``nmc compile``, ``nmc inspect``, ``nmc run``, ``nmc plot``.

Conventions follow compilers people know: ``-o`` names the output, ``--target`` the chip,
``--pass-pipeline`` the passes, ``--print-ir-after-all`` dumps IR to stderr. Errors print one
line ``<where>: error: <what>`` and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Sequence

import numpy as np

from . import __version__
from .diagnostics import Diagnostics
from .errors import NmcError, RunError
from .sim.checkpoint import TrainingInterrupted

if TYPE_CHECKING:
    from .binary.format import Binary


def _add_compile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="compile a network (.nmc DSL, .nmcir IR, .onnx model, .nir graph) to a binary",
                       description="Compile a network to a binary for a target chip.")
    p.add_argument("input", nargs="?", help="source file (.nmc, .nmcir, .onnx or .nir)")
    p.add_argument("-o", "--output", help="output file (default: INPUT with .nmcb, or .nmcir with --emit ir; "
                                          "'-' writes IR text to stdout)")
    p.add_argument("--target", default="loihi", help="target name or .toml file (default: loihi)")
    p.add_argument("--pass-pipeline", help="comma-separated passes, e.g. 'verify,quantize,partition{solver=first-fit},allocate'")
    p.add_argument("--emit", choices=("binary", "ir", "nir"), default="binary",
                   help="write a binary (default), the IR after the pipeline, or a NIR graph (the network before "
                        "map-neurons: the default pipeline stops there)")
    p.add_argument("--print-ir-after-all", action="store_true", help="dump the IR to stderr after every pass")
    p.add_argument("--print-ir-before-all", action="store_true", help="dump the IR to stderr before every pass")
    p.add_argument("--print-ir-after", action="append", default=[], metavar="PASS", help="dump the IR after PASS (repeatable)")
    p.add_argument("--print-ir-before", action="append", default=[], metavar="PASS", help="dump the IR before PASS (repeatable)")
    p.add_argument("--strict", action="store_true", help="make rounding and saturation errors instead of warnings")
    p.add_argument("--calibrate", metavar="DATA.npz",
                   help="an ONNX model's calibration data for convert-ann: real inputs under the model's input name "
                        "(one row per sample), optional labels")
    p.add_argument("--dt", type=float, metavar="MS", help="a NIR graph's time step in ms (when the file gives none, "
                                                          "or to override it)")
    p.add_argument("--nir-spikes", choices=("dirac", "step"), default="dirac",
                   help="what a spike is in NIR's equations: a Dirac pulse of area 1 (default, NIR's continuous "
                        "semantics) or a value of 1 for one step (snnTorch's exports)")
    p.add_argument("--report", action="store_true",
                   help="print the passes' reports (e.g. map-neurons: parameters as realised against as asked; "
                        "partition: cores against the bound, traffic, solver status)")
    p.add_argument("--partition-time", type=float, metavar="SECONDS",
                   help="CP-SAT budget of partition{solver=cpsat} in deterministic seconds (default 10; "
                        "results are reproducible for a given budget and seed)")
    p.add_argument("--rates", metavar="RESULT.npz",
                   help="weigh partition traffic by the spike rates of a previous run (nmc run --out RESULT.npz; "
                        "output populations and spike probes)")
    p.add_argument("--list-passes", action="store_true", help="list registered passes and exit")
    p.add_argument("--list-targets", action="store_true", help="list targets and exit")
    p.set_defaults(func=cmd_compile)


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show IR text, or the resource and placement report of a binary",
                       description="Print the IR of a source file, or the per-core resource table and placement of a binary.")
    p.add_argument("file", help=".nmc, .nmcir or a compiled binary")
    p.add_argument("--target", default=None, help="with a source file: run this target's pipeline first")
    p.add_argument("--pass-pipeline", help="with a source file: run these passes first")
    p.add_argument("--dt", type=float, metavar="MS", help="a NIR graph's time step in ms")
    p.add_argument("--nir-spikes", choices=("dirac", "step"), default="dirac", help="see nmc compile --help")
    p.add_argument("--placement", action="store_true",
                   help="print the partition summary: cores against the bound, utilisation, traffic, heaviest links")
    p.add_argument("--placement-plot", metavar="FILE",
                   help="draw the cores on the mesh and the traffic between them to FILE (.svg or .png; needs matplotlib)")
    p.set_defaults(func=cmd_inspect)


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a binary on its interpreter",
                       description="Run a compiled binary on the bundled interpreter of its chip.")
    p.add_argument("binary", help="compiled binary (.nmcb)")
    p.add_argument("--steps", type=int, help="timesteps (per sample for sample data; default: length of the data)")
    p.add_argument("--input", help="DATA.npz: one array per input port, (steps, n) or (samples, steps, n); optional 'labels'")
    p.add_argument("--out", help="write RESULT.npz (output spikes, probes, counters; learned weights and accuracies)")
    p.add_argument("--epochs", type=int, default=1, help="learning schedules and e-prop: passes over the training data (default 1)")
    p.add_argument("--test", help="learning schedules: TEST.npz evaluated after each epoch with learning off")
    p.add_argument("--average-last", type=int, default=0, metavar="K",
                   help="learning schedules: also save the mean of the last K end-of-epoch weights in RESULT.npz "
                        "(average/W1 ..., for npz(\"RESULT.npz\", key = \"average\"))")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="learning schedules and e-prop: save the run in DIR at every epoch boundary; SIGINT/SIGTERM stop it "
                        "at once, keeping the last boundary (docs/schedules.md)")
    p.add_argument("--resume", metavar="DIR",
                   help="learning schedules and e-prop: continue the run saved in DIR (same binary, data and options; "
                        "--epochs is the total) and keep saving there")
    p.add_argument("--target", help="refuse the binary unless it is for this target")
    p.add_argument("--strict", action="store_true", help="fail if any state wrapped or saturated")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p.set_defaults(func=cmd_run)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line, like every other error: ``nmc run: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="draw a RESULT.npz: spike rasters, probed traces, accuracy per epoch, per-core load",
                       description="Draw what `nmc run --out RESULT.npz` wrote (needs matplotlib: pip install 'nmc[plot]').")
    p.add_argument("result", help="RESULT.npz written by nmc run --out")
    p.add_argument("-o", "--output", help="figure file; the extension names the format (default: RESULT.png)")
    p.add_argument("--max-steps", type=int, default=2000, help="draw at most this many timesteps (default 2000)")
    p.set_defaults(func=cmd_plot)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nmc", description="nmc: a neuromorphic compiler and chip interpreter.")
    parser.add_argument("--version", action="version", version=f"nmc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{compile,inspect,run,plot}", parser_class=_Parser)
    sub.required = True
    _add_compile(sub)
    _add_inspect(sub)
    _add_run(sub)
    _add_plot(sub)
    return parser


# -- compile ---------------------------------------------------------------------------------------
def cmd_compile(args: argparse.Namespace) -> int:
    from .binary.format import write_binary
    from .driver import check_source, load_network, run_passes
    from .backend import emit_binary
    from .ir.io import write_ir
    from .ir.printer import print_ir
    from .passes import DumpOptions, all_passes
    from .target import available_targets, load_target

    if args.list_passes:
        for info in all_passes():
            opts = ", ".join(f"{k}: {t.__name__}" for k, t in info.options.items())
            print(f"{info.name:<12} {info.summary}" + (f"  [options: {opts}]" if opts else ""))
        return 0
    if args.list_targets:
        for name in available_targets():
            t = load_target(name)
            parts = ", ".join(f"{k}={v}" for k, v in t.parts.items())
            print(f"{name:<12} {t.data.get('description', '')}  [parts: {parts}]")
        return 0
    if not args.input:
        raise NmcError("no input file (usage: nmc compile INPUT [-o OUTPUT] [--target T])")
    src = check_source(args.input)
    out = _compile_output(args, src)  # checked before any work: a bad path fails now, not after the compile
    target = load_target(args.target)
    diags = Diagnostics.to_stderr()
    dump = DumpOptions(after_all=args.print_ir_after_all, before_all=args.print_ir_before_all,
                       after=set(args.print_ir_after), before=set(args.print_ir_before))
    if args.pass_pipeline is not None:
        from .passes import parse_pipeline
        parse_pipeline(args.pass_pipeline)  # reject a bad pipeline before reading the input
    for name in dump.after | dump.before:
        from .passes import get_pass
        get_pass(name)
    calibration = _load_data(args.calibrate, "--calibrate") if args.calibrate else None
    settings = _partition_settings(args)
    net = load_network(src, target, diagnostics=diags, dt=args.dt, nir_spikes=args.nir_spikes)
    reports: list[tuple[str, list[str]]] = []
    pipeline = args.pass_pipeline
    if args.emit == "nir" and pipeline is None:
        # NIR holds target-neutral models: stop where the target's lowering begins.
        steps = target.default_pipeline
        pipeline = ",".join(steps[:steps.index("map-neurons")] if "map-neurons" in steps else steps)
    net = run_passes(net, target, pipeline, dump=dump, diagnostics=diags, strict=args.strict,
                     reports=reports, calibration=calibration, settings=settings)
    if args.report:
        # On stdout, unless the IR itself goes there.
        stream = sys.stderr if args.output == "-" else sys.stdout
        for name, lines in reports:
            print(f"// {name} report", *lines, sep="\n", file=stream)
        stream.flush()
    if args.emit == "nir":
        from .frontend.nir import export_nir
        assert out is not None
        export_nir(net, out, spike=args.nir_spikes)
        print(f"nmc: wrote NIR graph {out}", file=sys.stderr)
        return 0
    if args.emit == "ir":
        if out is None:
            sys.stdout.write(print_ir(net)[0])
            return 0
        write_ir(net, out)
        print(f"nmc: wrote IR {out}", file=sys.stderr)
        return 0
    assert out is not None
    binary = emit_binary(net, target)
    data = write_binary(binary, out)
    n_neurons = sum(int(p["size"]) for p in binary.meta.get("populations", []) if p.get("model") != "input")
    print(f"nmc: wrote {out} ({len(data)} bytes, target {binary.target}, {binary.meta.get('n_cores', 0)} cores, "
          f"{n_neurons} neurons)", file=sys.stderr)
    return 0


def _compile_output(args: argparse.Namespace, src: Path) -> Path | None:
    """Where ``nmc compile`` writes (None: IR text to stdout), checked against the inputs."""
    from .atomic import check_output
    from .ir.io import arrays_file_of, side_file

    if args.output == "-":
        if args.emit != "ir":
            raise NmcError(f"{'a NIR graph' if args.emit == 'nir' else 'a binary'} cannot be written to stdout; "
                           "give a file with -o")
        return None
    default = src.with_suffix({"ir": ".nmcir", "nir": ".out.nir"}.get(args.emit, ".nmcb"))
    out = default if args.output is None else args.output
    inputs = [src, arrays_file_of(src)]
    if args.output is None and out == src:
        raise NmcError(f"the default output is the input '{src}' itself; name the output with -o")
    check_output(out, inputs)
    if args.emit == "ir":
        check_output(side_file(out), inputs, what="IR's array file")
    return Path(out)


def _partition_settings(args: argparse.Namespace) -> dict[str, Any]:
    """--partition-time and --rates as pass settings (checked and read before any work)."""
    settings: dict[str, Any] = {}
    if args.partition_time is not None:
        if not np.isfinite(args.partition_time) or args.partition_time < 0:
            raise NmcError(f"--partition-time must be a non-negative number of seconds, got {args.partition_time}")
        settings["partition.time"] = float(args.partition_time)
    if args.rates is not None:
        from .partitioning import load_rates
        settings["partition.rates"] = load_rates(args.rates)
    return settings


# -- inspect ---------------------------------------------------------------------------------------
def _is_binary(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"NMCB"
    except OSError:
        return False


def cmd_inspect(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.exists():
        raise NmcError(f"file '{path}' does not exist")
    if path.is_dir():
        raise NmcError(f"'{path}' is a directory, not a file")
    if _is_binary(path) or path.suffix == ".nmcb":
        from .binary.format import read_binary
        from .report import binary_report
        from .sim import validate_binary
        binary = read_binary(path)
        validate_binary(binary)
        if args.placement or args.placement_plot:
            _placement(binary.meta, binary.target_config, binary.target, args)
            return 0
        sys.stdout.write(binary_report(binary))
        return 0
    from .driver import load_network, run_passes
    from .ir.printer import format_ir
    from .target import load_target
    wants_target = args.target or args.pass_pipeline or args.placement or args.placement_plot
    target = load_target(args.target or "loihi") if wants_target else None
    net = load_network(path, target, diagnostics=Diagnostics.to_stderr(), dt=args.dt, nir_spikes=args.nir_spikes)
    if target is not None:
        net = run_passes(net, target, args.pass_pipeline, diagnostics=Diagnostics.to_stderr())
        if args.placement or args.placement_plot:
            meta = {"network": net.name, "partition": net.attrs.get("partition"), "cores": net.attrs.get("cores", []),
                    "n_cores": net.attrs.get("cores_used", 0)}
            _placement(meta, target.data, target.name, args)
            return 0
    sys.stdout.write(format_ir(net))
    return 0


def _placement(meta: dict[str, Any], cfg: dict[str, Any], target_name: str, args: argparse.Namespace) -> None:
    """``nmc inspect --placement`` and ``--placement-plot``: the partition summary and picture."""
    from .partitioning.report import placement_text, plot_placement
    from .target import Target
    if args.placement:
        sys.stdout.write(placement_text(meta, cfg))
    if args.placement_plot:
        target = Target(target_name, cfg)
        layout = target.part("layout")(target)
        # Shade by the first column with a limit: a count (the Loihi-like part's first column is
        # compartments; the SpiNNaker-like part's first is the chip's name).
        columns = [c for c in getattr(layout, "report_columns", ()) if c[2] is not None]
        plot_placement(meta, layout.geometry(), args.placement_plot, columns[0][1] if columns else None)
        print(f"nmc: wrote {args.placement_plot}", file=sys.stderr)


# -- run -------------------------------------------------------------------------------------------
def _load_data(path: str, flag: str) -> dict[str, np.ndarray]:
    """The arrays of a data file given with ``flag`` (numeric, finite: :func:`nmc.npz.read_npz`)."""
    from .npz import read_npz
    return read_npz(path, lambda m: RunError(f"{flag}: {m}"))


def cmd_run(args: argparse.Namespace) -> int:
    from .binary.format import read_binary
    from .report import run_summary
    from .atomic import check_output
    from .sim import interpreter_for
    from .sim.runner import run_session

    if args.out is not None:  # before the run, so that a long run does not end in a lost result
        check_output(args.out, [args.binary, args.input, args.test], what="result file")
    binary = read_binary(args.binary)
    chip = interpreter_for(binary, expect_target=args.target)
    data = _load_data(args.input, "--input") if args.input else None
    if binary.meta.get("schedule"):
        return _run_schedule(args, binary, chip, data)
    eprop = bool(binary.meta.get("eprop"))   # learns trial by trial, without a synfire schedule
    if args.test or args.average_last or ((args.checkpoint or args.resume) and not eprop):
        flag = next(f for f, v in (("--test", args.test), ("--average-last", args.average_last),
                                   ("--checkpoint", args.checkpoint), ("--resume", args.resume)) if v)
        if eprop:
            raise RunError(f"{flag} is not supported for e-prop binaries yet; '{args.binary}' learns trial by trial "
                           "(give the trials as samples, --epochs to repeat them)")
        raise RunError(f"{flag} needs a binary with a learning schedule; '{args.binary}' has none")
    if args.epochs != 1 and not eprop:
        raise RunError(f"--epochs needs a binary that learns (a learning schedule or e-prop); '{args.binary}' "
                       "does not")
    epochs = eprop and (args.epochs != 1 or args.checkpoint or args.resume)
    if args.steps is not None and args.steps < 0:
        raise RunError("--steps must be non-negative")
    progress = None
    bar = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm
        total = _total_steps(data, args.steps)
        if total and epochs:
            total *= args.epochs
        if total and total >= 2000:
            bar = tqdm(total=total, unit="step", file=sys.stderr, leave=False)
            progress = bar.update
    try:
        if epochs:
            session = _run_eprop_epochs(args, chip, data, progress)
        else:
            session = run_session(chip, data, args.steps, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    sys.stdout.write(run_summary(binary, session))
    sys.stdout.flush()
    if args.out:
        _save_result(args.out, session.to_npz_dict())
    for text in session.warnings[:5]:
        print(f"nmc: warning: {text}", file=sys.stderr)
    if len(session.warnings) > 5:
        print(f"nmc: warning: ... and {len(session.warnings) - 5} more", file=sys.stderr)
    _report_overflow(session.overflow, args.strict)
    return 0


def _run_eprop_epochs(args: argparse.Namespace, chip: Any, data: dict | None, progress: Any) -> Any:
    """An e-prop binary with --epochs, --checkpoint or --resume: nmc.sim.trial_runner.run_epochs."""
    from .sim.trial_runner import run_epochs
    if args.resume:
        from .sim.checkpoint import CheckpointDir
        done = int(CheckpointDir(args.resume).read(meta_only=True)[1].get("epoch", 0))
        print(f"resuming '{args.resume}' after epoch {done} of {args.epochs}", flush=True)

    def report(epoch: int, s: Any) -> None:
        if args.epochs > 1:
            parts = [f"epoch {epoch + 1}/{args.epochs}"]
            if s.accuracy is not None:
                parts.append(f"accuracy {100 * s.accuracy:.2f}%")
            if "eprop_trials" in s.counters:
                parts.append(f"{int(s.counters['eprop_trials'])} trials learned from")
            print("  ".join(parts), flush=True)

    return run_epochs(chip, data or {}, args.epochs, args.steps, progress=progress, report=report,
                      checkpoint=args.checkpoint, resume=args.resume)


def _run_schedule(args: argparse.Namespace, binary: "Binary", chip: Any, data: dict | None) -> int:
    """A binary with a learning schedule: present samples per cycle, epoch by epoch."""
    from .sim.schedule_runner import train
    if data is None:
        raise RunError("a scheduled network needs --input DATA.npz (one array per sample port, optional labels)")
    if args.epochs < 1:
        raise RunError("--epochs must be at least 1")
    if args.average_last < 0:
        raise RunError(f"--average-last must be at least 0, got {args.average_last}")
    if args.average_last and not args.out:
        raise RunError("--average-last needs --out RESULT.npz to keep the averaged weights")
    test = _load_data(args.test, "--test") if args.test else None
    done = 0
    if args.resume:
        from .sim.checkpoint import CheckpointDir
        done = int(CheckpointDir(args.resume).read(meta_only=True)[1].get("epoch", 0))
        print(f"resuming '{args.resume}' after epoch {done} of {args.epochs}", flush=True)

    def report(epoch: int, r: Any) -> None:
        parts = [f"epoch {epoch + 1}/{args.epochs}"]
        if r.accuracy:
            parts.append(f"accuracy {100 * r.accuracy[-1]:.2f}% (membrane {100 * r.accuracy_membrane[-1]:.2f}%)")
        if r.test_accuracy:
            parts.append(f"test {100 * r.test_accuracy[-1]:.2f}% (membrane {100 * r.test_accuracy_membrane[-1]:.2f}%)")
        print("  ".join(parts), flush=True)

    bar = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm
        per = int(binary.meta["schedule"]["cycle"])
        n_train = max((len(v) for k, v in data.items() if k != "labels"), default=0)
        n_test = max((len(v) for k, v in (test or {}).items() if k != "labels"), default=0)
        total = max(args.epochs - done, 0) * (n_train + n_test + 2) * per
        if total >= 20000:
            bar = tqdm(total=total, unit="step", file=sys.stderr, leave=False)
    try:
        result = train(chip, data, epochs=args.epochs, test=test, seed=int(binary.meta.get("seed", 0)),
                       report=report, progress=bar.update if bar is not None else None,
                       average_last=args.average_last, checkpoint=args.checkpoint, resume=args.resume)
    finally:
        if bar is not None:
            bar.close()
    c = result.counters
    print(f"nmc run: target {binary.target}, network '{binary.meta.get('network', '?')}', schedule of "
          f"{binary.meta['schedule']['cycle']} ticks per sample, {args.epochs} epoch(s)")
    print(f"  timesteps {int(c.get('timesteps', 0))}  spikes {int(c.get('spikes', 0))}  synaptic ops "
          f"{int(c.get('synaptic_ops', 0))}  synaptic updates {int(c.get('synaptic_updates', 0))}")
    from .report import cost_model_note
    print(f"  energy {c.get('energy_j', 0.0):.3g} J  chip time {c.get('time_s', 0.0):.3g} s  ({cost_model_note(binary)})",
          flush=True)
    if result.averaged:
        keys = [f"average/{k}" for k in result.averaged_canonical] or ["average/weights/..."]
        print(f"  weights averaged over the last {result.average_epochs} epoch(s) in {args.out}: {', '.join(keys)}")
    if args.out:
        _save_result(args.out, result.to_npz_dict())
    _report_overflow(result.overflow, args.strict)
    return 0


def _save_result(path: str, arrays: dict[str, Any]) -> None:
    """RESULT.npz, written atomically to exactly ``path`` (no ``.npz`` is added)."""
    from .atomic import save_npz
    save_npz(path, arrays)
    print(f"nmc: wrote {path}", file=sys.stderr)


# -- plot ------------------------------------------------------------------------------------------
def cmd_plot(args: argparse.Namespace) -> int:
    from .plot import plot_file

    if args.max_steps < 1:
        raise RunError(f"--max-steps must be at least 1, got {args.max_steps}")
    out, drawn = plot_file(args.result, args.output, args.max_steps)
    print(f"nmc: wrote {out} ({', '.join(drawn)})", file=sys.stderr)
    return 0


def _report_overflow(overflow: dict[str, int], strict: bool) -> None:
    """State that wrapped or clipped changed the results: a warning, or an error with --strict.
    Weight saturation is part of a learning rule's arithmetic, so it is only remarked on."""
    lost = {k: v for k, v in overflow.items() if v and k != "weight_saturation"}
    if lost:
        msg = ", ".join(f"{k} {v}" for k, v in lost.items())
        if strict:
            raise RunError(f"state overflowed during the run ({msg}); results differ from unbounded arithmetic")
        print(f"nmc: warning: state overflowed during the run ({msg}); see docs/interpreter.md", file=sys.stderr)
    if overflow.get("weight_saturation"):
        print(f"nmc: remark: {overflow['weight_saturation']} weight updates were clipped at the weight "
              "range (saturating weights are part of the learning rule's arithmetic)", file=sys.stderr)


def _total_steps(data: dict[str, np.ndarray] | None, steps: int | None) -> int | None:
    arrays = [np.asarray(v) for k, v in (data or {}).items() if k != "labels"]
    if arrays and arrays[0].ndim == 3:
        return arrays[0].shape[0] * (steps or arrays[0].shape[1])
    if steps is not None:
        return steps
    return arrays[0].shape[0] if arrays else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .memtune import keep_freed_memory
    keep_freed_memory()  # large arrays reuse freed memory instead of faulting in fresh pages
    try:
        return int(args.func(args) or 0)
    except TrainingInterrupted as exc:
        print(f"nmc: {exc.message}", file=sys.stderr)
        return 128 + exc.signum
    except NmcError as exc:
        text = str(exc)
        print(text if exc.location else f"nmc: {text}", file=sys.stderr)
        return 1
    except MemoryError:
        # Limits are checked before the work that grows with them; this is what no check foresaw.
        print("nmc: error: out of memory: the network, data or run is too large for this machine", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nmc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
