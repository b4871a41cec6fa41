"""``backprop``: expand ``learn backprop(x -> h -> o, target t)`` into the synfire-gated spiking
backpropagation circuit of Renner, Sheldon, Zlotnik, Tao & Sornborger (docs/backprop.md).

Every unit is a *graded* neuron: memoryless (decay_u 4095, decay_v 4096), threshold 1024 and a
bias of -8·1024·64, so it fires only in the tick after a gate cancels the bias. With the input
sum a (in units of 1024), a gate for threshold θ makes it fire iff a > θ. The pass creates the
populations, relays and plastic projections and writes the phase schedule; the ``synfire`` pass
then synthesises the gate chain that enforces it.

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
from ..ir.network import Network, Population, Projection
from .registry import PassContext, register_pass

UNIT = 1024                       # threshold mantissa of a graded unit: input 1.0
GRADED = {"decay_u": 4095, "decay_v": 4096, "threshold": UNIT, "bias": -8 * UNIT * 64, "refractory": 1}
RELAY = UNIT // 2 + 4             # 1:1 relay: passes a spike through a ½-threshold gate (+4 avoids ties)
RULE = "4*x0*y0*r1 - 2*x0*y0"     # +2 with reward, -2 without (one LSB of an 8-bit mixed weight)


def _check(net: Network, cfg: dict[str, Any]) -> tuple[list[str], str, float, float, str, list[np.ndarray]]:
    where = "learn backprop"
    layers = list(cfg.get("layers", []))
    if len(layers) < 3:
        raise IrError("backprop needs an input port, at least one hidden layer and an output layer", location=where)
    if len(layers) > 3:
        raise IrError(f"backprop with {len(layers) - 2} hidden layers is not supported yet (one hidden layer)",
                      location=where)
    for name in layers:
        net.population(name)
    if not net.population(layers[0]).is_input:
        raise IrError(f"the first backprop layer '{layers[0]}' must be an input port", location=where)
    target = str(cfg.get("target"))
    tpop = net.population(target)
    out = net.population(layers[-1])
    if not tpop.is_input or tpop.size != out.size:
        raise IrError(f"target '{target}' must be an input port of size {out.size}", location=where)
    lo, hi = (float(v) for v in cfg.get("window", [-1.0, 1.0]))
    if not lo < 0.5 < hi:
        raise IrError(f"the derivative window ({lo}, {hi}] must contain the firing threshold 0.5", location=where)
    mode = str(cfg.get("mode", "train"))
    if mode not in ("train", "inference"):
        raise IrError(f"mode must be 'train' or 'inference', got '{mode}'", location=where)
    weights = [np.asarray(w, dtype=np.float64) for w in cfg.get("weights", [])]
    sizes = [net.population(n).size for n in layers]
    if len(weights) != len(layers) - 1:
        raise IrError(f"backprop needs {len(layers) - 1} weight matrices, got {len(weights)}", location=where)
    for k, w in enumerate(weights):
        if w.shape != (sizes[k], sizes[k + 1]):
            raise IrError(f"W{k + 1} must have shape ({sizes[k]}, {sizes[k + 1]}), got {w.shape}", location=where)
    for name in layers[1:]:
        pop = net.population(name)
        for key, want in GRADED.items():
            got = pop.param_array(key)
            if pop.model != "cuba_lif" or not np.all(got == want):
                raise IrError(f"population '{name}' in backprop must be a graded unit (declare it "
                              f"'population {name}[{pop.size}] : graded'); its {key} is {got.flat[0]}, not {want}",
                              location=where)
    return layers, target, lo, hi, mode, weights


@register_pass("backprop")
def backprop(net: Network, ctx: PassContext) -> Network:
    """Expand a `learn backprop(...)` construct into the synfire-gated backprop circuit."""
    cfg = net.attrs.get("backprop")
    if cfg is None or cfg.get("expanded"):
        return net
    layers, target, lo, hi, mode, (w1, w2) = _check(net, cfg)
    name = str(cfg.get("name", "bp"))
    b = _Builder(net, name)
    port_x = layers[0]
    n_x, n_h, n_o = (net.population(n).size for n in layers)
    x, h, o = b.pop("x", n_x), layers[1], layers[2]   # the user's layers are the main copies
    b.relay(port_x, x)
    if mode == "inference":
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
    t, dp, dm, otm = b.pop("t", n_o), b.pop("d_plus", n_o), b.pop("d_minus", n_o), b.pop("oT_minus", n_o)
    h1t, mx, mh, ch, r = b.pop("h1T", n_h), b.pop("m_x", n_x), b.pop("m_h", n_h), b.pop("c_h", n_h), b.pop("r", 1)
    net.population(o).role = "output"
    learn = {"rule": RULE, "epoch": 1, "traces": {"r1": [1, 0]}, "reward": r}

    # Forward weights: three identical copies of W1 and of W2, and the two transposes of W2.
    for post in (h, hl, hg):
        b.connect(x, post, w1, learn)
    for post in (o, ol, og):
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
    for post in (o, ol, og):
        b.relay(dp, post)                 # 5 -> 6 (phase 5)
        b.relay(dm, post, delay=4)        # 5 -> 10 (phase 9)
    b.relay(dm, otm)
    b.relay(dp, otm, delay=4)
    # d+ = o< and t and not o;  d- = o< and o and not t and not o>  (o< acts as their gate)
    gate_w = float(GRADED["threshold"] - GRADED["bias"] // 64 - UNIT // 2)  # a 1:1 ½-threshold gate
    b.connect(ol, dp, np.full(n_o, gate_w), kind="one_to_one")
    b.connect(ol, dm, np.full(n_o, gate_w), kind="one_to_one")
    b.relay(t, dp)
    b.relay(o, dp, sign=-1)
    b.relay(o, dm)
    b.relay(t, dm, sign=-1)
    b.relay(og, dm, sign=-1)

    hs, os_ = [h, hl, hg], [o, ol, og]
    gates = [b.gate(x, 1), b.gate(h, 2), b.gate(hl, 2, lo), b.gate(hg, 2, hi),
             b.gate(o, 3), b.gate(ol, 3, lo), b.gate(og, 3, hi), b.gate(t, 3), b.gate(mh, 3)]
    gates += [b.gate(p, 5) for p in (h, h1t, *os_, otm)] + [b.gate(r, 5, -1.0)]  # reward: gate alone
    gates += [b.gate(h1t, 6, 0.0), b.gate(ch, 6), b.gate(mx, 6)]
    gates += [b.gate(x, 7)] + [b.gate(p, 7, 1.0) for p in hs] + [b.gate(r, 7, -1.0)]
    gates += [b.gate(p, 9) for p in (h, h1t, *os_, otm)]
    gates += [b.gate(h1t, 10, 0.0)]
    gates += [b.gate(x, 11)] + [b.gate(p, 11, 1.0) for p in hs]
    vetoes = [{"population": p, "phase": k} for k in (0, 6, 8, 10) for p in (*hs, *os_)]
    vetoes.append({"population": h1t, "phase": 4})
    net.attrs["schedule"] = {"cycle": 12, "gates": gates, "vetoes": vetoes,
                             "inputs": {port_x: 1, target: 3}, "readout": {"population": o, "tick": 4},
                             "target": target}
    cfg.update(expanded=True, plastic=[f"{x}->{h}", f"{h}->{o}"])
    return net


class _Builder:
    """Creates the circuit's populations and projections under a common name prefix."""

    def __init__(self, net: Network, prefix: str) -> None:
        self.net, self.prefix = net, prefix

    def pop(self, short: str, size: int) -> str:
        name = f"{self.prefix}/{short}"
        self.net.add_population(Population(name, size, "cuba_lif", dict(GRADED)))
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

    @staticmethod
    def gate(pop: str, phase: int, threshold: float = 0.5) -> dict[str, Any]:
        return {"population": pop, "phase": phase, "threshold": float(threshold)}
