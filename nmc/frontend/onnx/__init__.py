"""The ONNX front end: a trained network in ONNX -> target-neutral IR of artificial units.

``load_onnx("net.onnx")`` reads the model with the ``onnx`` package, checks it (file, opset,
shapes, weights), and walks its graph in order: linear operations (Gemm, MatMul, Conv, pooling,
batch normalisation, scaling, flattening) are composed into one weight matrix per source, and
every nonlinearity (Relu, Clip) becomes a population of ``relu`` units; the output layer a
population of ``linear`` units; the custom operator ``nmc.LpRNN`` a population of ``lprnn`` units.
The ``convert-ann`` pass then turns these into spiking neurons.

Errors name the node (``net.onnx:node 'Gemm_3': error: ...``); every unsupported node of a model
is reported in one run, one line each. Reference: docs/onnx.md.
"""

from __future__ import annotations

from .importer import LPRNN_DOMAIN, LPRNN_OP, load_onnx, supported_opsets

__all__ = ["load_onnx", "supported_opsets", "LPRNN_DOMAIN", "LPRNN_OP"]
