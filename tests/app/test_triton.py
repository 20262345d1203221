"""GAN3D_TRITON_URL: the networks on a real Triton Inference Server (PyTriton's bundled binary,
scripts/pytriton_bundle.py), the same bytes as in-process ONNX Runtime, and a server that is down,
silent or missing a model answered with 503 or 504 in time, never a hang or a 500.

scripts/test.sh makes the PyTriton environment (.venv-triton) and names its interpreter in
GAN3D_TRITON_PYTHON; without it (a bare `pytest` run) the tests that need the server skip."""

from __future__ import annotations

import io
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trimesh
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError

from app.bundle import OnnxSignature, TensorSpec
from app.main import create_app
from app.settings import Settings
from app.triton import TritonServer
from tests.app.conftest import assert_problem, tiny_settings
from tests.served import TRITON_PYTHON_ENV, triton_server
from tests.tiny_bundle import make_tiny_bundle

SAMPLE = {"n": 3, "seeds": [1, 2, 3], "output": {"format": "npy"}}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every network a bundle can have: generator, both encoders (with prototype logits), the
    gradient graph, segmenter and recognizer."""
    out = tmp_path_factory.mktemp("triton") / "bundle"
    make_tiny_bundle(out, prototypes=4, gradient=True, segmenter=True, recognizer=True)
    return out


@pytest.fixture(scope="module")
def triton(bundle: Path) -> Iterator[dict[str, str]]:
    python = os.environ.get(TRITON_PYTHON_ENV)
    if not python:
        pytest.skip(f"{TRITON_PYTHON_ENV} unset: run the tests with scripts/test.sh")
    with triton_server(bundle, python) as urls:
        yield urls


def _app(bundle: Path, **overrides) -> TestClient:
    return TestClient(create_app(tiny_settings(bundle, **overrides)))


def _png() -> bytes:
    img = Image.new("RGB", (120, 100), (250, 250, 250))
    img.paste((30, 40, 200), (40, 20, 80, 80))  # blue: what the tiny recognizer knows
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _requests(c: TestClient) -> dict[str, bytes]:
    """One request per network path -> the answer's bytes (and the headers that carry results)."""
    box = trimesh.creation.box(extents=[1.0, 2.0, 1.0]).export(file_type="glb")
    answers = {
        "sample npy": c.post("/v1/sample", json=SAMPLE),
        "sample glb": c.post("/v1/sample", json={"n": 2, "seeds": [4, 5]}),
        "interpolate": c.post(
            "/v1/interpolate",
            json={
                "keyframes": [{"seed": 1}, {"seed": 2}, {"concept": "chair"}],
                "steps": 20,
                "output": {"format": "npy"},
            },
        ),
        "reconstruct": c.post(
            "/v1/reconstruct",
            files={"image": ("x.png", _png())},
            data={"output": '{"format": "npy"}'},
        ),
        "encode": c.post("/v1/encode", files={"shape": ("box.glb", box)}),
    }
    out = {}
    for name, r in answers.items():
        assert r.status_code == 200, (name, r.text[:300])
        out[name] = r.content + str(sorted(
            (k, v) for k, v in r.headers.items() if k.startswith("x-gan3d")
        )).encode()  # fmt: skip
    return out


def _inferences(triton: dict, model: str) -> int:
    """Requests ``model`` served, by Triton's own metrics."""
    text = httpx.get(triton["metrics"]).text
    found = re.search(
        rf'^nv_inference_request_success{{model="{model}",[^}}]*}} (\S+)$', text, re.M
    )
    return int(float(found.group(1))) if found else 0


def test_same_bytes_as_in_process_over_http_and_grpc(bundle: Path, triton: dict) -> None:
    with _app(bundle) as c:
        local = _requests(c)
    for protocol in ("http", "grpc"):
        before = _inferences(triton, "gan3d_generator")
        with _app(bundle, triton_url=triton[protocol]) as c:
            ready = c.get("/health/ready")
            assert ready.status_code == 200 and ready.json()["execution_provider"] == "triton"
            remote = _requests(c)
            metrics = c.get("/metrics").text
        assert remote == local, protocol
        # the rows went through Triton: its own counters say so (41 frames: two 32-row calls)
        assert _inferences(triton, "gan3d_generator") > before
        for role in ("image_encoder", "segmenter", "recognizer", "voxel_encoder"):
            assert _inferences(triton, f"gan3d_{role}") > 0, role
        assert "gan3d_triton_ready 1.0" in metrics


def test_a_missing_model_is_not_ready_and_answers_503(bundle: Path, triton: dict) -> None:
    with _app(bundle, triton_url=triton["http"], triton_model_prefix="other") as c:
        body = assert_problem_like(c.get("/health/ready"), 503)
        assert "other_generator" in body["detail"]
        r = c.post("/v1/sample", json=SAMPLE)
        assert_problem(r, 503, "inference server", "generator")
        assert r.headers["retry-after"] == "5"


def assert_problem_like(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["retry-after"]
    return r.json()


def test_a_server_that_is_down_answers_503_at_once(bundle: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for scheme in ("http", "grpc"):
        with _app(bundle, triton_url=f"{scheme}://127.0.0.1:{port}") as c:
            body = assert_problem_like(c.get("/health/ready"), 503)
            assert "not reachable" in body["detail"] and str(port) not in body["detail"]
            t = time.monotonic()
            r = c.post("/v1/sample", json=SAMPLE)
            assert time.monotonic() - t < 5
            assert_problem(r, 503, "inference server did not serve the generator")
            metrics = c.get("/metrics").text
            assert 'gan3d_triton_failures_total{network="generator",reason="unavailable"} 1.0' in (
                metrics
            )
            assert "gan3d_triton_ready 0.0" in metrics


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: a hung Triton."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    for conn in held:
        conn.close()
    srv.close()


def test_a_silent_server_answers_504_at_the_deadline(bundle: Path, silent_server: int) -> None:
    url = f"http://127.0.0.1:{silent_server}"
    with _app(bundle, triton_url=url, request_timeout_s=1.5) as c:
        t = time.monotonic()
        body = assert_problem_like(c.get("/health/ready"), 503)
        assert "did not answer" in body["detail"] and time.monotonic() - t < 4
        t = time.monotonic()
        r = c.post("/v1/sample", json=SAMPLE)
        assert r.status_code == 504, r.text
        assert time.monotonic() - t < 3
        assert c.get("/health/live").status_code == 200


def test_the_address_is_checked_when_the_settings_are_read() -> None:
    with pytest.raises(ValidationError, match="grpc://host:port"):
        Settings(triton_url="triton:8000")
    with pytest.raises(ValidationError, match="not a Triton address"):
        Settings(triton_url="ftp://triton:8000")
    assert Settings(triton_url="grpcs://triton:8001").triton_url == "grpcs://triton:8001"
    assert Settings(triton_url="").triton_url is None


def test_a_model_with_other_tensors_is_refused() -> None:
    sig = OnnxSignature(
        inputs=[TensorSpec(name="z", shape=["batch", 8])],
        outputs=[TensorSpec(name="loss", shape=["batch"])],
    )
    model = TritonServer("http://triton:8000").model("generator", sig)
    ok = {
        "inputs": [{"name": "z", "shape": [-1, 8]}],
        "outputs": [{"name": "loss", "shape": [-1, 1]}],
    }
    assert model.match(ok) is None
    renamed = {**ok, "inputs": [{"name": "latent", "shape": [-1, 8]}]}
    assert "no input 'z'" in model.match(renamed)
    wider = {**ok, "inputs": [{"name": "z", "shape": [-1, 16]}]}
    assert "[16]" in model.match(wider) and "[8]" in model.match(wider)
