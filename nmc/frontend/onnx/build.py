"""Small ONNX models built from numpy weights: fully connected ReLU networks and the low-pass RNN
operator ``nmc.LpRNN`` (docs/onnx.md). The examples, benchmarks and tests make their models with
these; a user with a trained lpRNN writes its weights into ONNX the same way.

Weights follow ONNX's conventions: Gemm weights are (in, out) with ``transB = 0``; LpRNN's W is
(hidden, in), R is (hidden, hidden), as in ONNX's own RNN operator.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .importer import LPRNN_DOMAIN, LPRNN_OP

DEFAULT_OPSET = 17


def _tensor(name: str, a: np.ndarray):  # noqa: ANN202 (onnx.TensorProto)
    from onnx import numpy_helper
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def mlp_model(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], *, input_name: str = "input",
              softmax: bool = True, opset: int = DEFAULT_OPSET, name: str = "mlp"):  # noqa: ANN201
    """Gemm + Relu per hidden layer, a final Gemm (and Softmax): the graph torch.onnx.export writes
    for a stack of nn.Linear and nn.ReLU. ``weights[i]`` is (in, out)."""
    from onnx import TensorProto, helper
    nodes, inits = [], []
    x = input_name
    for i, (w, b) in enumerate(zip(weights, biases)):
        inits += [_tensor(f"fc{i}.weight", w), _tensor(f"fc{i}.bias", b)]
        y = f"fc{i}"
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"], [y], name=f"Gemm_{i}"))
        x = y
        if i < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [x], [f"relu{i}"], name=f"Relu_{i}"))
            x = f"relu{i}"
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", [x], ["probabilities"], name="Softmax", axis=1))
        out = "probabilities"
    else:
        nodes.append(helper.make_node("Identity", [x], [out], name="Output"))
    n_in, n_out = np.shape(weights[0])[0], np.shape(weights[-1])[1]
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", n_in])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", n_out])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="nmc")


def lprnn_model(w: np.ndarray, r: np.ndarray, b: np.ndarray, alpha: float | np.ndarray, readout_w: np.ndarray,
                readout_b: np.ndarray, *, items: int, input_name: str = "input", softmax: bool = False,
                opset: int = DEFAULT_OPSET, name: str = "lprnn"):  # noqa: ANN201
    """One ``nmc.LpRNN`` layer on a (batch, items, features) sequence, its last state (Y_h) read by
    a Gemm. ``w`` is (hidden, in), ``r`` (hidden, hidden), ``readout_w`` (hidden, out)."""
    from onnx import TensorProto, helper
    hidden, n_in = np.shape(w)
    alpha_attr = float(alpha) if np.ndim(alpha) == 0 else [float(a) for a in np.asarray(alpha).reshape(-1)]
    inits = [_tensor("lprnn.W", w), _tensor("lprnn.R", r), _tensor("lprnn.B", b),
             _tensor("readout.weight", readout_w), _tensor("readout.bias", readout_b)]
    nodes = [helper.make_node(LPRNN_OP, [input_name, "lprnn.W", "lprnn.R", "lprnn.B"], ["Y", "Y_h"],
                              name="LpRNN_0", domain=LPRNN_DOMAIN, alpha=alpha_attr),
             helper.make_node("Gemm", ["Y_h", "readout.weight", "readout.bias"], ["scores"], name="Readout")]
    out = "scores"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["scores"], ["probabilities"], name="Softmax", axis=1))
        out = "probabilities"
    n_out = np.shape(readout_w)[1]
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                                                         ["N", items, n_in])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", n_out])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(LPRNN_DOMAIN, 1)],
                             producer_name="nmc")
