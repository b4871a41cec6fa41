"""The nmc command line, end to end: compile, inspect, run; determinism; bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmc.binary import Binary, decode_binary, encode_binary, read_binary
from nmc.resources import data_dir

# Odd weights in the mixed-sign 8-bit format are rounded to even values: the warning must say so.


def test_compile_inspect_run(cli, small_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "small.nmcb"
    code, _, err = cli("compile", small_src, "--target", "loihi", "-o", out)
    assert code == 0, err
    assert "warning" in err and "rounded" in err  # odd randint weights in a mixed-sign format
    assert out.read_bytes()[:4] == b"NMCB"

    code, text, _ = cli("inspect", out)
    assert code == 0
    assert "compartments" in text and "input axons" in text and "synapse bits" in text
    assert "h[30] (cuba_lif, hidden): 0[0,30)" in text

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "in.npz", x=(rng.random((100, 20)) < 0.3).astype(np.uint8))
    code, text, err = cli("run", out, "--input", tmp_path / "in.npz", "--out", tmp_path / "r.npz")
    assert code == 0, err
    assert "synaptic ops" in text and "energy" in text
    r = np.load(tmp_path / "r.npz")
    for key in ("timesteps", "synaptic_ops", "spikes", "cycles", "energy_j"):
        assert key in r.files
    assert int(r["timesteps"]) == 100
    assert r["spikes/o"].shape == (100, 5)
    assert r["probe/h.v"].shape == (100, 30)
    assert int(r["synaptic_ops"]) > 0 and float(r["energy_j"]) > 0 and int(r["cycles"]) > 0
    assert int(r["spikes"]) >= int(r["spikes/o"].sum())


def test_same_source_and_seed_give_the_same_binary(cli, small_src: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.nmcb", tmp_path / "b.nmcb", tmp_path / "c.nmcb"
    assert cli("compile", small_src, "-o", a)[0] == 0
    assert cli("compile", small_src, "-o", b)[0] == 0
    assert a.read_bytes() == b.read_bytes()
    other = tmp_path / "other.nmc"
    other.write_text(small_src.read_text().replace("seed 5", "seed 6"))
    assert cli("compile", other, "-o", c)[0] == 0
    assert c.read_bytes() != a.read_bytes()


def test_same_binary_gives_the_same_spikes(cli, small_src: Path, tmp_path: Path) -> None:
    cli("compile", small_src, "-o", tmp_path / "s.nmcb")
    np.savez(tmp_path / "in.npz", x=(np.random.default_rng(1).random((60, 20)) < 0.3).astype(np.uint8))
    for name in ("r1", "r2"):
        assert cli("run", tmp_path / "s.nmcb", "--input", tmp_path / "in.npz", "--out", tmp_path / f"{name}.npz")[0] == 0
    r1, r2 = np.load(tmp_path / "r1.npz"), np.load(tmp_path / "r2.npz")
    for key in r1.files:
        np.testing.assert_array_equal(r1[key], r2[key])


def test_print_ir_after_all_and_pipeline(cli, small_src: Path, tmp_path: Path) -> None:
    code, _, err = cli("compile", small_src, "-o", tmp_path / "s.nmcb", "--print-ir-after-all")
    assert code == 0
    for name in ("verify", "quantize", "partition", "allocate"):
        assert f"// -----// IR Dump After {name} //----- //" in err
    code, _, err = cli("compile", small_src, "-o", tmp_path / "s.nmcb", "--print-ir-before=partition",
                       "--pass-pipeline", "verify,quantize,partition{solver=first-fit},allocate")
    assert code == 0
    assert err.count("IR Dump") == 1 and "IR Dump Before partition" in err
    code, out, _ = cli("compile", small_src, "--emit", "ir", "-o", "-", "--pass-pipeline", "verify,quantize")
    assert code == 0 and out.startswith("// nmc-ir v1") and 'quantized = "loihi"' in out
    code, out, _ = cli("compile", "--list-passes")
    assert code == 0 and all(p in out for p in ("verify", "quantize", "partition", "allocate"))


def test_ir_file_compiles_like_its_source(cli, small_src: Path, tmp_path: Path) -> None:
    ir = tmp_path / "small.nmcir"
    assert cli("compile", small_src, "--emit", "ir", "--pass-pipeline", "verify", "-o", ir)[0] == 0
    assert cli("compile", ir, "-o", tmp_path / "from_ir.nmcb")[0] == 0
    assert cli("compile", small_src, "-o", tmp_path / "from_src.nmcb")[0] == 0
    assert (tmp_path / "from_ir.nmcb").read_bytes() == (tmp_path / "from_src.nmcb").read_bytes()
    code, out, _ = cli("inspect", ir)
    assert code == 0 and 'population "h"' in out


def _small_target(tmp_path: Path, cores: int) -> Path:
    text = (data_dir("targets") / "loihi.toml").read_text().replace("cores = 128 ", f"cores = {cores} ")
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


BAD_INPUTS = [
    ("malformed DSL", "input x[4]\npopulation h[3] : cuba_lif(\nconnect x -> h : dense(1)\n", [],
     r"bad\.nmc:3:9: error: unexpected 'x', expected one of: '\('"),
    ("unknown neuron parameter", "input x[4]\npopulation h[3] : cuba_lif(tau_m = 3)\n", [],
     r"bad\.nmc:2:28: error: unknown parameter 'tau_m' for neuron model 'cuba_lif'"),
    ("per-core limit", "input x[5000]\npopulation h[2] : cuba_lif\nconnect x -> h : dense(2)\n", [],
     r"population 'h': .*input axons.*\(5000\) exceeded max \(core\.max_input_axons = 4096\) by 904"),
    ("per-chip limit", "".join(f"input x{i}[3000]\npopulation h{i}[10] : cuba_lif\nconnect x{i} -> h{i} : dense(2)\n"
                               for i in range(3)), ["--target", "TINY"],
     r"network needs 3 cores, exceeded max \(chip\.cores x chip\.chips = 2\) by 1"),
    ("machine size, before any work", "population h[3000] : cuba_lif\n", ["--target", "TINY"],
     r"bad\.nmc:1:14: error: population 'h': neurons \(3000\) exceeded max \(chip\.cores x chip\.chips x "
     r"core\.max_compartments = 2048\) by 952"),
    ("delay beyond the target", "input x[2]\npopulation h[2] : cuba_lif\nconnect x -> h : dense(2, delay = 70)\n", [],
     r"projection 'x->h': error: delay \(70\) exceeded max \(synapse\.max_delay = 62\) by 8"),
    ("unknown target", "population h[3] : cuba_lif\n", ["--target", "truenorth"],
     r"unknown target 'truenorth' \(available: loihi"),
    ("unknown pass", "population h[3] : cuba_lif\n", ["--pass-pipeline", "verify,fold"],
     r"'fold' does not refer to a registered pass"),
]


@pytest.mark.parametrize("what,src,extra,pattern", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_compile_input_is_one_clear_line(cli, tmp_path: Path, what: str, src: str, extra: list[str],
                                             pattern: str) -> None:
    path = tmp_path / "bad.nmc"
    path.write_text(src)
    extra = [str(_small_target(tmp_path, 2)) if e == "TINY" else e for e in extra]
    code, out, err = cli("compile", path, "-o", tmp_path / "bad.nmcb", *extra)
    assert code == 1
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(lines) == 1, err
    import re
    assert re.search(pattern, lines[0]), lines[0]


def _compiled(cli, small_src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ok.nmcb"
    assert cli("compile", small_src, "-o", out)[0] == 0
    return out


def test_damaged_binaries_are_refused(cli, small_src: Path, tmp_path: Path) -> None:
    good = _compiled(cli, small_src, tmp_path).read_bytes()
    cases = {
        "truncated.nmcb": (good[: len(good) // 2], "truncated binary"),
        "altered.nmcb": (good[:-10] + bytes([good[-10] ^ 0x40]) + good[-9:], "checksum mismatch"),
        "foreign.nmcb": (b"\x7fELF" + good[4:], "not an nmc binary"),
        "tiny.nmcb": (b"NM", "not an nmc binary"),
    }
    for name, (data, fragment) in cases.items():
        (tmp_path / name).write_bytes(data)
        code, _, err = cli("run", tmp_path / name, "--steps", "5")
        assert code == 1 and fragment in err and "Traceback" not in err, (name, err)
        assert len(err.strip().splitlines()) == 1


def test_binary_for_another_target_is_refused(cli, small_src: Path, tmp_path: Path) -> None:
    b = read_binary(_compiled(cli, small_src, tmp_path))
    # The interpreter is the one the binary's target configuration names, whatever the target's name.
    config = dict(b.target_config, parts=dict(b.target_config["parts"], interpreter="nosuch"))
    other = Binary(target="spinnaker", meta=b.meta, sections=dict(b.sections), target_config=config)
    (tmp_path / "spin.nmcb").write_bytes(encode_binary(other))
    code, _, err = cli("run", tmp_path / "spin.nmcb", "--steps", "5")
    assert code == 1 and "binary for target 'spinnaker': no interpreter part registered under 'nosuch'" in err
    code, _, err = cli("run", tmp_path / "spin.nmcb", "--steps", "5", "--target", "loihi")
    assert code == 1 and "binary is for target 'spinnaker', not 'loihi'" in err
    old = Binary(target="loihi", meta=b.meta, sections=dict(b.sections),
                 target_config={k: v for k, v in b.target_config.items() if k != "parts"})
    (tmp_path / "old.nmcb").write_bytes(encode_binary(old))
    code, _, err = cli("run", tmp_path / "old.nmcb", "--steps", "5")
    assert code == 1 and "names no interpreter" in err


@pytest.mark.parametrize("arrays,fragment", [
    ({"y": np.zeros((5, 20))}, "no input port 'y' (ports: x)"),
    ({"x": np.zeros((5, 19))}, "input 'x': expected shape (steps, 20) or (samples, steps, 20), got (5, 19)"),
    ({"x": np.full((5, 20), 2)}, "input 'x': values must be spikes (0 or 1)"),
    ({"x": np.zeros((3, 5, 20)), "labels": np.zeros(4, dtype=int)}, "'labels' must have shape (3,), got (4,)"),
])
def test_bad_run_data_is_one_clear_line(cli, small_src: Path, tmp_path: Path, arrays: dict, fragment: str) -> None:
    binary = _compiled(cli, small_src, tmp_path)
    np.savez(tmp_path / "d.npz", **arrays)
    code, _, err = cli("run", binary, "--input", tmp_path / "d.npz")
    assert code == 1 and fragment in err and "Traceback" not in err, err


def test_cli_as_a_process(small_src: Path, tmp_path: Path) -> None:
    """The installed entry point: exit codes and no traceback, as a user sees them."""
    ok = subprocess.run([sys.executable, "-m", "nmc", "compile", str(small_src), "-o", str(tmp_path / "p.nmcb")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "nmc", "run", str(tmp_path / "missing.nmcb"), "--steps", "3"],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr and "cannot read binary" in bad.stderr


def test_parameters_left_out_take_the_model_defaults(cli, tmp_path: Path) -> None:
    """An IR population without params compiles with cuba_lif's defaults (threshold 100, ...)."""
    ir = tmp_path / "bare.nmcir"
    ir.write_text('// nmc-ir v1\nnetwork "bare" {}\npopulation "h" {model = "cuba_lif", size = 3}\n')
    assert cli("compile", ir, "-o", tmp_path / "bare.nmcb")[0] == 0
    b = read_binary(tmp_path / "bare.nmcb")
    assert int(b.sections["cfg_threshold_mant"][0]) == 100 and int(b.sections["cfg_refractory"][0]) == 1


def test_spike_messages_split_by_core(tmp_path: Path) -> None:
    """A population split over two cores that projects onto itself sends messages both within
    and between cores; the two counts add up to all messages."""
    from nmc.driver import compile_network
    from nmc.frontend.dsl import parse_dsl
    from nmc.sim.loihi import LoihiInterpreter
    src = ("population h[1500] : cuba_lif(bias = 7000, threshold = 100, refractory = 3)\n"
           "connect h -> h : sparse(p = 0.002, weights = randint(0, 4), seed = 1)\n")
    chip = LoihiInterpreter(compile_network(parse_dsl(src), "loihi"))
    assert chip.n_cores == 2
    c = chip.run(30).counters
    assert c["spike_messages_within_core"] > 0 and c["spike_messages_between_cores"] > 0
    assert c["spike_messages_within_core"] + c["spike_messages_between_cores"] == c["spike_messages"]


@pytest.mark.parametrize("flag", [["--average-last", "5", "--out", "r.npz"], ["--test", "t.npz"]])
def test_schedule_flags_on_a_plain_binary_are_refused(cli, small_src: Path, tmp_path: Path, flag: list[str]) -> None:
    binary = _compiled(cli, small_src, tmp_path)
    np.savez(tmp_path / "d.npz", x=np.zeros((5, 20)))
    code, _, err = cli("run", binary, "--input", tmp_path / "d.npz", *flag)
    assert code == 1 and err.strip() == f"nmc: error: {flag[0]} needs a binary with a learning schedule; '{binary}' has none", err
