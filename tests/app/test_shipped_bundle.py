"""The shipped bundles (models/gan3d-cpu, the default at 32^3, and models/gan3d-cpu64 at 64^3):
each verifies, generates, and reconstructs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.bundle import verify
from app.main import create_app
from app.settings import DEFAULT_BUNDLE_DIR, Settings
from tests.app.test_glb_validator import validate

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / DEFAULT_BUNDLE_DIR, ROOT / "models/gan3d-cpu64")


@pytest.fixture(scope="module", params=SHIPPED, ids=lambda p: p.name)
def bundle(request: pytest.FixtureRequest) -> Path:
    return request.param


@pytest.fixture(scope="module")
def client(bundle: Path) -> Iterator[TestClient]:
    settings = Settings(bundle_dir=bundle, providers=["CPUExecutionProvider"], max_batch=8)
    with TestClient(create_app(settings)) as c:
        yield c


def test_shipped_bundle_verifies_and_is_trained(bundle: Path) -> None:
    m = verify(bundle)
    assert m.training is not None and m.training.steps > 1000
    assert m.metrics["reconstruction_iou_mean"] > 0.3  # trained, not random weights


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_samples_are_valid_glbs(client: TestClient, seed: int, tmp_path: Path) -> None:
    r = client.post("/v1/sample", json={"seeds": [seed]})
    assert r.status_code == 200, r.text
    assert validate(r.content, tmp_path)["issues"]["numErrors"] == 0


def test_every_concept_gives_a_nonempty_shape(client: TestClient) -> None:
    names = client.get("/v1/concepts").json()["concepts"]
    categories = client.get("/v1/concepts").json()["categories"]
    assert len(categories) >= 8
    for name in names:
        if "." in name or name not in categories:  # attribute directions are not shapes
            continue
        body = {"terms": [{"weight": 1, "ref": {"concept": name}}], "output": {"format": "npy"}}
        r = client.post("/v1/arithmetic", json=body)
        assert r.status_code == 200, (name, r.text)
        probs = np.load(io.BytesIO(r.content))
        assert (probs >= client.get("/v1/model").json()["threshold"]).sum() > 20, name


def test_held_out_renders_reconstruct_to_their_shapes(client: TestClient) -> None:
    """Fresh renders of test-split shapes (seeds never trained on) -> IoU with the truth."""
    from app.overlap import iou
    from training.data.procedural import SPLIT_SEED_BASE
    from training.data.shapes import CATEGORY_NAMES, make_shape
    from training.data.shapes.render import render

    threshold = client.get("/v1/model").json()["threshold"]
    names = client.get("/v1/model").json()["categories"]  # the bundle's (the code may know more)
    scores = []
    for name in names:
        ci = CATEGORY_NAMES.index(name)
        seed = SPLIT_SEED_BASE["test"] + 500 + ci
        shape = make_shape(name, seed)
        rgb, _ = render(shape, np.random.default_rng([ci, seed, 7]), size=64)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "PNG")
        r = client.post(
            "/v1/reconstruct",
            files={"image": ("x.png", buf.getvalue())},
            data={"output": '{"format": "npy"}'},
        )
        assert r.status_code == 200, r.text
        pred = np.load(io.BytesIO(r.content)) >= threshold
        scores.append(iou(pred[None], shape.voxels(pred.shape[0])[None])[0])
    # trained, not random (random weights give ~0.05); 3.0.0 measured 0.38 on these nine
    # through the service (its direct test-split figure is 0.51; 3.1.0's is 0.54)
    assert np.mean(scores) > 0.3, dict(zip(names, np.round(scores, 2), strict=True))


def test_a_real_mesh_round_trips_through_encode(client: TestClient) -> None:
    """examples/chair.obj (a real test-split chair, never trained on) -> /v1/encode -> its
    latent -> the shape: it comes back close to the upload's own voxels."""
    from app.overlap import iou
    from app.voxelize import load_mesh, voxelize_mesh

    data = (ROOT / "examples" / "chair.obj").read_bytes()
    r = client.post("/v1/encode", files={"shape": ("chair.obj", data)})
    assert r.status_code == 200, r.text
    body = {"terms": [{"weight": 1, "ref": {"latent": r.json()["latent"]}}],
            "output": {"format": "npy"}}  # fmt: skip
    back = client.post("/v1/arithmetic", json=body)
    threshold = client.get("/v1/model").json()["threshold"]
    pred = np.load(io.BytesIO(back.content)) >= threshold
    truth = voxelize_mesh(load_mesh(data, "obj"), pred.shape[0])
    assert iou(pred[None], truth[None])[0] > 0.5


def test_the_shipped_segmenter_finds_objects_in_busy_renders(
    client: TestClient, bundle: Path
) -> None:
    """Fresh renders of test-split shapes: the shipped segmenter's mask against the render's
    own, and /v1/reconstruct uses it where the background is too busy for the colour rule."""
    import onnxruntime as ort

    from training.data.procedural import SPLIT_SEED_BASE
    from training.data.shapes import CATEGORY_NAMES, make_shape
    from training.data.shapes.render import render

    sess = ort.InferenceSession(str(bundle / "segmenter.onnx"))
    scores, masks_used = [], []
    names = client.get("/v1/model").json()["categories"]
    for name in names:
        ci = CATEGORY_NAMES.index(name)
        seed = SPLIT_SEED_BASE["test"] + 500 + ci
        rgb, truth = render(make_shape(name, seed), np.random.default_rng([ci, seed, 7]), size=64)
        x = ((rgb / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None].astype(np.float32)
        found = sess.run(None, {"image": x})[0][0, 0] > 0.5
        scores.append((found & (truth > 0)).sum() / (found | (truth > 0)).sum())
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "PNG")
        r = client.post("/v1/reconstruct", files={"image": ("x.png", buf.getvalue())})
        assert r.status_code == 200, r.text
        masks_used.append(r.headers["X-Gan3d-Mask"])
    # trained, not random: 3.9.0 measured 0.72-1.00 on these nine (mean 0.89)
    assert np.mean(scores) > 0.75, dict(zip(names, np.round(scores, 2), strict=True))
    assert "segmenter" in masks_used and "background" in masks_used


def _landscape() -> bytes:
    """A sky over grass: no object at all (its recognition score is far under the threshold)."""
    g = np.zeros((128, 128, 3), np.uint8)
    g[..., 2] = np.linspace(255, 120, 128)[:, None]
    g[..., 1] = np.linspace(200, 90, 128)[:, None]
    g[64:] = (40, 140, 40)
    buf = io.BytesIO()
    Image.fromarray(g).save(buf, "PNG")
    return buf.getvalue()


def test_a_landscape_is_not_recognised_and_a_table_is(client: TestClient) -> None:
    files = {"image": ("landscape.png", _landscape(), "image/png")}
    r = client.post("/v1/reconstruct", files=files)
    assert r.status_code == 422 and r.json()["title"] == "Not recognised", r.text
    assert len(r.json()["closest"]) == 3 and "category=any" in r.json()["detail"]
    r = client.post("/v1/reconstruct", files=files, data={"category": "any"})
    assert r.status_code == 200
    table = (ROOT / "examples/table.png").read_bytes()
    r = client.post("/v1/reconstruct", files={"image": ("table.png", table, "image/png")})
    assert r.status_code == 200 and r.headers["x-gan3d-category"] == "table"
