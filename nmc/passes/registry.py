"""Registry of named passes. A pass is a function ``(net, ctx, **options) -> Network`` registered
once under its name with :func:`register_pass`; it may modify ``net`` in place and return it."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ..diagnostics import Diagnostics
from ..errors import PipelineError
from ..ir.network import Network
from ..target import Target

PassFn = Callable[..., Network]


@dataclass
class PassContext:
    """What a pass may consult besides the IR: the target and a sink for diagnostics."""

    target: Target
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    strict: bool = False  # turn lossy quantization / saturation warnings into errors
    #: Reports of the passes that ran (pass name, lines), printed by ``nmc compile --report``.
    reports: list[tuple[str, list[str]]] = field(default_factory=list)
    #: Calibration data for convert-ann (``nmc compile --calibrate DATA.npz``): arrays by name.
    calibration: dict[str, Any] | None = None
    #: Settings from the command line that passes read when their own options do not say
    #: (``partition.time`` from --partition-time, ``partition.rates`` from --rates).
    settings: dict[str, Any] = field(default_factory=dict)

    def report(self, pass_name: str, lines: list[str]) -> None:
        if lines:
            self.reports.append((pass_name, list(lines)))


@dataclass(frozen=True)
class PassInfo:
    name: str
    fn: PassFn
    summary: str
    options: dict[str, type]


_PASSES: dict[str, PassInfo] = {}

# Modules whose import registers passes; imported lazily so that importing the registry is cheap.
_PASS_MODULES = ("verify", "convert_ann", "backprop", "synfire", "map_neurons", "quantize", "partition", "allocate")


def register_pass(name: str, options: dict[str, type] | None = None) -> Callable[[PassFn], PassFn]:
    """Register ``fn`` as pass ``name``. ``options`` maps option names to their types
    (``int``, ``float``, ``str``, ``bool``) for ``name{opt=value}`` in pipeline strings."""

    def deco(fn: PassFn) -> PassFn:
        if name in _PASSES:
            raise RuntimeError(f"pass '{name}' registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        _PASSES[name] = PassInfo(name, fn, doc[0] if doc else "", dict(options or {}))
        return fn

    return deco


def _load_all() -> None:
    for mod in _PASS_MODULES:
        importlib.import_module(f"{__package__}.{mod}")


def get_pass(name: str) -> PassInfo:
    _load_all()
    if name not in _PASSES:
        raise PipelineError(f"'{name}' does not refer to a registered pass (available: {', '.join(sorted(_PASSES))})")
    return _PASSES[name]


def all_passes() -> list[PassInfo]:
    _load_all()
    return [_PASSES[k] for k in sorted(_PASSES)]


def convert_option(info: PassInfo, key: str, raw: str) -> Any:
    if key not in info.options:
        known = ", ".join(sorted(info.options)) or "none"
        raise PipelineError(f"pass '{info.name}' has no option '{key}' (options: {known})")
    typ = info.options[key]
    try:
        if typ is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return raw.lower() in ("true", "1")
        return typ(raw)
    except ValueError:
        raise PipelineError(f"pass '{info.name}': option '{key}' expects {typ.__name__}, got '{raw}'") from None
