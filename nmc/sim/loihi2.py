"""Interpreter of the Loihi-2-like chip: the Loihi-like interpreter plus graded spikes and the
``sdn`` sigma-delta unit. Reads only a compiled :class:`Binary` (nmc.backend.loihi2 writes it).

What this adds to a timestep, per sdn unit i (state sigma, act, sent; integers), after the
Loihi-1 compartments' update and before routing:

    sigma_i = wrap_s(sigma_i + a_i)                     s = graded_spikes.state_bits
    y_i     = (sigma_i >> shift_i) + bias_i
    y_i     = max(y_i, 0) if relu_i ;  y_i = min(y_i, clip_i) if clip_i > 0
    low_i   = wrap_s(D(low_i, decay_i) + (((y_i << f) * decay_i) >> 12)),  act_i = low_i >> f
                                                        (decay 4096: act = y; f = lowpass_fraction_bits)
    delta   = act_i - sent_i
    if |delta| >= threshold_i:  payload_i = sat(delta), sent_i += payload_i   (a graded spike)

This is Lava's ``PySigmaDeltaModelFixedCorrected`` (src/lava/proc/sdn/models.py: the reference
advances by exactly what was sent, so receivers never drift; the threshold test is ``>=``), with
state_exp = 0, a right shift from sigma to the activation, an optional upper clip and a low-pass
of the activation (nmc's additions, for converted networks and the low-pass RNN). ``a_i`` is the
compartment's synaptic input of the step: a graded spike of payload p through a synapse of
effective weight w adds w p, a binary spike counts as p = graded_spikes.binary_payload (64, so it
adds 64 w as on Loihi 1). ``u`` and ``v`` probes of an sdn unit read sigma and act.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..binary.format import Binary
from ..errors import BinaryFormatError, RunError
from .loihi import LoihiInterpreter, _check_index, _ranges, _Run, _sec

__all__ = ["Loihi2Interpreter"]


@dataclass
class _SdnBank:
    """The sdn units of a binary: their registers (loaded once) and state (reset per sample)."""

    cx: np.ndarray              # global compartment ids, ascending
    threshold: np.ndarray
    shift: np.ndarray
    relu: np.ndarray            # bool
    clip: np.ndarray            # 0: none
    keep: np.ndarray            # 4096 - decay
    decay: np.ndarray
    bias: np.ndarray
    lowpass: bool               # some unit has decay < 4096
    sigma: np.ndarray = field(init=False)
    low: np.ndarray = field(init=False)     # the low-pass state, lowpass_fraction_bits finer than act
    act: np.ndarray = field(init=False)
    sent: np.ndarray = field(init=False)

    def reset(self) -> None:
        self.sigma = np.zeros(self.cx.size, dtype=np.int64)
        self.low = np.zeros(self.cx.size, dtype=np.int64)
        self.act = np.zeros(self.cx.size, dtype=np.int64)
        self.sent = np.zeros(self.cx.size, dtype=np.int64)


class Loihi2Interpreter(LoihiInterpreter):
    """Bit-exact interpreter of a Loihi-2-like binary (module docstring)."""

    def __init__(self, binary: Binary) -> None:
        cfg = binary.target_config.get("graded_spikes")
        if not isinstance(cfg, dict):
            raise BinaryFormatError("target configuration lacks section 'graded_spikes'")
        self._gcfg = cfg
        self.bank: _SdnBank | None = None
        super().__init__(binary)
        self.bank = self._load_sdn()
        self.graded_port = {p["name"]: bool(p.get("graded")) for p in self.meta.get("inputs", [])}
        # Which sources send graded spikes: sdn compartments and the units of graded ports.
        self.graded_src = np.zeros(self.n_src, dtype=bool)
        self.graded_src[self.bank.cx] = True
        for name, graded in self.graded_port.items():
            if graded:
                self.graded_src[self.port_base[name]:self.port_base[name] + self.port_size[name]] = True
        self.is_sdn = np.zeros(self.n_cx, dtype=bool)
        self.is_sdn[self.bank.cx] = True
        for pl in self.plastic:
            if self.graded_src[pl.pre_src].any():
                raise BinaryFormatError(f"plastic projection '{pl.name}' is driven by graded spikes, which the "
                                        "learning engine does not take")
        self.reset()

    def _load_sdn(self) -> _SdnBank:
        b = self.binary
        if "sdn_cx" not in b.sections:
            z = np.zeros(0, dtype=np.int64)
            return _SdnBank(z, z, z, z.astype(bool), z, z, z, z, False)
        cx = _sec(b, "sdn_cx").astype(np.int64)
        _check_index("sdn_cx", cx, self.n_cx)
        n = cx.size
        cols = {k: _sec(b, f"sdn_{k}").astype(np.int64) for k in ("threshold", "shift", "relu", "clip", "decay",
                                                                  "bias_mant", "bias_exp")}
        if any(v.size != n for v in cols.values()):
            raise BinaryFormatError("the sdn tables do not have one entry per sdn unit")
        one = 1 << int(self._gcfg["decay_shift"])
        if np.any(cols["decay"] < 1) or np.any(cols["decay"] > one) or np.any(cols["shift"] < 0):
            raise BinaryFormatError("an sdn unit holds a decay or shift outside the target's range")
        keep = one - cols["decay"]
        return _SdnBank(cx, cols["threshold"], cols["shift"], cols["relu"] != 0, cols["clip"], keep, cols["decay"],
                        cols["bias_mant"] << cols["bias_exp"], bool(np.any(keep)))

    def reset(self) -> None:
        super().reset()
        if self.bank is not None:
            self.bank.reset()

    def _port_spikes(self, inputs: dict[str, np.ndarray] | None, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Binary ports as on Loihi 1; graded ports take integer payloads (non-zero = a graded
        spike). The payloads, aligned with the returned sources, wait in ``_port_payload`` for
        the run that asked."""
        binary = {k: v for k, v in (inputs or {}).items() if not self.graded_port.get(k)}
        src_b, bounds_b = super()._port_spikes(binary, steps)
        t_all = [np.repeat(np.arange(steps), np.diff(bounds_b))]
        s_all = [src_b]
        p_all = [np.full(src_b.size, int(self._gcfg["binary_payload"]), dtype=np.int64)]
        top = (1 << (int(self._gcfg["payload_bits"]) - 1)) - 1
        for name, arr in (inputs or {}).items():
            if not self.graded_port.get(name):
                continue
            a = np.asarray(arr)
            if a.ndim != 2 or a.shape[1] != self.port_size[name]:
                raise RunError(f"input '{name}': expected shape (steps, {self.port_size[name]}), got {a.shape}")
            if a.size and (a.dtype.kind not in "biu" and not np.all(a == np.round(a))):
                raise RunError(f"input '{name}': graded payloads must be integers")
            a = a[:steps].astype(np.int64)
            if a.size and np.abs(a).max() > top:
                raise RunError(f"input '{name}': payloads must lie within +-{top} (graded_spikes.payload_bits)")
            tt, uu = np.nonzero(a)
            t_all.append(tt)
            s_all.append(self.port_base[name] + uu)
            p_all.append(a[tt, uu])
        t, src, pay = np.concatenate(t_all), np.concatenate(s_all), np.concatenate(p_all)
        order = np.argsort(t, kind="stable")
        self._port_payload = pay[order]
        return src[order], np.searchsorted(t[order], np.arange(steps + 1))

    def _new_run(self, steps: int, inputs: dict[str, np.ndarray] | None, probes: bool) -> _Run:
        src, bounds = self._port_spikes(inputs, steps)
        return _GradedRun(self, steps, probes, src, bounds)


@dataclass(slots=True, eq=False)
class _GradedRun(_Run):
    """A run of the Loihi-2-like chip: the Loihi-1 phases, with the sdn update after the
    compartments' and graded spikes weighted by their payloads when routed."""

    port_payload: np.ndarray = field(init=False)
    payload: np.ndarray = field(init=False)      # per source: this step's payload (graded sources)
    state_half: int = field(init=False)
    state_mask: int = field(init=False)
    payload_top: int = field(init=False)
    decay_shift: int = field(init=False)
    lowpass_fraction: int = field(init=False)

    def __post_init__(self) -> None:
        _Run.__post_init__(self)
        chip = self.chip
        self.port_payload = chip._port_payload
        self.payload = np.zeros(chip.n_src, dtype=np.float64)
        bits = int(chip._gcfg["state_bits"])
        self.state_half, self.state_mask = 1 << (bits - 1), (1 << bits) - 1
        self.payload_top = (1 << (int(chip._gcfg["payload_bits"]) - 1)) - 1
        self.decay_shift = int(chip._gcfg["decay_shift"])
        self.lowpass_fraction = int(chip._gcfg["lowpass_fraction_bits"])
        self.ovf.update({"sigma_wrap": 0, "act_wrap": 0, "payload_clip": 0})

    def update(self, k: int, t: int, a: np.ndarray, a_bound: float) -> np.ndarray:
        fired = _Run.update(self, k, t, a, a_bound)
        chip = self.chip
        bank = chip.bank
        idx = bank.cx
        if not idx.size:
            return fired
        fired = fired[~chip.is_sdn[fired]]  # an sdn slot never fires as a Loihi-1 compartment
        half, mask, ovf = self.state_half, self.state_mask, self.ovf
        sig = bank.sigma + a[idx]
        wrapped = ((sig + half) & mask) - half
        ovf["sigma_wrap"] += int(np.count_nonzero(wrapped != sig))
        sig = wrapped
        y = (sig >> bank.shift) + bank.bias
        y = np.where(bank.relu, np.maximum(y, 0), y)
        y = np.where(bank.clip > 0, np.minimum(y, bank.clip), y)
        if bank.lowpass:
            # The low-pass state carries lowpass_fraction_bits more than the activation: its
            # per-step increments y decay / 4096 are then far above the decay's truncation.
            sh, frac = self.decay_shift, self.lowpass_fraction
            kept = np.sign(bank.low) * ((np.abs(bank.low) * bank.keep) >> sh)
            low = kept + (((y << frac) * bank.decay) >> sh)
            w_low = ((low + half) & mask) - half
            ovf["act_wrap"] += int(np.count_nonzero(w_low != low))
            bank.low = np.where(bank.keep == 0, y << frac, w_low)
            act = bank.low >> frac
        else:
            act = y
        delta = act - bank.sent
        send = np.abs(delta) >= bank.threshold
        pay = np.where(send, np.clip(delta, -self.payload_top, self.payload_top), 0)
        ovf["payload_clip"] += int(np.count_nonzero(pay != np.where(send, delta, 0)))
        bank.sigma, bank.act, bank.sent = sig, act, bank.sent + pay
        row = k % self.chunk
        self.act_buf[row, idx] = (sig != 0) | (act != 0)
        self.s_buf[row] &= ~chip.is_sdn
        self.s_buf[row, idx] = send
        # Probes read an sdn unit's sigma as u and its activation as v; the Loihi-1 update ignores
        # both next step (an sdn slot's decays clear them).
        self.u[idx] = sig
        self.v[idx] = act
        out = idx[send]
        self.payload[out] = pay[send]
        return np.union1d(fired, out) if out.size else fired

    def route(self, t: int, spk: np.ndarray, fired: np.ndarray, ps: np.ndarray, sbits: int,
              rows_cache: dict) -> None:
        chip = self.chip
        graded = chip.graded_src[spk]
        if not graded.any():
            _Run.route(self, t, spk, fired, ps, sbits, rows_cache)
            return
        k = t - self.t0
        lo = int(self.port_bounds[k])
        port_graded = chip.graded_src[ps]
        self.payload[ps[port_graded]] = self.port_payload[lo:lo + ps.size][port_graded]
        b_spk = spk[~graded]
        if b_spk.size:
            b_bits = int(np.bitwise_or.reduce(chip._src_bits[b_spk]))
            _Run.route(self, t, b_spk, fired[~chip.graded_src[fired]], ps[~port_graded], b_bits, rows_cache)
        g = spk[graded]
        g_bits = int(np.bitwise_or.reduce(chip._src_bits[g]))
        pay = self.payload[g] / float(chip._gcfg["binary_payload"])  # matrices hold 64 * w_eff
        ring, ring_bound, ring_len = self.ring, self.ring_bound, self.ring_len
        for m, bit in self.matrix_bits:
            if not g_bits & bit:
                continue
            rows = m.row_of_src[g]
            ok = rows >= 0
            if not ok.any():
                continue
            rows, p = rows[ok], pay[ok]
            j = (t + 1 + m.delay) % ring_len
            if m.dense:
                ring[j] += p @ m.mat[rows].astype(np.float64)
            else:
                starts = m.indptr[rows]
                lens = m.indptr[rows + 1] - starts
                pos = _ranges(starts, lens)
                np.add.at(ring[j], m.indices[pos], m.data[pos] * np.repeat(p, lens))
            ring_bound[j] += float(np.abs(p).sum()) * m.row_abs_max
        self.payload[g] = 0.0
