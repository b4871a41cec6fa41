"""The ``learn backprop(IN -> HIDDEN ... -> OUT, target = T, ...)`` statement.

It resolves the chain and the target, reads the options, has
:func:`nmc.ir.backprop_options.check_backprop_options` check them (the backprop pass runs the same
check; its complaint is reported here at the argument it names), then draws or loads the weight
matrices and stores the construct in ``net.attrs["backprop"]``, for the backprop pass to expand
(docs/backprop.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lark import Token, Tree

from ...ir.backprop_options import (BACKPROP_MODES, DEFAULT_MODE, DEFAULT_WINDOW, BackpropOptionError,
                                    check_backprop_options, he_normal)
from ...ir.network import Population
from .initialisers import INITIALISERS, STREAM_BACKPROP, Initialisers
from .scope import Scope
from .values import Call, Pos, Signature, Text, Value, Word, describe, did_you_mean, token_pos, tree_pos

BACKPROP = Signature("backprop", ("target", "window", "window_high", "window_hidden", "margin", "error_threshold",
                                  "weights", "mode", "name"),
                     frozenset({"target"}))
HE_NORMAL = Signature("he_normal", ("seed",))
LEARNING_CONSTRUCTS = ("backprop",)

# An option the check finds wrong that the statement left at its default is reported at the
# argument it was compared with: the window's edges are checked against each other.
_REPORTED_WITH = {"window": "window_high", "window_high": "window"}


@dataclass(kw_only=True)
class BackpropStatement(Scope, Initialisers):
    """The ``learn`` statement; part of the builder."""

    learn_pos: Pos | None = None  # of the ``learn`` statement, which a file may hold once

    def _learn(self, stmt: Tree) -> None:
        """``learn backprop(IN -> HIDDEN ... -> OUT, target = T, ...)``."""
        name_tok, chain, arg_list = stmt.children
        pos = tree_pos(stmt)
        if self.learn_pos is not None:
            raise self.error(f"'learn' is given twice (first at line {self.learn_pos.line})", pos)
        self.learn_pos = pos
        if name_tok.value not in LEARNING_CONSTRUCTS:
            raise self.error(f"unknown learning construct '{name_tok.value}' (known: {', '.join(LEARNING_CONSTRUCTS)})"
                             f"{did_you_mean(name_tok.value, LEARNING_CONSTRUCTS)}", token_pos(name_tok))
        call = Call(name_tok.value, token_pos(name_tok), self._arguments(arg_list))
        args = self._bind(call, BACKPROP)
        layers = [self._lookup_population(tok) for tok in chain.children]
        target = self._backprop_target(args["target"])
        low = float(self._as_number(args["window"], "window")) if "window" in args else DEFAULT_WINDOW[0]
        high = (float(self._as_number(args["window_high"], "window_high")) if "window_high" in args
                else DEFAULT_WINDOW[1])
        hidden = float(self._as_number(args["window_hidden"], "window_hidden")) if "window_hidden" in args else None
        margin = float(self._as_number(args["margin"], "margin")) if "margin" in args else 0.0
        d_th = float(self._as_number(args["error_threshold"], "error_threshold")) if "error_threshold" in args else 0.0
        mode = args.get("mode", Word(DEFAULT_MODE, pos))
        if not isinstance(mode, Word):
            raise self.error(f"mode must be one of {', '.join(BACKPROP_MODES)}, got {describe(mode)}", mode.pos)
        # The weights are drawn or read only once the rest is known to be right (weights=None).
        try:
            check_backprop_options(self.net, [pop.name for pop in layers], target.name, window=(low, high),
                                   window_hidden=hidden, margin=margin, error_threshold=d_th, mode=mode.name,
                                   weights=None)
        except BackpropOptionError as exc:
            raise self.error(exc.message, self._option_pos(exc, chain.children, args, call.pos)) from None
        name = args.get("name", Word("bp", pos))
        if not (isinstance(name, Word) or (isinstance(name, Text) and name.value)):
            raise self.error(f"name must be a name, got {describe(name)}", name.pos)
        weights = self._backprop_weights(args.get("weights", Call(HE_NORMAL.name, call.pos, ())), layers)
        self.net.attrs["backprop"] = {
            "name": name.name if isinstance(name, Word) else name.value,
            "layers": [pop.name for pop in layers],
            "target": target.name,
            "window": [low, high],
            "window_hidden": hidden,
            "margin": margin,
            "error_threshold": d_th,
            "mode": mode.name,
            "weights": weights,
        }

    def _option_pos(self, exc: BackpropOptionError, chain: list[Token], args: dict[str, Value], call_pos: Pos) -> Pos:
        """Where the option a :class:`BackpropOptionError` names is written: the layer's token in the
        chain, else the argument's value (or the one it was compared with), else the construct."""
        if exc.option == "layers":
            return token_pos(chain[exc.index or 0])
        for key in (exc.option, _REPORTED_WITH.get(exc.option)):
            if key in args:
                return args[key].pos
        return call_pos

    def _backprop_target(self, value: Value) -> Population:
        if not isinstance(value, Word):
            raise self.error(f"target must be the name of an input port, got {describe(value)}", value.pos)
        return self._population_named(value.name, value.pos)

    def _backprop_weights(self, value: Value, layers: list[Population]) -> list[np.ndarray]:
        """``he_normal(seed = S)`` or ``npz("file.npz")`` holding W1, W2, ... (Wk: layer k-1 -> layer k);
        ``npz("file.npz", key = "G")`` reads G/W1, G/W2, ... (``average``: a run's averaged weights)."""
        sizes = [pop.size for pop in layers]
        if isinstance(value, Call) and value.name == HE_NORMAL.name:
            args = self._bind(value, HE_NORMAL)
            rng = (np.random.default_rng(self._as_int(args["seed"], "seed", minimum=0)) if "seed" in args
                   else self._derived_rng(STREAM_BACKPROP, 0))
            return self._he_normal(rng, sizes, value.pos)
        if not (isinstance(value, Call) and value.name == "npz"):
            raise self.error(f"weights must be he_normal(seed = S) or npz(\"FILE.npz\"), got {describe(value)}",
                             value.pos)
        args = self._bind(value, INITIALISERS["npz"])
        # key = "average": a training run's epoch-averaged weights (arrays average/W1, average/W2, ...).
        group = self._as_text(args["key"], "weight group").value.strip("/") + "/" if "key" in args else ""
        file = self._as_text(args["file"], "npz file name")
        weights = []
        for k in range(1, len(layers)):
            key, shape = f"{group}W{k}", (sizes[k - 1], sizes[k])
            arr = self._npz_array(file, key, value.pos)
            if arr.shape != shape:
                raise self.error(f"array '{key}' in '{file.value}' has shape {arr.shape}, expected {shape} "
                                 f"(backprop weights {layers[k - 1].name} -> {layers[k].name})", value.pos)
            arr = arr.astype(np.float64)
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))]
            if bad.size:
                raise self.error(f"array '{key}' in '{file.value}' must hold integer weights (units of 1/1024 of "
                                 "the threshold, as a run's weights/W1 ... are), "
                                 f"got {float(bad[0])!r}", value.pos)
            weights.append(arr)
        return weights

    def _he_normal(self, rng: np.random.Generator, sizes: list[int], pos: Pos) -> list[np.ndarray]:
        """The paper's initialisation (:func:`nmc.ir.backprop_options.he_normal`), size-checked first."""
        for n_in, n_out in zip(sizes, sizes[1:]):
            self._check_array_size((n_in, n_out), pos)
        return he_normal(rng, sizes)
