"""The options of the ``learn backprop(...)`` construct, and the one place they are checked.

The construct reaches the compiler as ``net.attrs["backprop"]``, written by the DSL's ``learn``
statement or by hand in IR text. Both readers call :func:`check_backprop_options`: the DSL, so a
mistake is reported at the argument where it is written, and the backprop pass, which is the only
check IR input gets. The function raises :class:`BackpropOptionError`, a plain error naming the
option at fault; the DSL turns it into a ``file:line:col`` DslError at that argument, the pass
into an IrError located at ``learn backprop``.

This module lives in the IR layer so that neither the front end nor the passes depend on each
other for it (docs/backprop.md, "One statement", describes the options).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .network import Network

#: The modes of the construct: a training circuit, or the forward pass alone.
BACKPROP_MODES = ("train", "inference")
DEFAULT_MODE = "train"
#: The surrogate-derivative window (lo, hi] of the output layer, in units of the threshold.
DEFAULT_WINDOW = (-1.0, 1.0)

#: The construct's weights W1, W2, ... are integers in units of 1/1024 of a graded unit's threshold:
#: the published circuit's resolution (Renner et al.: threshold mantissa 1024, 8-bit weights).
#: A target holds them exactly when its plastic weight grid has this step or a finer one.
WEIGHT_UNIT = 2.0 ** -10
#: The published initialisation (docs/backprop.md, Sources: Initialisation), in weight units:
#: N(0, 2 / (n_in + n_out)) / WEIGHT_UNIT, clipped to +-240 and rounded down to a multiple of 2
#: (np.floor: toward -inf; the published code rounds the magnitude toward zero).
HE_CLIP = 240
HE_STEP = 2


def he_normal(rng: np.random.Generator, sizes: Sequence[int]) -> list[np.ndarray]:
    """W1, W2, ... for layers of ``sizes`` by the published initialisation, drawn in layer order."""
    weights = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        w = rng.normal(0.0, float(np.sqrt(2.0 / (n_in + n_out))), size=(n_in, n_out)) / WEIGHT_UNIT
        weights.append(np.floor(np.clip(w, -HE_CLIP, HE_CLIP) / HE_STEP) * HE_STEP)
    return weights


class BackpropOptionError(ValueError):
    """An invalid option of the backprop construct.

    ``option`` names the option as the DSL's argument does: "layers", "target", "window",
    "window_high", "window_hidden", "margin", "error_threshold", "mode" or "weights". ``index``
    says which layer of the chain ("layers") or which weight matrix ("weights"); None otherwise.
    """

    def __init__(self, message: str, option: str, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.option = option
        self.index = index


@dataclass(frozen=True)
class BackpropOptions:
    """The construct's options, checked (docs/backprop.md, "One statement")."""

    layers: list[str]
    target: str
    lo: float                   # the output layer's window edge
    hi: float
    lo_hidden: float            # the hidden layers' window edge (= lo unless window_hidden)
    margin: float
    error_threshold: float
    mode: str
    weights: list[np.ndarray]   # empty when checked with weights=None


def check_backprop_options(net: Network, layers: Sequence[str], target: str, *,
                           window: Sequence[float] = DEFAULT_WINDOW, window_hidden: float | None = None,
                           margin: float = 0.0, error_threshold: float = 0.0, mode: str = DEFAULT_MODE,
                           weights: Sequence[np.ndarray] | None) -> BackpropOptions:
    """Check the options of ``learn backprop(layers[0] -> ... -> layers[-1], target = target, ...)``
    against the populations of ``net`` and return them as :class:`BackpropOptions`.

    ``weights`` are the matrices W1, W2, ... (Wk: layer k-1 -> layer k). ``None`` means the caller
    makes them afterwards in the shapes the layers give (the DSL: it draws or loads them only once
    the other options are known to be good); they are then not checked and the result holds none.

    Raises :class:`BackpropOptionError` for the first option found wrong, in the order of the
    DSL's arguments; a layer or target that is not a population of ``net`` raises IrError.
    """
    names = list(layers)
    for i, name in enumerate(names):
        pop = net.population(name)
        if name in names[:i]:
            raise BackpropOptionError(f"layer '{name}' appears twice in the backprop chain", "layers", i)
        if i == 0 and not pop.is_input:
            raise BackpropOptionError(f"the first layer of backprop must be an input port, '{name}' is not",
                                      "layers", i)
        if i > 0 and pop.is_input:
            raise BackpropOptionError(f"layer '{name}' of backprop is an input port; only the first layer may be one",
                                      "layers", i)
    if len(names) < 3:
        raise BackpropOptionError(f"backprop needs at least one hidden layer between input and output, "
                                  f"got '{' -> '.join(names)}'", "layers", 0)

    tpop, out = net.population(target), net.population(names[-1])
    if not tpop.is_input:
        raise BackpropOptionError(f"target '{target}' must be an input port (the labels come from data)", "target")
    if target in names:
        raise BackpropOptionError(f"target '{target}' cannot also be a layer", "target")
    if tpop.size != out.size:
        raise BackpropOptionError(f"target '{target}' has {tpop.size} neurons, but the output layer "
                                  f"'{out.name}' has {out.size}", "target")

    lo, hi = (float(v) for v in window)
    if not lo < hi:
        raise BackpropOptionError(f"window must lie below window_high, got window = {lo!r}, window_high = {hi!r}",
                                  "window")
    # A unit fires when its sum exceeds 0.5: a window that misses it never lets an error through.
    if not lo < 0.5 < hi:
        raise BackpropOptionError(f"the derivative window ({lo}, {hi}] must contain the firing threshold 0.5",
                                  "window" if lo >= 0.5 else "window_high")
    lo_hidden = lo if window_hidden is None else float(window_hidden)
    if window_hidden is not None and not (lo_hidden < 0.5 and lo_hidden < hi):
        raise BackpropOptionError(f"window_hidden must lie below 0.5 and window_high, got {lo_hidden:g}",
                                  "window_hidden")
    margin = float(margin)
    if not (0.0 <= margin and lo <= 0.5 - margin and 0.5 + margin <= hi):
        raise BackpropOptionError(f"margin must be >= 0 and keep 0.5 - margin and 0.5 + margin inside the window "
                                  f"({lo:g}, {hi:g}], got margin = {margin:g}", "margin")
    error_threshold = float(error_threshold)
    if not 0 <= error_threshold < 0.5:
        raise BackpropOptionError(f"error_threshold must lie in [0, 0.5), got {error_threshold:g}",
                                  "error_threshold")
    if mode not in BACKPROP_MODES:
        raise BackpropOptionError(f"mode must be one of {', '.join(BACKPROP_MODES)}, got the name '{mode}'", "mode")

    matrices: list[np.ndarray] = []
    if weights is not None:
        matrices = [np.asarray(w, dtype=np.float64) for w in weights]
        sizes = [net.population(n).size for n in names]
        if len(matrices) != len(names) - 1:
            raise BackpropOptionError(f"backprop needs {len(names) - 1} weight matrices, got {len(matrices)}",
                                      "weights")
        for k, w in enumerate(matrices):
            if w.shape != (sizes[k], sizes[k + 1]):
                raise BackpropOptionError(f"W{k + 1} must have shape ({sizes[k]}, {sizes[k + 1]}), got {w.shape}",
                                          "weights", k)
    return BackpropOptions(names, target, lo, hi, lo_hidden, margin, error_threshold, mode, matrices)
