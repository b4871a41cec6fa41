"""The learning engine of the Loihi-like interpreter (docs/learning.md).

Each plastic projection holds its weight mantissas as a dense (n_pre, n_post) matrix M (absent
synapses masked out), its own delivery matrix (64 * effective weight, kept in step with M), its
traces, and the spike bits of the current epoch. At the end of every epoch (``epoch`` steps):

    dw_fixed = sum over products p of  m_p * 2^(e_p + 7) * prod(factors of p)     (7 fraction bits)
    acc      = clip( (M << 7) + dw_fixed, -2^15, 2^15 - 1 )                        (16-bit register)
    M        = clip( stochastic_round(acc / 2^7, to multiples of the format's step), format range )

Factors: x0/y0 (spiked in the epoch), traces x1 x2 (pre), y1 y2 y3 (post), r1 (reward). Traces,
per step: x = floor(x * a) (+1 with probability of the dropped fraction) + impulse * spike,
saturated at 127; a = round(4096 * exp(-1/tau)) / 4096 (0 for tau = 0); the impulse's 8-bit
fraction is added stochastically. The widths (16-bit accumulator, 7 fraction bits, 7-bit traces,
12-bit decays, 8-bit impulse fractions) are the target's ``[learning]`` entries, read from the
binary's target configuration (:class:`LearningWidths`). The generator (PCG64) is seeded from the binary and drawn in a
fixed order, and only where a fraction exists, so integer rules never consume randomness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BinaryFormatError

PRE_FACTORS = ("x0", "x1", "x2")
POST_FACTORS = ("y0", "y1", "y2", "y3", "r1")


F32_EXACT = float(1 << 24)  # integers below this are exact in float32


_ONES = np.ones(256, dtype=np.float32)


@dataclass(frozen=True)
class LearningWidths:
    """The learning engine's widths, from the target's ``[learning]`` table (docs/learning.md)."""

    fraction_bits: int          # fraction bits of the accumulator (7)
    acc_min: int                # the accumulator register: -2^(bits-1) .. 2^(bits-1) - 1 (16 bits)
    acc_max: int
    trace_max: int              # traces saturate here: 2^trace_bits - 1 (127)
    decay_bits: int             # trace decay factors are a / 2^decay_bits (12)
    impulse_fraction_bits: int  # fraction bits of a trace impulse (8)

    @classmethod
    def from_config(cls, table: Any) -> "LearningWidths":
        keys = ("accumulator_bits", "fraction_bits", "trace_bits", "trace_decay_bits", "impulse_fraction_bits")
        if not isinstance(table, dict) or any(not isinstance(table.get(k), int) or table[k] < 0 for k in keys):
            raise BinaryFormatError("target configuration's [learning] table lacks the engine's widths "
                                    f"({', '.join(keys)}, non-negative integers)")
        acc = int(table["accumulator_bits"])
        return cls(int(table["fraction_bits"]), -(1 << (acc - 1)), (1 << (acc - 1)) - 1,
                   (1 << int(table["trace_bits"])) - 1, int(table["trace_decay_bits"]),
                   int(table["impulse_fraction_bits"]))


def sum_rows(mat: np.ndarray, rows: np.ndarray, bound: float) -> np.ndarray:
    """Σ mat[rows] exactly. ``bound`` bounds every partial sum (rows × largest |value|): below
    2^24 a float32 BLAS product is exact whatever order it adds in; above, sum in float64."""
    global _ONES
    if rows.size == 1:
        return mat[rows[0]]
    gathered = mat[rows]
    if bound < F32_EXACT and mat.dtype == np.float32:
        if _ONES.size < rows.size:   # one vector of ones, grown as needed (allocating per step costs)
            _ONES = np.ones(2 * rows.size, dtype=np.float32)
        return _ONES[:rows.size] @ gathered
    return gathered.sum(axis=0, dtype=np.float64)


@dataclass
class Trace:
    """A 7-bit trace with its decay (a/4096) and impulse (integer + 8-bit fraction)."""

    value: np.ndarray
    decay_q: int
    impulse_int: int
    impulse_frac: int
    widths: LearningWidths

    @classmethod
    def build(cls, n: int, impulse: float, tau: float, widths: LearningWidths) -> "Trace":
        decay_q = 0 if tau <= 0 else int(round((1 << widths.decay_bits) * math.exp(-1.0 / tau)))
        imp = int(round(impulse * (1 << widths.impulse_fraction_bits)))
        return cls(np.zeros(n, dtype=np.int64), decay_q, imp >> widths.impulse_fraction_bits,
                   imp & ((1 << widths.impulse_fraction_bits) - 1), widths)

    def step(self, spiked: np.ndarray, rng: np.random.Generator) -> None:
        x, bits = self.value, self.widths.decay_bits
        if self.decay_q == 0:
            x[:] = 0
        elif self.decay_q < (1 << bits):
            prod = x * self.decay_q
            frac = prod & ((1 << bits) - 1)
            x[:] = prod >> bits
            if np.any(frac):
                x += rng.integers(0, 1 << bits, size=x.size) < frac
        if spiked.any():
            add = np.full(int(spiked.sum()), self.impulse_int, dtype=np.int64)
            if self.impulse_frac:
                add += rng.integers(0, 1 << self.widths.impulse_fraction_bits, size=add.size) < self.impulse_frac
            x[spiked] += add
        np.minimum(x, self.widths.trace_max, out=x)


class PlasticProjection:
    """One plastic projection's synapses, traces and learning rule, in the interpreter."""

    def __init__(self, spec: dict[str, Any], pre_src: np.ndarray, post_cx: np.ndarray, n_src: int, n_cx: int,
                 src: np.ndarray, cx: np.ndarray, mant: np.ndarray, fmt: dict[str, int], delay: int,
                 weight_shift: int, widths: LearningWidths) -> None:
        self.name = spec["name"]
        self.widths = widths
        self.frac = widths.fraction_bits
        self.epoch = int(spec["epoch"])
        self.delay = delay
        self.products = [(int(m), int(e), tuple(f)) for m, e, f in spec["products"]]
        self.pre_src, self.post_cx = pre_src, post_cx
        n_pre, n_post = pre_src.size, post_cx.size
        self.row_of_src = np.full(n_src, -1, dtype=np.int64)
        self.row_of_src[pre_src] = np.arange(n_pre)
        self.col_of_cx = np.full(n_cx, -1, dtype=np.int64)
        self.col_of_cx[post_cx] = np.arange(n_post)
        rows, cols = self.row_of_src[src], self.col_of_cx[cx]
        if np.any(rows < 0) or np.any(cols < 0):
            raise BinaryFormatError(f"plastic projection '{self.name}': a synapse is outside its populations")
        self.exists = np.zeros((n_pre, n_post), dtype=bool)
        self.exists[rows, cols] = True
        self.all_exist = bool(self.exists.all())
        self.M = np.zeros((n_pre, n_post), dtype=np.int64)
        self.M[rows, cols] = mant
        # Format of the weights: mantissa step (dropped low bits), range, exponent.
        self.exp = int(fmt["exponent"])
        self.step_q = 1 << int(fmt["drop"])
        self.w_lo, self.w_hi = int(fmt["lo"]), int(fmt["hi"])
        self.shift = weight_shift
        self.eff = self._effective(self.M).astype(np.float32)
        self.eff_max = float(max(abs(self.w_lo), abs(self.w_hi)) * (2.0 ** self.exp) * (1 << weight_shift))
        traces = spec.get("traces", {})
        self.pre_traces = {n: Trace.build(n_pre, *traces[n], widths) for n in ("x1", "x2") if n in traces}
        self.post_traces = {n: Trace.build(n_post, *traces[n], widths) for n in ("y1", "y2", "y3") if n in traces}
        self.r_trace = Trace.build(1, *traces["r1"], widths) if "r1" in traces else None
        self.reward_src = None
        self.x0 = np.zeros(n_pre, dtype=bool)
        self.y0 = np.zeros(n_post, dtype=bool)
        self.need_rows = all("x0" in f for _, _, f in self.products)
        self.need_cols = all("y0" in f for _, _, f in self.products)
        # Fast path: one-step epochs, no pre/post traces and a reward trace that lasts one step
        # with an integer impulse. Then nothing needs keeping between steps, and a product made of
        # dependencies and r1 only is the same constant for every synapse of the block.
        r = self.r_trace
        self.fast = (self.epoch == 1 and not self.pre_traces and not self.post_traces
                     and (r is None or (r.decay_q == 0 and r.impulse_frac == 0))
                     and self.need_rows and self.need_cols
                     and all(set(f) <= {"x0", "y0", "r1"} for _, _, f in self.products))
        self.n_post = n_post
        if self.fast:
            r_imp = self.r_trace.impulse_int if self.r_trace is not None else 0
            self.fast_dw = {rw: self._constant_dw(r_imp if rw else 0) for rw in (False, True)}
        # Whole-step fast rules with a non-negative exponent keep the weights only as their
        # delivery values eff = M * 2^(exp + shift) (exact in float32 while |M| 2^(exp + shift) <
        # 2^24), and read M back from them on demand: one array to update instead of two.
        unit = self.step_q << self.frac
        # Fast rules whose every change is a whole number of format steps: no rounding, no draws.
        self.whole_steps = self.fast and all(dw % unit == 0 for dw in self.fast_dw.values())
        self.scale = float(1 << (self.exp + self.shift)) if self.exp >= 0 else 0.0
        self.eff_only = self.whole_steps and self.exp >= 0 and self.eff_max < F32_EXACT
        # The weight range as delivery values (float32, exact as above).
        self.eff_lo = np.float32(self.w_lo * self.scale)
        self.eff_hi = np.float32(self.w_hi * self.scale)
        if self.eff_only:
            self.M = None  # type: ignore[assignment]
        # Projections with the same pre (post) population share their row (column) lookups.
        self.pre_key = spec["pre"].get("population") or spec["pre"].get("name") or spec["pre"].get("section")
        self.post_key = spec["post"].get("population") or spec["post"].get("section")
        self.updates = 0          # synapse evaluations (energy model)
        self.last_rows = 0
        self.saturated = 0        # updates clipped at the weight range or the accumulator

    # -- merging copies -----------------------------------------------------------------------------
    def merge_key(self) -> tuple | None:
        """Projections with equal keys can run as one (see :meth:`merged`); None: never merged.

        Only fast-path rules whose changes are whole format steps qualify: they draw no random
        numbers, so running copies as one block cannot change the order of the generator's draws."""
        if not self.whole_steps:
            return None
        reward = None if self.reward_src is None else self.reward_src.tobytes()
        return (self.pre_src.tobytes(), self.delay, tuple(self.products), self.exp, self.step_q, self.w_lo,
                self.w_hi, self.shift, tuple(sorted(self.fast_dw.items())), reward)

    @classmethod
    def merged(cls, members: list["PlasticProjection"], n_cx: int) -> "PlasticProjection":
        """One projection running ``members`` (equal :meth:`merge_key`, disjoint post compartments)
        side by side: their weight matrices become column blocks of one (n_pre, sum n_post) matrix,
        so a step gathers and learns once instead of once per copy. The members' ``M`` become views
        of their blocks (their ``weights()`` stay current); only the merged projection is run."""
        first = members[0]
        unit = cls.__new__(cls)
        unit.__dict__.update(first.__dict__)
        unit.name = "+".join(m.name for m in members)
        unit.post_cx = np.concatenate([m.post_cx for m in members])
        unit.n_post = int(unit.post_cx.size)
        unit.col_of_cx = np.full(n_cx, -1, dtype=np.int64)
        unit.col_of_cx[unit.post_cx] = np.arange(unit.n_post)
        unit.exists = np.concatenate([m.exists for m in members], axis=1)
        unit.all_exist = bool(unit.exists.all())
        unit.M = None if first.eff_only else np.concatenate([m.M for m in members], axis=1)
        unit.eff = np.concatenate([m.eff for m in members], axis=1)
        unit.y0 = np.zeros(unit.n_post, dtype=bool)
        unit.post_key = "|".join(str(m.post_key) for m in members)
        unit.updates = sum(m.updates for m in members)
        unit.saturated = sum(m.saturated for m in members)
        off = 0
        for m in members:
            if unit.M is not None:
                m.M = unit.M[:, off:off + m.n_post]
            m.eff = unit.eff[:, off:off + m.n_post]
            m.updates = m.saturated = 0
            off += m.n_post
        return unit

    def _effective(self, m: np.ndarray) -> np.ndarray:
        if self.exp >= 0:
            return m * float(1 << (self.exp + self.shift))
        return ((m >> -self.exp) << self.shift).astype(np.float64)

    # -- delivery -------------------------------------------------------------------------------
    def gather(self, sources: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray | None, float]:
        """Summed contributions of the spiking ``sources`` (or of their precomputed ``rows``)."""
        if rows is None:
            rows = self.rows_of(sources)
        if rows.size == 0:
            return None, 0.0
        bound = rows.size * self.eff_max
        return sum_rows(self.eff, rows, bound), bound

    # -- learning --------------------------------------------------------------------------------
    def rows_of(self, sources: np.ndarray) -> np.ndarray:
        rows = self.row_of_src[sources]
        return rows[rows >= 0]

    def cols_of(self, fired: np.ndarray) -> np.ndarray:
        cols = self.col_of_cx[fired]
        return cols[cols >= 0]

    def _constant_dw(self, r1: int) -> int:
        """dw (7 fraction bits) of a rule made of dependencies and r1, where both spiked."""
        dw = 0
        for m, e, factors in self.products:
            v = m * (r1 if "r1" in factors else 1)
            sh = e + self.frac
            dw += (v << sh) if sh >= 0 else (v >> -sh)
        return dw

    def step_fast(self, rows: np.ndarray, cols: np.ndarray, reward_spiked: bool,
                  rng: np.random.Generator, flat: np.ndarray | None = None) -> np.ndarray | None:
        """One learning epoch of one step on the fast path, for the spiking pre ``rows`` and post
        ``cols`` (both non-empty). ``flat`` (the block's flat indices) may be shared by copies of
        the same shape; returns it for reuse."""
        dw = self.fast_dw[reward_spiked]
        self.updates += rows.size * cols.size
        self.last_rows = rows.size
        if dw == 0:
            return flat
        if self.eff_only and self.all_exist and 4 * cols.size >= self.n_post:
            self._step_rows(rows, cols, dw >> self.frac)
            return flat
        if flat is None:
            flat = (rows[:, None] * self.n_post + cols[None, :]).ravel()
        block = flat
        if not self.all_exist:
            block = flat[self.exists.ravel()[flat]]
        unit = self.step_q << self.frac
        if self.eff_only:
            ef = self.eff.reshape(-1)
            moved = ef[block] + np.float32((dw >> self.frac) * self.scale)
            new = np.clip(moved, self.eff_lo, self.eff_hi)
            self.saturated += int(np.count_nonzero(moved != new))
            ef[block] = new
            return flat
        if dw % unit == 0:
            # A whole number of format steps: (M << 7) + dw needs no rounding, and where the 16-bit
            # accumulator would clip, the weight range clips to the same value. So M + delta,
            # clipped, is the same arithmetic, in fewer operations.
            Mf = self.M.reshape(-1)
            moved = Mf[block] + (dw >> self.frac)
            new = np.clip(moved, self.w_lo, self.w_hi)
            self.saturated += int(np.count_nonzero(moved != new))
            Mf[block] = new
            self.eff.reshape(-1)[block] = self._effective(new)
        else:
            self._write(block, np.full(block.size, dw, dtype=np.int64), rng)
        return flat

    def _step_rows(self, rows: np.ndarray, cols: np.ndarray, delta: int) -> None:
        """The whole-step update of the block rows x cols, done on whole rows: when the columns
        are a good part of the row, contiguous row arithmetic beats element indexing. Entries
        outside ``cols`` get + 0 and are already in range, so they come back unchanged."""
        step = np.zeros(self.n_post, dtype=np.float32)
        step[cols] = delta * self.scale
        moved = self.eff[rows]
        moved += step
        new = np.clip(moved, self.eff_lo, self.eff_hi)
        self.saturated += int(np.count_nonzero(moved != new))
        self.eff[rows] = new

    def _write(self, flat: np.ndarray, dw: np.ndarray, rng: np.random.Generator) -> None:
        """acc = (M << 7) + dw (16-bit), stochastically rounded to the format's step, clipped."""
        Mf = self.M.reshape(-1)
        old = Mf[flat]
        acc = (old << self.frac) + dw
        clipped = np.clip(acc, self.widths.acc_min, self.widths.acc_max)
        unit = self.step_q << self.frac
        q = clipped // unit
        frac = clipped - q * unit
        if np.any(frac):
            q += rng.integers(0, unit, size=q.shape) < frac
        new = np.clip(q * self.step_q, self.w_lo, self.w_hi)
        self.saturated += int(np.count_nonzero((clipped != acc) | (new != q * self.step_q)))
        Mf[flat] = new
        self.eff.reshape(-1)[flat] = self._effective(new)

    def observe(self, t: int, sources: np.ndarray, fired: np.ndarray, reward_spiked: bool,
                rng: np.random.Generator) -> bool:
        """Record step t's spikes and update traces; True when an epoch ended (then call learn)."""
        rows = self.row_of_src[sources]
        pre = np.zeros(self.x0.size, dtype=bool)
        pre[rows[rows >= 0]] = True
        cols = self.col_of_cx[fired]
        post = np.zeros(self.y0.size, dtype=bool)
        post[cols[cols >= 0]] = True
        self.x0 |= pre
        self.y0 |= post
        for tr in self.pre_traces.values():
            tr.step(pre, rng)
        for tr in self.post_traces.values():
            tr.step(post, rng)
        if self.r_trace is not None:
            self.r_trace.step(np.array([reward_spiked]), rng)
        return (t + 1) % self.epoch == 0

    def learn(self, rng: np.random.Generator) -> np.ndarray | None:
        """Apply the rule for the epoch that just ended; returns the post columns evaluated (their
        count times ``last_rows`` synapses were updated), or None."""
        rows = np.flatnonzero(self.x0) if self.need_rows else np.arange(self.x0.size)
        cols = np.flatnonzero(self.y0) if self.need_cols else np.arange(self.y0.size)
        self.last_rows = rows.size
        evaluated = None
        if rows.size and cols.size:
            self._apply(rows, cols, rng)
            evaluated = cols
        self.x0[:] = False
        self.y0[:] = False
        return evaluated

    def reset_state(self) -> None:
        """Clear traces and epoch spike bits (not the weights)."""
        for tr in [*self.pre_traces.values(), *self.post_traces.values()] + ([self.r_trace] if self.r_trace else []):
            tr.value[:] = 0
        self.x0[:] = False
        self.y0[:] = False

    def _factor(self, name: str, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if name == "x0":
            return self.x0[rows].astype(np.int64)[:, None]
        if name == "y0":
            return self.y0[cols].astype(np.int64)[None, :]
        if name in self.pre_traces:
            return self.pre_traces[name].value[rows][:, None]
        if name in self.post_traces:
            return self.post_traces[name].value[cols][None, :]
        if name == "r1":
            return self.r_trace.value[:1][None, :]
        raise BinaryFormatError(f"plastic projection '{self.name}': factor '{name}' has no trace")

    def _apply(self, rows: np.ndarray, cols: np.ndarray, rng: np.random.Generator) -> None:
        dw = np.zeros((rows.size, cols.size), dtype=np.int64)
        for m, e, factors in self.products:
            term = np.full((1, 1), m, dtype=np.int64)
            for f in factors:
                term = term * self._factor(f, rows, cols)
            sh = e + self.frac
            dw += (term << sh) if sh >= 0 else (term >> -sh)
        self.updates += dw.size
        if not dw.any():
            return
        flat = (rows[:, None] * self.n_post + cols[None, :]).ravel()
        dw = dw.ravel()
        if not self.all_exist:
            keep = self.exists.ravel()[flat]
            flat, dw = flat[keep], dw[keep]
        self._write(flat, dw, rng)

    def weights(self) -> np.ndarray:
        """The weight mantissas, (n_pre, n_post)."""
        if self.eff_only:
            return (self.eff / self.scale).astype(np.int64)
        return self.M.copy()

    # -- checkpoints ----------------------------------------------------------------------------
    def _all_traces(self) -> dict[str, Trace]:
        out: dict[str, Trace] = {**self.pre_traces, **self.post_traces}
        if self.r_trace is not None:
            out["r1"] = self.r_trace
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Everything learning changes: weights (mantissas and delivery values, kept in step),
        traces, the epoch's spike bits and the update counters; copies."""
        out = {"eff": self.eff.copy(), "x0": self.x0.copy(), "y0": self.y0.copy(),
               "counters": np.array([self.updates, self.saturated, self.last_rows], dtype=np.int64)}
        if self.M is not None:
            out["M"] = self.M.copy()
        for name, tr in self._all_traces().items():
            out[f"trace/{name}"] = tr.value.copy()
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state` (keys, shapes and dtypes checked by the caller). Written in place:
        the members of a merged projection hold views of its blocks, which must stay views."""
        self.eff[...] = state["eff"]
        if self.M is not None:
            self.M[...] = state["M"]
        self.x0[...] = state["x0"]
        self.y0[...] = state["y0"]
        for name, tr in self._all_traces().items():
            tr.value[...] = state[f"trace/{name}"]
        self.updates, self.saturated, self.last_rows = (int(v) for v in state["counters"])
