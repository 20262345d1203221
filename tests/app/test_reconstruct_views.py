"""POST /v1/reconstruct with several photos of one object (the `image` field repeated): the
answer pools what the encoder sees in all of them; a bad one is named."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.routes.reconstruct import MAX_VIEWS
from tests.app.conftest import assert_problem, tiny_settings
from tests.tiny_bundle import make_tiny_bundle


def _photo(box: tuple[int, int, int, int], colour=(30, 60, 200)) -> bytes:
    img = Image.new("RGB", (120, 120), (250, 250, 250))
    img.paste(colour, box)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


A = _photo((30, 20, 90, 100))
B = _photo((20, 50, 100, 80), colour=(200, 40, 40))


def _latent(r) -> np.ndarray:
    assert r.status_code == 200, r.text
    return np.frombuffer(base64.b64decode(r.headers["x-gan3d-latent"]), "<f4")


def _post(c: TestClient, photos: list[bytes], **form: str):
    files = [("image", (f"view{i}.png", p, "image/png")) for i, p in enumerate(photos)]
    return c.post("/v1/reconstruct", files=files, data={"output": '{"format": "npy"}', **form})


@pytest.fixture
def plain(tiny_bundle: Path):
    with TestClient(create_app(tiny_settings(tiny_bundle))) as c:
        yield c


@pytest.fixture
def prototype_client(tmp_path: Path):
    make_tiny_bundle(tmp_path / "b", prototypes=8)
    with TestClient(create_app(tiny_settings(tmp_path / "b"))) as c:
        yield c


def test_two_views_answer_the_mean_of_their_codes(plain: TestClient) -> None:
    a, b = _latent(_post(plain, [A])), _latent(_post(plain, [B]))
    both = _post(plain, [A, B])
    assert np.allclose(_latent(both), (a + b) / 2, atol=1e-6)
    assert both.headers["x-gan3d-mask"] == "background,background"


def test_a_repeated_view_answers_as_one(prototype_client: TestClient) -> None:
    once = _post(prototype_client, [A])
    twice = _post(prototype_client, [A, A])
    assert np.array_equal(_latent(once), _latent(twice))
    for key in ("x-gan3d-category", "x-gan3d-category-probability", "x-gan3d-blend"):
        assert once.headers[key] == twice.headers[key]
    assert once.content == twice.content
    hinted = _post(prototype_client, [A, B], category="table")
    assert hinted.headers["x-gan3d-blend"] == "table"
    every = _post(prototype_client, [A, B], category="any")
    assert every.headers["x-gan3d-blend"] == "any" and np.isfinite(_latent(every)).all()


def test_a_bad_view_is_named(plain: TestClient) -> None:
    r = _post(plain, [A, b"not an image"])
    doc = assert_problem(r, 400, "image 2 of 2", "view1.png")
    assert doc["image_index"] == 1


def test_at_most_eight_views(plain: TestClient) -> None:
    assert _post(plain, [A] * MAX_VIEWS).status_code == 200
    assert_problem(_post(plain, [A] * (MAX_VIEWS + 1)), 422, "9 images", "1 to 8")
