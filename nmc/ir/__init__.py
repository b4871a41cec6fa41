"""The graph IR: data model, canonical text form, verifier."""

from .io import read_ir, write_ir
from .models import NEURON_MODELS, NeuronModel, ParamSpec
from .network import Network, Population, Probe, Projection
from .parser import parse_ir
from .printer import format_ir, print_ir

__all__ = ["Network", "Population", "Projection", "Probe", "NEURON_MODELS", "NeuronModel", "ParamSpec",
           "parse_ir", "print_ir", "format_ir", "read_ir", "write_ir"]
