"""``synfire``: synthesise the gate chain that enforces a learning schedule (docs/schedules.md).

The schedule (``net.attrs["schedule"]``) says which population fires in which phase, with what
activation threshold, which phases veto which populations, and at which cycle tick each input
port receives a sample. This pass builds:

- a ring of ``cycle`` gate neurons ``sched/g00 ...`` (gate k fires at cycle tick k; each gate
  excites the next one strongly enough to fire it alone) and an input port ``sched/kick`` that
  starts the ring (a kick at step 0 fires g00 at step 1, where cycle 0 starts);
- for a gate entry (P, k, θ): a projection g_k -> P whose weight cancels P's bias so that P fires
  at tick k+1 iff its other input exceeds θ·threshold:  w = threshold·(1 − θ) − bias/64; where
  one synapse of the target cannot hold w exactly (on the Loihi-like chip a gate's 8-bit
  mantissa at exponent 6 steps by 64, i.e. θ by 1/16), a second projection adds the remainder
  at exponent 0, so any θ is exact (see :func:`_gate_parts`);
- for a veto (P, k): g_k -> P with the weight that keeps P silent and its 22-bit input unwrapped
  for the widest range of stale input (see :func:`_veto_weight`; -184·64 on a graded unit).

It then checks the schedule: a population gated and vetoed in the same phase, or gated in a phase
when none of its inputs can arrive, is an error naming the phase and the population; input that can
make a scheduled population fire outside its phases is a warning.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ScheduleError
from ..formats import loihi as fmt
from ..ir.network import Network, Population, Projection
from ..target import Target
from .registry import PassContext, register_pass

PREFIX = "sched"
GATE = {"decay_u": 4095, "decay_v": 4096, "threshold": 1024, "bias": -8 * 1024 * 64, "refractory": 1}


def _gate_weight(pop: Population, theta: float) -> float:
    thr = float(pop.params.get("threshold", 100))
    bias = float(np.max(np.asarray(pop.params.get("bias", 0))))
    return thr * (1.0 - theta) - bias / 64.0


def _gate_parts(pop: Population, theta: float, target: Target) -> list[float]:
    """The gate weight for threshold ``theta`` as synapses the target stores exactly.

    On the Loihi-like chip every effective weight is an integer, so the other input u is one and
    u > θ·thr ⇔ u > ⌊θ·thr⌋: the gate uses the integer threshold, which changes nothing. Its weight
    is one synapse when one can hold it, else a coarse part (the largest multiple of the quantum
    at the exponent the weight needs, below it) plus the remainder at exponent 0."""
    if target.name != "loihi":  # the integer argument and the split follow the Loihi-like format
        return [_gate_weight(pop, theta)]
    thr = float(pop.params.get("threshold", 100))
    w = _gate_weight(pop, float(np.floor(theta * thr)) / thr)
    if w <= 0:
        return [w]
    bits = int(target.get("synapse.weight_bits"))
    e = fmt.choose_weight_exponent(np.array([w]), bits, "excitatory", target)
    if fmt.quantize_weights(np.array([w]), bits, "excitatory", e, target).report.n_rounded == 0:
        return [w]
    quantum = float(fmt.mantissa_range(bits, "excitatory", target)[2] << e)
    coarse = np.floor(w / quantum) * quantum
    return [float(coarse), float(w - coarse)]


VETO = -254.0 * 64  # the published circuit's veto (seeds.md §1.1); targets without an input width


def _veto_weight(pop: Population, target: Target) -> float:
    """The veto that keeps ``pop`` silent, without wrapping its input, for the widest stale input.

    A vetoed unit receives its stale input S (in weight units) plus −V. It stays silent while
    S − V ≤ F, F = threshold − bias/64 (the sum at which it fires with no gate), and its input does
    not wrap while S − V ≥ −R, R = 2^(input_bits−1) / 2^weight_shift. Both hold for |S| ≤ (R + F)/2
    when V = (R − F)/2: the centre of the window (a graded unit: F = 9216, R = 32768, V = 11776 =
    184·64, |S| ≤ 20992). A fixed −254·64 only allowed −16512 ≤ S, which learned W1 sums of MNIST
    cross (docs/schedules.md). V is a multiple of 64, one 8-bit mantissa at exponent 6."""
    if target.name != "loihi":
        return VETO
    r = float(1 << (int(target.get("neuron.input_bits")) - 1 - int(target.get("synapse.weight_shift"))))
    f = _gate_weight(pop, 0.0)  # threshold − bias/64: the gate weight for θ = 0 is the firing level
    quantum = 64.0
    top = float(fmt.mantissa_range(int(target.get("synapse.weight_bits")), "inhibitory", target)[0]) * -quantum
    return -float(np.clip(np.round((r - f) / 2.0 / quantum) * quantum, quantum, top))


@register_pass("synfire")
def synfire(net: Network, ctx: PassContext) -> Network:
    """Synthesise gate neurons, gate and veto connections for the network's schedule, and check it."""
    sched = net.attrs.get("schedule")
    if sched is None or sched.get("synthesized"):
        return net
    cycle = int(sched["cycle"])
    gates = list(sched.get("gates", []))
    vetoes = list(sched.get("vetoes", []))
    _check_conflicts(net, cycle, gates, vetoes)

    names = [f"{PREFIX}/g{k:02d}" for k in range(cycle)]
    for n in names:
        net.add_population(Population(n, 1, "cuba_lif", dict(GATE)))
    kick = f"{PREFIX}/kick"
    net.add_population(Population(kick, 1, "input", role="input"))
    chain_w = float(GATE["threshold"] - GATE["bias"] // 64 + 64)  # fires the next gate on its own
    net.add_projection(Projection(f"{kick}->{names[0]}", kick, names[0], "one_to_one", np.array([chain_w])))
    for k in range(cycle):
        nxt = names[(k + 1) % cycle]
        net.add_projection(Projection(f"{names[k]}->{nxt}", names[k], nxt, "one_to_one", np.array([chain_w])))
    for g in gates:
        pop = net.population(g["population"])
        src = names[int(g["phase"])]
        for w in _gate_parts(pop, float(g["threshold"]), ctx.target):
            net.add_projection(Projection(net.unique_projection_name(src, pop.name), src, pop.name, "one_to_all",
                                          np.array([w])))
    for v in vetoes:
        src = names[int(v["phase"])]
        pop = v["population"]
        net.add_projection(Projection(net.unique_projection_name(src, pop), src, pop, "one_to_all",
                                      np.array([_veto_weight(net.population(pop), ctx.target)])))
    for warning in _spurious_firing(net, cycle, gates, vetoes, {n for n in names} | {kick}):
        ctx.diagnostics.warn(warning, location="schedule")
    sched["synthesized"] = True
    sched["kick"] = kick
    sched["first_cycle_step"] = 1
    return net


def _check_conflicts(net: Network, cycle: int, gates: list[dict[str, Any]], vetoes: list[dict[str, Any]]) -> None:
    seen: set[tuple[str, int]] = set()
    for g in gates:
        net.population(g["population"])
        k = int(g["phase"])
        if not 0 <= k < cycle:
            raise ScheduleError(f"phase {k} of population '{g['population']}' is outside the cycle 0..{cycle - 1}",
                                location="schedule")
        key = (g["population"], k)
        if key in seen:
            raise ScheduleError(f"conflict in phase {k}: population '{g['population']}' is gated twice",
                                location="schedule")
        seen.add(key)
    for v in vetoes:
        k = int(v["phase"])
        if (v["population"], k) in seen:
            raise ScheduleError(f"conflict in phase {k}: population '{v['population']}' is both gated and vetoed",
                                location="schedule")
    ticks = firing_ticks(net, cycle, gates)
    for g in gates:
        if float(g["threshold"]) < 0:
            continue  # fires from its gate alone
        k, pop = int(g["phase"]), g["population"]
        arrive = (k + 1) % cycle
        inputs = [p for p in net.projections_into(pop)]
        if not any(arrive in {(f + 1 + p.delay) % cycle for f in ticks.get(p.pre, set())} for p in inputs):
            have = sorted({(f + 1 + p.delay) % cycle for p in inputs for f in ticks.get(p.pre, set())})
            raise ScheduleError(f"conflict in phase {k}: population '{pop}' is gated to fire at tick {arrive} but "
                                f"none of its inputs can arrive then (inputs arrive at ticks {have or 'never'})",
                                location="schedule")


def firing_ticks(net: Network, cycle: int, gates: list[dict[str, Any]]) -> dict[str, set[int]]:
    """Cycle ticks at which each population may fire: gated populations at phase + 1, input ports
    at their injection tick, others wherever an input may arrive (a fixpoint, over-approximate)."""
    sched = net.attrs["schedule"]
    ticks: dict[str, set[int]] = {p: {int(t) % cycle} for p, t in dict(sched.get("inputs", {})).items()}
    gated: set[str] = set()
    for g in gates:
        ticks.setdefault(g["population"], set()).add((int(g["phase"]) + 1) % cycle)
        gated.add(g["population"])
    changed = True
    while changed:
        changed = False
        for proj in net.projections:
            if proj.post in gated or net.population(proj.post).is_input:
                continue
            new = {(f + 1 + proj.delay) % cycle for f in ticks.get(proj.pre, set())}
            cur = ticks.setdefault(proj.post, set())
            if not new <= cur:
                cur |= new
                changed = True
    return ticks


def _spurious_firing(net: Network, cycle: int, gates: list[dict[str, Any]], vetoes: list[dict[str, Any]],
                     gate_pops: set[str]) -> list[str]:
    """Ticks where a gated population receives input without a gate or a veto, and that input
    alone could cross its threshold."""
    ticks = firing_ticks(net, cycle, gates)
    controlled: dict[str, set[int]] = {}
    for g in gates:
        controlled.setdefault(g["population"], set()).add((int(g["phase"]) + 1) % cycle)
    for v in vetoes:
        controlled.setdefault(v["population"], set()).add((int(v["phase"]) + 1) % cycle)
    out = []
    for pop_name in sorted(controlled):
        pop = net.population(pop_name)
        need = float(pop.params.get("threshold", 100)) - float(np.max(np.asarray(pop.params.get("bias", 0)))) / 64
        drive: dict[int, list[tuple[str, float]]] = {}
        for p in net.projections_into(pop_name):
            if p.pre in gate_pops:
                continue
            w = p.dense_matrix(net.population(p.pre).size, pop.size)
            w = w * (2.0 ** p.exponent) if p.exponent is not None else w
            max_pos = float(np.clip(w, 0, None).sum(axis=0).max(initial=0.0))
            for f in ticks.get(p.pre, set()):
                drive.setdefault((f + 1 + p.delay) % cycle, []).append((p.name, max_pos))
        for tick, srcs in sorted(drive.items()):
            if tick in controlled[pop_name]:
                continue
            if sum(m for _, m in srcs) > need:
                names = ", ".join(sorted({n for n, _ in srcs}))
                out.append(f"population '{pop_name}' may fire at tick {tick} outside its phases "
                           f"(input from {names} arrives then; add a veto in phase {(tick - 1) % cycle})")
    return out
