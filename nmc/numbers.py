"""What counts as an integer or a number in the files nmc reads (JSON manifests, TOML target
files, IR text). Two Python facts make the obvious isinstance test wrong: ``True`` is an ``int``,
and a ``float`` may be NaN or infinite."""

from __future__ import annotations

import math
from typing import Any


def is_integer(value: Any) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite ``int`` or ``float`` that is not a ``bool``."""
    return is_integer(value) or (isinstance(value, float) and math.isfinite(value))
