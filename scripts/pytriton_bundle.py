"""Serve a gan3d bundle's ONNX networks from a real Triton Inference Server, without its container.

    python scripts/pytriton_bundle.py models/gan3d-cpu --http-port 8100 --grpc-port 8101

NVIDIA's PyTriton wheel (PyPI ``nvidia-pytriton``) bundles the Triton server binary; each network
is bound as a Python-backend model that runs the bundle's ONNX file in ONNX Runtime, under the
names and tensor signatures the repository of ``python -m training triton`` gives it
(``gan3d_<role>``, the manifest's input and output names). The production path is Triton's own
ONNX Runtime backend on that repository (docs/deploy.md); this is what the tests and
``bench/triton.py`` start, because it runs on a CPU-only machine from a pip install.

Standalone on purpose: it runs in its own virtual environment (PyTriton's Python-backend stub
must match the interpreter, Python 3.13 here; see scripts/test.sh), so it imports neither the app
nor training. Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def _dims(shape: list) -> tuple[int, ...]:
    """The row shape Triton declares (no batch axis); one value per row is declared [1]."""
    return tuple(int(d) for d in shape[1:]) or (1,)


def _infer_func(session: ort.InferenceSession, outputs: list[dict]):
    names = [o["name"] for o in outputs]

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {k: np.ascontiguousarray(v, np.float32) for k, v in inputs.items()}
        results = session.run(names, feeds)
        shaped = zip(names, results, outputs, strict=True)
        return {n: r.reshape(len(r), *_dims(o["shape"])) for n, r, o in shaped}

    return infer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--http-port", type=int, default=8100)
    ap.add_argument("--grpc-port", type=int, default=8101)
    ap.add_argument("--metrics-port", type=int, default=8102)
    ap.add_argument("--prefix", default="gan3d")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    config = TritonConfig(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        http_address="127.0.0.1",
        grpc_address="127.0.0.1",
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    with Triton(config=config) as triton:
        for entry in manifest["files"]:
            sig = entry.get("onnx")
            if not sig:
                continue
            session = ort.InferenceSession(
                str(args.bundle / entry["path"]), opts, providers=["CPUExecutionProvider"]
            )
            triton.bind(
                model_name=f"{args.prefix}_{entry['role']}",
                infer_func=_infer_func(session, sig["outputs"]),
                inputs=[
                    Tensor(name=t["name"], dtype=np.float32, shape=_dims(t["shape"]))
                    for t in sig["inputs"]
                ],
                outputs=[
                    Tensor(name=t["name"], dtype=np.float32, shape=_dims(t["shape"]))
                    for t in sig["outputs"]
                ],
                config=ModelConfig(max_batch_size=args.max_batch),
                strict=True,
            )
        print("serving", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
