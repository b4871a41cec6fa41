"""Interpreters of compiled binaries, one per chip. They import nothing from front ends or passes.

The binary's target configuration names its interpreter (``[parts] interpreter``); the class is
found in the part registry (:mod:`nmc.parts`) and follows :class:`nmc.sim.protocol.Interpreter`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..binary.format import Binary
from ..errors import BinaryFormatError, TargetError
from ..parts import load_part

if TYPE_CHECKING:
    from .protocol import Interpreter


def interpreter_for(binary: Binary, expect_target: str | None = None) -> "Interpreter":
    """The interpreter the binary names; refuses a binary for another target than ``expect_target``."""
    if expect_target is not None and binary.target != expect_target:
        raise BinaryFormatError(f"binary is for target '{binary.target}', not '{expect_target}'")
    return _interpreter_class(binary)(binary)


def validate_binary(binary: Binary) -> None:
    """Check a binary's chip-specific tables without building an interpreter (``nmc inspect``):
    the interpreter class's ``validate`` (a static method), where it has one."""
    check = getattr(_interpreter_class(binary), "validate", None)
    if check is not None:
        check(binary)


def _interpreter_class(binary: Binary) -> type:
    parts = binary.target_config.get("parts")
    key = parts.get("interpreter") if isinstance(parts, dict) else None
    if not isinstance(key, str):
        raise BinaryFormatError("the binary's target configuration names no interpreter ([parts] interpreter); "
                                "it was written by an older nmc: compile it again")
    try:
        cls = load_part("interpreter", key)
    except TargetError as exc:
        raise BinaryFormatError(f"binary for target '{binary.target}': {exc.message}") from None
    return cls
