"""Targets are data plus registered parts: a renamed copy of a target file behaves exactly like the
original, and no code in nmc/ compares against a target's name."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmc.binary.format import decode_binary, read_binary
from nmc.parts import PART_KINDS, known_keys, load_part
from nmc.target import available_targets, load_target

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def renamed_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """targets/loihi.toml under another name and file, nothing else changed."""
    text = (REPO / "targets" / "loihi.toml").read_text()
    assert text.count('name = "loihi"') == 1
    path = tmp_path_factory.mktemp("targets") / "loihi_small.toml"
    path.write_text(text.replace('name = "loihi"', 'name = "loihi_small"'))
    return path


@pytest.fixture(scope="module")
def example_sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every bundled example program (the digits one trained into a temporary folder first)."""
    d = tmp_path_factory.mktemp("digits")
    shutil.copy(EXAMPLES / "digits" / "digits.nmc", d)
    subprocess.run([sys.executable, str(EXAMPLES / "digits" / "train.py"), "--out-dir", str(d)], check=True,
                   capture_output=True)
    # examples/eprop is for the SpiNNaker-like target only (e-prop), with generated weights; its
    # own test runs it (tests/test_example_eprop.py).
    others = sorted(p for p in EXAMPLES.rglob("*.nmc") if p.parent not in (EXAMPLES / "digits", EXAMPLES / "eprop"))
    return [d / "digits.nmc", *others]


def _run_args(src: Path) -> list[str]:
    """How each example runs (the README's commands, shortened)."""
    if src.name == "digits.nmc":
        return ["--input", str(src.parent / "digits_test.npz")]
    if src.name == "xor_backprop.nmc":
        return ["--input", str(EXAMPLES / "xor.npz"), "--epochs", "3"]
    return ["--steps", "300"]


def test_renamed_copy_compiles_and_runs_identically(cli, renamed_target: Path, example_sources: list[Path],
                                                    tmp_path: Path) -> None:
    assert len(example_sources) >= 4
    for src in example_sources:
        a, b = tmp_path / f"{src.stem}_a.nmcb", tmp_path / f"{src.stem}_b.nmcb"
        assert cli("compile", src, "-o", a)[0] == 0, src
        assert cli("compile", src, "--target", renamed_target, "-o", b)[0] == 0, src
        ba, bb = read_binary(a), read_binary(b)
        assert (ba.target, bb.target) == ("loihi", "loihi_small")
        assert {k: v for k, v in ba.target_config.items() if k != "name"} == \
            {k: v for k, v in bb.target_config.items() if k != "name"}
        assert ba.meta == bb.meta, src
        assert ba.sections.keys() == bb.sections.keys()
        for k in ba.sections:
            assert ba.sections[k].dtype == bb.sections[k].dtype and np.array_equal(ba.sections[k], bb.sections[k])
        ra, rb = tmp_path / f"{src.stem}_a.npz", tmp_path / f"{src.stem}_b.npz"
        assert cli("run", a, *_run_args(src), "--out", ra)[0] == 0, src
        assert cli("run", b, *_run_args(src), "--out", rb)[0] == 0, src
        with np.load(ra) as x, np.load(rb) as y:
            assert x.files == y.files
            for k in x.files:
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"{src.name}: {k}")


def test_no_code_compares_against_a_target_name() -> None:
    """No branch on a target's name in nmc/: code reaches a target's parts through [parts]."""
    names = {load_target(n).name for n in available_targets()} | set(available_targets())
    alt = "|".join(re.escape(n) for n in sorted(names))
    literal = rf"""["']({alt})["']"""
    patterns = [
        re.compile(rf"(==|!=)\s*{literal}"),                     # x == "loihi"
        re.compile(rf"{literal}\s*(==|!=)"),                     # "loihi" == x
        re.compile(rf"\bin\s*[\(\[\{{][^\n]*{literal}"),         # x in ("loihi", ...)
        re.compile(r"target(_name|\.name)\s*(==|!=|in\b)"),      # target.name == ... / in ...
        re.compile(r"\.target\s*(==|!=)\s*['\"]"),              # binary.target == "..."
        re.compile(r"\[\s*(ctx\.)?target\.name\s*\]|\.get\(\s*(ctx\.)?target\.name"),  # TABLE[target.name]
    ]
    offenders = []
    for path in sorted((REPO / "nmc").rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if any(p.search(code) for p in patterns):
                offenders.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_check_would_catch_a_name_branch() -> None:
    """The patterns above find the forms of name branching nmc used to have."""
    pattern = re.compile(r"""(==|!=)\s*["'](loihi)["']""")
    assert pattern.search('    if target.name != "loihi":')
    assert re.compile(r"target(_name|\.name)\s*(==|!=|in\b)").search("if ctx.target.name == other:")


def test_every_built_in_part_loads() -> None:
    for kind in PART_KINDS:
        for key in known_keys(kind):
            assert load_part(kind, key) is not None, (kind, key)


def test_every_target_file_names_registered_parts() -> None:
    for name in available_targets():
        target = load_target(name)
        assert set(target.parts) == set(PART_KINDS)


def test_list_targets_shows_the_parts(cli) -> None:
    code, out, _ = cli("compile", "--list-targets")
    assert code == 0 and "loihi" in out and "interpreter=loihi" in out


def test_binary_decodes_with_its_parts(cli, tmp_path: Path) -> None:
    src = EXAMPLES / "recurrent" / "ei_network.nmc"
    assert cli("compile", src, "-o", tmp_path / "e.nmcb")[0] == 0
    b = decode_binary((tmp_path / "e.nmcb").read_bytes())
    assert b.target_config["parts"]["interpreter"] == "loihi"


def test_the_interpreter_follows_the_protocol(cli, tmp_path: Path) -> None:
    """nmc.sim.protocol.Interpreter is the contract the host-side runners are written against."""
    from nmc.sim import interpreter_for
    from nmc.sim.protocol import Interpreter, RunResult
    assert cli("compile", EXAMPLES / "xor_backprop.nmc", "-o", tmp_path / "x.nmcb")[0] == 0
    chip = interpreter_for(read_binary(tmp_path / "x.nmcb"))
    assert isinstance(chip, Interpreter)
    res = chip.run(2, {})
    assert isinstance(res, RunResult) and chip.t == 2
    for key in ("timesteps", "spikes", "synaptic_ops", "synaptic_updates", "cycles", "time_s", "energy_j"):
        assert key in res.counters, key
    chip.reset()
    assert chip.t == 0 and set(chip.plastic_weights()) == set(chip.meta["backprop"]["weights"]) | {
        p["name"] for p in chip.meta["plastic"]}
