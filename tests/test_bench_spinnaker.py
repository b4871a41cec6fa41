"""bench/spinnaker_mapping.py: the three networks map within PACMAN's figures (cores 5/40/100,
compressed router entries 3/15/295), and the last line has the issue's form. The compile time of
(b) is the bench's to measure (this suite shares the machine), not asserted here."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "spinnaker_mapping.py"


def test_the_three_networks_need_no_more_than_pacman(capsys: pytest.CaptureFixture[str]) -> None:
    main = runpy.run_path(str(BENCH), run_name="nmc_bench_spinnaker_mapping")["main"]
    assert main([]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    m = re.fullmatch(r"cores=(\d+)/(\d+)/(\d+) router_entries=(\d+)/(\d+)/(\d+) compile_s_b=([0-9.]+)", last)
    assert m, last
    cores, entries = [int(x) for x in m.groups()[:3]], [int(x) for x in m.groups()[3:6]]
    assert cores[0] <= 5 and cores[1] <= 40 and cores[2] <= 100, cores
    assert entries[0] <= 3 and entries[1] <= 15 and entries[2] <= 295, entries
