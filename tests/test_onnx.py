"""The ONNX front end: what it imports equals what onnx.reference computes, exports of
scikit-learn (skl2onnx) and of torch-style graphs over opsets 11-18 import, and every bad input
gets one clear line per problem and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from nmc.conversion.ann import forward, output_population, predict
from nmc.diagnostics import Diagnostics
from nmc.errors import NmcError
from nmc.frontend.onnx import load_onnx
from nmc.frontend.onnx.build import mlp_model

RNG = np.random.default_rng(7)


def _t(name: str, a: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def _model(nodes: list, inits: list, in_shape: list, out_shape: list, opset: int = 17, out: str = "y",
           inp: str = "x") -> onnx.ModelProto:
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info(inp, TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _save(tmp_path: Path, model: onnx.ModelProto, name: str = "net.onnx") -> Path:
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _reference(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return np.asarray(ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x.astype(np.float32)})[0])


def _cnn(opset: int) -> onnx.ModelProto:
    """Input normalisation (Sub, Div), Conv + BatchNormalization + Relu, a residual Add, Clip,
    AveragePool with padding, a torch-style Reshape through Shape/Gather/Concat, Dropout, MatMul +
    Add, Identity: everything folded into projections. The same weights at every opset."""
    c = 4
    rng = np.random.default_rng(11)
    clip = (helper.make_node("Clip", ["a2"], ["a3"], name="Clip_6", min=0.0, max=2.5) if opset < 11 else
            helper.make_node("Clip", ["a2", "cmin", "cmax"], ["a3"], name="Clip_6"))
    drop = (helper.make_node("Dropout", ["flat"], ["dr"], name="Dropout_12", ratio=0.3) if opset < 12 else
            helper.make_node("Dropout", ["flat", "ratio"], ["dr"], name="Dropout_12"))
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["xs"], name="Sub_0"),
        helper.make_node("Div", ["xs", "std"], ["xn"], name="Div_1"),
        helper.make_node("Conv", ["xn", "w1", "b1"], ["c1"], name="Conv_2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g", "beta", "mu", "var"], ["bn"], name="BN_3", epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["a1"], name="Relu_4"),
        helper.make_node("Conv", ["a1", "w2"], ["c2"], name="Conv_5", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2),
        helper.make_node("Add", ["c2", "a1"], ["a2"], name="Add_residual"),
        clip,
        helper.make_node("AveragePool", ["a3"], ["p"], name="Pool_7", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], count_include_pad=0),
        helper.make_node("Shape", ["p"], ["shp"], name="Shape_8"),
        helper.make_node("Gather", ["shp", "zero"], ["n"], name="Gather_9", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="Unsqueeze_10") if opset >= 13 else
        helper.make_node("Unsqueeze", ["n"], ["n1"], name="Unsqueeze_10", axes=[0]),
        helper.make_node("Concat", ["n1", "minus1"], ["newshape"], name="Concat_11", axis=0),
        helper.make_node("Reshape", ["p", "newshape"], ["flat"], name="Reshape_11b"),
        drop,
        helper.make_node("MatMul", ["dr", "w3"], ["mm"], name="MatMul_13"),
        helper.make_node("Add", ["mm", "b3"], ["h"], name="Add_14"),
        helper.make_node("Relu", ["h"], ["h2"], name="Relu_15"),
        helper.make_node("Gemm", ["h2", "w4", "b4"], ["z"], name="Gemm_16", transB=1, alpha=0.5),
        helper.make_node("Identity", ["z"], ["y"], name="Identity_17"),
    ]
    inits = [_t("mean", [[[0.1]]]), _t("std", [[[0.9]]]),
             _t("w1", rng.normal(0, 0.5, (c, 1, 3, 3))), _t("b1", rng.normal(0, 0.1, c)),
             _t("g", rng.uniform(0.5, 1.5, c)), _t("beta", rng.normal(0, 0.1, c)), _t("mu", rng.normal(0, 0.1, c)),
             _t("var", rng.uniform(0.5, 2, c)), _t("w2", rng.normal(0, 0.3, (c, c // 2, 3, 3))),
             numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
             numpy_helper.from_array(np.array([0], dtype=np.int64), "axes"),
             numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus1"),
             _t("w3", rng.normal(0, 0.3, (c * 3 * 3, 12))), _t("b3", rng.normal(0, 0.1, 12)),
             _t("w4", rng.normal(0, 0.3, (5, 12))), _t("b4", rng.normal(0, 0.1, 5))]
    if opset >= 11:
        inits += [_t("cmin", np.array(0.0)), _t("cmax", np.array(2.5))]
    if opset >= 12:
        inits += [_t("ratio", np.array(0.3))]
    return _model(nodes, inits, ["N", 1, 6, 6], ["N", 5], opset=opset)


@pytest.mark.parametrize("opset", [11, 13, 15, 18])
def test_folded_network_equals_onnx_reference(tmp_path: Path, opset: int) -> None:
    net = load_onnx(_save(tmp_path, _cnn(opset)))
    assert sorted(p.model for p in net.populations) == ["input", "linear", "relu", "relu", "relu"]
    x = RNG.uniform(0, 1, (20, 1, 6, 6))
    got = forward(net, {"x": x.reshape(20, -1)}).y[output_population(net).name][:, -1]
    # onnx.reference runs BatchNormalization of opsets 9-13 in training mode (batch statistics)
    # even with one output, which the specification defines as inference; the same model at
    # opset 17 is the reference for all opsets.
    np.testing.assert_allclose(got, _reference(_cnn(17), x), rtol=1e-4, atol=1e-4)


def test_the_comparison_would_catch_a_wrong_fold(tmp_path: Path) -> None:
    """Changing one BatchNormalization parameter in the file changes the reference output, so the
    equality above is not vacuous."""
    model = _cnn(17)
    net = load_onnx(_save(tmp_path, model))
    for init in model.graph.initializer:
        if init.name == "var":
            init.CopyFrom(_t("var", numpy_helper.to_array(init) * 3))
    x = RNG.uniform(0, 1, (5, 1, 6, 6))
    got = forward(net, {"x": x.reshape(5, -1)}).y[output_population(net).name][:, -1]
    assert not np.allclose(got, _reference(model, x), atol=1e-3)


def test_skl2onnx_classifier_imports_with_its_head_removed_as_remarks(tmp_path: Path) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier
    d = load_digits()
    x = (d.data / 16).astype(np.float32)
    clf = MLPClassifier((24,), max_iter=60, random_state=0).fit(x[:1000], d.target[:1000])
    path = _save(tmp_path, skl2onnx.to_onnx(clf, x[:1], target_opset=15), "skl.onnx")
    diags = Diagnostics()
    net = load_onnx(path, diags)
    assert np.array_equal(predict(net, {"X": x[1000:]}), clf.predict(x[1000:]))
    removed = [str(d_) for d_ in diags.items]
    assert any("ZipMap" in r and "remark: removed" in r for r in removed)
    assert all(r.startswith(f"{path}:node '") for r in removed)


def test_mlp_builder_graph_matches_reference(tmp_path: Path) -> None:
    ws = [RNG.normal(0, 0.3, (8, 6)), RNG.normal(0, 0.3, (6, 3))]
    bs = [RNG.normal(0, 0.1, 6), RNG.normal(0, 0.1, 3)]
    model = mlp_model(ws, bs, softmax=False)
    net = load_onnx(_save(tmp_path, model))
    x = RNG.uniform(0, 1, (10, 8))
    np.testing.assert_allclose(forward(net, {"input": x}).y[output_population(net).name][:, -1],
                               _reference(model, x), rtol=1e-5, atol=1e-5)


# -- bad input: one line per problem, a non-zero exit ----------------------------------------------
def _bad_ops_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="Gemm_0"),
             helper.make_node("Sigmoid", ["h"], ["s"], name="Sigmoid_1"),
             helper.make_node("Reshape", ["s", "shape"], ["s4"], name="Reshape_2"),
             helper.make_node("MaxPool", ["s4"], ["m"], name="MaxPool_3", kernel_shape=[2, 2]),
             helper.make_node("Flatten", ["m"], ["f"], name="Flatten_4"),
             helper.make_node("Tanh", ["f"], ["y"], name="Tanh_5")]
    inits = [_t("w", RNG.normal(0, 1, (4, 16))), _t("b", np.zeros(16)),
             numpy_helper.from_array(np.array([-1, 1, 4, 4], dtype=np.int64), "shape")]
    return _model(nodes, inits, ["N", 4], ["N", 9])


def test_unsupported_ops_are_listed_all_at_once(cli, tmp_path: Path) -> None:
    path = _save(tmp_path, _bad_ops_model())
    code, out, err = cli("compile", path, "-o", tmp_path / "x.nmcb")
    lines = err.strip().splitlines()
    assert code == 1 and out == ""
    assert lines == [
        f"{path}:node 'Sigmoid_1': error: unsupported Sigmoid: spiking units compute rectified linear activations; "
        "retrain with Relu",
        f"{path}:node 'MaxPool_3': error: unsupported MaxPool: max pooling has no rate- or sigma-delta-coded "
        "equivalent; nmc does not replace it by an approximation: use AveragePool",
        f"{path}:node 'Tanh_5': error: unsupported Tanh: spiking units compute rectified linear activations; "
        "retrain with Relu",
    ]


def test_unknown_domain_and_clip_below_zero(tmp_path: Path) -> None:
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["c"], name="Clip_0"),
             helper.make_node("Frobnicate", ["c"], ["y"], name="F_1", domain="com.example")]
    m = _model(nodes, [_t("lo", np.array(-1.0)), _t("hi", np.array(1.0))], ["N", 3], ["N", 3])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    path = _save(tmp_path, m)
    with pytest.raises(NmcError) as info:
        load_onnx(path)
    assert str(info.value).splitlines() == [
        f"{path}:node 'Clip_0': error: unsupported Clip: Clip(-1, 1): spiking units need a lower bound of 0 (a "
        "rectifier, optionally bounded above)",
        f"{path}:node 'F_1': error: unsupported Frobnicate: operator Frobnicate of domain 'com.example' is not one "
        "nmc knows"]


def test_dynamic_shape_is_one_line(cli, tmp_path: Path) -> None:
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="Relu_0")], [], ["N", 3, "width"], ["N", 3, "width"])
    path = _save(tmp_path, m)
    code, _, err = cli("compile", path)
    assert code == 1
    assert err == (f"{path}:input 'x': error: dynamic shape: dimension 2 of the input is 'width'; nmc needs fixed "
                   "sizes (only the batch dimension, the first, may vary)\n")


@pytest.mark.parametrize("opset", [7, 99])
def test_unsupported_opset_is_one_line(cli, tmp_path: Path, opset: int) -> None:
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="Relu_0")], [], ["N", 3], ["N", 3], opset=opset)
    path = _save(tmp_path, m)
    code, _, err = cli("compile", path)
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith(f"{path}: error: opset {opset} of domain 'ai.onnx' is not supported (nmc reads opsets 9 to ")


def test_corrupt_and_truncated_files_are_one_line(cli, tmp_path: Path) -> None:
    good = mlp_model([RNG.normal(0, 1, (30, 20)), RNG.normal(0, 1, (20, 4))], [np.zeros(20), np.zeros(4)])
    data = good.SerializeToString()
    cases = {"truncated.onnx": data[: len(data) // 2], "garbage.onnx": bytes(RNG.integers(0, 256, 300, dtype=np.uint8)),
             "empty.onnx": b""}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        code, _, err = cli("compile", path)
        assert code == 1, name
        assert len(err.splitlines()) == 1 and err.startswith(f"{path}: error: "), (name, err)
        assert "Traceback" not in err


def test_nan_weights_name_the_node_and_initializer(cli, tmp_path: Path) -> None:
    w = RNG.normal(0, 1, (5, 3))
    w[1, 2] = np.nan
    path = _save(tmp_path, mlp_model([w, RNG.normal(0, 1, (3, 2))], [np.zeros(3), np.zeros(2)]))
    code, _, err = cli("compile", path)
    assert code == 1
    assert err == (f"{path}:node 'Gemm_0': error: weight 'fc0.weight' holds 1 NaN value(s); the weights must be "
                   "finite\n")


def test_two_data_inputs_and_a_missing_output_readout(tmp_path: Path) -> None:
    g = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"], name="Add_0")], "m",
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 2]) for n in "ab"],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
    path = _save(tmp_path, helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    with pytest.raises(NmcError, match="exactly one data input; this one has 2"):
        load_onnx(path)
