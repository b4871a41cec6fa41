"""What the checkpoint tests of scheduled training (test_checkpoint.py) and of e-prop runs
(test_eprop_checkpoint.py) share: a CLI run stopped by a real SIGTERM once it has saved an
epoch, and the comparison of two RESULT.npz files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nmc.errors import RunError
from nmc.sim.checkpoint import CheckpointDir


def cli_env() -> dict[str, str]:
    """The environment of an ``nmc`` subprocess that imports this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_stopped_by_sigterm(args: list, ck: Path, out: Path, timeout: float) -> tuple[int, int, str, str]:
    """``nmc ARGS --checkpoint CK --out OUT`` as a process: once its checkpoint is past epoch 0,
    freeze it, read the epoch saved, send SIGTERM and let it go on. Returns (epoch saved when the
    signal came, exit status, stdout, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "nmc", *map(str, args), "--checkpoint", str(ck),
                             "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    deadline = time.monotonic() + timeout
    epoch = -1
    while epoch < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
        try:
            epoch = CheckpointDir(ck).read(meta_only=True)[1]["epoch"]
        except RunError:   # not written yet
            pass
    # Freeze the process, see where it is, then ask it to stop.
    proc.send_signal(signal.SIGSTOP)
    epoch = CheckpointDir(ck).read(meta_only=True)[1]["epoch"]
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    stdout, stderr = proc.communicate(timeout=60)
    return epoch, proc.returncode, stdout, stderr


def same_result(a_path: Path, b_path: Path) -> None:
    """Two RESULT.npz files hold the same arrays, bit for bit."""
    a, b = np.load(a_path), np.load(b_path)
    assert a.files == b.files
    for k in a.files:
        assert np.array_equal(a[k], b[k]), k
