"""Temporary alias: the layout moved to :mod:`nmc.lowering.loihi_layout` (target lowering)."""
from ..lowering.loihi_layout import *  # noqa: F401,F403
from ..lowering.loihi_layout import Layout, build_layout  # noqa: F401
