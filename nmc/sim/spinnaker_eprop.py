"""e-prop on the SpiNNaker-like interpreter: the ALIF and readout kernels and the per-core learning
engine (docs/eprop.md has every equation, its fixed-point format and its source).

Everything is integer arithmetic on raw words (:mod:`nmc.formats.spinnaker`, :mod:`nmc.formats.eprop`).
Per tick t of a trial (tau = t mod T ticks), on each e-prop core, after the neuron update:

- every source column i: zbar_i = alpha zbar_i + [a spike of i arrived for this tick]; Z_i += zbar_i;
- every synapse (neuron j, column i) of a learning core, with psi_j and the learning signal L_j
  that the payload packets of tick t - 1 brought:
      e = psi_j (zbar_i - eps_ji)        (eps is beta~ times Bellec's epsilon^a, normalised by theta)
      eps_ji <- rho_j eps_ji + beta~_j e    (= (rho_j - psi_j beta~_j) eps_ji + psi_j beta~_j zbar_i)
      ebar_ji <- kappa ebar_ji + (1 - kappa) e;    G_ji += L_j ebar_ji
- the readout core, inside the scored window: err_k = softmax(y)_k - target_k (cross entropy) or
  y_k - target_k (mse); G_kj += err_k zbar_j; err_k goes out as a payload packet to every learning
  core, where L_j += B_jk err_k for the next tick.

At tau = 0 the core starts a trial: when the previous trial ran all T ticks it adds the firing-rate
regulariser to G, and at the end of every batch applies G to the weights (a DMA of each changed row
and back; with Adam a chunk of columns in each of the first ``adam_ticks`` ticks, :meth:`EpropEngine.adam_step`);
then every state is zeroed. The trace loop is skipped at tau = 0, where it is exactly a
no-op (all traces and zbar are 0), which is where the weight update's work fits.

The learning cores' state matrices are stacked into one block (:class:`_Block`) so that each of
these steps is one array operation over every synapse of every core per tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..binary.format import Binary
from ..errors import BinaryFormatError, RunError
from ..formats import spinnaker as fx
from ..formats.eprop import (ADAM_B1C, ADAM_B1C_FRAC, ADAM_B2C, ADAM_B2C_FRAC, ADAM_BETA1, ADAM_BETA2, ADAM_G_MAX,
                             ADAM_M, ADAM_OUT_SHIFT, ADAM_V, EBAR, EPS, FEEDBACK, GRAD, TRACE_FRAC, adam_correction,
                             rsqrt_parts, rsqrt_table, scaled_step)

ONE = fx.ONE
#: zbar enters the traces in their units (2^-22): zbar << ZBAR_SHIFT, zbar first held below 512.0
#: so that zbar - eps~ fits a 32-bit word (counted as a saturation; the rate that reaches it is
#: above 25 kHz at tau_m = 20 ms).
ZBAR_SHIFT = TRACE_FRAC - fx.S1615_FRAC
ZBAR_MAX = (1 << (31 - ZBAR_SHIFT)) - 1
#: G += (L x ebar + half) >> G_SHIFT: a REAL times a trace value (2^-37) in GRAD's units (2^-10).
G_SHIFT = fx.S1615_FRAC + TRACE_FRAC - GRAD.frac
#: A plastic synapse's 32-bit SDRAM word: its signed weight word in the top half, a fraction of a
#: weight step below (docs/eprop.md, "Rows"): small learning steps accumulate instead of rounding away.
WEIGHT_FRACTION_BITS = 16
WORD_MIN, WORD_MAX = -(1 << 31), (1 << 31) - 1


def weight_of_words(high: np.ndarray) -> np.ndarray:
    """The signed weight words of plastic words, given their top halfwords (the low halfword is a
    fraction of a weight step that only the weight update reads)."""
    return np.asarray(high, dtype=np.uint16).astype(np.int16).astype(np.int64)


def adam_cells(g: np.ndarray, m: np.ndarray, v: np.ndarray, k: int,
               table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One Adam step of cells with gradient words ``g`` (|g| < 2^15), moments ``m`` (ADAM_M values,
    units 2^-4 g) and ``v`` (ADAM_V values, units 2^-10 g^2) and the bias correction ``k`` (2^-16):
    (m, v, a, saturations) with a = k m^/sqrt(v^) in units of 2^-16 (docs/eprop.md, "Adam")."""
    g = np.asarray(g, dtype=np.int64)
    half1, half2 = 1 << (ADAM_B1C_FRAC - 1), 1 << (ADAM_B2C_FRAC - 1)
    m, s1 = ADAM_M.round(m + ((((g << 4) - m) * ADAM_B1C + half1) >> ADAM_B1C_FRAC))
    v, s2 = ADAM_V.round(v + (((((g * g) << 10) - v) * ADAM_B2C + half2) >> ADAM_B2C_FRAC))
    r, h = rsqrt_parts(v, table)
    sh = 15 + h
    a = (k * m * r + (np.int64(1) << (sh - 1))) >> sh
    return m, v, a, s1 + s2


def _sec(b: Binary, name: str) -> np.ndarray:
    if name not in b.sections:
        raise BinaryFormatError(f"section '{name}' is missing")
    return b.sections[name]


def _u032_to_real(d: np.ndarray) -> np.ndarray:
    """A u0.32 decay as a REAL (floor)."""
    return np.asarray(d, dtype=np.int64) >> (fx.U032_FRAC - fx.S1615_FRAC)


class _RingInput:
    """The ring-slot input both e-prop kernels take: one signed voltage step per neuron and tick."""

    inp: np.ndarray

    def add_input(self, in_e: np.ndarray, in_i: np.ndarray) -> int:
        """Ring-slot inputs (REAL mV steps, both signs) for this tick's update; returns the wraps."""
        raw = in_e - in_i
        self.inp = fx.wrap32(raw)
        return int(np.count_nonzero(raw != self.inp))


class EpropALIF(_RingInput):
    """The ALIF neuron of e-prop (Bellec et al. 2020, EligALIF) on the neurons ``idx``, in mV relative
    to rest. Load time: alpha = expulr(-ts/tau_m), rho = expulr(-ts/tau_a) (u0.32),
    1/theta = kdivk(1, theta), beta~ = kdivk(beta, theta), n_ref = ceil(t_ref / ts). One tick::

        v = alpha v + I + bias - z_prev theta          a = rho a + z_prev
        A = theta + beta a;  blocked = ref > 0;  z = v > A and not blocked
        ref = clip(ref + n_ref z - 1, 0, n_ref)
        psi = 0 if blocked else gamma max(0, 1 - |(v - A) / theta|)
    """

    name = "eprop_alif"
    state_arrays = ("v", "a", "ref", "z", "psi", "inp", "u")

    def __init__(self, b: Binary, idx: np.ndarray, time_step: np.ndarray) -> None:
        self.idx = idx
        w = {k: _sec(b, f"nrn_ep_{k}").astype(np.int64)[idx] for k in
             ("tau_m", "tau_a", "theta", "beta", "bias", "tau_refrac", "lr_mant", "lr_exp")}
        self.alpha = fx.expulr(-fx.kdivk(time_step, w["tau_m"]))
        self.rho = fx.expulr(-fx.kdivk(time_step, w["tau_a"]))
        self.theta, self.bias = w["theta"], w["bias"]
        self.inv_theta = fx.kdivk(ONE, w["theta"])
        self.beta = w["beta"]
        self.beta_n = fx.kdivk(w["beta"], w["theta"])
        self.n_ref = fx.ceil_accum(fx.kdivk(w["tau_refrac"], time_step))
        self.lr_mant, self.lr_exp = w["lr_mant"], w["lr_exp"]
        self.gamma = ONE  # set by the engine from the binary's e-prop words
        self.reset()

    def reset(self) -> None:
        n = self.idx.size
        self.v = np.zeros(n, dtype=np.int64)
        self.a = np.zeros(n, dtype=np.int64)
        self.ref = np.zeros(n, dtype=np.int64)
        self.z = np.zeros(n, dtype=bool)
        self.psi = np.zeros(n, dtype=np.int64)
        self.inp = np.zeros(n, dtype=np.int64)
        self.u = np.zeros(n, dtype=np.int64)

    def update(self) -> tuple[np.ndarray, int]:
        zp = self.z.astype(np.int64)
        v_raw = fx.decay_mul(self.v, self.alpha) + self.inp + self.bias - zp * self.theta
        self.v = fx.wrap32(v_raw)
        self.a = fx.decay_mul(self.a, self.rho) + zp * ONE
        thr = self.theta + fx.accum_mul(self.beta, self.a)
        blocked = self.ref > 0
        self.z = (self.v > thr) & ~blocked
        self.ref = np.clip(self.ref + self.n_ref * self.z - 1, 0, self.n_ref)
        dist = np.abs(fx.accum_mul(self.v - thr, self.inv_theta))
        self.psi = np.where(blocked, 0, fx.accum_mul(self.gamma, np.maximum(0, ONE - dist)))
        self.u = self.inp
        return self.z.copy(), int(np.count_nonzero(v_raw != self.v))


class EpropLI(_RingInput):
    """The leaky readout: y = kappa y + I + bias (mV relative to rest, kappa = expulr(-ts/tau_m)); no spikes."""

    name = "eprop_li"
    state_arrays = ("v", "inp", "u")

    def __init__(self, b: Binary, idx: np.ndarray, time_step: np.ndarray) -> None:
        self.idx = idx
        w = {k: _sec(b, f"nrn_ep_{k}").astype(np.int64)[idx] for k in ("tau_m", "bias", "lr_mant", "lr_exp")}
        self.kappa = fx.expulr(-fx.kdivk(time_step, w["tau_m"]))
        self.bias = w["bias"]
        self.lr_mant, self.lr_exp = w["lr_mant"], w["lr_exp"]
        self.reset()

    def reset(self) -> None:
        n = self.idx.size
        self.v = np.zeros(n, dtype=np.int64)
        self.inp = np.zeros(n, dtype=np.int64)
        self.u = np.zeros(n, dtype=np.int64)

    def update(self) -> tuple[np.ndarray, int]:
        v_raw = fx.decay_mul(self.v, self.kappa) + self.inp + self.bias
        self.v = fx.wrap32(v_raw)
        self.u = self.inp
        return np.zeros(self.idx.size, dtype=bool), int(np.count_nonzero(v_raw != self.v))


@dataclass
class _Core:
    """One e-prop core: its neurons and where its state lies in its block's matrices."""

    core: int
    kind: int                  # 1 adaptive, 2 lif, 3 readout
    nrn: np.ndarray            # global neuron ids (its rows, in order)
    rows: slice                # its rows in the block
    cols: slice                # its columns in the global source-slot arrays
    width: int                 # its state-matrix columns (the block may be wider)


@dataclass
class _Block:
    """The state matrices of a set of e-prop cores stacked row-wise (one row per neuron, as wide as
    the widest core; a narrower core's extra cells read a source slot that is always 0 and hold no
    synapse), so that one array operation per tick updates every synapse of every core. The
    arithmetic is per cell, so stacking changes no value."""

    nrn: np.ndarray            # (N,) global neuron ids
    pos: np.ndarray            # (N,) positions in the kernel
    slot: np.ndarray           # (N, S) the source slot each cell reads (the padding slot when absent)
    mask: np.ndarray           # (N, S) which cells are synapses
    weight: np.ndarray         # (N, S) the synapses' 32-bit plastic words: signed weight word << 16 | fraction
    eps: np.ndarray            # (N, S) EPS values (units of 2^-22)
    ebar: np.ndarray           # (N, S) EBAR values (units of 2^-22)
    grad: np.ndarray           # (N, S) GRAD storage units (readout: REAL)
    cores: list[_Core]
    m: np.ndarray | None = None  # (N, S) Adam's first moment (ADAM_M values; update = adam only)
    v: np.ndarray | None = None  # (N, S) Adam's second moment (ADAM_V values)


class EpropEngine:
    """The learning side of the e-prop cores (module docstring); owned by the interpreter.

    Its dynamic state, what :meth:`state` saves and :meth:`load_state` restores (the interpreter
    keeps it under ``eprop/`` next to the kernels' ``state_arrays``), is listed explicitly, so that
    a new attribute a run changes must be added here to be checkpointed:

    - ``state_arrays``: the engine's per-slot and per-neuron arrays (zbar, its trial sum, the
      arrivals flagged for the next tick, the learning signals of this and the next tick, the
      trial's spike counts and psi sums, the plastic weight words ``pw``);
    - ``state_scalars``: the trial bookkeeping (``trials_done``, ``ticks_in_trial``,
      ``trial_learned``), saved as 0-d arrays;
    - ``block_arrays``: each block's (``learn``, ``out``) plastic words, eps~, ebar and G (and with
      Adam its moments ``m`` and ``v``, with the scalars ``adam_chunk``, ``adam_p1``, ``adam_p2``
      and ``adam_k`` among ``state_scalars``);
    - the saturation counts of the current run (``saturation/<kind>``);
    - the plastic weights where the packets and the SDRAM hold them (the weight update writes
      them back): ``sdram_halves`` (each plastic synapse's fraction and weight halfwords) and
      ``dlv_weight`` / ``dlv_stype`` (its delivery's weight and synapse type).
    """

    state_arrays = ("zbar", "zsum", "arrived", "L_now", "L_next", "count", "psi_sum", "pw")
    state_scalars = ("trials_done", "ticks_in_trial", "trial_learned")
    block_arrays = ("weight", "eps", "ebar", "grad")
    blocks = ("learn", "out")

    def __init__(self, chip: Any, b: Binary) -> None:
        meta = chip.meta["eprop"]          # checked with every e-prop table by nmc.sim.spinnaker_validate
        self.chip, self.meta = chip, meta
        self.T = int(meta["trial_ticks"])
        self.batch = int(meta["batch"])
        self.window = int(meta["window_from"])
        self.ebar_from = int(meta.get("ebar_from", 0))
        self.loss = str(meta["loss"])
        self.sign = meta.get("update", "gradient") == "sign"
        self.adam = meta.get("update", "gradient") == "adam"
        # Adam's update is spread over the first adam_ticks ticks after a batch end, one chunk of
        # state columns per tick; adam_chunk is the next chunk (== adam_ticks: none pending).
        self.adam_ticks = int(meta.get("adam_ticks", 1)) if self.adam else 0
        self.adam_chunk = self.adam_ticks
        self.adam_p1 = self.adam_p2 = 1 << 32      # beta1^t, beta2^t (u0.32; 1.0 before the first update)
        self.adam_k = 0                            # k_t in units of 2^-16
        if self.adam:
            self.state_scalars = EpropEngine.state_scalars + ("adam_chunk", "adam_p1", "adam_p2", "adam_k")
            self.block_arrays = EpropEngine.block_arrays + ("m", "v")
            self.rsqrt = rsqrt_table()
        self.n_out = int(meta["n_out"])
        self.gamma = int(meta["gamma"])
        self.rate_target, self.rate_reg = int(meta["rate_target"]), int(meta["rate_reg"])
        self.rate_scale, self.inv_ticks = int(meta["rate_scale"]), int(meta["inv_ticks"])
        cyc = b.target_config["cost"]["cycles"]
        self.cost = {k: int(cyc[k]) for k in ("eprop_synapse_adaptive", "eprop_synapse", "eprop_readout_synapse",
                                              "eprop_source", "eprop_softmax", "eprop_feedback",
                                              "eprop_trial_synapse", "eprop_row_writeback", "packet_received",
                                              "packet_sent") + (("eprop_adam_synapse",) if self.adam else ())}
        kind = _sec(b, "core_eprop").astype(np.int64)
        src_off = _sec(b, "ep_src_offset").astype(np.int64)
        src_key = _sec(b, "ep_src_key").astype(np.int64)
        # The source of each state column (every source's key is its own, every column's key some
        # source's: nmc.sim.spinnaker_validate).
        by_key = np.argsort(chip.all_keys, kind="stable")
        cols = by_key[np.searchsorted(chip.all_keys[by_key], src_key)] if src_key.size else src_key
        self.slot_src = cols
        # Source -> its slots on every e-prop core (CSR), to flag arrivals.
        order = np.argsort(cols, kind="stable")
        self.arr_ptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=chip.n_src))]).astype(np.int64)
        self.arr_slot = order
        # One slot more than the columns: the always-zero slot that padding cells read.
        self.pad_slot = cols.size
        self.zbar = np.zeros(cols.size + 1, dtype=np.int64)
        self.zsum = np.zeros(cols.size + 1, dtype=np.int64)
        self.arrived = np.zeros(cols.size + 1, dtype=bool)
        self.slot_decay = np.zeros(cols.size + 1, dtype=np.int64)
        n = chip.n_neurons
        fb = _sec(b, "nrn_ep_fb").astype(np.int64)
        self.fb = fb.reshape(n, self.n_out)
        self.L_now = np.zeros(n, dtype=np.int64)
        self.L_next = np.zeros(n, dtype=np.int64)
        self.count = np.zeros(n, dtype=np.int64)
        self.psi_sum = np.zeros(n, dtype=np.int64)
        kern_of = {k.name: k for k in chip.kernels}
        learn: list[_Core] = []
        readout: list[_Core] = []
        off = chip.core_offset
        self.kernel: Any = kern_of.get("eprop_alif")
        for c in np.flatnonzero(kind).tolist():
            nrn = np.arange(off[c], off[c + 1])
            model = chip.meta["core_models"][c]
            kern = kern_of[model]          # the model matches the core's kind, one decay per core (validated)
            pos = chip.pos_in_kernel[nrn]
            decays = np.unique(kern.alpha[pos] if model == "eprop_alif" else kern.kappa[pos])
            sl = slice(int(src_off[c]), int(src_off[c + 1]))
            self.slot_decay[sl] = int(decays[0]) if decays.size else 0
            (readout if kind[c] == 3 else learn).append(_Core(c, int(kind[c]), nrn, slice(0), sl, sl.stop - sl.start))
            if model == "eprop_alif":
                kern.gamma = self.gamma
        self.learn = self._stack(learn, self.kernel)
        self.out = self._stack(readout, kern_of["eprop_li"])
        if self.adam:
            for blk in (self.learn, self.out):
                blk.m, blk.v = np.zeros_like(blk.grad), np.zeros_like(blk.grad)
        self.cores = learn + readout
        self.core_of = {ec.core: ec for ec in self.cores}
        self.readout = readout[0]
        ro_kappa = np.unique(kern_of["eprop_li"].kappa[self.out.pos])
        self.kappa = int(ro_kappa[0])                          # u0.32: the readout's filter, for ebar
        self.one_minus_kappa = fx.M32 - self.kappa             # 1 - kappa (the C's 1.0 is 0xFFFFFFFF)
        k = self.kernel
        self.rho = k.rho[self.learn.pos]
        self.beta_n = k.beta_n[self.learn.pos]
        self.adaptive = bool(np.any(self.beta_n))
        # The rows (neurons) whose eps~ runs: beta~ > 0; the others' stays 0.
        self.arows = np.flatnonzero(self.beta_n)
        self.a_per_core = {ec.core: int(np.count_nonzero(self.beta_n[ec.rows])) for ec in self.learn.cores}
        self.lr = (k.lr_mant[self.learn.pos][:, None], k.lr_exp[self.learn.pos][:, None])
        ko = self.out_kernel = kern_of["eprop_li"]
        self.lr_out = (ko.lr_mant[self.out.pos][:, None], ko.lr_exp[self.out.pos][:, None])
        self._load_plastic(b)
        self._load_payload(b)
        self.trials_done = 0
        self.ticks_in_trial = 0
        self.trial_learned = False
        self.saturation = {"eprop_state": 0, "weight": 0}

    def _stack(self, cores: list[_Core], kern: Any) -> _Block:
        """The block of ``cores`` (rows in core order, as wide as the widest)."""
        width = max((ec.width for ec in cores), default=0)
        slot, row = [], 0
        for ec in cores:
            ec.rows = slice(row, row + ec.nrn.size)
            row += ec.nrn.size
            s = np.full(width, self.pad_slot, dtype=np.int64)
            s[:ec.width] = np.arange(ec.cols.start, ec.cols.stop)
            slot.append(np.broadcast_to(s, (ec.nrn.size, width)))
        nrn = np.concatenate([ec.nrn for ec in cores]) if cores else np.zeros(0, np.int64)
        shape = (nrn.size, width)
        z = lambda: np.zeros(shape, dtype=np.int64)  # noqa: E731
        return _Block(nrn, self.chip.pos_in_kernel[nrn] if kern is not None else nrn,
                      np.vstack(slot) if slot else np.zeros(shape, np.int64), np.zeros(shape, dtype=bool),
                      z(), z(), z(), z(), cores)

    # -- loading ----------------------------------------------------------------------------------
    def _load_plastic(self, b: Binary) -> None:
        """Plastic synapses: their state-matrix cells and their places in the deliveries and SDRAM."""
        chip, dlv = self.chip, self.chip.deliveries
        half = _sec(b, "ep_syn_half").astype(np.int64)
        self.syn_proj = _sec(b, "ep_syn_proj").astype(np.int64)
        self.syn_pre = _sec(b, "ep_syn_pre").astype(np.int64)
        self.syn_post = _sec(b, "ep_syn_post").astype(np.int64)
        halves = chip.sdram_words.view(np.uint16)
        order = np.argsort(half)
        pos = np.flatnonzero(dlv.plastic)
        k = np.searchsorted(half[order], dlv.addr[pos])
        if pos.size and (np.any(k >= half.size) or np.any(half[order][np.minimum(k, half.size - 1)] != dlv.addr[pos])):
            raise BinaryFormatError("a plastic synapse of a row is not listed in 'ep_syn_half'")
        self.p_of_dlv = np.full(dlv.addr.size, -1, dtype=np.int64)
        self.p_of_dlv[pos] = order[k]
        self.half = half
        # Each plastic delivery: its post neuron's block, cell and delivery; its source's column.
        src_of = np.repeat(np.arange(dlv.ptr.size - 1), np.diff(dlv.ptr))
        self.cell_blk = np.full(half.size, -1, dtype=np.int64)
        self.cell_flat = np.zeros(half.size, dtype=np.int64)
        self.dlv_pos = np.full(half.size, -1, dtype=np.int64)
        w0 = weight_of_words(halves[half])
        self.frac = halves[half - 1].astype(np.int64)
        self.pw = w0.copy()
        for bi, blk in enumerate((self.learn, self.out)):
            width = blk.mask.shape[1]
            for ec in blk.cores:
                sel = pos[chip.neuron_core[dlv.post[pos]] == ec.core]
                p = self.p_of_dlv[sel]
                j = dlv.post[sel] - ec.nrn[0] + ec.rows.start
                cols = np.arange(ec.cols.start, ec.cols.stop)
                srcs = self.slot_src[cols]
                col_order = np.argsort(srcs)
                ci = np.searchsorted(srcs[col_order], src_of[sel])
                if np.any(ci >= cols.size) or np.any(srcs[col_order][np.minimum(ci, cols.size - 1)] != src_of[sel]):
                    raise BinaryFormatError(f"a plastic synapse on core {ec.core} comes from a source with no state column")
                flat = j * width + col_order[ci]
                if np.unique(flat).size != flat.size:
                    raise BinaryFormatError(f"two plastic synapses share a state cell on core {ec.core}")
                blk.mask.reshape(-1)[flat] = True
                blk.weight.reshape(-1)[flat] = (w0[p] << 16) | self.frac[p]
                self.cell_blk[p], self.cell_flat[p], self.dlv_pos[p] = bi, flat, sel
        if np.any(self.cell_blk < 0):
            raise BinaryFormatError("a plastic synapse listed in 'ep_syn_half' is reached by no packet")

    def _load_payload(self, b: Binary) -> None:
        """Route the readout's error keys and the host's target keys through the router tables once."""
        chip = self.chip
        mask = int(self.meta["mask"])
        ro = self.readout
        out_keys = chip.all_keys[ro.nrn]
        chip_of = (chip.core["chip_y"] * chip.router.w + chip.core["chip_x"])
        max_hops = int(b.target_config["router"].get("max_hops", 64))
        d_src, d_core, trav, *_ = chip.router.walk(out_keys, np.full(out_keys.size, chip_of[ro.core]), max_hops)
        ls_off = _sec(b, "ep_ls_offset").astype(np.int64)
        ls_key, ls_base = _sec(b, "ep_ls_key").astype(np.int64), _sec(b, "ep_ls_base").astype(np.int64)
        # Per readout unit k: the learning cores that hold its key (payload handler table).
        self.ls_cores: list[list[int]] = [[] for _ in range(out_keys.size)]
        for k, c in zip(d_src.tolist(), d_core.tolist()):
            keys = ls_key[ls_off[c]:ls_off[c + 1]]
            hit = np.flatnonzero((out_keys[k] & mask) == keys)
            if hit.size and c in self.core_of and self.core_of[c].kind in (1, 2):
                unit = int(ls_base[ls_off[c] + hit[0]] + (out_keys[k] & ~mask & fx.M32))
                if unit != k:
                    raise BinaryFormatError(f"learning-signal table of core {c} maps readout unit {k} to {unit}")
                self.ls_cores[k].append(c)
        self.ls_traversals = int(trav.sum())
        tg_off = _sec(b, "ep_tg_offset").astype(np.int64)
        tg_key, tg_base = _sec(b, "ep_tg_key").astype(np.int64), _sec(b, "ep_tg_base").astype(np.int64)
        port = self.meta["target"]
        base = chip.port_base[port]
        keys = chip.all_keys[base:base + chip.port_size[port]]
        host = chip.meta.get("host_chip", [0, 0])
        start = np.full(keys.size, int(host[1]) * chip.router.w + int(host[0]))
        d_src, d_core, trav, *_ = chip.router.walk(keys, start, max_hops)
        c = ro.core
        ok = np.zeros(keys.size, dtype=bool)
        for k, cc in zip(d_src.tolist(), d_core.tolist()):
            tk = tg_key[tg_off[cc]:tg_off[cc + 1]]
            hit = np.flatnonzero((keys[k] & mask) == tk)
            if cc == c and hit.size and int(tg_base[tg_off[cc] + hit[0]] + (keys[k] & ~mask & fx.M32)) == k:
                ok[k] = True
        self.target_ok = ok
        # Per learning neuron and readout unit: whether the unit's payload reaches its core, and the
        # feedback weight it then applies; per core the payloads it takes each scored tick.
        blk = self.learn
        self.recv = np.zeros((blk.nrn.size, self.n_out), dtype=bool)
        for k, cores in enumerate(self.ls_cores):
            for c in cores:
                self.recv[self.core_of[c].rows, k] = True
        self.fb_learn = np.where(self.recv, self.fb[blk.nrn], 0)
        self.units_in = {ec.core: sum(ec.core in cores for cores in self.ls_cores) for ec in blk.cores}
        self.tg_traversals = int(trav.sum())

    # -- state ------------------------------------------------------------------------------------
    def reset(self) -> None:
        """The dynamic state of a trial; G, the weights and the finished trial's statistics stay."""
        for blk in (self.learn, self.out):
            blk.eps[:] = 0
            blk.ebar[:] = 0
        self.zbar[:] = 0
        self.arrived[:] = False
        self.L_now[:] = 0
        self.L_next[:] = 0

    def state(self) -> dict[str, np.ndarray]:
        """The engine's dynamic state (class docstring) as named arrays (copies), no objects."""
        out = {name: np.array(getattr(self, name), copy=True) for name in self.state_arrays}
        for name in self.state_scalars:
            v = getattr(self, name)
            out[name] = np.array(v, dtype=bool if isinstance(v, (bool, np.bool_)) else np.int64)
        for bname in self.blocks:
            blk = getattr(self, bname)
            for name in self.block_arrays:
                out[f"{bname}/{name}"] = np.array(getattr(blk, name), copy=True)
        for kind in sorted(self.saturation):
            out[f"saturation/{kind}"] = np.array(self.saturation[kind], dtype=np.int64)
        halves = self.chip.sdram_words.view(np.uint16)
        out["sdram_halves"] = np.stack([halves[self.half - 1], halves[self.half]], axis=1)
        dlv = self.chip.deliveries
        out["dlv_weight"] = np.array(dlv.weight[self.dlv_pos], copy=True)
        out["dlv_stype"] = np.array(dlv.stype[self.dlv_pos], copy=True)
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a :meth:`state` (its keys, shapes and dtypes checked by the interpreter)."""
        for name in self.state_arrays:
            setattr(self, name, np.array(state[name], copy=True))
        for name in self.state_scalars:
            v = np.asarray(state[name])
            setattr(self, name, bool(v) if v.dtype == bool else int(v))
        for bname in self.blocks:
            blk = getattr(self, bname)
            for name in self.block_arrays:
                setattr(blk, name, np.array(state[f"{bname}/{name}"], copy=True))
        self.saturation = {kind: int(state[f"saturation/{kind}"]) for kind in self.saturation}
        halves = self.chip.sdram_words.view(np.uint16)
        sh = np.asarray(state["sdram_halves"])
        halves[self.half - 1] = sh[:, 0]
        halves[self.half] = sh[:, 1]
        dlv = self.chip.deliveries
        dlv.weight[self.dlv_pos] = state["dlv_weight"]
        dlv.stype[self.dlv_pos] = state["dlv_stype"]

    def arrivals(self, src: np.ndarray) -> None:
        """Sources whose spikes reach the e-prop cores for the next tick."""
        if src.size:
            starts, lens = self.arr_ptr[src], self.arr_ptr[src + 1] - self.arr_ptr[src]
            first = np.cumsum(lens) - lens
            idx = np.arange(int(lens.sum())) - np.repeat(first, lens) + np.repeat(starts, lens)
            self.arrived[self.arr_slot[idx]] = True

    # -- trial start ------------------------------------------------------------------------------
    def trial_start(self, learning: bool, extra: np.ndarray) -> None:
        """tau = 0: the finished trial's regulariser and, at a batch end, the weight update; then zero
        the trial's state (the interpreter resets the neurons and ring slots)."""
        if learning and self.ticks_in_trial == self.T and self.trial_learned:
            self.trials_done += 1
            self._regularise(extra)
            if self.trials_done % self.batch == 0:
                if self.adam:
                    self._adam_begin()
                else:
                    self._apply(extra)
        self.ticks_in_trial = 0
        # A trial counts for learning only if it ran with learning on from its first tick to its
        # last (an evaluation trial's spike counts must not reach the regulariser).
        self.trial_learned = learning
        self.count[:] = 0
        self.psi_sum[:] = 0
        self.zsum[:] = 0
        self.reset()

    def _regularise(self, extra: np.ndarray) -> None:
        """G_ji += rate_reg' (f_j - f0) mean(psi_j) mean(zbar_i) (docs/eprop.md, "Regularisation")."""
        for ec in self.cores:
            extra[ec.core] += ec.nrn.size * ec.width * self.cost["eprop_trial_synapse"]
        blk = self.learn
        if self.rate_reg == 0 or not blk.nrn.size:
            return
        f = self.count[blk.nrn] * self.rate_scale
        d = f - self.rate_target
        psibar = fx.decay_mul(self.psi_sum[blk.nrn], self.inv_ticks)
        zbb = fx.decay_mul(self.zsum[blk.slot], self.inv_ticks)
        q = fx.accum_mul(fx.accum_mul(self.rate_reg, d), psibar)
        r = fx.accum_mul(q[:, None], zbb)
        blk.grad, sat = GRAD.store(GRAD.load(blk.grad) + r)
        self.saturation["eprop_state"] += sat

    def _apply(self, extra: np.ndarray) -> None:
        """Every plastic word w (32 bits: weight word and fraction) becomes w - round(G x factor x
        2^16) (gradient descent) or w - round(sign(G) x factor x 2^16) (sign descent), saturating;
        G <- 0; the changed rows are written back (the SDRAM words and the deliveries the packets
        use)."""
        for bi, (blk, (mant, exp), frac) in enumerate(((self.learn, self.lr, GRAD.frac),
                                                       (self.out, self.lr_out, fx.S1615_FRAC))):
            if not blk.nrn.size:
                continue
            if self.sign:       # -eta sign(G): the factor itself, in 2^-16 of a weight word
                step = -scaled_step(np.sign(blk.grad), -WEIGHT_FRACTION_BITS, mant, exp)
            else:
                step = -scaled_step(blk.grad, frac - WEIGHT_FRACTION_BITS, mant, exp)
            step[~blk.mask] = 0
            want = blk.weight + step
            new = self._held(want)
            for ec in blk.cores:
                # A row is the synapses of one source onto the core: a column of the core's matrix.
                rows = int(np.count_nonzero((new[ec.rows] != blk.weight[ec.rows]).any(axis=0)))
                extra[ec.core] += rows * self.cost["eprop_row_writeback"]
            self._write(bi, blk, new)
            blk.grad[:] = 0

    def _held(self, want: np.ndarray) -> np.ndarray:
        """Plastic words held to 32 bits, the ones beyond counted as weight saturations."""
        new = np.clip(want, WORD_MIN, WORD_MAX)
        self.saturation["weight"] += int(np.count_nonzero(new != want))
        return new

    def _adam_begin(self) -> None:
        """A batch ends with update = adam: the bias-correction powers advance (beta^t <- beta^t beta,
        u0.32, floor), k_t is derived once, and the chunks start with this tick (:meth:`adam_step`)."""
        self.adam_p1 = (self.adam_p1 * ADAM_BETA1) >> 32
        self.adam_p2 = (self.adam_p2 * ADAM_BETA2) >> 32
        self.adam_k = adam_correction(self.adam_p1, self.adam_p2)
        self.adam_chunk = 0

    def adam_step(self, extra: np.ndarray) -> None:
        """One chunk of Adam's update, at the start of a tick (before its packets are sent): the state
        columns [c S / K, (c + 1) S / K) of each block (S its width, K = adam_ticks, c the chunk),
        each synapse (docs/eprop.md, "Adam")::

            g = G (learning cores) or clip(round(G 2^-13), +-32767) (readout)
            m <- M(m + ((16 g - m) 6554 + 2^15) >> 16)     v <- V(v + ((1024 g^2 - v) 1049 + 2^19) >> 20)
            (r, h) = rsqrt(v);  a = (k_t m r + 2^(14 + h)) >> (15 + h)    (a: the step in units of 2^-16)
            w <- w - round(a x factor)   (saturating);   G <- 0

        M and V are the moments' 16-bit small floats; the columns' moments are read from and written
        back to SDRAM (a DMA per column), and the changed rows written back as for the other rules."""
        c, K = self.adam_chunk, self.adam_ticks
        for bi, (blk, (mant, exp)) in enumerate(((self.learn, self.lr), (self.out, self.lr_out))):
            if not blk.nrn.size or blk.m is None or blk.v is None:
                continue
            S = blk.weight.shape[1]
            cols = slice(c * S // K, (c + 1) * S // K)
            g = blk.grad[:, cols]
            if bi == 1:
                g = (g + (1 << (ADAM_OUT_SHIFT - 1))) >> ADAM_OUT_SHIFT
                held = np.clip(g, -ADAM_G_MAX, ADAM_G_MAX)
                self.saturation["eprop_state"] += int(np.count_nonzero(held != g))
                g = held
            m, v, a, sat = adam_cells(g, blk.m[:, cols], blk.v[:, cols], self.adam_k, self.rsqrt)
            self.saturation["eprop_state"] += sat
            blk.m[:, cols], blk.v[:, cols] = m, v
            step = -scaled_step(a, 0, mant, exp)
            mask = blk.mask[:, cols]
            step[~mask] = 0
            want = blk.weight[:, cols] + step
            part = self._held(want)
            for ec in blk.cores:
                lo, hi = cols.start, min(cols.stop, ec.width)
                if hi <= lo:
                    continue
                cells = ec.nrn.size * (hi - lo)
                changed = int(np.count_nonzero((part[ec.rows, :hi - lo] != blk.weight[ec.rows, lo:hi]).any(axis=0)))
                extra[ec.core] += (cells * self.cost["eprop_adam_synapse"]
                                   + ((hi - lo) + changed) * self.cost["eprop_row_writeback"])
            new = blk.weight.copy()
            new[:, cols] = part
            self._write(bi, blk, new)
            blk.grad[:, cols] = 0
        self.adam_chunk += 1

    def _write(self, bi: int, blk: _Block, new: np.ndarray) -> None:
        """Block ``bi``'s plastic words become ``new``: the SDRAM rows and the deliveries the
        packets use."""
        dlv, halves = self.chip.deliveries, self.chip.sdram_words.view(np.uint16)
        changed = (new >> WEIGHT_FRACTION_BITS) != (blk.weight >> WEIGHT_FRACTION_BITS)
        blk.weight = new
        p = np.flatnonzero(self.cell_blk == bi)
        words = new.reshape(-1)[self.cell_flat[p]]
        w = words >> WEIGHT_FRACTION_BITS
        self.pw[p] = w
        moved = changed.reshape(-1)[self.cell_flat[p]]
        dlv.weight[self.dlv_pos[p[moved]]] = np.abs(w[moved])
        dlv.stype[self.dlv_pos[p[moved]]] = (w[moved] < 0).astype(dlv.stype.dtype)
        halves[self.half[p]] = (w & 0xFFFF).astype(np.uint16)
        halves[self.half[p] - 1] = (words & 0xFFFF).astype(np.uint16)

    def host_write(self, block: str, words: np.ndarray) -> None:
        """The host writes a block's plastic words (``"learn"`` or ``"out"``; (neurons, columns) as
        in :meth:`state`, weight word << 16 | fraction) and zeroes its G, as a SpiNNaker host writes
        SDRAM between two runs (a host-side optimiser: bench/eprop_evidence.py --host-adam). Cells
        that are not synapses keep their word; words beyond 32 bits saturate (counted as weight
        saturations, as the chip's own update counts them)."""
        if block not in self.blocks:
            raise ValueError(f"no e-prop block {block!r}: one of {', '.join(self.blocks)}")
        bi = self.blocks.index(block)
        blk = getattr(self, block)
        words = np.asarray(words, dtype=np.int64)
        if words.shape != blk.weight.shape:
            raise ValueError(f"{block}: expected words shaped {blk.weight.shape}, got {words.shape}")
        new = self._held(np.where(blk.mask, words, blk.weight))
        self._write(bi, blk, new)
        blk.grad[:] = 0

    # -- one tick ---------------------------------------------------------------------------------
    def step(self, tau: int, learning: bool, target: np.ndarray | None, extra: np.ndarray) -> dict[str, int]:
        """The e-prop work of tick ``tau`` (> 0) after the neuron update; ``target`` is the scored
        readout's desired value for this tick (REAL, or None when the host gives none). Returns the
        payload packets sent, received and their router traversals."""
        self.trial_learned &= learning
        zb = fx.decay_mul(self.zbar, self.slot_decay)
        zb[self.arrived] += ONE
        self.zbar = fx.wrap32(zb)
        self.arrived[:] = False
        self.zsum = fx.wrap32(self.zsum + self.zbar)
        self.L_now, self.L_next = self.L_next, self.L_now
        self.L_next[:] = 0
        full = tau >= self.ebar_from
        for ec in self.cores:
            extra[ec.core] += ec.width * self.cost["eprop_source"]
            if ec.kind == 3 or not learning:
                continue
            if full:
                cost = self.cost["eprop_synapse_adaptive"] if ec.kind == 1 else self.cost["eprop_synapse"]
                extra[ec.core] += ec.nrn.size * ec.width * cost
            else:               # only the adaptive rows' eps~ (the ebar part of the loop is skipped)
                extra[ec.core] += self.a_per_core[ec.core] * ec.width * (
                    self.cost["eprop_synapse_adaptive"] - self.cost["eprop_synapse"])
        blk = self.learn
        if blk.nrn.size and learning:
            self._traces(blk, learning, full)
        counts = {"sent": 0, "received": 0, "traversals": 0}
        if not (learning and target is not None and tau >= self.window):
            return counts
        return self._readout(target, extra, counts)

    def _traces(self, blk: _Block, learning: bool, full: bool) -> None:
        """Every synapse of every learning core, one tick with learning on (docs/eprop.md, "Fixed
        point"); e, eps~ and ebar in units of 2^-22, products in 64 bits::

            d = (zbar << 7) - eps~;  e = (psi d) >> 15
            eps~ <- float18(decay(eps~, rho) + (beta~ e) >> 15)     (= (rho - psi beta~) eps~ + psi beta~ zbar)
            ebar <- float14(decay(ebar, kappa) + decay(e, 1 - kappa));  G += round(L ebar)

        Before ``ebar_from`` (not ``full``) only the rows with beta~ > 0 run, and only their eps~;
        ebar stays 0 there."""
        kern = self.kernel
        psi = kern.psi[blk.pos]
        self.count[blk.nrn] += kern.z[blk.pos]
        self.psi_sum[blk.nrn] += psi
        z = self.zbar
        s0 = 0
        if int(z.max()) > ZBAR_MAX:
            s0 = int(np.count_nonzero(z[np.unique(blk.slot)] > ZBAR_MAX))
            z = np.minimum(z, ZBAR_MAX)
        z22 = z << ZBAR_SHIFT
        rows = slice(None) if full else self.arows
        e = z22[blk.slot[rows]]
        e -= blk.eps[rows]
        e *= psi[rows, None]
        e >>= fx.S1615_FRAC
        s1 = 0
        if self.adaptive:                         # eps~ stays 0 where beta~ = 0: nothing to do without
            a = self.arows
            ea = e[a] if full else e
            eps = blk.eps[a] * self.rho[a, None]
            eps >>= 32
            ea *= self.beta_n[a, None]
            ea >>= fx.S1615_FRAC
            eps += ea
            blk.eps[a], s1 = EPS.round(eps)
        s2 = s3 = 0
        if full:
            ebar = blk.ebar * self.kappa
            ebar >>= 32
            e *= self.one_minus_kappa
            e >>= 32
            ebar += e
            blk.ebar, s2 = EBAR.round(ebar)
            L = self.L_now[blk.nrn]
            if np.any(L):
                inc = (L[:, None] * blk.ebar + (1 << (G_SHIFT - 1))) >> G_SHIFT
                blk.grad, s3 = GRAD.saturate(blk.grad + inc)
        self.saturation["eprop_state"] += s0 + s1 + s2 + s3

    def _readout(self, target: np.ndarray, extra: np.ndarray, counts: dict[str, int]) -> dict[str, int]:
        """The scored readout's error, its gradient and the payload packets that carry it."""
        ro, blk = self.readout, self.out
        y = self.out_kernel.v[blk.pos]
        # A unit whose target packet does not reach the readout core (a wrong key or route) is
        # compared with the 0 its buffer holds.
        target = np.where(self.target_ok, target, 0)
        if self.loss == "cross_entropy":
            ex = fx.expk(y - y.max())
            err = fx.kdivk(ex, int(ex.sum())) - target
        else:
            err = fx.wrap32(y - target)
        g = blk.grad + fx.accum_mul(err[:, None], self.zbar[blk.slot])
        blk.grad = np.clip(g, fx.REAL_MIN, fx.REAL_MAX)
        self.saturation["eprop_state"] += int(np.count_nonzero(blk.grad != g))
        n = ro.nrn.size
        extra[ro.core] += (n * self.cost["eprop_softmax"] + n * ro.width * self.cost["eprop_readout_synapse"]
                           + n * (self.cost["packet_sent"] + self.cost["packet_received"]))
        counts["received"] += n          # the host's target packets
        counts["traversals"] += self.tg_traversals
        # Payload packets: err_k to every learning core; there L_j += B_jk err_k (for the next tick),
        # each product shifted to a REAL on its own as the core adds them one packet at a time.
        if self.learn.nrn.size:
            self.L_next[self.learn.nrn] += ((self.fb_learn * err[None, :]) >> FEEDBACK.frac).sum(axis=1)
        for ec in self.learn.cores:
            got = self.units_in[ec.core]
            extra[ec.core] += got * (self.cost["packet_received"] + ec.nrn.size * self.cost["eprop_feedback"])
            counts["received"] += got
        counts["sent"] += 2 * n          # the readout's errors and the host's targets
        counts["traversals"] += self.ls_traversals
        return counts

    def plastic_weights(self) -> dict[str, np.ndarray]:
        """Every plastic projection's weight words as (n_pre, n_post), 0 where there is no synapse."""
        out = {}
        for info in self.chip.meta.get("plastic", []):
            sel = self.syn_proj == int(info["index"])
            m = np.zeros((int(info["n_pre"]), int(info["n_post"])), dtype=np.int64)
            m[self.syn_pre[sel], self.syn_post[sel]] = self.pw[sel]
            out[str(info["name"])] = m
        return out


def target_words(values: np.ndarray) -> np.ndarray:
    """The host's encoding of target values as payloads: round half to even of value x 2^15 (REAL)."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)) or np.any(np.abs(v) >= 65536):
        raise RunError("target values must be finite and within the s16.15 range (-65536, 65536)")
    return np.rint(v * fx.ONE).astype(np.int64)
