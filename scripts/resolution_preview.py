"""Write docs/resolution_real.png and docs/resolution_samples.png: the shipped 32^3 and 64^3
bundles side by side, answering the same requests through the service (in-process), each answer
the GLB mesh a client gets.

    python scripts/resolution_preview.py [--bundles models/gan3d-cpu models/gan3d-cpu64]
        # needs pyrender (training extras), Mesa's OSMesa and the real datasets at 32^3 and 64^3
        # (python -m training data --source real, for the cpu and cpu64 presets)

_real: the first real test model of each of four categories with thin parts (chair, table,
lamp, airplane; never trained on). First row: the model's 64^3 voxels as the service meshes them,
and its held-out white-background render; then per bundle, its voxels at the bundle's
resolution uploaded to /v1/encode and decoded (round trip), and the render through
/v1/reconstruct. _samples, per bundle: /v1/sample seeds 0-3, the README's arithmetic (chair with
armrests - chair without + sofa) and its edit (seed 0, a taller back and armrests).
"""

from __future__ import annotations

import argparse
import io
import json
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
from app.meshing import to_mesh  # noqa: E402
from app.meshpool import mesh_options  # noqa: E402
from app.schemas import Output  # noqa: E402
from app.settings import Settings  # noqa: E402
from training.data.pictures import save_png, tile  # noqa: E402
from training.data.real_set import RealConfig, load_real  # noqa: E402
from training.data.shapes import CATEGORY_NAMES  # noqa: E402

CATEGORIES = ("chair", "table", "lamp", "airplane")
SEEDS = (0, 1, 2, 3)
ARITHMETIC = {"terms": [
    {"weight": 1, "ref": {"concept": "chair.has_armrests=1"}},
    {"weight": -1, "ref": {"concept": "chair.has_armrests=0"}},
    {"weight": 1, "ref": {"concept": "sofa.has_armrests=0"}}]}  # fmt: skip
EDIT = {"start": {"seed": 0}, "edits": [
    {"direction": "chair.tall_back", "amount": 1},
    {"direction": "chair.has_armrests", "amount": 1}]}  # fmt: skip


MESH = mesh_options(Output(), 0.5)  # the service's default meshing, for the true voxels


def _mesh(data: bytes) -> trimesh.Trimesh:
    return trimesh.load(io.BytesIO(data), file_type="glb", force="mesh")


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def _ok(r) -> bytes:
    assert r.status_code == 200, r.text[:300]
    return r.content


def answers(client: TestClient, real: dict, rows: list[int]) -> list[trimesh.Trimesh]:
    """The bundle's GLB answers: round trips and photos of the real models, then the README's."""
    out = []
    for i in rows:
        grid = real["voxels"][i]
        buf = io.BytesIO()
        np.save(buf, grid)
        enc = client.post("/v1/encode", files={"shape": ("truth.npy", buf.getvalue())})
        body = {"terms": [{"weight": 1, "ref": {"latent": enc.json()["latent"]}}]}
        out.append(_mesh(_ok(client.post("/v1/arithmetic", json=body))))
    for i in rows:
        photo = ("photo.png", _png(real["images"][i, 0]), "image/png")
        out.append(_mesh(_ok(client.post("/v1/reconstruct", files={"image": photo}))))
    for seed in SEEDS:
        out.append(_mesh(_ok(client.post("/v1/sample", json={"seeds": [seed]}))))
    out.append(_mesh(_ok(client.post("/v1/arithmetic", json=ARITHMETIC))))
    out.append(_mesh(_ok(client.post("/v1/edit", json=EDIT))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundles", nargs="+",
                    default=["models/gan3d-cpu", "models/gan3d-cpu64"])  # fmt: skip
    ap.add_argument("--data", default="data")
    ap.add_argument("--out", default="docs/resolution", help="-> OUT_real.png, OUT_samples.png")
    args = ap.parse_args()
    import pyrender

    renderer = pyrender.OffscreenRenderer(160, 160)
    reals = {
        r: load_real(Path(args.data) / RealConfig(resolution=r).key(), "test") for r in (32, 64)
    }
    cats = reals[64]["category"]
    rows = [int(np.nonzero(cats == CATEGORY_NAMES.index(c))[0][0]) for c in CATEGORIES]
    # the real models: the inputs (the 64^3 truth as the service meshes it, the photo), then
    # each bundle's round trips and answers to the photos
    real = [
        render(to_mesh(reals[64]["voxels"][i].astype(np.float32), MESH), renderer) for i in rows
    ]
    real += [
        np.asarray(Image.fromarray(reals[64]["images"][i, 0]).resize((160, 160))) for i in rows
    ]
    real_names = [f"{c}: truth 64^3" for c in CATEGORIES] + [f"{c}: photo" for c in CATEGORIES]
    samples, sample_names = [], []
    for b in args.bundles:
        settings = Settings(bundle_dir=Path(b), mesh_workers=0)
        with TestClient(create_app(settings)) as client:
            r = client.get("/v1/model").json()["voxel_resolution"]
            meshes = answers(client, reals[r], rows)
        pictures = [render(m, renderer) for m in meshes]
        real += pictures[: 2 * len(rows)]
        real_names += [f"{r}^3 round trip" for _ in CATEGORIES]
        real_names += [f"{r}^3 from the photo" for _ in CATEGORIES]
        samples += pictures[2 * len(rows) :]
        sample_names += [f"{r}^3 sample seed {s}" for s in SEEDS]
        sample_names += [f"{r}^3 arithmetic", f"{r}^3 edit"]
    renderer.delete()
    save_png(tile(real, 2 * len(rows), real_names), Path(f"{args.out}_real.png"))
    save_png(tile(samples, len(SEEDS) + 2, sample_names), Path(f"{args.out}_samples.png"))
    print(json.dumps({"out": [f"{args.out}_real.png", f"{args.out}_samples.png"]}))


if __name__ == "__main__":
    main()
