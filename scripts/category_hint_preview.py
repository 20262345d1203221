"""Write docs/category_hint.png: real test-split renders (never trained on) sent to the shipped
service's POST /v1/reconstruct three ways, each result rendered: ``category=any`` (the blend of
every prototype), no hint (the blend of the category the encoder sees, the default) and the
true category named.

    python scripts/category_hint_preview.py   # needs the real data: python -m training data

Rows: examples/table.png, then the first test model of chair, lamp, shelf and bed, each on its
first white-background held-out render. Columns: the input, then the three answers.
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
from training.data.real_set import load_real, real_dataset_for  # noqa: E402
from training.data.shapes import CATEGORY_NAMES  # noqa: E402
from training.engine.checkpoint import load_networks  # noqa: E402

BUNDLE = ROOT / "models/gan3d-cpu"
SIZE = 96


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def inputs() -> list[tuple[str, bytes, str]]:
    """(label, PNG bytes, true category) for each row."""
    rows = [("examples/table.png", (ROOT / "examples/table.png").read_bytes(), "table")]
    cfg, _, _ = load_networks(ROOT / "runs/cpu/checkpoint.pt")
    test = load_real(real_dataset_for(cfg, ROOT / "data"), "test")
    for cat in ("chair", "lamp", "shelf", "bed"):
        i = int(np.nonzero(test["category"] == CATEGORY_NAMES.index(cat))[0][0])
        view = int(np.argmax(test["background"][i] == "white"))
        rows.append((f"test {cat}", _png(test["images"][i, view]), cat))
    return rows


def main() -> None:
    tiles, labels = [], []
    with TestClient(create_app(Settings(bundle_dir=BUNDLE, mesh_workers=0))) as c:
        threshold = c.get("/v1/model").json()["image_threshold"]
        for label, data, cat in inputs():
            pic = Image.open(io.BytesIO(data)).convert("RGB").resize((SIZE, SIZE))
            tiles.append(np.asarray(pic))
            labels.append(label)
            for hint in ("any", None, cat):
                form = {"output": '{"format": "npy"}', **({"category": hint} if hint else {})}
                r = c.post("/v1/reconstruct", files={"image": ("x.png", data)}, data=form)
                r.raise_for_status()
                tiles.append(
                    render_grid(np.load(io.BytesIO(r.content)), threshold=threshold, size=SIZE)
                )
                seen = r.headers.get("X-Gan3d-Category")
                labels.append(f"category={hint}" if hint else f"guess: {seen}")
    print(save_png(tile(tiles, 4, labels), ROOT / "docs/category_hint.png"))


if __name__ == "__main__":
    main()
