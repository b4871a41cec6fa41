"""The assertion every DSL error test makes: the exact one-line message and its location."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmc.errors import DslError
from nmc.frontend.dsl import parse_dsl


def assert_dsl_error(source: str, where: str, message: str, base_dir: Path | None = None) -> None:
    """``source`` (as prog.nmc) fails with exactly ``prog.nmc:<where>: error: <message>``."""
    with pytest.raises(DslError) as info:
        parse_dsl(source, filename="prog.nmc", base_dir=base_dir)
    assert str(info.value) == f"prog.nmc:{where}: error: {message}"
    assert info.value.location == f"prog.nmc:{where}"
