"""``synfire``: synthesise the gate chain that enforces a learning schedule (docs/schedules.md).

The schedule (``net.attrs["schedule"]``) says which population fires in which phase, with what
activation threshold, which phases veto which populations, and at which cycle tick each input
port receives a sample. This pass builds:

- a ring of ``cycle`` graded gate units ``sched/g00 ...`` (gate k fires at cycle tick k; each
  gate excites the next one strongly enough to fire it alone) and an input port ``sched/kick``
  that starts the ring (a kick at step 0 fires g00 at step 1, where cycle 0 starts);
- for a gate entry (P, k, θ): a projection g_k -> P whose weight cancels P's bias so that P fires
  at tick k+1 iff its other input exceeds θ·threshold (for a graded unit w = 1 − θ − bias, in
  threshold units). Where one synapse of the target cannot hold w exactly, the target's formats
  split it in two synapses, so any θ is exact (``Formats.gate_weights``; on the Loihi-like chip a
  gate's 8-bit mantissa at exponent 6 steps θ by 1/16, and a remainder at exponent 0 fixes it);
- for a veto (P, k): g_k -> P with the weight that keeps P silent, and its input unwrapped, for the
  widest range of stale input (``Formats.veto_weight``; −11.5 thresholds on a graded unit of the
  Loihi-like chip, whose 22-bit input ends at ±32).

Every number that depends on the chip comes from the target's formats part, so the pass runs
unchanged on any target (and before or after ``map-neurons``: weights are in the post model's units).

It then checks the schedule: a population gated and vetoed in the same phase, or gated in a phase
when none of its inputs can arrive, is an error naming the phase and the population; input that can
make a scheduled population fire outside its phases is a warning.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ScheduleError
from ..ir.annotations import check_schedule
from ..ir.network import Network, Population, Projection
from .registry import PassContext, register_pass

PREFIX = "sched"
#: A gate of the chain fires the next one on its own, with this margin (in units of the next
#: gate's threshold) above the input at which it would just fire.
CHAIN_MARGIN = 1.0 / 16
#: Models a gate or veto can switch on and off: units that keep nothing from one step to the next.
MEMORYLESS = ("graded", "cuba_lif")


@register_pass("synfire")
def synfire(net: Network, ctx: PassContext) -> Network:
    """Synthesise gate neurons, gate and veto connections for the network's schedule, and check it."""
    sched = net.attrs.get("schedule")
    if sched is None or check_schedule(sched).get("synthesized"):
        return net
    cycle = int(sched["cycle"])
    _check_chain_fits(net, cycle, ctx)
    gates = list(sched.get("gates", []))
    vetoes = list(sched.get("vetoes", []))
    _check_conflicts(net, cycle, gates, vetoes)
    for entry in gates + vetoes:
        pop = net.population(entry["population"])
        if pop.model not in MEMORYLESS:
            raise ScheduleError(f"population '{pop.name}' (model '{pop.model}') cannot be gated or vetoed: gates "
                                f"switch memoryless units ({', '.join(MEMORYLESS)})", location="schedule")

    formats = ctx.target.formats
    names = [f"{PREFIX}/g{k:02d}" for k in range(cycle)]
    for n in names:
        net.add_population(Population(n, 1, "graded", {}))
    kick = f"{PREFIX}/kick"
    net.add_population(Population(kick, 1, "input", role="input"))
    chain = formats.gate_weights(net.population(names[0]), -CHAIN_MARGIN)
    if len(chain) != 1:
        raise ScheduleError(f"target '{ctx.target.name}' cannot hold the gate chain's weight in one synapse",
                            location="schedule")
    chain_w = chain[0]
    net.add_projection(Projection(f"{kick}->{names[0]}", kick, names[0], "one_to_one", np.array([chain_w])))
    for k in range(cycle):
        nxt = names[(k + 1) % cycle]
        net.add_projection(Projection(f"{names[k]}->{nxt}", names[k], nxt, "one_to_one", np.array([chain_w])))
    for g in gates:
        pop = net.population(g["population"])
        src = names[int(g["phase"])]
        for w in formats.gate_weights(pop, float(g["threshold"])):
            net.add_projection(Projection(net.unique_projection_name(src, pop.name), src, pop.name, "one_to_all",
                                          np.array([w])))
    for v in vetoes:
        src = names[int(v["phase"])]
        pop = v["population"]
        net.add_projection(Projection(net.unique_projection_name(src, pop), src, pop, "one_to_all",
                                      np.array([formats.veto_weight(net.population(pop))])))
    for warning in _spurious_firing(net, cycle, gates, vetoes, {n for n in names} | {kick}, formats):
        ctx.diagnostics.warn(warning, location="schedule")
    sched["synthesized"] = True
    sched["kick"] = kick
    sched["first_cycle_step"] = 1
    return net


def _check_chain_fits(net: Network, cycle: int, ctx: PassContext) -> None:
    """The gate chain is one neuron per phase: refuse a cycle the machine cannot hold before
    building (or even analysing) a chain of that length."""
    limit = ctx.target.part("layout")(ctx.target).size_limit()
    used = sum(p.size for p in net.populations if not p.is_input)
    if used + cycle > limit.neurons:
        raise ScheduleError(f"schedule cycle = {cycle} needs a gate neuron per phase; with the network's {used} "
                            f"neurons that is {used + cycle}, more than the machine holds ({limit.neurons_key} = "
                            f"{limit.neurons})", location="schedule")


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
                     gate_pops: set[str], formats: Any) -> list[str]:
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
        need = formats.firing_level(pop)
        drive: dict[int, list[tuple[str, float]]] = {}
        for p in net.projections_into(pop_name):
            if p.pre in gate_pops:
                continue
            w = p.dense_matrix(net.population(p.pre).size, pop.size)
            if net.attrs.get("quantized") and p.exponent is not None:
                w = w * (2.0 ** p.exponent)  # quantized weights are mantissas
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
