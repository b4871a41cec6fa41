"""A corpus of malformed and hostile inputs for every nmc command and file kind.

Each :class:`Case` is one ``python -m nmc ...`` invocation, run in a directory of its own that
holds the files the case writes first. ``tests/test_hostile_inputs.py`` runs them all, as
processes, and holds each to the same promise: exit status non-zero, exactly one line on stderr
naming the problem (``expect`` is part of it), no traceback, no hang, and nothing written.

The good inputs the cases start from (a small network, its binary and IR, a scheduled XOR
binary, data files) live in a shared workspace built once by :func:`build_workspace`; hostile
binaries are those good binaries altered and re-sealed with a valid checksum, so only the
consistency checks behind the checksum can refuse them.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from conftest import REPO, SMALL
from nmc.binary import Binary, encode_binary, read_binary
from nmc.driver import compile_file
from nmc.frontend.dsl import load_dsl
from nmc.ir.io import write_ir
from test_dsl_eprop import GOOD as EPROP_GOOD

XOR_SEED = re.compile(r"^seed \d+", re.M)
READ_ONLY_PLACE = "/sys/nmc-hostile-corpus.out"  # EACCES even for root: sysfs creates no files


@dataclass(frozen=True)
class Case:
    """One invocation: ``nmc ARGV`` run in a fresh directory holding ``files``."""

    name: str
    argv: tuple[str, ...]
    expect: str  # part of the one line on stderr
    files: dict[str, bytes] = field(default_factory=dict)
    max_seconds: float = 30.0


def _b(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


def npz_bytes(allow_pickle: bool = False, **arrays: Any) -> bytes:
    """An .npz archive in memory."""
    buf = io.BytesIO()
    if allow_pickle:
        np.savez(buf, **{k: np.asarray(v, dtype=object) for k, v in arrays.items()})
    else:
        np.savez(buf, **arrays)
    return buf.getvalue()


def npy_bytes(a: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(a))
    return buf.getvalue()


# -- re-sealing binaries -------------------------------------------------------------------------------
def reseal(b: Binary, change: Callable[[dict, dict, dict], None]) -> bytes:
    """``b`` with ``change(meta, target_config, sections)`` applied, encoded with a valid checksum."""
    meta = json.loads(json.dumps(b.meta))
    cfg = json.loads(json.dumps(b.target_config))
    sections = {k: np.array(v) for k, v in b.sections.items()}
    change(meta, cfg, sections)
    return encode_binary(Binary(b.target, meta, sections, cfg))


def seal(manifest_bytes: bytes, blobs: bytes) -> bytes:
    """A container around raw manifest bytes and section bytes, with a valid checksum."""
    pad = (-(52 + len(manifest_bytes))) % 8
    payload = manifest_bytes + b"\0" * pad + blobs
    digest = hashlib.sha256(struct.pack("<I", len(manifest_bytes)) + payload).digest()
    return struct.pack("<4sHHQ32sI", b"NMCB", 1, 0, 52 + len(payload), digest, len(manifest_bytes)) + payload


def reseal_manifest(b: Binary, change: Callable[[dict], Any]) -> bytes:
    """``b`` with its manifest (JSON, as stored) changed in place by ``change``, re-sealed over the
    same section bytes."""
    data = encode_binary(b)
    mlen = struct.unpack_from("<I", data, 48)[0]
    manifest = json.loads(data[52:52 + mlen])
    blobs = data[52 + mlen + (-(52 + mlen)) % 8:]
    change(manifest)
    return seal(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode(), blobs)


def set_section(name: str, values: Any, dtype: Any = None) -> Callable[[dict, dict, dict], None]:
    def change(meta: dict, cfg: dict, sections: dict) -> None:
        sections[name] = np.asarray(values, dtype=dtype if dtype is not None else sections[name].dtype)
    return change


def edit_section(name: str, index: int, value: int) -> Callable[[dict, dict, dict], None]:
    def change(meta: dict, cfg: dict, sections: dict) -> None:
        a = sections[name].astype(np.int64)
        a[index] = value
        sections[name] = a
    return change


def drop_section(name: str) -> Callable[[dict, dict, dict], None]:
    return lambda meta, cfg, sections: sections.pop(name)


def shorten(name: str) -> Callable[[dict, dict, dict], None]:
    """Section ``name`` without its last entry."""
    def change(meta: dict, cfg: dict, sections: dict) -> None:
        sections[name] = sections[name][:-1]
    return change


def edit_bits(name: str, index: int, edit: Callable[[int], int]) -> Callable[[dict, dict, dict], None]:
    """Entry ``index`` of section ``name`` replaced by ``edit`` of it."""
    def change(meta: dict, cfg: dict, sections: dict) -> None:
        a = sections[name].astype(np.int64)
        a[index] = edit(int(a[index]))
        sections[name] = a.astype(sections[name].dtype)
    return change


def changes(*steps: Callable[[dict, dict, dict], None]) -> Callable[[dict, dict, dict], None]:
    def change(meta: dict, cfg: dict, sections: dict) -> None:
        for step in steps:
            step(meta, cfg, sections)
    return change


def set_path(root: str, path: str, value: Any) -> Callable[[dict, dict, dict], None]:
    """Set ``meta`` or ``cfg`` entry at a dotted path (list indices as numbers)."""
    def change(meta: dict, cfg: dict, sections: dict) -> None:
        node: Any = meta if root == "meta" else cfg
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return change


_DELETE = object()


# -- the workspace -----------------------------------------------------------------------------------
def build_workspace(ws: Path) -> None:
    """The good inputs the cases start from."""
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "small.nmc").write_text(SMALL)
    (ws / "small.nmcb").write_bytes(encode_binary(compile_file(ws / "small.nmc")))
    write_ir(load_dsl(ws / "small.nmc"), ws / "small.nmcir")  # weights go to small.nmcir.npz
    (ws / "xor.nmcb").write_bytes(encode_binary(compile_file(REPO / "examples" / "xor_backprop.nmc")))
    shutil.copy(REPO / "examples" / "xor.npz", ws / "xor.npz")
    rng = np.random.default_rng(0)
    np.savez(ws / "stream.npz", x=(rng.random((20, 20)) < 0.3).astype(np.uint8))
    np.savez(ws / "samples.npz", x=(rng.random((3, 10, 20)) < 0.3).astype(np.uint8), labels=np.array([0, 1, 4]))
    (ws / "a_dir.nmcb").mkdir(exist_ok=True)
    (ws / "a_dir.npz").mkdir(exist_ok=True)
    # A training checkpoint after 2 epochs of XOR, one of another XOR binary, and a run's result.
    from nmc.binary import decode_binary
    from nmc.sim import interpreter_for
    from nmc.sim.runner import run_session
    from nmc.sim.schedule_runner import train
    xor_data = dict(np.load(ws / "xor.npz"))
    xor_chip = interpreter_for(decode_binary((ws / "xor.nmcb").read_bytes()))
    train(xor_chip, xor_data, epochs=2, checkpoint=ws / "ck", seed=int(xor_chip.meta.get("seed", 0)))  # as nmc run
    (ws / "xor_seed7.nmc").write_text(XOR_SEED.sub("seed 7", (REPO / "examples" / "xor_backprop.nmc").read_text(), 1))
    (ws / "xor_seed7.nmcb").write_bytes(encode_binary(compile_file(ws / "xor_seed7.nmc")))
    session = run_session(interpreter_for(read_binary(ws / "small.nmcb")), {"x": np.load(ws / "stream.npz")["x"]}, None)
    np.savez(ws / "result.npz", **session.to_npz_dict())
    build_spinnaker_binaries(ws)


def build_spinnaker_binaries(ws: Path) -> None:
    """SpiNNaker-like binaries: the physical feed-forward example (3 cores, IF_curr_exp) and a
    small e-prop network (an ALIF core and a readout core)."""
    ff = compile_file(REPO / "examples" / "physical" / "ff_lif.nmc", "spinnaker")
    (ws / "ff_spinnaker.nmcb").write_bytes(encode_binary(ff))
    (ws / "eprop.nmc").write_text(EPROP_GOOD)
    (ws / "eprop.nmcb").write_bytes(encode_binary(compile_file(ws / "eprop.nmc", "spinnaker")))


# -- command line ----------------------------------------------------------------------------------------
def _usage(ws: Path) -> list[Case]:
    small = str(ws / "small.nmcb")
    return [
        Case("usage: no command", (), "required"),
        Case("usage: unknown command", ("frobnicate",), "invalid choice: 'frobnicate'"),
        Case("usage: --steps not a number", ("run", small, "--steps", "ten"), "invalid int value: 'ten'"),
        Case("usage: --epochs not a number", ("run", small, "--epochs", "1.5"), "invalid int value: '1.5'"),
        Case("usage: unknown --emit", ("compile", str(ws / "small.nmc"), "--emit", "asm"), "invalid choice: 'asm'"),
        Case("usage: unknown option", ("compile", str(ws / "small.nmc"), "--optimise"), "unrecognized arguments"),
        Case("usage: inspect without a file", ("inspect",), "required: file"),
        Case("usage: compile without input", ("compile",), "no input file"),
    ]


# -- DSL sources -----------------------------------------------------------------------------------------
def dsl(name: str, source: str | bytes, expect: str, files: dict[str, bytes] | None = None,
        args: tuple[str, ...] = (), max_seconds: float = 30.0) -> Case:
    return Case(f"dsl: {name}", ("compile", "prog.nmc", "-o", "prog.nmcb", *args), expect,
                {"prog.nmc": _b(source), **(files or {})}, max_seconds)


BASE = "input x[4]\npopulation h[3] : cuba_lif\n"


def _dsl(ws: Path) -> list[Case]:
    terms = " + ".join(["1"] * 499) + " + 0.5"
    return [
        dsl("empty file", "", "defines no population; there is nothing to compile"),
        dsl("only a network name", "network empty\nseed 3\n", "defines no population"),
        dsl("only inputs", "input x[3]\n", "has only input populations, no neurons"),
        dsl("not UTF-8", b"population h[3] : cuba_lif # \xff\xfe\n", "not UTF-8"),
        dsl("binary garbage", bytes(range(256)) * 4, "error: "),
        dsl("unfinished statement", "population h[3] : cuba_lif(", "unexpected end of input"),
        dsl("unterminated string", 'network "abc\n', "unterminated string"),
        dsl("stray character", "population h[3] @ cuba_lif\n", "unexpected character '@'"),
        dsl("size 10.5", "population h[10.5] : cuba_lif\n", "population size must be a positive integer, got 10.5"),
        dsl("size -3", "population h[-3] : cuba_lif\n", "must be a positive integer, got -3"),
        dsl("population of 10^12", "population h[1000000000000] : cuba_lif\n",
            "neurons (1000000000000) exceeded max (chip.cores x chip.chips x core.max_compartments = 131072)",
            max_seconds=10),
        dsl("population of 10^12 by product", "population h[1000000 * 1000000] : cuba_lif(bias = uniform(0, 1))\n",
            "exceeded max (chip.cores x chip.chips x core.max_compartments", max_seconds=10),
        dsl("populations together too many", "population a[100000] : cuba_lif\npopulation b[100000] : cuba_lif\n",
            "neurons of the network up to 'b' (200000) exceeded max", max_seconds=10),
        dsl("input of 10^12", "input x[1000000000000]\npopulation h[2] : cuba_lif\n"
            "connect x -> h : one_to_all(weights = 1)\n",
            "input units of one population (1000000000000) exceeded max", max_seconds=10),
        dsl("integer of 5000 digits", "population h[" + "9" * 5000 + "] : cuba_lif\n", "integer of 5000 digits"),
        dsl("integer beyond 64 bits", "population h[" + " * ".join(["1000000"] * 4) + "] : cuba_lif\n",
            "integer out of range (beyond 64 bits)"),
        dsl("float overflow", "population h[3] : cuba_lif(bias = 1e308 * 10)\n", "number out of range"),
        dsl("division by zero", "population h[6 / 0] : cuba_lif\n", "division by zero"),
        dsl("500 terms summing to a fraction", f"population h[{terms}] : cuba_lif\n",
            "must be a positive integer, got 499.5"),
        dsl("5001 signs", "population h[" + "-" * 5001 + "3] : cuba_lif\n", "must be a positive integer, got -3"),
        dsl("5000 nested calls", "population h[" + "uniform(" * 5000 + "1" + ")" * 5000 + "] : cuba_lif\n",
            "must be a positive integer, got 'uniform(...)'"),
        dsl("unknown model", "population h[3] : cuba_lf\n", "unknown neuron model or neuron 'cuba_lf'"),
        dsl("NaN bias from npz", "population h[3] : cuba_lif(bias = npz(\"b.npz\"))\n", "NaN or infinite",
            {"b.npz": npz_bytes(bias=np.array([1.0, np.nan, 2.0]))}),
        dsl("infinite threshold from npz", "population h[3] : cuba_lif(threshold = npz(\"t.npz\"))\n",
            "NaN or infinite", {"t.npz": npz_bytes(threshold=np.array([np.inf]))}),
        dsl("npz missing", BASE + "connect x -> h : dense(weights = npz(\"w.npz\"))\n", "cannot read npz file"),
        dsl("npz is text", BASE + "connect x -> h : dense(weights = npz(\"w.npz\"))\n", "is not an .npz archive",
            {"w.npz": b"1 2 3\n"}),
        dsl("npz is a .npy", BASE + "connect x -> h : dense(weights = npz(\"w.npz\"))\n", "single .npy array",
            {"w.npz": npy_bytes(np.ones((4, 3)))}),
        dsl("npz truncated", BASE + "connect x -> h : dense(weights = npz(\"w.npz\"))\n", "damaged .npz archive",
            {"w.npz": npz_bytes(weights=np.ones((4, 3)))[:60]}),
        dsl("npz of Python objects", BASE + "connect x -> h : dense(weights = npz(\"w.npz\"))\n",
            "holds Python objects", {"w.npz": npz_bytes(allow_pickle=True, weights=[[1, 2, 3]] * 4)}),
        dsl("npz is a directory", BASE + "connect x -> h : dense(weights = npz(\"d.npz\"))\n",
            "is a directory", {"d.npz/keep": b""}),
        dsl("sparse file index out of range", BASE + "connect x -> h : sparse(file = npz(\"s.npz\"))\n",
            "sparse indices out of range",
            {"s.npz": npz_bytes(pre=np.array([0, 9]), post=np.array([0, 1]), weights=np.ones(2))}),
        dsl("sparse file float indices", BASE + "connect x -> h : sparse(file = npz(\"s.npz\"))\n",
            "must hold integers", {"s.npz": npz_bytes(pre=np.array([0.5]), post=np.array([0]), weights=np.ones(1))}),
        dsl("delay beyond the chip", BASE + "connect x -> h : dense(weights = 1, delay = 70)\n",
            "delay (70) exceeded max (synapse.max_delay = 62)"),
        dsl("fractional delay", BASE + "connect x -> h : dense(weights = 1, delay = 1.5)\n",
            "delay must be a non-negative integer, got 1.5"),
        dsl("weight exponent beyond the chip", BASE + "connect x -> h : dense(weights = 1, exponent = 20)\n",
            "exponent"),
        dsl("connect into an input", BASE + "connect h -> x : dense(weights = 1)\n", "cannot connect into input"),
        dsl("zero dt", BASE + "dt = 0 ms\n", "dt must be a positive time"),
        dsl("gate without a schedule", BASE + "gate h in 1 at 0.5\n", "schedule"),
        dsl("gate chain of 10^8 phases", "input x[2]\npopulation h[2] : graded\nschedule cycle = 100000000\n"
            "gate h in 0 at -1\ninject x at 0\nconnect x -> h : dense(weights = 1)\n",
            "schedule cycle = 100000000 needs a gate neuron per phase", max_seconds=10),
        dsl("learning constant out of range", BASE + 'rule r = learning(dw = "999999*x0*y0")\n'
            "connect x -> h : dense(weights = 1, rule = r)\n", "the constant 999999*2^0 is out of range"),
        dsl("learning number of 30 digits", BASE + f'rule r = learning(dw = "{"9" * 30}*x0*y0")\n'
            "connect x -> h : dense(weights = 1, rule = r)\n", "is out of range"),
        dsl("array too large for the front end", "input x[100000]\npopulation h[100000] : cuba_lif\n"
            "connect x -> h : dense(weights = 1)\n", "is too large", max_seconds=10),
    ]


# -- IR text -----------------------------------------------------------------------------------------------
def ir(name: str, text: str | bytes, expect: str, files: dict[str, bytes] | None = None,
       args: tuple[str, ...] = ()) -> Case:
    return Case(f"ir: {name}", ("compile", "prog.nmcir", "-o", "prog.nmcb", *args), expect,
                {"prog.nmcir": _b(text), **(files or {})})


HEAD = '// nmc-ir v1\nnetwork "n" {}\n'
POP = HEAD + 'population "x" {model = "input", role = "input", size = 2}\n'


def _proj(attrs: str) -> str:
    return POP + f'population "h" {{model = "cuba_lif", size = 2}}\nprojection "p" : "x" -> "h" {{{attrs}}}\n'


def _ir(ws: Path) -> list[Case]:
    return [
        ir("empty file", "", "empty IR: no 'network' declaration"),
        ir("no population", HEAD, "defines no population"),
        ir("not UTF-8", b'// nmc-ir v1\nnetwork "\xff" {}\n', "not UTF-8"),
        ir("size 10.5", HEAD + 'population "h" {model = "cuba_lif", size = 10.5}\n',
           "population 'h': size must be an integer, got 10.5"),
        ir("size true", HEAD + 'population "h" {model = "cuba_lif", size = true}\n', "size must be an integer, got True"),
        ir("size -2", HEAD + 'population "h" {model = "cuba_lif", size = -2}\n', "size must be a positive integer"),
        ir("size 10^12", HEAD + 'population "h" {model = "cuba_lif", size = 1000000000000}\n',
           "neurons (1000000000000) exceeded max"),
        ir("size of 30 digits", HEAD + f'population "h" {{model = "cuba_lif", size = {"9" * 30}}}\n',
           "is out of range (64 bits)"),
        ir("params a list", HEAD + 'population "h" {model = "cuba_lif", params = [1, 2], size = 2}\n',
           "params must be a dictionary"),
        ir("NaN parameter", HEAD + 'population "h" {model = "cuba_lif", params = {bias = nan}, size = 2}\n',
           "number nan is not finite"),
        ir("infinite parameter", HEAD + 'population "h" {model = "cuba_lif", params = {bias = -inf}, size = 2}\n',
           "number -inf is not finite"),
        ir("ragged per-neuron parameter", HEAD + 'population "h" {model = "cuba_lif", params = {bias = [[1], [1, 2]]}, '
           "size = 2}\n", "parameter 'bias' must be a number or a list of numbers"),
        ir("NaN in an inline array", _proj('connectivity = "dense", weights = array<f64, 2x2>[1.0, nan, 0.0, 1.0]'),
           "number nan is not finite"),
        ir("element count", _proj('connectivity = "dense", weights = array<f64, 2x2>[1.0, 2.0, 3.0]'),
           "needs 4 elements, found 3"),
        ir("huge array shape", _proj('connectivity = "dense", weights = array<f64, 100000000x100000000>[1.0]'),
           "needs 10000000000000000 elements, found 1"),
        ir("u8 array holding 300", _proj('connectivity = "dense", weights = array<u8, 2x2>[1, 2, 3, 300]'),
           "u8 array holds 300, outside [0, 255]"),
        ir("i64 array holding 1.5", _proj('connectivity = "dense", weights = array<i64, 2x2>[1, 2, 3, 1.5]'),
           "i64 array holds the non-integer 1.5"),
        ir("bool array holding 2", _proj('connectivity = "dense", weights = array<bool, 2x2>[1, 0, 2, 1]'),
           "bool array holds 2, outside [0, 1]"),
        ir("ragged weights", _proj('connectivity = "dense", weights = [[1, 2], [3]]'), "rectangular array of numbers"),
        ir("delay 1.5", _proj('connectivity = "dense", delay = 1.5, weights = [[1, 2], [3, 4]]'),
           "delay must be an integer, got 1.5"),
        ir("float sparse indices", _proj('connectivity = "sparse", post_index = [0.5], pre_index = [0], weights = [1]'),
           "sparse indices must be integers"),
        ir("schedule a number", HEAD.replace("{}", "{schedule = 5}") + 'population "h" {model = "cuba_lif", size = 2}\n',
           "the schedule must be a dictionary, got 5"),
        ir("schedule cycle a string, passes skipped", HEAD.replace("{}", '{schedule = {cycle = "x"}}')
           + 'population "h" {model = "cuba_lif", size = 2}\n', "the schedule's cycle must be an integer",
           args=("--pass-pipeline", "quantize,partition,allocate")),
        ir("sparse index out of range, verify skipped", _proj('connectivity = "sparse", post_index = [0, 1], '
           'pre_index = [0, 1000000], weights = [1, 1]'), "sparse indices out of range",
           args=("--pass-pipeline", "quantize,partition,allocate")),
        ir("backprop window of words", HEAD.replace("{}", '{backprop = {layers = ["h"], window = ["x", 1]}}')
           + 'population "h" {model = "cuba_lif", size = 2}\n', "backprop window must be a finite number"),
        ir("values nested 100000 deep", HEAD.replace("{}", "{a = " + "[" * 100000 + "]" * 100000 + "}"),
           "values nested more than 32 deep"),
        ir("second network", HEAD + 'network "m" {}\n', "a second 'network' declaration"),
        ir("negative seed", '// nmc-ir v1\nnetwork "n" {seed = -1}\npopulation "h" {model = "cuba_lif", size = 2}\n',
           "seed must be a non-negative integer"),
        ir("side file missing", '// nmc-ir v1\narrays "prog.nmcir.npz"\n' + HEAD[13:], "cannot read npz file"),
        ir("side file not an archive", '// nmc-ir v1\narrays "side.npz"\n' + HEAD[13:], "is not an .npz archive",
           {"side.npz": b"not a zip"}),
        ir("side file with NaN", '// nmc-ir v1\narrays "side.npz"\n' + POP[13:]
           + 'population "h" {model = "cuba_lif", size = 2}\nprojection "p" : "x" -> "h" '
           '{connectivity = "dense", weights = @"w"}\n', "NaN or infinite",
           {"side.npz": npz_bytes(w=np.array([[1.0, np.nan], [0.0, 1.0]]))}),
        ir("side file with Python objects", '// nmc-ir v1\narrays "side.npz"\n' + HEAD[13:], "holds Python objects",
           {"side.npz": npz_bytes(allow_pickle=True, w=[1, 2])}),
        ir("side file outside the directory", '// nmc-ir v1\narrays "/etc/passwd"\n' + HEAD[13:],
           "must be named without a directory"),
        ir("side key missing", '// nmc-ir v1\narrays "side.npz"\n' + POP[13:]
           + 'population "h" {model = "cuba_lif", size = 2}\nprojection "p" : "x" -> "h" '
           '{connectivity = "dense", weights = @"w"}\n', "array 'w' is referenced but not provided",
           {"side.npz": npz_bytes(v=np.ones((2, 2)))}),
    ]


# -- target files --------------------------------------------------------------------------------------
def _targets(ws: Path) -> list[Case]:
    good = (REPO / "targets" / "loihi.toml").read_text()
    src = str(ws / "small.nmc")

    def with_target(name: str, text: str, expect: str) -> Case:
        return Case(f"target: {name}", ("compile", src, "-o", "out.nmcb", "--target", "chip.toml"), expect,
                    {"chip.toml": _b(text)})

    return [
        Case("target: unknown name", ("compile", src, "-o", "out.nmcb", "--target", "truenorth"),
             "unknown target 'truenorth'"),
        with_target("malformed TOML", "name = \n", "malformed target file"),
        with_target("NaN limit", good.replace("cores = 128 ", "cores = nan "), "chip.cores is nan"),
        with_target("string limit", good.replace("cores = 128 ", 'cores = "many" '),
                    "chip.cores must be an integer, got 'many'"),
        with_target("zero cores", good.replace("cores = 128 ", "cores = 0 "), "chip.cores must be at least 1, got 0"),
        with_target("negative cost", good.replace("synaptic_op = 23.6", "synaptic_op = -23.6"),
                    "cost.energy_pj.synaptic_op must be a non-negative number"),
        with_target("no parts", good.replace("[parts]", "[partz]"), "no [parts] table"),
    ]


# -- outputs of nmc compile ------------------------------------------------------------------------------
def _compile_outputs(ws: Path) -> list[Case]:
    files = {"prog.nmc": _b(SMALL), "notadir": b"x"}
    out = "output"

    def case(name: str, argv: tuple[str, ...], expect: str, extra: dict[str, bytes] | None = None) -> Case:
        return Case(f"compile output: {name}", argv, expect, {**files, **(extra or {})})

    return [
        case("-o is the source", ("compile", "prog.nmc", "-o", "prog.nmc"), f"the {out} is also an input ('prog.nmc')"),
        case("-o into a missing directory", ("compile", "prog.nmc", "-o", "nodir/prog.nmcb"),
             "directory 'nodir' does not exist"),
        case("-o is a directory", ("compile", "prog.nmc", "-o", "sub"), "is a directory", {"sub/keep": b""}),
        case("-o under a file", ("compile", "prog.nmc", "-o", "notadir/prog.nmcb"), "'notadir' is not a directory"),
        case("-o in a read-only place", ("compile", "prog.nmc", "-o", READ_ONLY_PLACE), "cannot write here"),
        case("-o is a device", ("compile", "prog.nmc", "-o", "/dev/null"), "exists and is not a regular file"),
        case("-o is empty", ("compile", "prog.nmc", "-o", ""), "no file name given for the output"),
        case("binary to stdout", ("compile", "prog.nmc", "-o", "-"), "a binary cannot be written to stdout"),
        case("--emit ir over its input", ("compile", "prog.nmcir", "--emit", "ir"), "the default output is the input",
             {"prog.nmcir": (ws / "small.nmcir").read_bytes()}),
        case("--emit ir over the input's arrays", ("compile", "prog.nmcir", "--emit", "ir", "-o", "side.npz"),
             "is also an input ('side.npz')",
             {"prog.nmcir": (ws / "small.nmcir").read_bytes().replace(b"small.nmcir.npz", b"side.npz"),
              "side.npz": (ws / "small.nmcir.npz").read_bytes()}),
        case("--emit ir array file is a directory", ("compile", "prog.nmc", "--emit", "ir", "-o", "o.nmcir"),
             "IR's array file is a directory", {"o.nmcir.npz/keep": b""}),
        case("source missing", ("compile", "missing.nmc", "-o", "x.nmcb"), "input file 'missing.nmc' does not exist"),
        case("source is a directory", ("compile", "d.nmc", "-o", "x.nmcb"), "is a directory, not a source file",
             {"d.nmc/keep": b""}),
        case("source of unknown kind", ("compile", "prog.txt", "-o", "x.nmcb"), "unknown input kind '.txt'",
             {"prog.txt": b"population h[3] : cuba_lif\n"}),
        case("unknown pass", ("compile", "prog.nmc", "-o", "x.nmcb", "--pass-pipeline", "verify,fold"),
             "'fold' does not refer to a registered pass"),
    ]


# -- binaries ----------------------------------------------------------------------------------------------
def _binaries(ws: Path) -> list[Case]:
    good = (ws / "small.nmcb").read_bytes()
    small, xor = read_binary(ws / "small.nmcb"), read_binary(ws / "xor.nmcb")

    def run(name: str, data: bytes, expect: str, binary: str = "bad.nmcb") -> Case:
        return Case(f"binary: {name}", ("run", binary, "--steps", "3"), expect, {binary: data})

    def sections(name: str, change: Callable, expect: str, base: Binary = small) -> Case:
        return run(name, reseal(base, change), expect)

    def manifest(name: str, change: Callable[[dict], Any], expect: str) -> Case:
        return run(name, reseal_manifest(small, change), expect)

    def entry(i: int, key: str, value: Any) -> Callable[[dict], None]:
        return lambda m: m["sections"][i].__setitem__(key, value)

    blank = bytearray(good)
    blank[4:6] = struct.pack("<H", 2)
    cases = [
        run("empty file", b"", "not an nmc binary (file too short for the header)"),
        run("truncated", good[: len(good) // 2], "truncated binary"),
        run("one bit flipped", good[:-10] + bytes([good[-10] ^ 0x40]) + good[-9:], "checksum mismatch"),
        run("foreign magic", b"\x7fELF" + good[4:], "not an nmc binary (bad magic"),
        run("format version 2", bytes(blank), "unsupported binary format version 2"),
        run("random bytes", bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)), "not an nmc binary"),
        run("manifest not JSON", seal(b"{not json", b""), "malformed manifest"),
        run("manifest past the end", with_manifest_length(good, 10**6), "manifest length 1000000 runs past the end"),
        Case("binary: missing file", ("run", "missing.nmcb", "--steps", "3"), "cannot read binary"),
        Case("binary: a directory", ("run", str(ws / "a_dir.nmcb"), "--steps", "3"), "cannot read binary"),
        run("manifest a list", seal(b"[]", b""), "the manifest must be a table, got list"),
        manifest("NaN in the manifest", lambda m: m["meta"].__setitem__("seed", float("nan")), "NaN"),
        manifest("sections a table", lambda m: m.__setitem__("sections", {}), "'sections' must be a list, got dict"),
        manifest("section entry a string", entry_replace(0, "x"), "section entry 0 must be a table"),
        manifest("section without name", lambda m: m["sections"][0].pop("name"), "section entry 0's name"),
        manifest("section listed twice", lambda m: m["sections"].append(dict(m["sections"][0])), "is listed twice"),
        manifest("section of objects", entry(0, "dtype", "|O"), "unsupported dtype '|O'"),
        manifest("negative shape", entry(0, "shape", [-1]), "shape is -1, outside"),
        manifest("nbytes disagree", entry(0, "nbytes", 3), "the table says 3"),
        manifest("misaligned offset", entry(1, "offset", 452), "not at an 8-byte aligned offset"),
        manifest("offset past the end", entry(0, "offset", 10**9), "does not fit the file"),
        manifest("sections overlap", entry(1, "offset", 0), "overlap"),
        manifest("no target", lambda m: m.pop("target"), "'target' must be a non-empty string, got None"),
        manifest("meta a list", lambda m: m.__setitem__("meta", []), "'meta' must be a table, got list"),
        # host-side metadata
        sections_meta("inputs a string", small, set_path("meta", "inputs", "x"), "meta 'inputs' must be a list"),
        sections_meta("input without size", small, set_path("meta", "inputs.0.size", _DELETE), "has no 'size'"),
        sections_meta("negative output size", small, set_path("meta", "outputs.0.size", -1), "size is -1"),
        sections_meta("output named twice", small, lambda m, c, s: m["outputs"].append(dict(m["outputs"][0])),
                      "names 'o' twice"),
        sections_meta("probe source unknown", small, set_path("meta", "probes.0.source", "disk"), "has source 'disk'"),
        sections_meta("negative seed", small, set_path("meta", "seed", -1), "meta 'seed' is -1"),
        sections_meta("n_cores a string", small, set_path("meta", "n_cores", "1"), "meta 'n_cores' must be an integer"),
        sections_meta("core table of words", small, set_path("meta", "cores.0.compartments", "many"),
                      "compartments must be an integer"),
        sections_meta("placement slice backwards", small, set_path("meta", "populations.1.placement", [[0, 20, 5]]),
                      "placement slice [20, 5) outside"),
        sections_meta("weight range reversed", xor, set_path("meta", "plastic.0.format.lo", 300), "weight range [300, 254]"),
        sections_meta("format drop 99", xor, set_path("meta", "plastic.0.format.drop", 99), "drop is 99"),
        sections_meta("cycle 0", xor, set_path("meta", "schedule.cycle", 0), "the schedule's cycle is 0"),
        sections_meta("unknown kick port", xor, set_path("meta", "schedule.kick", "nope"), "kick 'nope' is no input port"),
        sections_meta("tick beyond the cycle", xor, set_path("meta", "schedule.inputs.x", 10**6), "tick of 'x' is 1000000"),
        sections_meta("schedule feeds no port", xor, lambda m, c, s: m["schedule"]["inputs"].__setitem__("zz", 1),
                      "feeds 'zz', which is no input port"),
        sections_meta("readout not an output", xor, set_path("meta", "schedule.readout.population", "h"),
                      "readout 'h' is not recorded as an output"),
        # Loihi tables
        sections("missing section", drop_section("syn_cx"), "section 'syn_cx' is missing"),
        sections("float offsets", set_section("core_cx_offset", [0.0, 35.0], np.float32), "must be a 1-D integer array"),
        sections("offsets not from 0", set_section("core_cx_offset", [1, 35]), "'core_cx_offset' must start at 0"),
        sections("offsets decreasing", set_section("core_cx_offset", [0, 40, 35]), "'core_cx_offset' decreases"),
        sections("config index out of range", edit_section("cx_cfg", 3, 5), "'cx_cfg' entry 3 is 5, outside [0, 0]"),
        sections("decay beyond the register", edit_section("cfg_decay_u", 0, 5000), "'cfg_decay_u' entry 0 is 5000"),
        sections("refractory 0", edit_section("cfg_refractory", 0, 0), "'cfg_refractory' entry 0 is 0, outside [1, 63]"),
        sections("bias exponent 200", edit_section("cx_bias_exp", 0, 200), "'cx_bias_exp' entry 0 is 200"),
        sections("bias mantissa 5000", edit_section("cx_bias_mant", 0, 5000), "'cx_bias_mant' entry 0 is 5000"),
        sections("config offsets past the table", set_section("core_cfg_offset", [0, 2]), "'core_cfg_offset' ends at 2"),
        sections("weight bits 7", edit_section("fmt_weight_bits", 0, 7), "not one of synapse.weight_bits_allowed"),
        sections("weight exponent 20", edit_section("fmt_exponent", 0, 20), "'fmt_exponent' entry 0 is 20"),
        sections("axon offsets for two cores", set_section("core_axon_offset", [0, 20, 55]),
                 "'core_axon_offset' has 3 entries, expected 2"),
        sections("synapse pointers past the table", edit_section("axon_syn_ptr", -1, 825), "'axon_syn_ptr' ends at 825"),
        sections("synapse to compartment 999", edit_section("syn_cx", 7, 999), "'syn_cx' entry 7 is 999"),
        sections("weights shorter than synapses", lambda m, c, s: s.__setitem__("syn_weight", s["syn_weight"][:-1]),
                 "'syn_weight' has 819 entries, expected 820"),
        sections("weight beyond the format", edit_section("syn_weight", 0, 300), "'syn_weight' entry 0 is 300"),
        sections("delay beyond the chip", edit_section("syn_delay", 0, 100), "'syn_delay' entry 0 is 100, outside [0, 62]"),
        sections("plastic index without a rule", edit_section("syn_plastic", 0, 3), "'syn_plastic' entry 0 is 3"),
        sections("route to core 5", edit_section("out_core", 0, 5), "'out_core' entry 0 is 5, outside [0, 0]"),
        sections("port pointers for 19 units", lambda m, c, s: s.__setitem__("in0_ptr", s["in0_ptr"][:-1]),
                 "'in0_ptr' has 20 entries, expected 21"),
        sections("port routed to core 3", edit_section("in0_core", 0, 3), "'in0_core' entry 0 is 3"),
        sections("output compartment out of range", edit_section("out0_cx", 0, 35), "'out0_cx' entry 0 is 35"),
        sections("probe compartment out of range", edit_section("probe0_cx", 0, -1), "'probe0_cx' entry 0 is -1"),
        sections("probe of variable w", set_path("meta", "probes.0.variable", "w"), "unknown variable 'w'"),
        sections("probe of a port that is not there", set_path("meta", "probes.0.source", "input"),
                 "reads input port 'h', which does not exist"),
        sections("configuration without neuron", set_path("cfg", "neuron", _DELETE), "has no 'neuron'"),
        sections("decay shift 100", set_path("cfg", "neuron.decay_shift", 100), "neuron.decay_shift is 100, outside [1, 16]"),
        sections("voltage beyond 32 bits", set_path("cfg", "neuron.voltage_max", 2**40), "neuron.voltage_max is"),
        sections("no cores on the chip", set_path("cfg", "chip.cores", 0), "chip.cores is 0"),
        sections("core over its compartments", set_path("cfg", "core.max_compartments", 10),
                 "core 0 has 35 compartments, more than core.max_compartments = 10"),
        sections("negative energy", set_path("cfg", "cost.energy_pj.synaptic_op", -1.0), "cost.energy_pj.synaptic_op is -1.0"),
        sections("time table incomplete", set_path("cfg", "cost.time_ns.barrier_max", _DELETE), "has no 'barrier_max'"),
        sections("n_cores disagrees", set_path("meta", "n_cores", 3), "meta 'n_cores' says 3"),
        # Loihi learning tables (the scheduled XOR binary)
        sections("learning epoch 0", set_path("meta", "plastic.0.epoch", 0), "epoch is 0", xor),
        sections("unknown factor", set_path("meta", "plastic.0.products.0.2", ["z9", "x0"]), "unknown factor 'z9'", xor),
        sections("factor without its trace", set_path("meta", "plastic.0.traces", {}), "uses factor 'r1', which has no trace",
                 xor),
        sections("negative time constant", set_path("meta", "plastic.0.traces.r1", [1.0, -2.0]), "is -2.0, below 0", xor),
        sections("rule onto an input port", set_path("meta", "plastic.0.post", {"kind": "port", "name": "x"}),
                 "targets an input port", xor),
        sections("rule neuron out of range", edit_section("pl0_pre", 0, 10**6), "'pl0_pre' entry 0 is 1000000", xor),
        sections("rule constant of 10^9", set_path("meta", "plastic.0.products.0.0", 10**9),
                 "out of the learning engine's range", xor),
        sections("learning widths past 64 bits", set_path("cfg", "learning.trace_bits", 8),
                 "the learning engine's 64-bit products could overflow", xor),
        sections("rule delay 99", set_path("meta", "plastic.0.delay", 99), "delay is 99", xor),
        run("rule section missing", reseal(xor, drop_section("pl0_pre")), "pre names section 'pl0_pre', which is missing"),
        # which interpreter
        run("interpreter unknown", reseal(small, set_path("cfg", "parts.interpreter", "nosuch")),
            "no interpreter part registered under 'nosuch'"),
        run("no interpreter named", reseal(small, set_path("cfg", "parts", _DELETE)), "names no interpreter"),
        Case("binary: for another target", ("run", str(ws / "small.nmcb"), "--steps", "3", "--target", "spinnaker"),
             "binary is for target 'loihi', not 'spinnaker'"),
    ]
    return cases


def with_manifest_length(data: bytes, mlen: int) -> bytes:
    """``data`` claiming a manifest of ``mlen`` bytes, re-sealed so the checksum still holds."""
    payload = data[52:]
    digest = hashlib.sha256(struct.pack("<I", mlen) + payload).digest()
    return struct.pack("<4sHHQ32sI", b"NMCB", 1, 0, len(data), digest, mlen) + payload


def entry_replace(i: int, value: Any) -> Callable[[dict], None]:
    return lambda m: m["sections"].__setitem__(i, value)


def sections_meta(name: str, base: Binary, change: Callable, expect: str) -> Case:
    return Case(f"binary: {name}", ("run", "bad.nmcb", "--steps", "3"), expect, {"bad.nmcb": reseal(base, change)})


# -- SpiNNaker-like binaries -------------------------------------------------------------------------
def spinnaker_cases(ws: Path) -> list[tuple[Case, bool]]:
    """The SpiNNaker-like chip's tables (nmc/sim/spinnaker_validate.py), on the physical feed-forward
    example (3 cores: h 200, i 40 and o 10 neurons; 4 master-table entries; one chip with 3 router
    entries) and a small e-prop binary (5 ALIF neurons on core 0, a readout of 2 on core 1), as
    built by :func:`build_spinnaker_binaries`. Each case with whether the corpus runs it as a
    process (every family is there; the others, ``corpus=False``, keep its CPU time down and are
    run in process by tests/test_spinnaker_validate.py, with all the rest)."""
    ff, ep = read_binary(ws / "ff_spinnaker.nmcb"), read_binary(ws / "eprop.nmcb")

    def case(name: str, change: Callable, expect: str, base: Binary = ff, corpus: bool = True) -> tuple[Case, bool]:
        return Case(f"spinnaker: {name}", ("run", "bad.nmcb", "--steps", "3"), expect,
                    {"bad.nmcb": reseal(base, change)}), corpus

    def eprop(name: str, change: Callable, expect: str, corpus: bool = True) -> tuple[Case, bool]:
        return case(f"e-prop {name}", change, expect, ep, corpus)

    low = ~0xFF  # the first synaptic word of the first row (word 3) targets neuron 2 of core 0 (8 index bits)
    return [
        # master population tables
        case("mpt_addr_count one short", shorten("mpt_addr_count"),
             "section 'mpt_addr_count' has 3 entries, expected 4"),
        case("mpt_addr_start one short", shorten("mpt_addr_start"),
             "section 'mpt_addr_start' has 3 entries, expected 4"),
        case("mpt_key one short", shorten("mpt_key"), "section 'mpt_offset' ends at 4, but the table it indexes has 3"),
        case("mpt_mask one short", shorten("mpt_mask"), "section 'mpt_mask' has 3 entries, expected 4"),
        case("mpt_n_neurons one short", shorten("mpt_n_neurons"), "section 'mpt_n_neurons' has 3 entries, expected 4"),
        case("mpt key outside its mask", edit_section("mpt_key", 0, 5),
             "'mpt_key' entry 0 is 0x5, which has bits outside"),
        case("mpt not sorted", edit_section("mpt_key", 1, 0),
             "the master population table of core 0 is not sorted by key", corpus=False),
        case("mpt slice of 999 neurons", edit_section("mpt_n_neurons", 0, 999),
             "'mpt_n_neurons' entry 0 is 999, outside [1, 256]", corpus=False),
        case("mpt items past the list", edit_section("mpt_addr_start", 3, 4),
             "items [4, 5) run past the address list of 4"),
        case("mpt entries share an item", edit_section("mpt_addr_start", 1, 0),
             "entries 0 and 1 share address-list items", corpus=False),
        # address list
        case("block misaligned", edit_section("addr_address", 1, 8361),
             "'addr_address' entry 1 is 8361, not on a 16-byte", corpus=False),
        case("block past the SDRAM image", edit_section("addr_address", 0, 13200),
             "the block of 64 rows of 67 words at word 13200 runs past the SDRAM image (13280 words)"),
        case("blocks overlap", edit_section("addr_address", 1, 0), "the blocks of address-list items 0 and 1 overlap",
             corpus=False),
        # rows and synaptic words
        case("row with a long plastic region", edit_section("sdram_words", 0, 1000),
             "the row at word 0 (address-list item 0, core 0) has a plastic region of 1000 words", corpus=False),
        case("row with too many synapses", edit_section("sdram_words", 1, 500),
             "holds 500 fixed and 0 plastic synapses"),
        case("row with plastic synapses and no region", edit_section("sdram_words", 2, 3),
             "has 3 plastic synapses but a plastic region of 0 words", corpus=False),
        case("synapse onto neuron 250", edit_bits("sdram_words", 3, lambda w: (w & low) | 250),
             "entry 3 is a synapse onto neuron 250 of core 0, outside [0, 199]"),
        case("synapse delay past the ring", edit_bits("sdram_words", 3, lambda w: w | 1 << 12),
             "bits set above its delay field (index 8 + type 1 + delay 1 bits)"),
        case("SDRAM word of 40 bits", edit_section("sdram_words", 5, 2**40),
             "'sdram_words' entry 5 is 1099511627776, outside", corpus=False),
        # router tables
        case("rt_key one short", shorten("rt_key"), "'rt_offset' ends at 3, but the table it indexes has 2 entries"),
        case("router table off the mesh", edit_section("rt_chip", 0, 48), "'rt_chip' entry 0 is 48, outside [0, 47]"),
        case("route to processor 20", edit_bits("rt_route", 0, lambda r: r | 1 << (6 + 20)),
             "outside the 6 links and 18 processors of a route"),
        case("router key outside its mask", edit_section("rt_key", 0, 7),
             "'rt_key' entry 0 is 0x7, which has bits outside", corpus=False),
        case("two tables for one chip", changes(set_section("rt_chip", [0, 0]), set_section("rt_offset", [0, 1, 3])),
             "gives chip (0, 0) two router tables", corpus=False),
        # cores and chips
        case("n_cores 9", set_path("meta", "n_cores", 9), "meta 'n_cores' says 9, the sections hold 3 cores"),
        case("core off the mesh", edit_section("core_chip_x", 0, 8), "'core_chip_x' entry 0 is 8, outside [0, 7]"),
        case("core on the monitor processor", edit_section("core_processor", 0, 0),
             "'core_processor' entry 0 is 0, outside [1, 16]", corpus=False),
        case("two cores on one processor", edit_section("core_processor", 1, 1),
             "cores 0 and 1 are both processor 1 of chip (0, 0)"),
        case("ring fields too wide", edit_section("core_delay_bits", 0, 9),
             "core 0's ring-buffer fields (index 8 + type 1 + delay 9 bits) exceed core.max_ring_buffer_bits = 14"),
        case("index field too narrow", edit_section("core_index_bits", 0, 7),
             "core 0 holds 200 neurons, more than its index field of 7 bits addresses", corpus=False),
        case("weight shift 40", edit_section("core_shift_exc", 0, 40),
             "'core_shift_exc' entry 0 is 40, outside [0, 31]", corpus=False),
        case("neuron offsets decreasing", set_section("core_neuron_offset", [0, 200, 100, 250]),
             "'core_neuron_offset' decreases at entry 2", corpus=False),
        case("more cores than the machine", changes(set_path("cfg", "chip.cores", 1), set_path("cfg", "chip.chips", 2)),
             "the binary uses 3 cores; the target has 2 (chip.cores x chip.chips)", corpus=False),
        # neurons
        case("tau_m 0", edit_section("nrn_tau_m", 5, 0), "'nrn_tau_m' entry 5 is 0, outside [1, 2147483647]"),
        case("send flag 2", edit_section("nrn_sends", 0, 2), "'nrn_sends' entry 0 is 2, outside [0, 1]", corpus=False),
        # ports, outputs, probes
        case("input keys one short", shorten("in0_key"), "'in0_key' has 63 entries, expected 64", corpus=False),
        case("input key of neuron 0", edit_section("in0_key", 3, 512),
             "key 0x200 is sent by two sources: neuron 0 and input port 'x' unit 3"),
        case("output neuron 250", edit_section("out0_nrn", 0, 250), "'out0_nrn' entry 0 is 250, outside [0, 249]"),
        case("probe neuron -1", edit_section("probe1_nrn", 2, -1), "'probe1_nrn' entry 2 is -1, outside [0, 249]"),
        case("probe of a port that is not there", set_path("meta", "probes.0.source", "input"),
             "probe 'h.spikes' reads input port 'h', which does not exist", corpus=False),
        # metadata and the target configuration
        case("time step 0", set_path("meta", "timestep_ms", 0), "meta 'timestep_ms' is 0, outside (0, 65536)"),
        case("time step 2 ms, cores at 1", set_path("meta", "timestep_ms", 2.0),
             "'core_time_step' entry 0 is 32768 (1 ms), but meta 'timestep_ms' is 2"),
        case("key fields of 40 bits", set_path("meta", "key_fields.slice", 30), "meta 'key_fields' need 40 bits",
             corpus=False),
        case("host chip off the mesh", set_path("meta", "host_chip", [9, 0]),
             "meta 'host_chip' x is 9, outside [0, 7]", corpus=False),
        case("core models one short", set_path("meta", "core_models", ["if_curr_exp"] * 2),
             "names 2 models for 3 cores", corpus=False),
        case("negative cycle cost", set_path("cfg", "cost.cycles.row_dma", -5),
             "cost.cycles.row_dma is -5, below 0", corpus=False),
        case("row header of 2 words", set_path("cfg", "sdram.row_header_words", 2),
             "sdram.row_header_words is 2, outside [3, 65535]", corpus=False),
        (Case("spinnaker: inspect n_cores 9", ("inspect", "bad.nmcb"), "meta 'n_cores' says 9",
              {"bad.nmcb": reseal(ff, set_path("meta", "n_cores", 9))}), True),
        # e-prop
        eprop("trial of 0 ticks", set_path("meta", "eprop.trial_ticks", 0), "the e-prop trial's ticks is 0"),
        eprop("metadata missing", set_path("meta", "eprop", None),
              "the binary has e-prop cores but no 'eprop' metadata", corpus=False),
        eprop("core kind 5", edit_section("core_eprop", 0, 5),
              "'core_eprop' entry 0 is 5, outside [0, 3]", corpus=False),
        eprop("readout kind on an ALIF core", edit_section("core_eprop", 0, 3),
             "core 0 is an e-prop core of kind 3 but runs model 'eprop_alif'"),
        eprop("no readout core", edit_section("core_eprop", 1, 0),
              "e-prop needs exactly one readout core, the binary has 0", corpus=False),
        eprop("three outputs", set_path("meta", "eprop.n_out", 3),
              "the e-prop readout core 1 holds 2 neurons, but meta 'eprop' n_out is 3", corpus=False),
        eprop("target port of 4 units", set_path("meta", "eprop.target", "x"),
              "the e-prop target port 'x' has 4 units", corpus=False),
        eprop("state column of an unknown key", edit_section("ep_src_key", 0, 999),
              "'ep_src_key' entry 0 is 0x3e7, a key no source sends"),
        eprop("learning-signal unit 5", edit_section("ep_ls_base", 0, 5),
              "'ep_ls_base' entry 0 is 5, outside [0, 1]", corpus=False),
        eprop("target table past its keys", set_section("ep_tg_offset", [0, 0, 2]),
              "'ep_tg_offset' ends at 2", corpus=False),
        eprop("feedback weights one short", shorten("nrn_ep_fb"),
              "'nrn_ep_fb' has 13 entries, expected 14", corpus=False),
        eprop("weight in a low halfword", edit_section("ep_syn_half", 0, 4),
              "'ep_syn_half' entry 0 is 4, not the top halfword", corpus=False),
        eprop("synapse of projection 7", edit_section("ep_syn_proj", 0, 7),
              "'ep_syn_proj' entry 0 is 7, no plastic projection", corpus=False),
        eprop("synapse from neuron 9", edit_section("ep_syn_pre", 0, 9),
              "'ep_syn_pre' entry 0 is 9, outside [0, 3]", corpus=False),
        eprop("learning-rate exponent 100", edit_section("nrn_ep_lr_exp", 6, 100),
              "'nrn_ep_lr_exp' entry 6 is 100, outside [-15, 62]", corpus=False),
        eprop("two membrane time constants", edit_section("nrn_ep_tau_m", 1, 2 * 655360),
             "e-prop core 0 has neurons with different membrane time constants"),
        eprop("plastic weight not listed", edit_section("ep_syn_half", 0, 1),
             "inconsistent binary: a plastic synapse of a row is not listed in 'ep_syn_half'"),
    ]


def _spinnaker(ws: Path) -> list[Case]:
    return [c for c, corpus in spinnaker_cases(ws) if corpus]


# -- nmc inspect -----------------------------------------------------------------------------------------
def _inspect(ws: Path) -> list[Case]:
    small = read_binary(ws / "small.nmcb")
    return [
        Case("inspect: missing file", ("inspect", "missing.nmcb"), "file 'missing.nmcb' does not exist"),
        Case("inspect: a directory", ("inspect", str(ws / "a_dir.nmcb")), "is a directory, not a file"),
        Case("inspect: garbage binary", ("inspect", "bad.nmcb"), "not an nmc binary", {"bad.nmcb": b"garbage" * 20}),
        Case("inspect: inconsistent placement", ("inspect", "bad.nmcb"), "placement slice",
             {"bad.nmcb": reseal(small, set_path("meta", "populations.1.placement", [[0, 0, 99]]))}),
        Case("inspect: inconsistent tables", ("inspect", "bad.nmcb"), "inconsistent binary: section 'syn_cx'",
             {"bad.nmcb": reseal(small, edit_section("syn_cx", 0, 999))}),
        Case("inspect: unknown kind", ("inspect", "notes.txt"), "unknown input kind '.txt'", {"notes.txt": b"hello"}),
        Case("inspect: DSL syntax error", ("inspect", "prog.nmc"), "unexpected end of input",
             {"prog.nmc": b"population h[3] : cuba_lif("}),
        Case("inspect: IR size 10.5", ("inspect", "prog.nmcir"), "size must be an integer, got 10.5",
             {"prog.nmcir": _b(HEAD + 'population "h" {model = "cuba_lif", size = 10.5}\n')}),
        Case("inspect: unknown target", ("inspect", str(ws / "small.nmc"), "--target", "nope"), "unknown target 'nope'"),
        Case("inspect: empty program", ("inspect", "prog.nmc"), "defines no population", {"prog.nmc": b"# empty\n"}),
    ]


# -- nmc run: data and results -----------------------------------------------------------------------------
def _run_data(ws: Path) -> list[Case]:
    small = str(ws / "small.nmcb")

    def data(name: str, content: bytes, expect: str, args: tuple[str, ...] = ()) -> Case:
        return Case(f"run data: {name}", ("run", small, "--input", "d.npz", *args), expect, {"d.npz": content})

    def out(name: str, target: str, expect: str, files: dict[str, bytes] | None = None) -> Case:
        return Case(f"run output: {name}", ("run", small, "--input", str(ws / "stream.npz"), "--out", target), expect,
                    files or {})

    spikes = (np.random.default_rng(2).random((10, 20)) < 0.3).astype(np.uint8)
    return [
        Case("run data: missing file", ("run", small, "--input", "missing.npz"), "cannot read npz file"),
        Case("run data: a directory", ("run", small, "--input", str(ws / "a_dir.npz")), "is a directory"),
        data("a .npy file", npy_bytes(spikes), "single .npy array"),
        data("text", b"0 1 0 1\n", "is not an .npz archive"),
        data("truncated archive", npz_bytes(x=spikes)[:100], "damaged .npz archive"),
        data("Python objects", npz_bytes(allow_pickle=True, x=[[1, 0]] * 3), "holds Python objects"),
        data("strings", npz_bytes(x=np.array([["1", "0"]])), "is not numeric"),
        data("NaN", npz_bytes(x=np.where(spikes > 0, np.nan, 0.0)), "NaN or infinite"),
        data("values 2", npz_bytes(x=spikes * 2), "values must be spikes (0 or 1)"),
        data("1-D", npz_bytes(x=spikes[0]), "expected shape (steps, 20) or (samples, steps, 20), got (20,)"),
        data("wrong width", npz_bytes(x=spikes[:, :19]), "got (10, 19)"),
        data("unknown port", npz_bytes(y=spikes), "no input port 'y' (ports: x)"),
        data("only labels", npz_bytes(labels=np.array([1])), "'labels' needs sample data"),
        data("no steps", npz_bytes(x=spikes[:0]), "input 'x' holds no steps"),
        data("no samples", npz_bytes(x=np.zeros((0, 10, 20), np.uint8), labels=np.zeros(0, int)), "holds no samples"),
        data("labels float", npz_bytes(x=np.stack([spikes] * 3), labels=np.array([0.0, 1.0, 2.0])),
             "'labels' must be integers (class indices), got dtype float64"),
        data("label beyond the classes", npz_bytes(x=np.stack([spikes] * 3), labels=np.array([0, 5, 1])),
             "label 5 of sample 1 is outside 0..4"),
        data("labels 2-D", npz_bytes(x=np.stack([spikes] * 3), labels=np.zeros((3, 1), int)),
             "'labels' must have shape (3,), got (3, 1)"),
        data("labels for a stream", npz_bytes(x=spikes, labels=np.zeros(10, int)), "'labels' needs sample data"),
        Case("run: negative steps", ("run", small, "--steps", "-1"), "--steps must be non-negative"),
        Case("run: steps beyond memory", ("run", small, "--steps", str(10**13)), "more than this machine's", max_seconds=10),
        Case("run: no data, no steps", ("run", small), "--steps is required when no input data is given"),
        Case("run: --test on a plain binary", ("run", small, "--steps", "3", "--test", str(ws / "stream.npz")),
             "--test needs a binary with a learning schedule"),
        Case("run: --epochs on a plain binary", ("run", small, "--steps", "3", "--epochs", "2"),
             "--epochs needs a binary that learns"),
        Case("run: --average-last on a plain binary", ("run", small, "--steps", "3", "--average-last", "2", "--out", "r.npz"),
             "--average-last needs a binary with a learning schedule"),
        out("--out is the binary", small, "the result file is also an input"),
        out("--out is the data", str(ws / "stream.npz"), "the result file is also an input"),
        out("--out into a missing directory", "nodir/r.npz", "directory 'nodir' does not exist"),
        out("--out in a read-only place", READ_ONLY_PLACE, "cannot write here"),
        out("--out is a directory", str(ws / "a_dir.npz"), "the result file is a directory"),
        out("--out is a device", "/dev/null", "exists and is not a regular file"),
        out("--out under a file", "f/r.npz", "'f' is not a directory", {"f": b"x"}),
        out("--out is empty", "", "no file name given for the result file"),
    ]


# -- nmc run: learning schedules ---------------------------------------------------------------------------
def _schedule(ws: Path) -> list[Case]:
    xor = str(ws / "xor.nmcb")
    x = np.load(ws / "xor.npz")["x"]

    def data(name: str, content: bytes, expect: str, args: tuple[str, ...] = ()) -> Case:
        return Case(f"schedule: {name}", ("run", xor, "--input", "d.npz", *args), expect, {"d.npz": content})

    good = str(ws / "xor.npz")
    return [
        Case("schedule: no data", ("run", xor), "a scheduled network needs --input"),
        Case("schedule: zero epochs", ("run", xor, "--input", good, "--epochs", "0"), "--epochs must be at least 1"),
        Case("schedule: negative averaging", ("run", xor, "--input", good, "--average-last", "-1"),
             "--average-last must be at least 0"),
        Case("schedule: averaging without --out", ("run", xor, "--input", good, "--average-last", "2"),
             "--average-last needs --out"),
        data("no labels", npz_bytes(x=x), "input data has no 'labels'"),
        data("label 5 for one target unit", npz_bytes(x=x, labels=np.array([0, 1, 5, 0])), "label 5 of sample 2 is outside 0..1"),
        data("labels float", npz_bytes(x=x, labels=np.array([0.0, 1.0, 1.0, 0.0])), "'labels' must be integers"),
        data("labels NaN", npz_bytes(x=x, labels=np.array([0.0, np.nan, 1.0, 0.0])), "NaN or infinite"),
        data("wrong width", npz_bytes(x=x[:, :10], labels=np.array([0, 1, 1, 0])), "expected shape (samples, 11)"),
        data("values 2", npz_bytes(x=x * 2, labels=np.array([0, 1, 1, 0])), "values must be spikes"),
        data("no samples", npz_bytes(x=x[:0], labels=np.zeros(0, int)), "no samples"),
        data("unknown port", npz_bytes(x=x, y=x, labels=np.array([0, 1, 1, 0])), "array 'y' is not a sample port"),
        data("labels and samples disagree", npz_bytes(x=x, labels=np.array([0, 1])), "disagree on the number of samples"),
        Case("schedule: test file missing", ("run", xor, "--input", good, "--test", "t.npz"), "cannot read npz file"),
        Case("schedule: test without labels", ("run", xor, "--input", good, "--test", "t.npz"),
             "test data has no 'labels'", {"t.npz": npz_bytes(x=x)}),
        Case("schedule: --out is the test file", ("run", xor, "--input", good, "--test", "t.npz", "--out", "t.npz"),
             "the result file is also an input ('t.npz')", {"t.npz": (ws / "xor.npz").read_bytes()}),
    ]


# -- nmc run: checkpoints ---------------------------------------------------------------------------------
def _checkpoints(ws: Path) -> list[Case]:
    xor, small, good = str(ws / "xor.nmcb"), str(ws / "small.nmcb"), str(ws / "xor.npz")
    train = ("run", xor, "--input", good, "--epochs", "2")
    real = (ws / "ck" / "checkpoint.npz").read_bytes()
    data = dict(np.load(ws / "xor.npz"))
    data["x"][0, 0] = 1 - data["x"][0, 0]   # one input bit of one sample flipped
    other = npz_bytes(**data)
    eprop_data = npz_bytes(x=np.zeros((2, 20, 4), np.uint8), t=np.zeros((2, 20, 2)))
    return [
        Case("checkpoint: plain binary", ("run", small, "--steps", "3", "--checkpoint", "ck"),
             "--checkpoint needs a binary with a learning schedule"),
        Case("checkpoint: resume a plain binary", ("run", small, "--steps", "3", "--resume", str(ws / "ck")),
             "--resume needs a binary with a learning schedule"),
        Case("checkpoint: resume from nothing", (*train, "--resume", "nock"), "checkpoint directory 'nock' does not exist"),
        Case("checkpoint: resume an empty directory", (*train, "--resume", "d"), "holds no checkpoint.npz",
             {"d/.keep": b""}),
        Case("checkpoint: garbage", (*train, "--resume", "d"), "is not an nmc checkpoint (not an .npz archive)",
             {"d/checkpoint.npz": b"junk" * 10}),
        Case("checkpoint: a data file", (*train, "--resume", "d"), "is not an nmc checkpoint (no meta.json)",
             {"d/checkpoint.npz": (ws / "xor.npz").read_bytes()}),
        Case("checkpoint: truncated", (*train, "--resume", "d"), "cannot read checkpoint",
             {"d/checkpoint.npz": real[:300]}),
        Case("checkpoint: past the epochs asked", ("run", xor, "--input", good, "--epochs", "1", "--resume", "d"),
             "is at epoch 2, past the 1 epoch(s) asked for", {"d/checkpoint.npz": real}),
        Case("checkpoint: another binary", ("run", "other.nmcb", "--input", good, "--epochs", "3", "--resume", "d"),
             "was made with another binary", {"d/checkpoint.npz": real, "other.nmcb": (ws / "xor_seed7.nmcb").read_bytes()}),
        Case("checkpoint: other data", ("run", xor, "--input", "o.npz", "--epochs", "3", "--resume", "d"),
             "was made with other training data", {"d/checkpoint.npz": real, "o.npz": other}),
        Case("checkpoint: directory is a file", (*train, "--checkpoint", "f"), "is a file, not a directory", {"f": b"x"}),
        # e-prop runs checkpoint too (nmc/sim/trial_runner.py): a scheduled run's checkpoint is another binary's
        Case("checkpoint: e-prop resumes a scheduled run's", ("run", str(ws / "eprop.nmcb"), "--input", "e.npz",
                                                              "--epochs", "2", "--resume", "d"),
             "was made with another binary", {"d/checkpoint.npz": real, "e.npz": eprop_data}),
        Case("checkpoint: e-prop stream data", ("run", str(ws / "eprop.nmcb"), "--input", "e.npz", "--checkpoint", "ck"),
             "need --input with samples", {"e.npz": npz_bytes(x=np.zeros((20, 4), np.uint8), t=np.zeros((20, 2)))}),
        Case("checkpoint: directory in a missing one", (*train, "--checkpoint", "nodir/ck"), "'nodir' does not exist"),
    ]


# -- nmc plot ------------------------------------------------------------------------------------------------
def _plot(ws: Path) -> list[Case]:
    res = (ws / "result.npz").read_bytes()
    return [
        Case("plot: missing file", ("plot", "missing.npz"), "result file 'missing.npz' does not exist"),
        Case("plot: garbage", ("plot", "r.npz"), "'r.npz' is not an .npz archive", {"r.npz": b"garbage" * 10}),
        Case("plot: a binary", ("plot", str(ws / "small.nmcb")), "is not an .npz archive"),
        Case("plot: a directory", ("plot", str(ws / "a_dir.npz")), "is a directory, not an .npz archive"),
        Case("plot: NaN trace", ("plot", "r.npz"), "holds 1 NaN or infinite value",
             {"r.npz": npz_bytes(**{"probe/h.v": np.array([[np.nan, 1.0]])})}),
        Case("plot: nothing to draw", ("plot", "r.npz"), "the result holds nothing to plot",
             {"r.npz": npz_bytes(a=np.zeros(3))}),
        Case("plot: unknown format", ("plot", "r.npz", "-o", "fig.xyz"), "cannot write a 'xyz' figure", {"r.npz": res}),
        Case("plot: no extension", ("plot", "r.npz", "-o", "fig"), "has no extension", {"r.npz": res}),
        Case("plot: over the result", ("plot", "r.npz", "-o", "r.npz"), "would overwrite the result file", {"r.npz": res}),
        Case("plot: into a missing directory", ("plot", "r.npz", "-o", "nodir/f.png"), "directory 'nodir' does not exist",
             {"r.npz": res}),
        Case("plot: --max-steps 0", ("plot", "r.npz", "--max-steps", "0"), "--max-steps must be at least 1", {"r.npz": res}),
    ]


def corpus(ws: Path) -> list[Case]:
    """Every case, over the workspace ``ws`` (see :func:`build_workspace`)."""
    cases = (_usage(ws) + _dsl(ws) + _ir(ws) + _targets(ws) + _compile_outputs(ws) + _binaries(ws) + _spinnaker(ws)
             + _inspect(ws) + _run_data(ws) + _schedule(ws) + _checkpoints(ws) + _plot(ws))
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"case names repeat: {dupes}"
    return cases
