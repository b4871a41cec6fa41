"""The Loihi-like cost model against numbers worked out by hand from the target file's
per-operation costs (docs/interpreter.md, "Counters, time and energy").

The model is a per-operation cost model, not a simulation of the core's pipeline: each counted
operation costs its Davies 2018 Table 2 time and energy, a step lasts as long as its busiest core
plus the barrier, and a message pays one hop per tile it crosses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmc.driver import compile_network
from nmc.frontend.dsl import parse_dsl
from nmc.sim import interpreter_for
from nmc.target import load_target

REPO = Path(__file__).resolve().parent.parent

# x spikes at step 0; a (memoryless, threshold 1) fires at step 1; b fires at step 2.
CHAIN = """\
input x[1]
neuron unit = cuba_lif(decay_u = 4095, decay_v = 4096, threshold = 1, refractory = 1)
population a[1] : unit
population b[1] : unit
connect x -> a : one_to_one(weights = 10)
connect a -> b : one_to_one(weights = 10)
output b
"""


def _target(tmp_path: Path, **changes: str) -> Path:
    text = (REPO / "targets" / "loihi.toml").read_text()
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


def _run(target_path: Path) -> dict[str, float]:
    chip = interpreter_for(compile_network(parse_dsl(CHAIN), load_target(str(target_path))))
    res = chip.run(3, {"x": np.array([[1], [0], [0]], dtype=np.uint8)})
    assert res.spikes["b"][:, 0].tolist() == [False, False, True]
    return res.counters


def test_one_core_by_hand(tmp_path: Path) -> None:
    """Core 0 holds a and b. Per step (synaptic ops, active, inactive, messages):
    step 0: 1 (x -> a), 0, 2, 0;  step 1: 1 (a -> b), 1 (a), 1, 1 (a's axon);  step 2: 0, 1 (b), 1, 0.
    Table 2 times: 3.5 ns per synaptic op, 8.4 / 5.3 ns per active / inactive update, 2.1 ns per
    message within a tile; the barrier on one tile is 113 ns."""
    c = _run(_target(tmp_path))
    core_ns = [3.5 + 2 * 5.3, 3.5 + 8.4 + 5.3 + 2.1, 8.4 + 5.3]
    step_ns = [x + 113.0 for x in core_ns]
    assert c["cycles"] == 128 + 133 + 127                    # ceil of each step at tick_ns = 1
    assert c["time_s"] == pytest.approx(sum(step_ns) * 1e-9, rel=1e-12)
    energy_pj = 2 * 23.6 + 2 * 81.0 + 4 * 52.0 + 1 * 1.7       # syn ops, active, inactive, message
    assert c["energy_j"] == pytest.approx(energy_pj * 1e-12, rel=1e-12)
    assert (c["synaptic_ops"], c["neuron_updates_active"], c["neuron_updates_inactive"]) == (2, 2, 4)


def test_two_tiles_by_hand(tmp_path: Path) -> None:
    """One compartment per core and one core per tile: a on core 0 (tile 0), b on core 1 (tile 1,
    one hop east). The step lasts as long as the busier core; the barrier spans 2 tiles:
    113 + (465 - 113) / 31 ns."""
    path = _target(tmp_path, **{"max_compartments = 1024": "max_compartments = 1",
                                "cores_per_tile = 4": "cores_per_tile = 1"})
    c = _run(path)
    barrier = 113.0 + (465.0 - 113.0) / 31
    # step 0: core 0 = syn + inactive, core 1 = inactive; step 1: core 0 = active + message,
    # core 1 = syn + inactive; step 2: core 0 = inactive, core 1 = active.
    busiest = [max(3.5 + 5.3, 5.3), max(8.4 + 2.1, 3.5 + 5.3), max(5.3, 8.4)]
    step_ns = [b + barrier for b in busiest]
    assert c["cycles"] == sum(int(np.ceil(s)) for s in step_ns) == 134 + 135 + 133
    assert c["time_s"] == pytest.approx(sum(step_ns) * 1e-9, rel=1e-12)
    energy_pj = 2 * 23.6 + 2 * 81.0 + 4 * 52.0 + 1.7 + 1 * 3.0   # ... plus one east-west hop
    assert c["energy_j"] == pytest.approx(energy_pj * 1e-12, rel=1e-12)
    assert c["spike_messages_between_cores"] == 1


def test_costs_follow_the_target_file(tmp_path: Path) -> None:
    """Doubling one per-operation cost in the target file doubles its share, and nothing else."""
    base = _run(_target(tmp_path))
    path = _target(tmp_path, **{"synaptic_op = 23.6": "synaptic_op = 47.2"})
    doubled = _run(path)
    assert doubled["energy_j"] - base["energy_j"] == pytest.approx(2 * 23.6e-12, rel=1e-9)
    assert doubled["cycles"] == base["cycles"]
