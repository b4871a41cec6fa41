"""Models as torch.onnx.export writes them (opsets 11-18) import and compute what torch computes.

torch is an optional test dependency (``pip install -e ".[torch]"``); without it these tests are
skipped. The TorchScript exporter (``dynamo=False``) is used: the dynamo one needs onnxscript.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmc.conversion.ann import forward, output_population
from nmc.frontend.onnx import load_onnx

torch = pytest.importorskip("torch")
nn = torch.nn


class _Cnn(nn.Module):
    """Conv + BatchNorm + ReLU, a residual add, average pooling, ``view(n, -1)``, clamp (Clip),
    Dropout, Linear: the layers convert-ann supports, in torch's spelling."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.bn = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.pool, self.fc = nn.AvgPool2d(2), nn.Linear(64, 16)
        self.drop, self.out = nn.Dropout(0.2), nn.Linear(16, 10)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        a = torch.relu(self.bn(self.c1(x)))
        a = self.pool(torch.relu(self.c2(a) + a))
        a = torch.clamp(self.fc(a.view(a.size(0), -1)), 0, 6)
        return self.out(self.drop(a))


@pytest.mark.parametrize("opset", [11, 13, 15, 17, 18])
def test_torch_export_imports_exactly(tmp_path: Path, opset: int) -> None:
    torch.manual_seed(opset)
    model = _Cnn().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.1, 0.1)
        model.bn.running_var.uniform_(0.5, 2.0)
    path = tmp_path / f"cnn{opset}.onnx"
    torch.onnx.export(model, (torch.rand(2, 1, 8, 8),), str(path), opset_version=opset, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}}, dynamo=False)
    net = load_onnx(path)
    x = torch.rand(6, 1, 8, 8)
    got = forward(net, {"input": x.numpy().reshape(6, -1)}).y[output_population(net).name][:, -1]
    want = model(x).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert [p.model for p in net.populations].count("relu") == 3  # two ReLUs and the clamp
