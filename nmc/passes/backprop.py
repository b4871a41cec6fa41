"""``backprop``: expand ``learn backprop(x -> h -> o, target t)`` into the synfire-gated spiking
backpropagation circuit of Renner, Sheldon, Zlotnik, Tao & Sornborger (docs/backprop.md).

Every unit is a *graded* neuron (nmc.ir.models): memoryless, with a bias of −8 thresholds, so it
fires only in the tick after a gate cancels the bias. With the input sum a (in units of the
threshold), a gate for threshold θ makes it fire iff a > θ. Weights are in threshold units; the
construct's W1, W2 ... are integers in units of 1/1024 of it (``WEIGHT_UNIT``). The learning
rule's step is one step of the target's plastic weight grid (``Formats.plastic_grid``). The pass
creates the populations, relays and plastic projections and writes the phase schedule; the
``synfire`` pass then synthesises the gate chain that enforces it, and ``map-neurons`` lowers
the graded units to the target's registers.

Training (12 phases; gate k fires at cycle tick k, gated populations fire at k+1):

  1 x from the data port           2 h = [W1ᵀx > ½], h< = [a > lo], h> = [a > hi]
  3 o, o<, o> from W2; t; m_h ← h  4 d+ = o< ∧ t ∧ ¬o ;  d− = o< ∧ o ∧ ¬t ∧ ¬o>
  5 h (m_h), o's (d+), oT− (d−), reward: W2 += h d+ᵀ, W2ᵀ₊ += d+ hᵀ, W2ᵀ₋ += d− hᵀ
  6 h1T = [W2ᵀ₊d+ + W2ᵀ₋d− > 0]; c_h = h< ∧ ¬h>; m_x ← x
  7 x (m_x), h's = h1T ∧ c_h, reward: W1 += x (d1+ ∘ f')ᵀ
  9 as 5 with d+ and d− swapped, no reward: the rule's −2 term depresses
 10 h1T = d1−               11 as 7, no reward            0, 6, 8, 10 vetoes clear what is stale
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import IrError
from ..ir.annotations import check_backprop
from ..ir.backprop_options import (DEFAULT_MODE, DEFAULT_WINDOW, WEIGHT_UNIT, BackpropOptionError,
                                   BackpropOptions, check_backprop_options)
from ..ir.models import GRADED
from ..ir.network import Network, Population, Projection
from .registry import PassContext, register_pass
from .synfire import firing_ticks

BIAS = float(GRADED.params["bias"].default)  # a graded unit's bias: -8 thresholds
RELAY = 0.5 + 4 * WEIGHT_UNIT     # 1:1 relay: passes a spike through a ½-threshold gate (+4/1024 avoids ties)


def _rule(step: int) -> str:
    """One step of the target's plastic weight grid up with reward, one down without: the published
    dw = 4*x0*y0*r1 - 2*x0*y0 for a step of 2 (one LSB of an 8-bit mixed weight)."""
    return f"{2 * step}*x0*y0*r1 - {step}*x0*y0"


def _check(net: Network, cfg: dict[str, Any]) -> BackpropOptions:
    """The construct's options, checked where the DSL checks them too (nmc.ir.backprop_options),
    and the neurons of its layers, which only the circuit built here cares about."""
    where = "learn backprop"
    try:
        opt = check_backprop_options(net, list(cfg.get("layers", [])), str(cfg.get("target")),
                                     window=cfg.get("window", DEFAULT_WINDOW), window_hidden=cfg.get("window_hidden"),
                                     margin=cfg.get("margin", 0.0), error_threshold=cfg.get("error_threshold", 0.0),
                                     mode=str(cfg.get("mode", DEFAULT_MODE)), weights=cfg.get("weights", []))
    except BackpropOptionError as exc:
        raise IrError(exc.message, location=where) from None
    for name in opt.layers[1:]:
        pop = net.population(name)
        if pop.model != "graded" or not np.all(pop.param_array("bias") == BIAS):
            what = f"its model is '{pop.model}'" if pop.model != "graded" else \
                f"its bias is {float(pop.param_array('bias').flat[0]):g}, not {BIAS:g}"
            raise IrError(f"population '{name}' in backprop must be a graded unit (declare it "
                          f"'population {name}[{pop.size}] : graded'); {what}", location=where)
    # The construct's integer weights, in the graded units' threshold units.
    weights = [np.asarray(w, dtype=np.float64) * WEIGHT_UNIT for w in opt.weights]
    return BackpropOptions(opt.layers, opt.target, opt.lo, opt.hi, opt.lo_hidden, opt.margin, opt.error_threshold,
                           opt.mode, weights)


@register_pass("backprop")
def backprop(net: Network, ctx: PassContext) -> Network:
    """Expand a `learn backprop(...)` construct into the synfire-gated backprop circuit."""
    cfg = net.attrs.get("backprop")
    if cfg is None or check_backprop(cfg).get("expanded"):
        return net
    opt = _check(net, cfg)
    b = _Builder(net, str(cfg.get("name", "bp")))
    b.rule = _rule(ctx.target.formats.plastic_grid(net.population(opt.layers[1])).mantissa_step)
    if len(opt.layers) > 3:
        return _deep(net, cfg, b, opt)
    layers, target, lo, hi = opt.layers, opt.target, opt.lo, opt.hi
    w1, w2 = opt.weights
    port_x = layers[0]
    n_x, n_h, n_o = (net.population(n).size for n in layers)
    x, h, o = b.pop("x", n_x), layers[1], layers[2]   # the user's layers are the main copies
    b.relay(port_x, x)
    if opt.mode == "inference":
        b.connect(x, h, w1)
        b.connect(h, o, w2)
        out = net.population(o)
        out.role = "output"
        # Five ticks: the output fires at tick 4, inside its own cycle (the readout stays in it).
        schedule = {"cycle": 5, "gates": [b.gate(x, 1), b.gate(h, 2), b.gate(o, 3)], "vetoes": [],
                    "inputs": {port_x: 1}, "readout": {"population": o, "tick": 4}, "target": target}
        net.attrs["schedule"] = schedule
        cfg.update(expanded=True, plastic=[f"{x}->{h}", f"{h}->{o}"])
        return net

    hl, hg, ol, og = b.pop("h_lt", n_h), b.pop("h_gt", n_h), b.pop("o_lt", n_o), b.pop("o_gt", n_o)
    o_pos, o_neg, out_th = b.margin_copies(o, ol, og, lo, hi, opt.margin)
    t, dp, dm, otm = b.pop("t", n_o), b.pop("d_plus", n_o), b.pop("d_minus", n_o), b.pop("oT_minus", n_o)
    h1t, mx, mh, ch, r = b.pop("h1T", n_h), b.pop("m_x", n_x), b.pop("m_h", n_h), b.pop("c_h", n_h), b.pop("r", 1)
    net.population(o).role = "output"
    learn = {"rule": b.rule, "epoch": 1, "traces": {"r1": [1, 0]}, "reward": r}

    # Forward weights: three identical copies of W1 and of W2 (more with a margin), and the two
    # transposes of W2.
    for post in (h, hl, hg):
        b.connect(x, post, w1, learn)
    for post in out_th:
        b.connect(h, post, w2, learn)
    b.connect(o, h1t, w2.T, learn)
    b.connect(otm, h1t, -w2.T, learn)

    # Relays (1:1). Delays make a replay arrive in the tick its gate opens (spike at t, delay d -> t+1+d).
    b.relay(target, t)
    b.relay(h, mh)                        # tick 3 -> m_h fires at 4
    for post in (h, h1t):
        b.relay(mh, post, delay=1)        # 4 -> 6 (phase 5)
        b.relay(mh, post, delay=5)        # 4 -> 10 (phase 9)
    b.relay(x, mx, delay=4)               # 2 -> 7 (phase 6)
    b.relay(mx, x)                        # 7 -> 8 (phase 7)
    b.relay(mx, x, delay=4)               # 7 -> 12 (phase 11)
    b.relay(hl, ch, delay=3)              # c_h = h< and not h>: 3 -> 7
    b.relay(hg, ch, delay=3, sign=-1)
    for post in (h, hl, hg):              # phases 7 and 11: h's = h1T and c_h
        b.relay(h1t, post)
        b.relay(ch, post)
        b.relay(ch, post, delay=4)
    for post in out_th:
        b.relay(dp, post)                 # 5 -> 6 (phase 5)
        b.relay(dm, post, delay=4)        # 5 -> 10 (phase 9)
    b.relay(dm, otm)
    b.relay(dp, otm, delay=4)
    b.output_error(o_pos, o_neg, ol, og, t, dp, dm)

    hs, os_ = [h, hl, hg], list(out_th)
    gates = [b.gate(x, 1), b.gate(h, 2), b.gate(hl, 2, opt.lo_hidden), b.gate(hg, 2, hi)]
    gates += [b.gate(p, 3, th) for p, th in out_th.items()] + [b.gate(t, 3), b.gate(mh, 3)]
    gates += [b.gate(p, 5) for p in (h, h1t, *os_, otm)] + [b.gate(r, 5, -1.0)]  # reward: gate alone
    d_th = opt.error_threshold
    gates += [b.gate(h1t, 6, d_th), b.gate(ch, 6), b.gate(mx, 6)]
    gates += [b.gate(x, 7)] + [b.gate(p, 7, 1.0) for p in hs] + [b.gate(r, 7, -1.0)]
    gates += [b.gate(p, 9) for p in (h, h1t, *os_, otm)]
    gates += [b.gate(h1t, 10, d_th)]
    gates += [b.gate(x, 11)] + [b.gate(p, 11, 1.0) for p in hs]
    vetoes = [{"population": p, "phase": k} for k in (0, 6, 8, 10) for p in (*hs, *os_)]
    vetoes.append({"population": h1t, "phase": 4})
    net.attrs["schedule"] = {"cycle": 12, "gates": gates, "vetoes": vetoes,
                             "inputs": {port_x: 1, target: 3}, "readout": {"population": o, "tick": 4},
                             "target": target}
    cfg.update(expanded=True, plastic=[f"{x}->{h}", f"{h}->{o}"])
    return net


def _deep(net: Network, cfg: dict[str, Any], b: "_Builder", opt: BackpropOptions) -> Network:
    """Two or more hidden layers. Stage by stage from the top: the error of layer l, carried by
    H_l (its sign +) and HT-_l (its sign -), updates W_l and its two transposes in a positive
    tick S (with reward) and a negative tick N = S + 4 (without); the transposes deliver
    [W_l^T (delta+ - delta-) > 0] to T_{l-1} at S + 1 and the opposite sign at N + 1, and
    e_{l-1}+- = T_{l-1} and f'(H_{l-1}) keep both signs for the next stage. The bottom stage
    updates W1 only. Vetoes go wherever stale input can reach a scheduled population."""
    layers, target, hi, weights = opt.layers, opt.target, opt.hi, opt.weights
    L = len(layers) - 1
    port_x = layers[0]
    sizes = [net.population(n).size for n in layers]
    H = ["" for _ in range(L + 1)]
    H[0] = b.pop("x", sizes[0])
    for l in range(1, L + 1):
        H[l] = layers[l]
    lt = {l: b.pop(f"h{l}_lt", sizes[l]) for l in range(1, L + 1)}
    gt = {l: b.pop(f"h{l}_gt", sizes[l]) for l in range(1, L + 1)}
    b.relay(port_x, H[0])
    net.population(H[L]).role = "output"
    gates: list[dict[str, Any]] = [b.gate(H[0], 1)]
    for l in range(1, L + 1):
        edge = opt.lo if l == L else opt.lo_hidden
        gates += [b.gate(H[l], l + 1), b.gate(lt[l], l + 1, edge), b.gate(gt[l], l + 1, hi)]
    if opt.mode == "inference":
        for l in range(1, L + 1):
            b.connect(H[l - 1], H[l], weights[l - 1])
        net.attrs["schedule"] = {"cycle": L + 3, "gates": [g for g in gates if g["population"] in H], "vetoes": [],
                                 "inputs": {port_x: 1}, "readout": {"population": H[L], "tick": L + 2},
                                 "target": target}
        cfg.update(expanded=True, plastic=[f"{H[l - 1]}->{H[l]}" for l in range(1, L + 1)])
        return net

    o_pos, o_neg, out_th = b.margin_copies(H[L], lt[L], gt[L], opt.lo, hi, opt.margin)
    extra = [p for p in out_th if p not in (H[L], lt[L], gt[L])]
    gates += [b.gate(p, L + 1, out_th[p]) for p in extra]
    t, dp, dm, r = b.pop("t", sizes[L]), b.pop("d_plus", sizes[L]), b.pop("d_minus", sizes[L]), b.pop("r", 1)
    learn = {"rule": b.rule, "epoch": 1, "traces": {"r1": [1, 0]}, "reward": r}
    mem = {l: b.pop(f"m{l}", sizes[l]) for l in range(0, L)}
    for l in range(1, L + 1):
        for post in (H[l], lt[l], gt[l], *(extra if l == L else ())):
            b.connect(H[l - 1], post, weights[l - 1], learn)
    # Forward-pass memories and the target.
    gates.append(b.gate(t, L + 1))
    b.relay(target, t)
    for l in range(0, L):
        b.relay(H[l], mem[l])
        gates.append(b.gate(mem[l], l + 2))
    # Output error at tick L + 3, gated 1:1 by H_L< (as in the one-hidden-layer circuit).
    b.output_error(o_pos, o_neg, lt[L], gt[L], t, dp, dm)

    fires: dict[str, int] = {dp: L + 3, dm: L + 3}       # tick each error source fires at
    e_plus, e_minus = dp, dm
    S = L + 4
    for l in range(L, 0, -1):
        N = S + 4
        copies = (H[l], lt[l], gt[l], *(extra if l == L else ()))
        pre = H[l - 1]
        # Replays of the layer below (pre of W_l) at S and N.
        b.relay(mem[l - 1], pre, delay=S - (l - 1 + 3) - 1)
        b.relay(mem[l - 1], pre, delay=N - (l - 1 + 3) - 1)
        gates += [b.gate(pre, S - 1), b.gate(pre, N - 1), b.gate(r, S - 1, -1.0)]
        for post in copies:                                  # the layer's copies carry the error sign
            b.relay(e_plus, post, delay=S - fires[e_plus] - 1)
            b.relay(e_minus, post, delay=N - fires[e_minus] - 1)
            gates += [b.gate(post, S - 1), b.gate(post, N - 1)]
        if l == 1:
            break
        tm = b.pop(f"h{l}T_minus", sizes[l])               # carries the opposite sign
        b.relay(e_minus, tm, delay=S - fires[e_minus] - 1)
        b.relay(e_plus, tm, delay=N - fires[e_plus] - 1)
        gates += [b.gate(tm, S - 1), b.gate(tm, N - 1)]
        T = b.pop(f"h{l - 1}T", sizes[l - 1])               # receives the transposes
        b.connect(H[l], T, weights[l - 1].T, learn)
        b.connect(tm, T, -weights[l - 1].T, learn)
        b.relay(mem[l - 1], T, delay=S - (l - 1 + 3) - 1)
        b.relay(mem[l - 1], T, delay=N - (l - 1 + 3) - 1)
        gates += [b.gate(T, S - 1), b.gate(T, N - 1), b.gate(T, S, opt.error_threshold),
                  b.gate(T, N, opt.error_threshold)]
        # f'(H_{l-1}) fires at S + 1; e+- = T and f' at S + 2 and N + 2.
        c = b.pop(f"c{l - 1}", sizes[l - 1])
        b.relay(lt[l - 1], c, delay=(S + 1) - (l - 1 + 2) - 1)
        b.relay(gt[l - 1], c, delay=(S + 1) - (l - 1 + 2) - 1, sign=-1)
        gates.append(b.gate(c, S))
        ep, em = b.pop(f"e{l - 1}_plus", sizes[l - 1]), b.pop(f"e{l - 1}_minus", sizes[l - 1])
        b.relay(T, ep)
        b.relay(c, ep)
        b.relay(T, em)
        b.relay(c, em, delay=4)
        gates += [b.gate(ep, S + 1, 1.0), b.gate(em, N + 1, 1.0)]
        fires[ep], fires[em] = S + 2, N + 2
        e_plus, e_minus = ep, em
        S = N + 3
    cycle = N + 1
    schedule = {"cycle": cycle, "gates": gates, "vetoes": [], "inputs": {port_x: 1, target: L + 1},
                "readout": {"population": H[L], "tick": L + 2}, "target": target}
    net.attrs["schedule"] = schedule
    schedule["vetoes"] = _stale_input_vetoes(net, schedule, [H[0], *H[1:], *lt.values(), *gt.values(), *extra])
    cfg.update(expanded=True, plastic=[f"{H[l - 1]}->{H[l]}" for l in range(1, L + 1)])
    return net


def _stale_input_vetoes(net: Network, sched: dict[str, Any], pops: list[str]) -> list[dict[str, Any]]:
    """Vetoes for every tick at which input can reach one of ``pops`` while it is not gated."""
    cycle = sched["cycle"]
    ticks = firing_ticks(net, cycle, sched["gates"])
    gated: dict[str, set[int]] = {}
    for g in sched["gates"]:
        gated.setdefault(g["population"], set()).add((g["phase"] + 1) % cycle)
    vetoes = []
    for pop in pops:
        arrive = {(f + 1 + p.delay) % cycle for p in net.projections_into(pop) for f in ticks.get(p.pre, set())}
        for tick in sorted(arrive - gated.get(pop, set())):
            phase = (tick - 1) % cycle
            if (pop, phase) not in {(g["population"], g["phase"]) for g in sched["gates"]}:
                vetoes.append({"population": pop, "phase": phase})
    return vetoes


class _Builder:
    """Creates the circuit's populations and projections under a common name prefix."""

    def __init__(self, net: Network, prefix: str) -> None:
        self.net, self.prefix = net, prefix
        self.rule = ""  # the learning rule of the plastic copies (set from the target's weight grid)

    def pop(self, short: str, size: int) -> str:
        name = f"{self.prefix}/{short}"
        self.net.add_population(Population(name, size, "graded", {}))
        return name

    def connect(self, pre: str, post: str, w: np.ndarray, learning: dict | None = None, kind: str = "dense") -> None:
        name = self.net.unique_projection_name(pre, post)
        self.net.add_projection(Projection(name, pre, post, kind, np.asarray(w, dtype=np.float64),
                                           sign="mixed" if learning else None,
                                           learning=dict(learning) if learning else None))

    def relay(self, pre: str, post: str, delay: int = 0, sign: int = 1) -> None:
        n = self.net.population(post).size
        name = self.net.unique_projection_name(pre, post)
        self.net.add_projection(Projection(name, pre, post, "one_to_one", np.full(n, float(sign * RELAY)),
                                           delay=delay))

    def margin_copies(self, o: str, o_lt: str, o_gt: str, lo: float, hi: float,
                      margin: float) -> tuple[str, str, dict[str, float]]:
        """The output copies that say "a > 0.5 + margin" (o_pos) and "a > 0.5 - margin" (o_neg),
        and every output copy with its gate threshold. Margin 0: both are o itself; an edge of the
        window reuses o< or o>; other values add a copy (one more copy of W2, learning with it)."""
        out_th = {o: 0.5, o_lt: lo, o_gt: hi}
        if margin == 0:
            return o, o, out_th
        n = self.net.population(o).size
        picked = []
        for short, th in (("o_pos", 0.5 + margin), ("o_neg", 0.5 - margin)):
            same = [p for p, v in out_th.items() if v == th]
            if same:
                picked.append(same[0])
            else:
                pop = self.pop(short, n)
                out_th[pop] = th
                picked.append(pop)
        return picked[0], picked[1], out_th

    def output_error(self, o_pos: str, o_neg: str, o_lt: str, o_gt: str, t: str, dp: str, dm: str) -> None:
        """d+ = o< ∧ t ∧ ¬o_pos and d− = o< ∧ o_neg ∧ ¬t ∧ ¬o>: o< acts as their ½-threshold gate
        (1:1). Without a margin o_pos = o_neg = o (d+ = o< ∧ t ∧ ¬o, d− = o< ∧ o ∧ ¬t ∧ ¬o>)."""
        n = self.net.population(o_pos).size
        gate_w = 1.0 - BIAS - 0.5  # cancels the bias and half the threshold
        self.connect(o_lt, dp, np.full(n, gate_w), kind="one_to_one")
        self.connect(o_lt, dm, np.full(n, gate_w), kind="one_to_one")
        self.relay(t, dp)
        self.relay(o_pos, dp, sign=-1)
        self.relay(o_neg, dm)
        self.relay(t, dm, sign=-1)
        self.relay(o_gt, dm, sign=-1)

    @staticmethod
    def gate(pop: str, phase: int, threshold: float = 0.5) -> dict[str, Any]:
        return {"population": pop, "phase": phase, "threshold": float(threshold)}
