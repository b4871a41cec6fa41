"""Malformed and hostile inputs end in one clear line: the corpus of tests/hostile_cases.py run
through the command line, one process per case.

For every case: a non-zero exit status, exactly one line on stderr that contains the expected
text, no traceback, no hang (each case has 30 s at most, some far less), and nothing written --
the case's directory and the shared workspace hold afterwards exactly what they held before.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from hostile_cases import Case, build_workspace, corpus

MIN_CASES = 150
WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))


@dataclass
class Outcome:
    case: Case
    code: int | None  # None: killed after max_seconds
    stderr: str
    seconds: float
    changed: list[str]  # files of the case directory created, altered or removed by the run


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(root.rglob("*"))}


def _run(case: Case, home: Path, env: dict[str, str]) -> Outcome:
    home.mkdir(parents=True)
    for name, data in case.files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_bytes(data)
    before = _snapshot(home)
    start = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "nmc", *case.argv], cwd=home, capture_output=True, text=True,
                           timeout=case.max_seconds, env=env, stdin=subprocess.DEVNULL)
        code, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired as exc:
        code, err = None, (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
    seconds = time.perf_counter() - start
    after = _snapshot(home)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return Outcome(case, code, err, seconds, changed)


@dataclass
class CorpusRun:
    outcomes: list[Outcome]
    wall: float  # seconds, start to end
    cpu: float   # CPU seconds the case processes used together
    workspace_before: dict[str, bytes]
    workspace_after: dict[str, bytes]


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    """Every case run once, in parallel, with the time taken and the workspace before and after."""
    ws = tmp_path_factory.mktemp("workspace")
    build_workspace(ws)
    cases = corpus(ws)
    homes = tmp_path_factory.mktemp("cases")
    # The processes share compiled bytecode in a temporary directory (even where the environment
    # turns writing it off): compiling every module in every process would double their cost.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=os.pathsep.join(sys.path), PYTHONPYCACHEPREFIX=str(tmp_path_factory.mktemp("pyc")))
    ws_before = _snapshot(ws)
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(lambda ic: _run(ic[1], homes / f"case{ic[0]:03d}", env), enumerate(cases)))
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return CorpusRun(outcomes, wall, cpu, ws_before, _snapshot(ws))


def _problem(o: Outcome) -> str | None:
    """What is wrong with one outcome, or None."""
    lines = o.stderr.strip().splitlines()
    if o.code is None:
        return f"no answer within {o.case.max_seconds:g} s"
    if o.code == 0:
        return "exit status 0"
    if o.code < 0:
        return f"killed by signal {-o.code}"
    if "Traceback" in o.stderr:
        return "traceback: " + " | ".join(lines[-3:])
    if len(lines) != 1:
        return f"{len(lines)} lines on stderr: " + " | ".join(lines[:4])
    if "error" not in lines[0] or o.case.expect not in lines[0]:
        return f"expected '{o.case.expect}' in: {lines[0]}"
    if o.changed:
        return f"wrote or changed {o.changed}"
    if o.seconds > o.case.max_seconds:
        return f"took {o.seconds:.1f} s (limit {o.case.max_seconds:g} s)"
    return None


def test_every_hostile_input_ends_in_one_clear_line(corpus_run: CorpusRun) -> None:
    outcomes = corpus_run.outcomes
    # What the corpus costs, for the record (pytest -s); each case's own limit is the no-hang check.
    parallel = min(WORKERS, os.cpu_count() or 1)
    slowest = max(outcomes, key=lambda o: o.seconds)
    print(f"\n{len(outcomes)} cases: {corpus_run.wall:.1f} s wall, {corpus_run.cpu:.1f} s CPU over {parallel} "
          f"processors ({corpus_run.cpu / parallel:.1f} s each); slowest {slowest.case.name} {slowest.seconds:.1f} s")
    failures = [f"{o.case.name}: {problem}" for o in outcomes if (problem := _problem(o)) is not None]
    assert not failures, f"{len(failures)} of {len(outcomes)} cases failed:\n" + "\n".join(failures)


def test_the_corpus_covers_every_command_and_file_kind(corpus_run: CorpusRun) -> None:
    outcomes = corpus_run.outcomes
    assert len(outcomes) >= MIN_CASES
    kinds = {o.case.name.split(":")[0] for o in outcomes}
    assert {"usage", "dsl", "ir", "target", "compile output", "binary", "inspect", "run data", "run output",
            "schedule", "checkpoint", "plot", "spinnaker"} <= kinds
    commands = {o.case.argv[0] for o in outcomes if o.case.argv}
    assert commands == {"compile", "inspect", "run", "plot", "frobnicate"}


def test_the_shared_inputs_are_untouched(corpus_run: CorpusRun) -> None:
    assert corpus_run.workspace_before == corpus_run.workspace_after
