"""Smoke test of bench/eprop_evidence.py at a few trials, so the benchmark cannot silently rot: its
last line has the issue's format, and a run resumed from one of its checkpoints, across a halving
of the learning rates, prints what the straight run printed from there on (the same trials,
updates, errors and test error).

The bench is a script, not a package module, so it is imported from its path.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

from bench_loader import load_bench


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("eprop_evidence")


def _lines(text: str) -> list[str]:
    """The printed lines that depend on the run, not on the clock or the file names."""
    keep = []
    for line in text.splitlines():
        if line.startswith(("compiled in", "resumed from", "  saved ")):
            continue
        keep.append(re.sub(r"; \d+ s$", "", re.sub(r", [0-9.]+ s/trial", "", line)))
    return keep


def test_resumed_run_goes_on_as_the_straight_run(bench: ModuleType, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--trials", "8", "--batch", "2", "--eval-every", "1", "--eval", "1", "--test", "2",
            "--curriculum", "1,7", "--promote", "1.1", "--eta-halve-every", "2", "--stop-on", "training"]
    assert bench.main([*args, "--checkpoint", str(tmp_path / "a")]) == 0
    straight = _lines(capsys.readouterr().out)
    assert re.fullmatch(r"error=[0-9.]+ trials=8 overruns=0 neurons_per_core=\d+", straight[-1])
    assert any("learning rates halved" in line for line in straight)
    assert bench.main([*args, "--resume", str(tmp_path / "a" / "trial_4.npz")]) == 0
    resumed = _lines(capsys.readouterr().out)
    # The checkpoint is written after the validation line of trial 4; what follows must repeat.
    after = next(i for i, line in enumerate(straight) if line.startswith("  held-out error after 4 trials"))
    assert resumed == straight[after + 1:]


@pytest.mark.parametrize("content, says", [
    (b"not an npz", "cannot read it as an npz file"),
    (None, "No such file"),
    ("other npz", "it is not a checkpoint of this bench"),
])
def test_a_bad_resume_file_is_one_line(bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       content: bytes | str | None, says: str) -> None:
    import numpy as np
    path = tmp_path / "ck.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.savez(path, a=np.zeros(3))
    with pytest.raises(SystemExit) as exc:
        bench.main(["--trials", "2", "--resume", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert f"error: --resume {path}: " in err[-1] and says in err[-1]   # the program name is argv[0]
    assert "Traceback" not in "\n".join(err)


def test_a_negative_halving_period_is_refused(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--eta-halve-every", "-3"])
    assert "--eta-halve-every is a number of trials (0: never), got -3" in capsys.readouterr().err


def test_host_adam_says_it_is_host_assisted(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    """--host-adam: the chip computes G, the host steps Adam and writes the weights back; the
    figure's line names it, and the weights the chip ends with are not the compiled ones."""
    assert bench.main(["--host-adam", "--trials", "4", "--batch", "2", "--eval-every", "0", "--test", "2",
                       "--curriculum", "7", "--eta", "0.08"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"error=[0-9.]+ trials=4 overruns=0 neurons_per_core=\d+ host_assisted=adam", out[-1])
    with pytest.raises(SystemExit):
        bench.main(["--host-adam", "--checkpoint", "x"])
    assert "--host-adam keeps Adam's moments on the host" in capsys.readouterr().err


def test_the_validation_stop_confirms_on_more_validation_trials(bench: ModuleType,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """--stop-on validation: a validation point below the mark and the confirming trials below it
    stop training (a mark above any error stops at the first point at 7 cues); the training-error
    rule (--stop-on training) stops after 5 batches."""
    assert bench.main(["--trials", "8", "--batch", "2", "--eval-every", "1", "--eval", "1", "--test", "1",
                       "--curriculum", "7", "--stop-on", "validation", "--stop-at", "1.1",
                       "--stop-confirm", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  confirming: " in "\n".join(out) and "  stopping: the validation error is below 1.1" in out
    assert re.fullmatch(r"error=[0-9.]+ trials=2 overruns=0 neurons_per_core=\d+", out[-1])
    # The training-error rule: the training error of 5 batches, so with this mark after the fifth.
    assert bench.main(["--trials", "20", "--batch", "2", "--eval-every", "0", "--test", "1", "--curriculum", "7",
                       "--stop-on", "training", "--stop-at", "1.1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  stopping: the training error of the last 5 batches is below 1.1" in out
    assert re.fullmatch(r"error=[0-9.]+ trials=10 overruns=0 neurons_per_core=\d+", out[-1])


@pytest.mark.parametrize("args, says", [
    (["--beta-factor", "-1"], "--beta-factor is a finite factor, 0 or more, got -1.0"),
    (["--beta-factor", "nan"], "--beta-factor is a finite factor, 0 or more, got nan"),
    (["--curriculum", "1,x"], "the curriculum is odd cue counts ending with 7, got 1,x"),
    (["--batch", "0"], "--batch is a number of trials (1 or more), got 0"),
    (["--stop-confirm", "0"], "--stop-confirm is a number of validation trials (1 or more), got 0"),
    (["--eta", "1e30"], "the program does not compile: "),
])
def test_bad_options_are_one_line(bench: ModuleType, capsys: pytest.CaptureFixture[str], args: list[str],
                                  says: str) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main([*args, "--trials", "2", "--test", "1", "--eval-every", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert says in err[-1] and "Traceback" not in "\n".join(err)
