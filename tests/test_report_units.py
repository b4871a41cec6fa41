"""Quantities in the run summary carry an SI prefix and three significant digits; a value that
rounds up to the next unit prints in it (1 ms, not '1e+03 us')."""

from __future__ import annotations

import pytest

from nmc.report import _si


@pytest.mark.parametrize("x, shown", [(0.000999999, "1 ms"), (0.001, "1 ms"), (0.0012, "1.2 ms"),
                                      (0.0009994, "999 us"), (1.5e-6, "1.5 us"), (2.4, "2.4 s")])
def test_si_prefixes(x: float, shown: str) -> None:
    assert _si(x, "s") == shown
