"""/v1/encode's fitting: latency per refine setting, measured side by side in one run.

    python bench/encode_fit.py [--bundle models/gan3d-cpu] [--mesh examples/chair.obj] [--runs 15]

The service runs in-process (FastAPI's TestClient, the bundle's ONNX sessions as served);
each setting uploads the same mesh ``--runs`` times after a warm-up call. Prints the median
latency of each ``refine`` value and its ratio to ``refine=0`` (the voxel encoder alone), and
the ``fit_iou`` the service reports (how well the fitted latent reproduces the upload).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=Path("models/gan3d-cpu"))
    ap.add_argument("--mesh", type=Path, default=Path("examples/chair.obj"))
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 10, 20, 40, 80])
    args = ap.parse_args()
    data = args.mesh.read_bytes()
    settings = Settings(bundle_dir=args.bundle, mesh_workers=0)
    with TestClient(create_app(settings)) as c:

        def call(steps: int) -> tuple[float, dict]:
            t = time.perf_counter()
            r = c.post(
                "/v1/encode", files={"shape": (args.mesh.name, data)}, data={"refine": steps}
            )
            r.raise_for_status()
            return (time.perf_counter() - t) * 1000, r.json()

        rows = []
        for steps in args.steps:
            call(steps)  # warm-up
            times, body = [], {}
            for _ in range(args.runs):
                ms, body = call(steps)
                times.append(ms)
            rows.append((steps, statistics.median(times), body["fit_iou"], body["refine_method"]))
    base = rows[0][1]
    print(f"{args.mesh.name} -> /v1/encode, {args.bundle}, median of {args.runs} calls\n")
    print("| refine | method | median ms | / refine=0 | fit_iou |")
    print("|---|---|---|---|---|")
    for steps, ms, fit, method in rows:
        print(f"| {steps} | {method} | {ms:.0f} | {ms / base:.1f}x | {fit:.3f} |")


if __name__ == "__main__":
    main()
