"""Write docs/meshing.png: the GLB meshes the shipped service returns for random samples, with
the meshing defaults up to 3.10 (x2 upsampling with a blur, no joining) and with today's
(marching cubes on the grid, Taubin smoothing, parts joined along likely bridges, cavities
filled). Each connected piece of a mesh has its own colour: grey is the main piece, any other
colour a piece floating apart.

    python scripts/mesh_preview.py   # needs pyrender (training extras) and Mesa's OSMesa

Columns: the first seeds from 0 whose old default mesh came back in several pieces (a fixed
rule: the picture shows what changed where it changed, not a typical sample). Rows: the old
defaults, asked for with POST /v1/sample output options; today's defaults.
"""

from __future__ import annotations

import io
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")  # before pyrender imports OpenGL

import numpy as np
import trimesh
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from training.data.photo import _direction, _look_at  # noqa: E402
from training.data.pictures import save_png, tile  # noqa: E402

BUNDLE = ROOT / "models/gan3d-cpu"
OLD = {"upsample": 2, "smooth_iterations": 0, "join_level": 1.0}  # the defaults up to 3.10
SIZE, COLUMNS = 160, 6
PIECE_COLOURS = [(0.62, 0.66, 0.78), (0.9, 0.25, 0.2), (0.25, 0.75, 0.3), (0.95, 0.7, 0.1),
                 (0.65, 0.3, 0.85), (0.1, 0.75, 0.8)]  # fmt: skip


def render(mesh: trimesh.Trimesh, renderer) -> np.ndarray:
    """A mesh in the world frame -> [SIZE, SIZE, 3] uint8, each connected piece its colour
    (largest first), seen from the front left and above."""
    import pyrender

    scene = pyrender.Scene(bg_color=[1.0, 1.0, 1.0], ambient_light=[0.35] * 3)
    pieces = sorted(mesh.split(only_watertight=False), key=lambda m: -len(m.faces))
    for k, piece in enumerate(pieces):
        colour = PIECE_COLOURS[min(k, len(PIECE_COLOURS) - 1)]
        material = pyrender.MetallicRoughnessMaterial(baseColorFactor=[*colour, 1.0])
        scene.add(pyrender.Mesh.from_trimesh(piece, material=material, smooth=False))
    pose = _look_at(3.2 * _direction(math.radians(35), math.radians(25)), np.zeros(3))
    scene.add(pyrender.PerspectiveCamera(yfov=math.radians(40)), pose=pose)
    scene.add(pyrender.DirectionalLight(intensity=3.0), pose=pose)
    return renderer.render(scene)[0]


def glb(client: TestClient, seed: int, output: dict) -> trimesh.Trimesh:
    r = client.post("/v1/sample", json={"seeds": [seed], "output": output})
    r.raise_for_status()
    return trimesh.load(io.BytesIO(r.content), file_type="glb", force="mesh")


def main() -> None:
    import pyrender

    renderer = pyrender.OffscreenRenderer(SIZE, SIZE)
    old, new, labels_old, labels_new = [], [], [], []
    with TestClient(create_app(Settings(bundle_dir=BUNDLE, mesh_workers=0))) as c:
        seed = 0
        while len(old) < COLUMNS:
            before = glb(c, seed, OLD)
            parts = len(before.split(only_watertight=False))
            if parts > 1:
                after = glb(c, seed, {})
                old.append(render(before, renderer))
                new.append(render(after, renderer))
                labels_old.append(f"seed {seed}: up to 3.10, {parts} pieces")
                labels_new.append(f"now: {len(after.split(only_watertight=False))} piece(s)")
            seed += 1
    renderer.delete()
    out = save_png(tile(old + new, COLUMNS, labels_old + labels_new), ROOT / "docs/meshing.png")
    print(f"wrote {out} (seeds 0-{seed - 1} looked at)")


if __name__ == "__main__":
    main()
