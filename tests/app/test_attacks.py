"""One hostile client cannot take the service down (issue 34): huge or wide JSON bodies are
refused before they are parsed, answers are bounded in bytes, big photos in memory, and slow
bodies hold no in-flight slot. How long each takes, and what liveness sees meanwhile, is
measured by bench/attacks.py (timings are not asserted here)."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.results import envelope_bytes
from app.schemas import MAX_LATENT_SIZE, MAX_LATENTS
from tests.app.conftest import assert_problem as _problem
from tests.app.conftest import tiny_settings
from tests.served import service
from tests.tiny_bundle import make_tiny_bundle

MiB = 2**20


def _json(c: TestClient, path: str, raw: bytes):
    return c.post(path, content=raw, headers={"content-type": "application/json"})


# 1. a latent of millions of items: 49 s of the event loop to refuse, one error per item
def test_a_latent_of_millions_of_strings_is_refused_before_parsing(client: TestClient) -> None:
    items = b",".join([b'""'] * 3_495_172)  # the 10.5 MB body found, under the body limit
    raw = b'{"terms":[{"weight":1,"ref":{"latent":[' + items + b"]}}]}"
    assert len(raw) < 10 * MiB
    _problem(_json(client, "/v1/arithmetic", raw), 413, "JSON body", "GAN3D_MAX_JSON_BYTES")


@pytest.mark.parametrize("item", [b'""', b"{}", b"0"])
def test_a_latent_too_long_is_one_problem(client: TestClient, item: bytes) -> None:
    raw = b'{"start":{"latent":[' + b",".join([item] * 300_000) + b']},"edits":[]}'
    if item == b"{}":  # as many objects as items: refused before parsing
        _problem(_json(client, "/v1/edit", raw), 422, "objects and arrays")
        return
    doc = _problem(_json(client, "/v1/edit", raw), 422, f"at most {MAX_LATENT_SIZE}")
    assert doc["error_count"] <= 2  # the latent's one, and the empty edits'


def test_a_latent_of_strings_is_one_problem_naming_the_first(client: TestClient) -> None:
    body = {"terms": [{"weight": 1, "ref": {"latent": [0.5, True, "x"]}}]}
    doc = _problem(client.post("/v1/arithmetic", json=body), 422, "item 1 is bool")
    assert doc["error_count"] == 1


# 2. wide mean_of trees: the latent limit is checked before the tree is validated
def test_wide_mean_of_is_refused_before_parsing(client: TestClient) -> None:
    ref: dict = {"seed": 7}
    for _ in range(3):
        ref = {"mean_of": [ref] * 32}  # the 6 MB body found: 524,288 seed leaves
    raw = json.dumps({"terms": [{"weight": 1, "ref": ref}] * 16}).encode()
    _problem(_json(client, "/v1/arithmetic", raw), 413, "GAN3D_MAX_JSON_BYTES")
    ref = {"mean_of": [{"mean_of": [{"seed": 7}] * 32}] * 32}  # 1,024 leaves, 1,057 objects
    raw = json.dumps({"terms": [{"weight": 1, "ref": ref}] * 4}).encode()
    _problem(_json(client, "/v1/arithmetic", raw), 422, "objects and arrays", "at most 4096")
    wide = {"terms": [{"weight": 1, "ref": {"mean_of": [{"mean_of": [{"seed": 1}] * 32}] * 32}}]}
    doc = _problem(client.post("/v1/arithmetic", json=wide), 422, f"at most {MAX_LATENTS}")
    assert "names 1024 latents" in doc["detail"] and doc["error_count"] == 1


# 3. response amplification: a 165-byte request once made a 255 MB answer
AMPLIFYING = {
    "n": 8,
    "seeds": list(range(8)),
    "temperature": 3,
    "output": {"format": "obj", "upsample": 4, "smooth_iterations": 0,
               "min_part_fraction": 0, "join_level": 1, "threshold": 0.001},
}  # fmt: skip


def test_answers_over_the_byte_cap_are_422_before_meshing(tiny_bundle: Path) -> None:
    settings = tiny_settings(tiny_bundle, max_response_bytes=256 * 1024)
    with TestClient(create_app(settings)) as c:
        mesher = c.app.state.gan3d.loaded.mesher

        async def no_meshing(*_a, **_k):
            raise AssertionError("meshed a request that was to be refused")

        encode, mesher.encode = mesher.encode, no_meshing
        doc = _problem(c.post("/v1/sample", json=AMPLIFYING), 422, "Answer too large",
                       "GAN3D_MAX_RESPONSE_BYTES", "upsample", "glb")  # fmt: skip
        assert doc["estimated_bytes"] > doc["max_bytes"] == 256 * 1024
        mesher.encode = encode
        small = {
            "seeds": [0, 1],
            "output": {**AMPLIFYING["output"], "format": "glb", "upsample": 1},
        }
        r = c.post("/v1/sample", json=small)
        assert r.status_code == 200 and len(r.content) <= 256 * 1024
        frames = {
            "keyframes": [{"seed": 1}, {"seed": 2}],
            "steps": 32,
            "output": {"format": "npy"},
        }  # fmt: skip: 33 float32 8^3 grids, ~90 KB
        assert c.post("/v1/interpolate", json=frames).status_code == 200


def test_envelopes_are_byte_for_byte_json(tiny_bundle: Path) -> None:
    rng = np.random.default_rng(0)
    files = [b"\x00\x01binary", None, bytes(range(256)) * 3]
    z = rng.normal(size=(3, 5)).astype(np.float32)
    seeds = [1, None, 2**63 - 1]
    ours = envelope_bytes(files, z, seeds, "glb", 0.35, 32)
    import base64

    doc = {"shapes": [{"latent": [float(v) for v in zz], "seed": s, "format": "glb",
                       "media_type": "model/gltf-binary", "empty": f is None,
                       "data": None if f is None else base64.b64encode(f).decode()}
                      for f, zz, s in zip(files, z, seeds, strict=True)],
           "threshold": 0.35, "resolution": 32}  # fmt: skip
    assert ours == JSONResponse(doc).body


# 4 and 5 run against the service as users start it, on a socket
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    bundle = tmp_path_factory.mktemp("attacks") / "bundle"
    make_tiny_bundle(bundle, segmenter=True)
    env = {"GAN3D_BUNDLE_DIR": str(bundle), "GAN3D_MESH_WORKERS": "0",
           "GAN3D_MAX_IN_FLIGHT": "8", "GAN3D_ADMISSION_WAIT_S": "0.2",
           "GAN3D_BODY_TIMEOUT_S": "3", "GAN3D_PROVIDERS": "CPUExecutionProvider"}  # fmt: skip
    with service(**env) as (url, pid):
        yield url, pid


def _rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def _big_photo() -> bytes:
    """A 4000 x 4000 PNG (16 Mpx, within GAN3D_MAX_IMAGE_PIXELS; about 60 KB): a red block on
    white."""
    img = Image.new("RGB", (4000, 4000), "white")
    img.paste((200, 30, 30), (1200, 900, 2800, 3100))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_big_photos_are_worked_on_in_bounded_memory(served: tuple[str, int]) -> None:
    url, pid = served
    photo = _big_photo()

    def upload(_: int) -> int:
        files = {"image": ("big.png", photo, "image/png")}
        form = {"output": json.dumps({"format": "npy"})}
        return httpx.post(f"{url}/v1/reconstruct", files=files, data=form, timeout=120).status_code

    assert upload(0) == 200  # warm: what one upload leaves behind counts as idle
    idle = _rss_mib(pid)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(upload, range(8))) == [200] * 8
    peak = _rss_mib(pid, "VmHWM")
    time.sleep(0.5)
    after = _rss_mib(pid)
    assert peak - idle < 1536, (idle, peak)  # 8 at once took 5.6 GB more
    assert after - idle < 300, (idle, after)  # and kept 1.7 GB of it


def _stalled_body(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(
        b"POST /v1/sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"n":'
    )  # fmt: skip: 5 of the 100 bytes
    return s


def test_slow_bodies_hold_no_in_flight_slot(served: tuple[str, int]) -> None:
    url, _ = served
    stalled = [_stalled_body(url) for _ in range(100)]  # GAN3D_MAX_IN_FLIGHT is 8
    try:
        time.sleep(0.5)  # all read by the server, waiting for the rest of their bodies
        r = httpx.post(f"{url}/v1/sample", json={"seeds": [1], "output": {"format": "npy"}},
                       timeout=10)  # fmt: skip
        assert r.status_code == 200, r.text
        stalled[0].settimeout(30)
        head = b""  # cut off after GAN3D_BODY_TIMEOUT_S: read to the close (headers and body
        while chunk := stalled[0].recv(4096):  # may come in separate segments)
            head += chunk
        assert head.startswith(b"HTTP/1.1 408"), head[:200]
        assert b"GAN3D_BODY_TIMEOUT_S" in head
    finally:
        for s in stalled:
            s.close()
