"""The SpiNNaker-like binary checks (nmc/sim/spinnaker_validate.py), in process.

Every case of ``spinnaker_cases`` in tests/hostile_cases.py -- a good binary altered and re-sealed
with a valid checksum -- is refused with one line that names the problem. The hostile corpus runs
some of them as ``python -m nmc`` processes (the command-line promise: one line, no traceback,
nothing written); here all of them run in one process, in milliseconds each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hostile_cases import build_spinnaker_binaries, spinnaker_cases
from nmc.binary import decode_binary, read_binary
from nmc.errors import NmcError
from nmc.sim import interpreter_for, validate_binary


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("spinnaker_binaries")
    build_spinnaker_binaries(ws)
    return ws


def _refusal(argv: tuple[str, ...], data: bytes) -> str | None:
    """The one-line message a damaged binary is refused with (None: it was accepted), as
    ``nmc inspect`` (the checks alone) or ``nmc run`` (loading the interpreter) sees it."""
    try:
        binary = decode_binary(data)
        if argv[0] == "inspect":
            validate_binary(binary)
        else:
            interpreter_for(binary)
    except NmcError as exc:
        return str(exc)
    return None


def test_every_damaged_spinnaker_binary_is_refused_with_the_reason(workspace: Path) -> None:
    cases = spinnaker_cases(workspace)
    assert len(cases) >= 60 and sum(corpus for _, corpus in cases) >= 30
    failures = []
    for case, _ in cases:
        message = _refusal(case.argv, case.files["bad.nmcb"])
        if message is None:
            failures.append(f"{case.name}: accepted")
        elif "\n" in message or "inconsistent binary: " not in message or case.expect not in message:
            failures.append(f"{case.name}: expected '{case.expect}' in: {message}")
    assert not failures, "\n".join(failures)


def test_the_good_binaries_pass_and_run(workspace: Path) -> None:
    for name in ("ff_spinnaker.nmcb", "eprop.nmcb"):
        binary = read_binary(workspace / name)
        validate_binary(binary)
        chip = interpreter_for(binary)
        inputs = {p["name"]: np.zeros((3, p["size"]), dtype=np.uint8) for p in binary.meta["inputs"]}
        assert chip.run(3, inputs).steps == 3

