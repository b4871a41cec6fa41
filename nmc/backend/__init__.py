"""Backends: IR -> binary, one per target family."""

from __future__ import annotations

from typing import Callable

from ..binary.format import Binary
from ..errors import TargetError
from ..ir.network import Network
from ..target import Target


def _loihi(net: Network, target: Target) -> Binary:
    from .loihi import compile_loihi
    return compile_loihi(net, target)


BACKENDS: dict[str, Callable[[Network, Target], Binary]] = {"loihi": _loihi}


def emit_binary(net: Network, target: Target) -> Binary:
    """Lower ``net`` with the backend of ``target`` (chosen by the target file's ``backend`` or name)."""
    kind = str(target.data.get("backend", target.name))
    if kind not in BACKENDS:
        raise TargetError(f"no backend for target '{target.name}' (backends: {', '.join(sorted(BACKENDS))})")
    return BACKENDS[kind](net, target)
