"""The NIR front end and exporter (the ``nir`` package's graphs; docs/nir.md).

``load_nir("net.nir", dt=1.0)`` reads a graph into nmc's IR of target-neutral models;
``export_nir(net, "out.nir")`` writes a network of target-neutral models (before map-neurons)
back to NIR. Both need the ``nir`` package (``pip install nir``).
"""

from __future__ import annotations

from .export import export_nir, to_nir_graph
from .importer import SPIKE_CONVENTIONS, load_nir

__all__ = ["load_nir", "export_nir", "to_nir_graph", "SPIKE_CONVENTIONS"]
