"""POST /v1/reconstruct says when a photo shows none of the things the model knows: 422
"Not recognised", naming the closest categories and how to force an answer (a category hint
skips the check). The tiny bundle's recognizer knows blue objects only."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.bundle import Manifest, load_manifest
from app.latents import LatentError
from app.main import create_app
from app.recognition import Recognition
from tests.app.conftest import assert_problem, tiny_settings
from tests.tiny_bundle import make_tiny_bundle


def _photo(colour: tuple[int, int, int]) -> bytes:
    img = Image.new("RGB", (120, 120), (250, 250, 250))
    img.paste(colour, (30, 20, 90, 100))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


BLUE, RED = _photo((30, 60, 200)), _photo((200, 30, 30))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    make_tiny_bundle(tmp_path / "b", prototypes=8, recognizer=True)
    with TestClient(create_app(tiny_settings(tmp_path / "b"))) as c:
        yield c


def _post(c: TestClient, photos: list[bytes], **form: str):
    files = [("image", (f"v{i}.png", p, "image/png")) for i, p in enumerate(photos)]
    return c.post("/v1/reconstruct", files=files, data={"output": '{"format": "npy"}', **form})


def test_a_photo_of_something_it_knows_is_answered(client: TestClient) -> None:
    assert _post(client, [BLUE]).status_code == 200


def test_a_photo_of_something_else_is_not_recognised(client: TestClient) -> None:
    doc = assert_problem(_post(client, [RED]), 422, "category=any", "category=<")
    assert doc["title"] == "Not recognised"
    assert [c["category"] for c in doc["closest"]] and len(doc["closest"]) <= 3
    assert all(0 <= c["probability"] <= 1 for c in doc["closest"])
    assert doc["recognition_score"] < doc["threshold"] == 0.9


@pytest.mark.parametrize("category", ["chair", "any"])
def test_a_category_forces_an_answer(client: TestClient, category: str) -> None:
    r = _post(client, [RED], category=category)
    assert r.status_code == 200 and r.headers["x-gan3d-blend"] == category


def test_several_views_are_scored_together(client: TestClient) -> None:
    assert _post(client, [BLUE, BLUE]).status_code == 200
    assert _post(client, [RED, RED]).status_code == 422


def test_bundles_without_a_recognizer_answer_every_photo(tiny_bundle: Path) -> None:
    with TestClient(create_app(tiny_settings(tiny_bundle))) as c:
        assert _post(c, [RED]).status_code == 200


def test_a_recognizer_needs_its_references(tmp_path: Path) -> None:
    m = make_tiny_bundle(tmp_path / "b", recognizer=True)
    files = [f.model_dump() for f in m.files if f.role != "recognition"]
    with pytest.raises(ValueError, match="come together"):
        Manifest.model_validate({**m.model_dump(), "files": files})
    assert load_manifest(tmp_path / "b").image.recognizer_features == 3


def test_scores_are_the_mean_of_the_nearest_cosines() -> None:
    refs = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], np.float32)
    rec = Recognition(refs, k=2, threshold=0.8)
    # [1, 0, 0]: cosines 1, 0, 0.707 -> the nearest two 1 and 0.707
    assert rec.score(np.array([[2.0, 0, 0]])) == pytest.approx((1 + 0.5**0.5) / 2)
    assert rec.recognised(rec.score(np.array([[1.0, 0.1, 0]])))
    assert not rec.recognised(rec.score(np.array([[0, 0, 1.0]])))
    with pytest.raises(LatentError, match="k <= N"):
        Recognition(refs, k=5, threshold=0.5)
