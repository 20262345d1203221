"""Write examples/: inputs for the README's curl examples, made by this project from real
test-split models (never trained on), with their provenance in examples/README.md.

    python scripts/make_examples.py        # needs the real data: python -m training data
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.data.photo import Photographer  # noqa: E402
from training.data.real_convert import load_scene  # noqa: E402
from training.data.real_sources import RealModel  # noqa: E402

PHOTO = "scopia/living_room_table/living_room_table.obj"  # a plain four-legged table
MESH = "blendswap-cc-0/plasticChair/plasticChair.obj"  # a chair, public domain
PHOTO_SIZE = 256
MESH_FACES = 3000


def _model(manifest: dict, member: str) -> RealModel:
    (m,) = [m for m in manifest["models"] if m["member"] == member]
    if m["split"] != "test":
        raise SystemExit(f"{member} is not in the test split")
    fields = {k: v for k, v in m.items() if k not in ("split", "row")}
    fields["rotation"] = tuple(fields["rotation"])
    fields["size"] = tuple(fields["size"]) if fields["size"] else None
    return RealModel(**fields), m


def main() -> None:
    folder = next((ROOT / "data").glob("real-*/real_manifest.json")).parent
    manifest = json.loads((folder / "real_manifest.json").read_text())
    cache = ROOT / "data" / "real-cache"
    out = ROOT / "examples"
    out.mkdir(exist_ok=True)
    credits = []
    # 1. a photo-like render on white, like a product photo
    model, entry = _model(manifest, PHOTO)
    ph = Photographer(load_scene(model, cache), size=PHOTO_SIZE)
    rgb, _, _ = ph.shoot(np.random.default_rng(3), [], background="white", own_materials=True)
    ph.close()
    Image.fromarray(rgb).save(out / "table.png", optimize=True)
    credits.append(("table.png", entry))
    # ... and two more views of it (other cameras and lights), for several-photo requests
    for seed, name in ((4, "table-2.png"), (5, "table-3.png")):
        ph = Photographer(load_scene(model, cache), size=PHOTO_SIZE)
        rgb, _, _ = ph.shoot(
            np.random.default_rng(seed), [], background="white", own_materials=True
        )
        ph.close()
        Image.fromarray(rgb).save(out / name, optimize=True)
        credits.append((name, entry))
    # 2. a mesh in the canonical frame, decimated to a small file
    model, entry = _model(manifest, MESH)
    mesh = load_scene(model, cache).to_mesh()
    if len(mesh.faces) > MESH_FACES:
        mesh = mesh.simplify_quadric_decimation(face_count=MESH_FACES)
    mesh.export(out / "chair.obj", include_color=False, include_texture=False)
    credits.append(("chair.obj", entry))
    lines = [
        "# Example inputs",
        "",
        "Made by `python scripts/make_examples.py` from real models of gan3d's real **test**",
        "split (never trained on): photo-like renders (pyrender, the model's own materials, on",
        "white; three views of one table) and a decimated mesh in the canonical frame (y up,",
        "front +z).",
        "",
        "| file | model | from | creator | licence |",
        "|---|---|---|---|---|",
        *[
            f"| {f} | {e['name']} | Debian `{e['package']}`, `{e['member']}` | {e['creator']} "
            f"| {e['licence']} |"
            for f, e in credits
        ],
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))
    print("\n".join(str(out / f) for f, _ in credits))


if __name__ == "__main__":
    main()
