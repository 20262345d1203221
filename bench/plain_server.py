"""The contender in bench/service.py: a FastAPI + ONNX Runtime server written the obvious way.

    GAN3D_BUNDLE_DIR=models/gan3d-cpu uvicorn bench.plain_server:app --port 8001

One synchronous ``def`` endpoint (FastAPI runs it in its thread pool), one ONNX Runtime session
called with batch 1 per request, the bundle's prior for seeds, and the same meshing and file
encoding functions as gan3d (so the comparison is of the serving, not of two meshers). It
answers the subset of POST /v1/sample the bench's wrk scripts send: {"seeds": [s], "output":
{"format": "glb" | "npy"}} with the file as the body. No batching, limits, deadlines or
validation beyond pydantic's: what a first version of such a service looks like.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel

from app.bundle import verify
from app.latents import MixturePrior
from app.meshpool import encode_one
from app.schemas import Output

BUNDLE = Path(os.environ.get("GAN3D_BUNDLE_DIR", "models/gan3d-cpu"))
MEDIA = {"glb": "model/gltf-binary", "npy": "application/x-npy"}

manifest = verify(BUNDLE)
session = ort.InferenceSession(
    str(BUNDLE / manifest.file("generator").path), providers=["CPUExecutionProvider"]
)
prior = MixturePrior.load(BUNDLE / manifest.file("prior").path)
app = FastAPI()


class PlainOutput(BaseModel):
    format: str = "glb"


class PlainRequest(BaseModel):
    seeds: list[int]
    output: PlainOutput = PlainOutput()


@app.post("/v1/sample")
def sample(body: PlainRequest) -> Response:
    z = prior.sample(body.seeds[0])[None].astype(np.float32)
    prob = session.run(None, {"z": z})[0][0, 0]
    data = encode_one(prob, Output(format=body.output.format), manifest.threshold)
    return Response(data, media_type=MEDIA[body.output.format])
