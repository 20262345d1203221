"""The GLB meshing defaults, up to 3.10 vs now, side by side in one run on one core; prints a
Markdown table.

    python bench/meshing.py [--bundle models/gan3d-cpu] [--samples 200]

Both settings mesh the same prior samples of the bundle's generator (ONNX Runtime, seeds from
0) at the bundle's threshold: the clean-up, marching cubes, the options' smoothing and the GLB
encoding (app/meshpool.encode_one, as a meshing worker runs it). Up to 3.10 the defaults were
upsample 2 (blurred), no smoothing, no joining; the old clean-up also left cavities, which this
bench cannot switch off, so the old row is a little kinder than the old service was.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import trimesh

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.bundle import load_manifest  # noqa: E402
from app.latents import MixturePrior  # noqa: E402
from app.meshpool import encode_one  # noqa: E402
from app.schemas import Output  # noqa: E402

SETTINGS = {
    "up to 3.10: upsample 2 (blurred), no smoothing, no joining": Output(
        upsample=2, smooth_iterations=0, join_level=1.0
    ),
    "now: upsample 1, 10 Taubin passes, joining at 0.5": Output(),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=ROOT / "models/gan3d-cpu")
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args()
    manifest = load_manifest(args.bundle)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(
        str(args.bundle / manifest.file("generator").path), opts, providers=["CPUExecutionProvider"]
    )
    prior = MixturePrior.load(args.bundle / manifest.file("prior").path)
    z = np.stack([prior.sample(s) for s in range(args.samples)]).astype(np.float32)
    probs = np.concatenate([sess.run(None, {"z": z[i : i + 32]})[0] for i in range(0, len(z), 32)])
    print(f"{args.samples} prior samples of {manifest.name} {manifest.version}, threshold "
          f"{manifest.threshold}, one core\n")  # fmt: skip
    print("| defaults | median ms per GLB | GLB size (median) | faces (median) | one piece |")
    print("|---|---|---|---|---|")
    for name, out in SETTINGS.items():
        times, sizes, faces, whole = [], [], [], []
        for p in probs[:, 0]:
            t = time.perf_counter()
            data = encode_one(p, out, manifest.threshold)
            times.append(time.perf_counter() - t)
            if data is None:
                whole.append(False)
                continue
            mesh = trimesh.load(io.BytesIO(data), file_type="glb", force="mesh")
            sizes.append(len(data))
            faces.append(len(mesh.faces))
            whole.append(len(mesh.split(only_watertight=False)) == 1)
        print(
            f"| {name} | {statistics.median(times) * 1000:.1f} | "
            f"{statistics.median(sizes) / 1024:.0f} KiB | {statistics.median(faces):.0f} | "
            f"{np.mean(whole):.1%} |"
        )


if __name__ == "__main__":
    main()
