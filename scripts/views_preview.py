"""Write docs/several_views.png: what POST /v1/reconstruct answers for one photo and for four
photos of the same real test-split model (never trained on), beside the model's own voxels.

    python scripts/views_preview.py   # needs the real data (python -m training data
                                      # --source real), pyrender and Mesa's OSMesa

Rows: the first test model of each of six categories (a fixed rule). Columns: the first
white/plain render, the shape answered for it alone, the four white/plain renders, the shape
answered for all four in one request, the model's voxels meshed as the service meshes.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")  # before pyrender imports OpenGL

import numpy as np
import trimesh
from fastapi.testclient import TestClient
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from mesh_preview import render  # noqa: E402

from app.main import create_app  # noqa: E402
from app.meshing import MeshOptions, to_mesh  # noqa: E402
from app.settings import Settings  # noqa: E402
from training.data.pictures import save_png, tile  # noqa: E402
from training.data.real_set import load_real  # noqa: E402
from training.data.shapes import CATEGORY_NAMES  # noqa: E402

BUNDLE = ROOT / "models/gan3d-cpu"
CATEGORIES = ("chair", "table", "sofa", "lamp", "car", "airplane")
SIZE = 160


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def _photo(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((SIZE, SIZE), Image.LANCZOS))


def _four(rgbs: np.ndarray) -> np.ndarray:
    half = SIZE // 2
    small = [np.asarray(Image.fromarray(r).resize((half, half), Image.LANCZOS)) for r in rgbs]
    return np.concatenate([np.concatenate(small[:2], 1), np.concatenate(small[2:], 1)], 0)


def main() -> None:
    import pyrender

    test = load_real(next((ROOT / "data").glob("real-*/real_manifest.json")).parent, "test")
    renderer = pyrender.OffscreenRenderer(SIZE, SIZE)
    cells, labels = [], []
    with TestClient(create_app(Settings(bundle_dir=BUNDLE, mesh_workers=0))) as c:

        def answer(views: np.ndarray) -> tuple[trimesh.Trimesh, str]:
            files = [("image", (f"v{i}.png", _png(v), "image/png")) for i, v in enumerate(views)]
            r = c.post("/v1/reconstruct", files=files)
            r.raise_for_status()
            mesh = trimesh.load(io.BytesIO(r.content), file_type="glb", force="mesh")
            return mesh, r.headers["x-gan3d-category"]

        for name in CATEGORIES:
            m = int(np.nonzero(test["category"] == CATEGORY_NAMES.index(name))[0][0])
            plain = test["images"][m, :4]  # the white/plain renders
            one, guess_one = answer(plain[:1])
            four, guess_four = answer(plain)
            truth = to_mesh(test["voxels"][m].astype(np.float32), MeshOptions(threshold=0.5))
            cells += [_photo(plain[0]), render(one, renderer), _four(plain),
                      render(four, renderer), render(truth, renderer)]  # fmt: skip
            labels += [f"{name}: 1 photo", f"answer: {guess_one}", "4 photos",
                       f"answer: {guess_four}", "its voxels"]  # fmt: skip
    renderer.delete()
    out = save_png(tile(cells, 5, labels), ROOT / "docs/several_views.png")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
