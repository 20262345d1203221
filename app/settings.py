"""Service settings, read once at start-up from ``GAN3D_*`` environment variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.triton import parse_url

DEFAULT_BUNDLE_DIR = Path("models/gan3d-cpu")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GAN3D_", extra="forbid")

    host: str = "127.0.0.1"  # bind address; the container sets 0.0.0.0
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)  # uvicorn processes (one per GPU on GPU hosts)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    bundle_dir: Path = DEFAULT_BUNDLE_DIR  # model bundle to serve (must verify)
    # ONNX Runtime execution providers, most wanted first (a JSON list or comma-separated
    # names); empty = the best available (CUDA, then CPU), logged at info. A provider named
    # here but missing is logged as a warning.
    providers: Annotated[list[str], NoDecode] = []
    # 0 = one per physical core, or as many as a container's CPU quota allows (app/cpus.py)
    intra_op_threads: int = Field(default=0, ge=0)
    # ORT's intra-op threads busy-wait between operators (ORT's default) when on; off, they sleep
    # and leave the cores to the event loop, the second batch and the meshing workers. Off by
    # default: on 2 cores, 32 clients (bench/service.py), npy 215 vs 288/s and GLB 71 vs 99/s
    # with it on vs off; a lone request costs ~1-2 ms more
    ort_spinning: bool = False
    # processes that mesh and encode shapes (marching cubes holds the GIL, so threads use one
    # core); unset = one per core (0 on a single core), 0 = mesh in the server's threads
    mesh_workers: int | None = Field(default=None, ge=0, le=64)
    max_batch: int = Field(default=32, ge=1, le=1024)  # rows per ONNX Runtime call
    # batches in ONNX Runtime at once; 2 lets the next batch start while one runs (32 clients,
    # npy, bench/service.py: 213 -> 288 shapes/s on 2 cores)
    concurrent_batches: int = Field(default=2, ge=1, le=16)
    max_wait_ms: float = Field(default=0.0, ge=0, le=1000)  # extra batching wait (0 = greedy)
    queue_size: int = Field(default=256, ge=1)  # waiting requests per network before 503
    # API requests served at once; more wait up to admission_wait_s for a slot (no work done
    # while waiting), then are answered 503 + Retry-After
    max_in_flight: int = Field(default=64, ge=1)
    admission_wait_s: float = Field(default=1.0, ge=0, le=30)  # 0 = refuse at once
    request_timeout_s: float = Field(default=30.0, gt=0)  # per-request deadline -> 504
    # GET /v1/shapes/... responses kept in memory (least recently used out); 0 = no cache
    shape_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)  # body limit -> 413
    max_image_pixels: int = Field(default=16_000_000, ge=1)  # decoded image limit -> 400
    # JSON bodies are parsed and validated in the event loop: bounded before parsing (413 / 422;
    # a request of 256 latents of 200 numbers is about 1.1 MB in some 800 objects and arrays)
    max_json_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    max_json_containers: int = Field(default=4096, ge=16)
    # an API request's body must arrive whole within this long (408); only then does it take
    # an in-flight slot, so slow or stalled bodies cannot hold them
    body_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # bytes one response may carry, estimated before meshing from the shapes' surfaces (422
    # saying what to lower) and checked again on the encoded files
    max_response_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # photos decoded and framed at once (each needs up to ~100 MB while it is worked on); more
    # wait for their turn
    image_workers: int = Field(default=2, ge=1, le=64)
    # the networks on a Triton Inference Server (http://host:8000 or grpc://host:8001; https://,
    # grpcs:// for TLS) loaded with the repository of `python -m training triton`; unset:
    # in-process ONNX Runtime. Framing, prototypes, meshing and encoding stay in this service
    triton_url: str | None = None
    triton_model_prefix: str = Field(default="gan3d", pattern=r"^[A-Za-z0-9_.-]+$")
    cors_origins: list[str] = []  # allowed browser origins (JSON list); empty = no CORS
    api_key: str | None = None  # when set, /v1/* requires it in the X-API-Key header
    json_logs: bool = True  # one JSON object per log line (request id included)
    # graceful shutdown: queued requests are answered for at most this long (Kubernetes' default
    # grace period is 30 s)
    drain_timeout_s: float = Field(default=25.0, gt=0, le=600)
    keep_alive_s: float = Field(default=5.0, gt=0, le=300)  # idle keep-alive connections close

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, v: list[str]) -> list[str]:
        if "*" in v:
            raise ValueError("list the allowed origins; '*' is not accepted")
        return v

    @field_validator("triton_url")
    @classmethod
    def _triton_address(cls, v: str | None) -> str | None:
        if v:
            parse_url(v)  # ValueError says what is wrong
        return v or None

    @field_validator("providers", mode="before")
    @classmethod
    def _provider_list(cls, v: object) -> object:
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                return json.loads(text)
            return [p.strip() for p in text.split(",") if p.strip()]
        return v
