"""Gate thresholds on the chip: a unit gated at θ fires iff its other input exceeds θ·threshold,
for any θ, not only the multiples of 1/16 one 8-bit gate synapse can hold (docs/schedules.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmc.driver import compile_network
from nmc.frontend.dsl import parse_dsl
from nmc.sim.loihi import LoihiInterpreter
from nmc.sim.schedule_runner import ScheduleRunner


@pytest.mark.parametrize("theta", [0.05, 0.3, 0.5, 0.8125, -0.3, -1.0])
def test_gated_unit_fires_iff_its_input_exceeds_theta(theta: float, tmp_path: Path) -> None:
    edge = theta * 1024
    w = [int(np.floor(edge)) + d for d in range(-3, 5)]          # input sums around the edge
    # Each sum arrives over five synapses of at most 255 in magnitude: exact at exponent 0.
    q = int(np.floor(edge)) // 5
    parts = np.array([[q] * 4 + [v - 4 * q] for v in w], dtype=np.float64)
    pre = np.arange(parts.size)
    # Weights into a graded unit are in units of its threshold.
    np.savez(tmp_path / "w.npz", pre=pre, post=pre // 5, weights=parts.ravel() / 1024)
    net = parse_dsl(f"input x[{parts.size}]\npopulation p[{len(w)}] : graded\n"
                    f"connect x -> p : sparse(file = npz(\"{tmp_path / 'w.npz'}\"))\n"
                    f"schedule cycle = 3\ninject x at 0\ngate p in 0 at {theta!r}\nveto p in 1\nreadout p at 1\n")
    chip = LoihiInterpreter(compile_network(net, "loihi"))
    spikes, _ = ScheduleRunner(chip).present({"x": np.ones((1, parts.size), np.uint8)}, np.array([0]), learn=False)
    assert spikes[0].tolist() == [v > edge for v in w]
    assert 0 < sum(spikes[0]) < len(w)


@pytest.mark.parametrize("stale", [-20800, 20800])
def test_vetoed_unit_stays_silent_without_wrapping(stale: int) -> None:
    """A vetoed graded unit receiving a stale sum of ±20,800 (beyond what a −254·64 veto allowed
    on the negative side: the s22 input wrapped and the unit fired) stays silent, input unwrapped."""
    n = 200
    net = parse_dsl(f"input x[{n}]\ninput y[1]\npopulation p[1] : graded\n"
                    f"connect x -> p : dense({stale // n} / 1024)\nconnect y -> p : dense(0)\n"
                    f"schedule cycle = 3\ninject x at 0\ninject y at 1\nveto p in 0\ngate p in 1 at 0.5\n"
                    f"readout p at 1\n")
    chip = LoihiInterpreter(compile_network(net, "loihi"))
    runner = ScheduleRunner(chip)
    data = {"x": np.ones((1, n), np.uint8), "y": np.ones((1, 1), np.uint8)}
    runner.present(data, np.array([0]), learn=False)
    runner.drain()
    assert runner.overflow.get("input_wrap", 0) == 0
    assert runner.counters["spikes"] == 6  # the gate ring alone (a cycle and the drain): p never fired
