"""Number formats of the Loihi-2-like target: the Loihi-like formats (nmc.formats.loihi) plus the
registers of the ``sdn`` sigma-delta unit (targets/loihi2.toml ``[graded_spikes]``).

sdn registers: threshold in [1, 2^(state_bits-1) - 1], shift in [0, shift_max], relu in {0, 1},
clip in [0, 2^(state_bits-1) - 1] (0: none), decay in [1, 2^decay_shift], bias in the bias format
(bm * 2^be) of the compartment. Everything rounds to the nearest integer, ties away from zero,
and saturates at the range; what changes is reported like every other register.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.network import Population
from ..target import Target
from .loihi import LoihiFormats, Rounding, quantize_bias, round_to_range


def sdn_register_range(param: str, target: Target) -> tuple[int, int, str]:
    """(lowest, highest, description) of an sdn register."""
    top = (1 << (int(target.get("graded_spikes.state_bits")) - 1)) - 1
    ranges = {
        "threshold": (1, top, "[1, 2^(graded_spikes.state_bits - 1) - 1]"),
        "shift": (0, int(target.get("graded_spikes.shift_max")), "[0, graded_spikes.shift_max]"),
        "relu": (0, 1, "{0, 1}"),
        "clip": (0, top, "[0, 2^(graded_spikes.state_bits - 1) - 1]"),
        "decay": (1, 1 << int(target.get("graded_spikes.decay_shift")), "[1, 2^graded_spikes.decay_shift]"),
    }
    return ranges[param]


def quantize_sdn_register(values: Any, param: str, target: Target) -> tuple[np.ndarray, Rounding]:
    """Round ``values`` of sdn register ``param`` into its range (with a report)."""
    lo, hi, _ = sdn_register_range(param, target)
    return round_to_range(values, lo, hi)


class Loihi2Formats(LoihiFormats):
    """The Loihi-like formats, with sdn populations quantized too."""

    def quantize(self, net: Any, ctx: Any) -> Any:
        from ..lowering.loihi_quantize import quantize_cuba_lif, quantize_network
        return quantize_network(net, ctx, {"cuba_lif": quantize_cuba_lif, "sdn": self._quantize_sdn})

    def _quantize_sdn(self, pop: Population, ctx: Any) -> None:
        from ..lowering.loihi_quantize import _as_param, report_param
        loc = f"population '{pop.name}'"
        for name in ("threshold", "shift", "relu", "clip", "decay"):
            if name in pop.params:
                requested = pop.params[name]
                values, rep = quantize_sdn_register(requested, name, self.target)
                report_param(ctx, name, requested, values, rep, f"range {sdn_register_range(name, self.target)[2]}", loc)
                pop.params[name] = _as_param(values)
        if "bias" in pop.params:
            requested = pop.params["bias"]
            q = quantize_bias(requested, self.target)
            report_param(ctx, "bias", requested, q.values, q.report,
                         "bias = bm * 2^be, bm in [neuron.bias_mant_min, neuron.bias_mant_max], "
                         "be in [0, neuron.bias_exp_max]", loc)
            pop.params["bias"] = _as_param(q.values)
