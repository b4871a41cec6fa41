"""Interpreters of compiled binaries, one per chip. They import nothing from front ends or passes."""

from __future__ import annotations

from typing import Any

from ..binary.format import Binary
from ..errors import BinaryFormatError


def _loihi(binary: Binary) -> Any:
    from .loihi import LoihiInterpreter
    return LoihiInterpreter(binary)


INTERPRETERS = {"loihi": _loihi}


def interpreter_for(binary: Binary, expect_target: str | None = None) -> Any:
    """The interpreter for ``binary``'s target; refuses a binary for another target than ``expect_target``."""
    if expect_target is not None and binary.target != expect_target:
        raise BinaryFormatError(f"binary is for target '{binary.target}', not '{expect_target}'")
    if binary.target not in INTERPRETERS:
        raise BinaryFormatError(f"no interpreter for target '{binary.target}' "
                                f"(interpreters: {', '.join(sorted(INTERPRETERS))})")
    return INTERPRETERS[binary.target](binary)
