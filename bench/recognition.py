"""How often POST /v1/reconstruct answers "Not recognised": on renders of the real test-split
models (every one shows a category the model knows: the lower the better) and on photos of
other things (the higher the better), through the service in-process.

    apt-get install tuxpaint-stamps-default mate-backgrounds   # the other photos (Debian)
    python -m training data --preset cpu --source real          # the real test renders
    python bench/recognition.py [--bundle models/gan3d-cpu] [--data data]

Other photos: Tux Paint's photo stamps (GPL-2; animals, people, plants, food, town, space,
sports, clothes, natural forces; cartoons, household objects and vehicles left out) flattened
on white, and MATE's background photographs. None of them is used to choose anything: the
threshold is set on the real validation renders (training/export/recognizer.py).
"""

from __future__ import annotations

import argparse
import io
import time
from collections import Counter
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from training.data.real_set import load_real

ROOT = Path(__file__).resolve().parents[1]
STAMPS = Path("/usr/share/tuxpaint/stamps")
KINDS = ("animals", "people", "plants", "food", "town", "space", "sports", "clothes",
         "naturalforces")  # fmt: skip
BACKGROUNDS = Path("/usr/share/backgrounds/mate")


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def other_photos() -> list[tuple[str, bytes]]:
    """(kind, PNG or JPEG bytes) of photos of things that are none of the categories."""
    out = []
    for path in sorted(STAMPS.glob("*/**/*.png")):
        kind = path.relative_to(STAMPS).parts[0]
        if kind not in KINDS or "cartoon" in path.parts:
            continue
        img = Image.open(path).convert("RGBA")
        if min(img.size) < 48:
            continue
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        white.alpha_composite(img)
        out.append((kind, _png(np.asarray(white.convert("RGB")))))
    for path in sorted(BACKGROUNDS.glob("nature/*")) + sorted(BACKGROUNDS.glob("desktop/*")):
        out.append((f"landscape ({path.parent.name})", path.read_bytes()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "models/gan3d-cpu")
    parser.add_argument("--data", type=Path, default=ROOT / "data")
    args = parser.parse_args()
    test = load_real(next(args.data.glob("real-*/real_manifest.json")).parent, "test")
    photos = other_photos()
    if not photos:
        raise SystemExit(
            "no other photos: apt-get install tuxpaint-stamps-default mate-backgrounds"
        )
    settings = Settings(bundle_dir=args.bundle, providers=["CPUExecutionProvider"])
    with TestClient(create_app(settings)) as c:

        def status(data: bytes) -> int:
            files = {"image": ("photo", data, "application/octet-stream")}
            return c.post(
                "/v1/reconstruct", files=files, data={"output": '{"format": "npy"}'}
            ).status_code

        t0 = time.perf_counter()
        renders = test["images"].reshape(-1, *test["images"].shape[2:])
        kinds = test["background"].reshape(-1)
        refused_test = np.array([status(_png(r)) == 422 for r in renders])
        seconds = (time.perf_counter() - t0) / len(renders)
        answers = [(kind, status(data)) for kind, data in photos]
    answered = [a for a in answers if a[1] in (200, 422)]
    refused = Counter(k for k, s in answered if s == 422)
    total = Counter(k for k, _ in answered)
    print(f"{args.bundle.name}: {len(renders)} real test renders, {len(answered)} other photos "
          f"({len(answers) - len(answered)} refused as images); "
          f"{1000 * seconds:.0f} ms a request")  # fmt: skip
    print("| photos | refused as not recognised |")
    print("|---|---|")
    for name, sel in (
        ("white/plain", np.isin(kinds, ("white", "plain"))),
        ("photographs", kinds == "photo"),
    ):
        print(f"| real test renders, {name} | {refused_test[sel].mean():.1%} of {sel.sum()} |")
    print(f"| other photos, all | {sum(refused.values()) / len(answered):.1%} of {len(answered)} |")
    for kind in sorted(total):
        print(f"| other photos: {kind} | {refused[kind] / total[kind]:.0%} of {total[kind]} |")


if __name__ == "__main__":
    main()
