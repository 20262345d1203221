"""Several photos of one object through POST /v1/reconstruct: 1, 2 and 4 views of each real
test-split model (never trained on), as a user sends them, against its true voxels.

    python -m training data --preset cpu --source real     # the real test renders (once)
    python bench/multiview.py [--bundle models/gan3d-cpu] [--data data]

Each held-out model has 4 renders on white/plain backgrounds and 4 on photographs. For k views
the 4 of a kind are sent in groups of k (k = 1: each alone; 2: two pairs; 4: all four), as PNG
parts of one multipart request through the service in-process; the answer (npy probabilities,
at the bundle's image threshold) is scored by IoU with the model's voxels, and its
X-Gan3d-Category against the model's category. Prints one row per (backgrounds, k).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.overlap import iou
from app.settings import Settings
from training.data.real_set import load_real
from training.data.shapes import CATEGORY_NAMES

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {1: [[0], [1], [2], [3]], 2: [[0, 1], [2, 3]], 4: [[0, 1, 2, 3]]}


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "models/gan3d-cpu")
    parser.add_argument("--data", type=Path, default=ROOT / "data")
    args = parser.parse_args()
    folders = sorted(args.data.glob("real-*/real_manifest.json"))
    if not folders:
        raise SystemExit(
            f"no real dataset under {args.data}: python -m training data --source real"
        )
    test = load_real(folders[-1].parent, "test")
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    threshold = manifest["image_threshold"] or manifest["threshold"]
    settings = Settings(bundle_dir=args.bundle, providers=["CPUExecutionProvider"])
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    with TestClient(create_app(settings)) as c:
        for m in range(len(test["voxels"])):
            truth = test["voxels"][m].astype(bool)[None]
            category = CATEGORY_NAMES[int(test["category"][m])]
            kinds = test["background"][m]
            for name, offset in (("white/plain", 0), ("photographs", 4)):
                if (kinds[offset : offset + 4] == "photo").all() != (offset == 4):
                    raise SystemExit(f"unexpected background order {kinds}")
                for k, groups in GROUPS.items():
                    cell = results.setdefault((name, k), {"iou": [], "right": [], "model": []})
                    for group in groups:
                        views = [_png(test["images"][m, offset + v]) for v in group]
                        files = [
                            ("image", (f"v{i}.png", v, "image/png")) for i, v in enumerate(views)
                        ]
                        r = c.post(
                            "/v1/reconstruct", files=files, data={"output": '{"format": "npy"}'}
                        )
                        r.raise_for_status()
                        probs = np.load(io.BytesIO(r.content))[None]
                        cell["iou"].append(float(iou(probs > threshold, truth)[0]))
                        cell["right"].append(float(r.headers["x-gan3d-category"] == category))
                        cell["model"].append(m)
    n = len(test["voxels"])
    print(f"{args.bundle.name}, {n} real test models, threshold {threshold}")
    print("| backgrounds | views | IoU | vs 1 view, paired by model | right category | requests |")
    print("|---|---|---|---|---|---|")
    for (name, k), cell in results.items():
        per_model = _per_model(cell)
        one = _per_model(results[(name, 1)])
        gain = per_model - one
        se = statistics.stdev(gain) / len(gain) ** 0.5 if k > 1 else float("nan")
        print(f"| {name} | {k} | {per_model.mean():.3f} | {gain.mean():+.3f} (SE {se:.3f}) | "
              f"{100 * np.mean(cell['right']):.0f}% | {len(cell['iou'])} |")  # fmt: skip


def _per_model(cell: dict) -> np.ndarray:
    """Each model's mean IoU over its groups -> [models]."""
    models, ious = np.array(cell["model"]), np.array(cell["iou"])
    return np.array([ious[models == m].mean() for m in np.unique(models)])


if __name__ == "__main__":
    main()
