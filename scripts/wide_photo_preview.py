"""Write docs/wide_photos.png: wide photographs of real test-split models (never trained on),
which nobody cropped to the object (the object spans a sixth to a third of the frame's side,
on held-out photographs; training/data/real_set.py, wide_photos), sent to the shipped service's
POST /v1/reconstruct; each answer rendered beside the model's own voxels.

    python scripts/wide_photo_preview.py   # needs the real data: python -m training data

Rows: the first test model of chair, table, sofa, car and airplane, its first wide photograph.
Columns: the photo (256 px, as uploaded), the service's answer, the model's voxels.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from training.data.pictures import render_grid, save_png, tile  # noqa: E402
from training.data.real_set import load_real, real_dataset_for, wide_photos  # noqa: E402
from training.data.shapes import CATEGORY_NAMES  # noqa: E402
from training.engine.checkpoint import load_networks  # noqa: E402

BUNDLE = ROOT / "models/gan3d-cpu"
SIZE = 128


def main() -> None:
    cfg, _, _ = load_networks(ROOT / "runs/cpu/checkpoint.pt")
    folder = real_dataset_for(cfg, ROOT / "data")
    test, wide = load_real(folder, "test"), wide_photos(folder, "test")["images"]
    tiles, labels = [], []
    with TestClient(create_app(Settings(bundle_dir=BUNDLE, mesh_workers=0))) as c:
        threshold = c.get("/v1/model").json()["image_threshold"]
        for cat in ("chair", "table", "sofa", "car", "airplane"):
            i = int(np.nonzero(test["category"] == CATEGORY_NAMES.index(cat))[0][0])
            buf = io.BytesIO()
            Image.fromarray(wide[i, 0]).save(buf, format="PNG")
            r = c.post(
                "/v1/reconstruct",
                files={"image": ("x.png", buf.getvalue())},
                data={"output": '{"format": "npy"}'},
            )
            r.raise_for_status()
            shape = np.load(io.BytesIO(r.content))
            tiles += [
                np.asarray(Image.fromarray(wide[i, 0]).resize((SIZE, SIZE))),
                render_grid(shape, threshold=threshold, size=SIZE),
                render_grid(test["voxels"][i].astype(np.float32), threshold=0.5, size=SIZE),
            ]
            mask, seen = r.headers["X-Gan3d-Mask"], r.headers.get("X-Gan3d-Category")
            labels += [f"test {cat}", f"{mask}; guess: {seen}", "its voxels"]
    print(save_png(tile(tiles, 3, labels), ROOT / "docs/wide_photos.png"))


if __name__ == "__main__":
    main()
