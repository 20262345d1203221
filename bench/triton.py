"""The networks on a Triton Inference Server against in-process ONNX Runtime, side by side.

    GAN3D_TRITON_PYTHON=.venv-triton/bin/python python bench/triton.py [--seconds 10]

One run, one machine: a real Triton server (PyTriton's bundled binary serving the shipped
bundle's ONNX files through ONNX Runtime, scripts/pytriton_bundle.py) is started once; then
gan3d is started three times, alone on the machine apart from that server: in-process ONNX
Runtime (GAN3D_TRITON_URL unset), Triton over HTTP, Triton over gRPC. For each: the median
latency of a lone GLB sample over a kept-alive connection, and wrk throughput of npy and GLB
samples at 1 and 32 clients. Prints a Markdown table. scripts/test.sh makes .venv-triton.

On a CPU-only host Triton can only add cost (serialisation, a network hop, a second process on
the same cores); what it is for is a GPU pooled by many replicas (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from service import WRK_GLB, start_server, wrk_median_ms, wrk_throughput

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.served import TRITON_PYTHON_ENV, triton_server


def measure(bundle: Path, seconds: int, **settings: str) -> dict[str, float]:
    proc, url, _ = start_server(bundle, **settings)
    try:
        wrk_throughput(url, 8, 2)  # warm-up
        return {
            "glb_ms": wrk_median_ms(url, seconds),
            "npy1": wrk_throughput(url, 1, seconds),
            "npy32": wrk_throughput(url, 32, seconds),
            "glb32": wrk_throughput(url, 32, seconds, WRK_GLB),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default="models/gan3d-cpu")
    ap.add_argument("--seconds", type=int, default=10, help="per cell, wrk load generator")
    ap.add_argument("--triton-threads", type=int, default=0, help="ONNX Runtime threads in Triton")
    args = ap.parse_args()
    python = os.environ.get(TRITON_PYTHON_ENV)
    if not python:
        sys.exit(f"set {TRITON_PYTHON_ENV} to the PyTriton environment's python (scripts/test.sh)")
    bundle = Path(args.bundle).resolve()
    rows = {}
    with triton_server(bundle, python, threads=args.triton_threads) as triton:
        rows["in-process ONNX Runtime"] = measure(bundle, args.seconds)
        rows["Triton, HTTP"] = measure(bundle, args.seconds, GAN3D_TRITON_URL=triton["http"])
        rows["Triton, gRPC"] = measure(bundle, args.seconds, GAN3D_TRITON_URL=triton["grpc"])
    print(f"\n{os.cpu_count()} cores, wrk {args.seconds} s per cell, bundle {bundle.name}\n")
    print("| networks | lone GLB, median | npy, 1 client | npy, 32 clients | GLB, 32 clients |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['glb_ms']:.1f} ms | {r['npy1']:.0f}/s | {r['npy32']:.0f}/s | "
            f"{r['glb32']:.0f}/s |"
        )


if __name__ == "__main__":
    main()
