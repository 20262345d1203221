"""Uploads: image decoding and cropping, /v1/reconstruct, /v1/encode, body and pixel limits."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient
from PIL import Image

from app import images
from app.bundle import ImageSpec
from app.main import create_app
from app.prototypes import BLEND_TEMPERATURE
from tests.app.conftest import tiny_settings
from tests.tiny_bundle import make_tiny_bundle

SPEC = ImageSpec(size=16)


def _png(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _object_on(bg=(250, 250, 250), size=(200, 120), box=(120, 30, 160, 90)) -> Image.Image:
    img = Image.new("RGB", size, bg)
    img.paste((30, 60, 200), box)
    return img


@pytest.fixture
def client(tiny_bundle: Path) -> Iterator[TestClient]:
    settings = tiny_settings(tiny_bundle, max_upload_bytes=200_000, max_image_pixels=1_000_000)
    with TestClient(create_app(settings)) as c:
        yield c


def test_background_crop_centres_the_object() -> None:
    x, info = images.preprocess(_object_on(), SPEC)
    assert x.shape == (3, 16, 16) and x.dtype == np.float32
    assert info["mask_source"] == "background"
    obj = x[0] < 0  # the object is dark red-wise; the white background is bright
    ys, xs = np.nonzero(obj)
    assert abs(xs.mean() - 7.5) < 1.5 and abs(ys.mean() - 7.5) < 1.5
    assert 0.55 < (ys.max() - ys.min() + 1) / 16 < 0.9  # fills ~TARGET_FILL


def test_thin_parts_stay_in_the_crop_and_specks_do_not() -> None:
    """A seat on one-pixel legs, with a one-pixel speck of noise elsewhere: the crop frames
    seat and legs (an opened, largest-blob mask used to cut the legs off) and not the speck."""
    img = Image.new("RGB", (100, 100), (255, 255, 255))
    img.paste((90, 60, 30), (30, 30, 70, 50))  # seat
    for x in (30, 69):
        img.paste((90, 60, 30), (x, 50, x + 1, 80))  # legs, one pixel wide, down to y = 80
    img.paste((90, 60, 30), (90, 5, 91, 6))  # speck
    mask, source = images.object_mask(img)
    assert source == "background" and mask[79, 30] and mask[79, 69] and not mask[5, 90]
    _, info = images.preprocess(img, SPEC)
    _, y0, x1, y1 = info["crop_box"]
    assert y0 < 30 and y1 > 80 and x1 < 90  # legs inside, speck outside


def test_alpha_is_the_mask() -> None:
    img = Image.new("RGBA", (100, 100), (255, 0, 0, 0))  # transparent red: must be ignored
    img.paste((20, 200, 20, 255), (10, 10, 40, 70))
    _, info = images.preprocess(images.decode(_png(img), max_pixels=10**6), SPEC)
    assert info["mask_source"] == "alpha" and info["crop_box"][0] < 10


def test_exif_orientation_is_applied() -> None:
    img = _object_on(size=(200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    decoded = images.decode(_png(img, "JPEG", exif=exif), max_pixels=10**6)
    assert decoded.size == (100, 200)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"not an image at all", "not a readable PNG, JPEG or WebP"),
        (_png(_object_on())[:300], "truncated or corrupt"),
        (_png(_object_on(), "GIF"), "format GIF is not accepted"),
    ],
)
def test_bad_images_are_named(data: bytes, needle: str) -> None:
    with pytest.raises(images.ImageInputError, match=needle):
        images.decode(data, max_pixels=10**6)


def test_pixel_limit_is_checked_before_decoding() -> None:
    big = _png(Image.new("L", (3000, 3000)))  # compresses to a few KB: a decompression bomb
    with pytest.raises(images.ImageInputError, match="limit is 1000000 pixels"):
        images.decode(big, max_pixels=1_000_000)


@pytest.mark.parametrize(
    ("img", "fmt", "needle"),
    [
        (Image.new("RGBA", (64, 64), (200, 30, 30, 0)), "PNG", "every pixel .* is transparent"),
        (Image.new("RGB", (120, 80), (255, 255, 255)), "PNG", "one flat colour"),
        (Image.new("RGB", (120, 80), (40, 90, 160)), "JPEG", "one flat colour"),
        (Image.new("L", (1, 1), 0), "PNG", "one flat colour"),
    ],
)
def test_images_with_nothing_in_them_are_refused(img: Image.Image, fmt: str, needle: str) -> None:
    with pytest.raises(images.ImageInputError, match=needle):
        images.preprocess(images.decode(_png(img, fmt), max_pixels=10**6), SPEC)


def test_a_faint_object_is_not_taken_for_a_blank_image() -> None:
    img = Image.new("RGB", (120, 80), (240, 240, 240))
    img.paste((228, 228, 228), (50, 20, 70, 60))  # 12 levels darker: faint, but there
    x, _ = images.preprocess(img, SPEC)
    assert np.isfinite(x).all()


def test_reconstruct_returns_a_shape_and_its_latent(client: TestClient) -> None:
    files = {"image": ("chair.png", _png(_object_on()), "image/png")}
    r = client.post("/v1/reconstruct", files=files, data={"output": '{"format": "npy"}'})
    assert r.status_code == 200, r.text
    assert np.load(io.BytesIO(r.content)).shape == (8, 8, 8) and "x-gan3d-latent" in r.headers
    again = client.post("/v1/reconstruct", files=files, data={"output": '{"format": "npy"}'})
    assert again.content == r.content


def test_reconstruct_errors(client: TestClient) -> None:
    r = client.post("/v1/reconstruct", files={"image": ("x.gif", _png(_object_on(), "GIF"))})
    assert r.status_code == 415 and "PNG, JPEG or WebP" in r.json()["detail"]
    r = client.post("/v1/reconstruct", files={"image": ("x.png", b"garbage")})
    assert r.status_code == 400 and r.json()["title"] == "Bad image"
    blank = _png(Image.new("RGB", (64, 64), (255, 255, 255)))
    r = client.post("/v1/reconstruct", files={"image": ("x.png", blank)})
    assert r.status_code == 400 and "no object to see" in r.json()["detail"]
    r = client.post(
        "/v1/reconstruct",
        files={"image": ("x.png", _png(_object_on()))},
        data={"output": '{"format": "fbx"}'},
    )
    assert r.status_code == 422 and "output.format" in r.json()["detail"]
    # listed like every other validation problem (app/errors.py validation_problem)
    assert [e["where"] for e in r.json()["errors"]] == ["output.format"]
    assert r.json()["error_count"] == 1
    r = client.post("/v1/reconstruct")
    assert r.status_code == 422 and "image" in r.json()["detail"]


def test_body_limit_413_before_buffering(client: TestClient) -> None:
    r = client.post("/v1/reconstruct", files={"image": ("x.png", b"\0" * 300_000)})
    assert r.status_code == 413 and "200000 bytes" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(40):
            yield b"\0" * 10_000

    r = client.post(
        "/v1/reconstruct",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 413


def test_encode_mesh_and_voxels_agree(client: TestClient) -> None:
    box = trimesh.creation.box(extents=[1.0, 2.0, 1.0])
    glb = client.post("/v1/encode", files={"shape": ("box.glb", box.export(file_type="glb"))})
    assert glb.status_code == 200, glb.text
    z = np.array(glb.json()["latent"])
    assert z.shape == (8,) and glb.json()["occupied_voxels"] > 0
    from app.voxelize import voxelize_mesh

    buf = io.BytesIO()
    np.save(buf, voxelize_mesh(box, 8).astype(np.uint8))
    npy = client.post("/v1/encode", files={"shape": ("box.npy", buf.getvalue())})
    assert np.allclose(npy.json()["latent"], z, atol=1e-6)


def test_encode_errors(client: TestClient) -> None:
    r = client.post("/v1/encode", files={"shape": ("model.fbx", b"123")})
    assert r.status_code == 415 and "npy" in r.json()["detail"]
    r = client.post("/v1/encode", files={"shape": ("broken.obj", b"v 1 2\nf 1 2 3\n")})
    assert r.status_code == 400 and "broken.obj" in r.json()["detail"]
    buf = io.BytesIO()
    np.save(buf, np.zeros((4, 5, 6)))
    r = client.post("/v1/encode", files={"shape": ("grid.npy", buf.getvalue())})
    assert r.status_code == 400 and "cubic" in r.json()["detail"]


def test_encode_refinement_steps_follow_the_fixed_point_rule(
    client: TestClient, tiny_bundle: Path
) -> None:
    import onnxruntime as ort

    grid = np.zeros((8, 8, 8), np.uint8)
    grid[2:6, 1:7, 3:5] = 1
    buf = io.BytesIO()
    np.save(buf, grid)

    def encode(**data) -> dict:
        r = client.post("/v1/encode", files={"shape": ("g.npy", buf.getvalue())}, data=data)
        assert r.status_code == 200, r.text
        return r.json()

    plain, once = encode(refine="0"), encode(refine="1")
    assert plain["refine_steps"] == 0 and encode()["refine_steps"] == 3  # the default
    g = ort.InferenceSession(str(tiny_bundle / "generator.onnx"))
    v = ort.InferenceSession(str(tiny_bundle / "voxel_encoder.onnx"))
    target = np.array([plain["latent"]], np.float32)
    (decoded,) = g.run(None, {"z": target})
    expect = target + 0.5 * (target - v.run(None, {"voxels": decoded})[0])
    assert np.allclose(once["latent"], expect[0], atol=1e-5)
    assert plain["refine_method"] == "fixed-point" and 0 <= plain["fit_iou"] <= 1
    r = client.post("/v1/encode", files={"shape": ("g.npy", buf.getvalue())}, data={"refine": 9})
    assert r.status_code == 422 and "at most 8" in r.json()["detail"]


def test_encode_fits_by_adam_steps_on_the_bundles_gradient(tmp_path: Path) -> None:
    """With a generator_gradient graph, refine counts Adam steps on the generator's
    reconstruction loss: the first one is Adam's (rate x the gradient's sign), and the default
    40 lower the loss of the decoded shape against the upload."""
    import onnxruntime as ort

    bundle = tmp_path / "b"
    make_tiny_bundle(bundle, gradient=True)
    grid = np.zeros((8, 8, 8), np.uint8)
    grid[2:6, 1:7, 3:5] = 1
    buf = io.BytesIO()
    np.save(buf, grid)
    with TestClient(create_app(tiny_settings(bundle))) as c:

        def encode(**data) -> dict:
            r = c.post("/v1/encode", files={"shape": ("g.npy", buf.getvalue())}, data=data)
            assert r.status_code == 200, r.text
            return r.json()

        plain, once, fitted = encode(refine="0"), encode(refine="1"), encode()
        assert fitted["refine_method"] == "gradient" and fitted["refine_steps"] == 40
        assert encode(refine="150")["refine_steps"] == 150  # more than fixed-point's 8
        r = c.post("/v1/encode", files={"shape": ("g.npy", buf.getvalue())}, data={"refine": 201})
        assert r.status_code == 422 and "refine" in r.text
    grad_sess = ort.InferenceSession(str(bundle / "generator_gradient.onnx"))

    def gradient(latent: list[float]) -> tuple[np.ndarray, float]:
        g, loss = grad_sess.run(
            None, {"z": np.array([latent], np.float32), "target": grid[None].astype(np.float32)}
        )
        return g[0], float(loss[0])

    g0, loss0 = gradient(plain["latent"])
    expect = np.array(plain["latent"]) - 0.1 * g0 / (np.abs(g0) + 1e-8)
    assert np.allclose(once["latent"], expect, atol=1e-5)
    assert gradient(fitted["latent"])[1] < 0.9 * loss0
    assert fitted["fit_iou"] >= plain["fit_iou"]


def test_reconstruct_uses_the_bundles_image_threshold(tiny_bundle: Path) -> None:
    from app.bundle import load_manifest, write_manifest
    from app.main import create_app
    from tests.app.conftest import tiny_settings

    manifest = load_manifest(tiny_bundle)
    write_manifest(
        tiny_bundle, manifest.model_copy(update={"threshold": 0.6, "image_threshold": 0.3})
    )
    envelope = {"output": '{"format": "npy", "envelope": true}'}
    with TestClient(create_app(tiny_settings(tiny_bundle))) as c:
        r = c.post("/v1/reconstruct", files={"image": ("x.png", _png(_object_on()))}, data=envelope)
        assert r.status_code == 200 and r.json()["threshold"] == 0.3
        r = c.post("/v1/sample", json={"seeds": [1], "output": {"envelope": True}})
        assert r.json()["threshold"] == 0.6


def test_a_category_hint_blends_only_that_categorys_prototypes(tmp_path: Path) -> None:
    import base64

    import onnxruntime as ort

    from tests.tiny_bundle import make_tiny_bundle

    bundle = tmp_path / "proto"
    make_tiny_bundle(bundle, prototypes=6)
    files = {"image": ("t.png", _png(_object_on()), "image/png")}
    with TestClient(create_app(tiny_settings(bundle))) as c:

        def post(**data: str):
            r = c.post("/v1/reconstruct", files=files, data={"output": '{"format": "npy"}', **data})
            assert r.status_code == 200, r.text
            latent = np.frombuffer(base64.b64decode(r.headers["x-gan3d-latent"]), "<f4")
            return r, latent

        (plain, plain_z), (hinted, hinted_z) = post(), post(category="table")
        (chair, chair_z), (every, every_z) = post(category="chair"), post(category="any")
        # a hinted latent is the softmax blend of that category's prototypes under the
        # encoder's logits for the same preprocessed image, at the blend temperature
        pic = images.decode(_png(_object_on()), max_pixels=1_000_000)
        x, _ = images.preprocess(pic, ImageSpec(size=16))
        sess = ort.InferenceSession(str(bundle / "image_encoder.onnx"))
        mu, _, logits = sess.run(None, {"image": x[None]})

        def blend(category: str) -> np.ndarray:
            with np.load(bundle / "prototypes.npz") as d:
                keep = d["categories"] == category
                lg = logits[0, keep] / BLEND_TEMPERATURE
                w = np.exp(lg - lg.max())
                return (w / w.sum()) @ d["bank"][keep]

        assert np.allclose(hinted_z, blend("table"), atol=1e-4)
        assert np.allclose(chair_z, blend("chair"), atol=1e-4)
        assert not np.allclose(hinted_z, chair_z, atol=1e-3)
        assert np.allclose(every_z, mu[0], atol=1e-5)  # "any": the encoder's own answer
        # what the encoder takes the photo to show: the category with most softmax mass;
        # without a hint the answer blends that category's prototypes
        w = np.exp(logits[0] - logits[0].max())
        with np.load(bundle / "prototypes.npz") as d:
            mass = {c: (w[d["categories"] == c].sum() / w.sum()) for c in ("chair", "table")}
        best = max(mass, key=mass.get)
        assert plain.headers["x-gan3d-category"] == hinted.headers["x-gan3d-category"] == best
        assert abs(float(plain.headers["x-gan3d-category-probability"]) - mass[best]) < 1e-3
        assert np.allclose(plain_z, blend(best), atol=1e-4)
        assert plain.headers["x-gan3d-blend"] == best and hinted.headers["x-gan3d-blend"] == "table"
        assert every.headers["x-gan3d-blend"] == "any" and chair.headers["x-gan3d-blend"] == "chair"
        r = c.post("/v1/reconstruct", files=files, data={"category": "sofa"})
        assert r.status_code == 400 and "chair, table, or any" in r.json()["detail"]
        assert c.get("/v1/model").json()["image"]["prototypes"] == 6


def test_a_category_hint_needs_a_bundle_with_prototypes(client: TestClient) -> None:
    files = {"image": ("t.png", _png(_object_on()), "image/png")}
    r = client.post("/v1/reconstruct", files=files, data={"category": "chair"})
    assert r.status_code == 400 and "takes no category" in r.json()["detail"]
    r = client.post("/v1/reconstruct", files=files)
    assert r.status_code == 200 and "x-gan3d-category" not in r.headers


def _red_on_busy(size=(120, 80), box=(50, 20, 80, 60), seed=0) -> Image.Image:
    """A red block on green-blue noise: no uniform border, so the colour rule finds nothing."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    noise[..., 0] = noise[..., 1] // 2  # greener than red everywhere
    img = Image.fromarray(noise)
    img.paste((230, 20, 20), box)
    return img


def test_cut_out_maps_the_mask_back_onto_the_photo() -> None:
    img = _red_on_busy()
    _, info = images.preprocess(img, SPEC)
    assert info["mask_source"] == "none"
    # the probability over the crop square (120 x 120 around the 120 x 80 photo): the block
    x0, y0, x1, _ = info["crop_box"]
    prob = np.zeros((16, 16), np.float32)
    scale = 16 / (x1 - x0)
    prob[round((20 - y0) * scale) : round((60 - y0) * scale),
         round((50 - x0) * scale) : round((80 - x0) * scale)] = 1  # fmt: skip
    cut = images.cut_out(img, prob, info["crop_box"])
    alpha = np.asarray(cut.getchannel("A")) > 0
    assert cut.size == img.size and alpha[40, 65] and not alpha[5, 5] and not alpha[70, 110]
    ys, xs = np.nonzero(alpha)
    assert abs(xs.min() - 50) <= 8 and abs(ys.max() - 60) <= 8
    _, info2 = images.preprocess(cut, SPEC)
    assert info2["mask_source"] == "alpha"
    # next to nothing, or everything, is no cut-out
    assert images.cut_out(img, np.zeros((16, 16), np.float32), info["crop_box"]) is None
    assert images.cut_out(img, np.ones((16, 16), np.float32), info["crop_box"]) is None


def _redder_than_green(x: np.ndarray) -> np.ndarray:
    """A rule for a segmenter: [3, S, S] normalised input -> [S, S], the red things."""
    return 1 / (1 + np.exp(-20 * (x[0] - x[1])))


def test_find_object_looks_again_around_a_small_object_in_a_wide_photo() -> None:
    """A 40 x 40 block in a 400 x 300 photo is under two pixels of the 16-px whole frame: the
    first look only says roughly where it is, the next ones frame it as training did."""
    img = _red_on_busy(size=(400, 300), box=(300, 60, 340, 100))
    seen = []

    def segment(x: np.ndarray) -> np.ndarray:
        seen.append(x)
        return _redder_than_green(x)

    _, info1 = images.find_object(img, SPEC, segment, passes=1)
    assert len(seen) == 1 and info1["mask_source"] == "segmenter"
    seen.clear()
    _, info3 = images.find_object(img, SPEC, segment)
    assert info3["mask_source"] == "segmenter" and 2 <= len(seen) <= images.SEGMENT_PASSES
    # the later looks were at the square around the block, which fills most of it
    assert (_redder_than_green(seen[-1]) > 0.5).mean() > 0.25
    # and the block's final frame is, within a pixel of the last look, the one an RGBA cut-out
    # of it gets; the first look alone framed it more than a pixel off
    cut = img.convert("RGBA")
    cut.putalpha(Image.fromarray(np.pad(np.full((40, 40), 255, np.uint8), ((60, 200), (300, 60)))))
    _, info_true = images.preprocess(cut, SPEC)
    box, side = np.array(info_true["crop_box"]), 56
    assert np.abs(np.array(info3["crop_box"]) - box).max() <= side / SPEC.size
    assert np.abs(np.array(info1["crop_box"]) - box).max() > side / SPEC.size


def test_find_object_asks_once_when_the_object_fills_the_frame() -> None:
    img = _red_on_busy(box=(20, 10, 100, 70))  # 80 x 60 in 120 x 80: its square is the frame's
    calls = []
    x, info = images.find_object(img, SPEC, lambda x: calls.append(x) or _redder_than_green(x))
    assert len(calls) == 1 and info["mask_source"] == "segmenter"
    # without a segmenter, or when it finds nothing: the whole frame, as preprocess gives it
    x0, info0 = images.preprocess(img, SPEC)
    for seg in (None, lambda x: np.zeros(x.shape[1:], np.float32)):
        x, info = images.find_object(img, SPEC, seg)
        assert info == info0 and np.array_equal(x, x0)


def test_find_object_checks_the_colour_rule_against_the_segmenter() -> None:
    """On a plain background the colour rule's mask stands when the segmenter agrees with it;
    when they disagree (a stripe the colour rule takes for the object), the segmenter's looks
    from the whole frame decide; when the segmenter then finds nothing, the colour rule's."""
    grey = Image.new("RGB", (200, 120), (190, 205, 205))  # greener than red: not the object
    grey.paste((230, 20, 20), (120, 30, 160, 90))  # the red object
    calls = []

    def segment(x: np.ndarray) -> np.ndarray:
        calls.append(x)
        return _redder_than_green(x)

    x0, info0 = images.preprocess(grey, SPEC)
    x, info = images.find_object(grey, SPEC, segment)
    assert info == info0 and np.array_equal(x, x0) and len(calls) == 1  # they agree
    striped = grey.copy()
    # a dark green stripe, wider than the object and thick enough to show in the framed masks
    striped.paste((40, 90, 40), (10, 100, 190, 110))
    _, stripe_info = images.preprocess(striped, SPEC)
    assert stripe_info["mask_source"] == "background"  # the colour rule frames stripe and object
    calls.clear()
    x, info = images.find_object(striped, SPEC, segment)
    assert info["mask_source"] == "segmenter" and len(calls) >= 2
    # framed as the red block alone is (its RGBA cut-out), within a pixel of the crop
    cut = grey.convert("RGBA")
    cut.putalpha(Image.fromarray(np.pad(np.full((60, 40), 255, np.uint8), ((30, 30), (120, 40)))))
    _, alone = images.preprocess(cut, SPEC)
    side = alone["crop_box"][2] - alone["crop_box"][0]
    assert np.abs(np.array(info["crop_box"]) - alone["crop_box"]).max() <= side / SPEC.size
    nothing = images.find_object(striped, SPEC, lambda x: np.zeros(x.shape[1:], np.float32))
    x1, stripe_x = nothing[0], images.preprocess(striped, SPEC)[0]
    assert nothing[1] == stripe_info and np.array_equal(x1, stripe_x)


def test_find_object_checks_a_wide_photo_without_a_canvas_of_its_crop() -> None:
    """The colour rule's crop of a wide photo is a square far past the photo (an object across
    11,313 x 1,414 pixels, within the size and aspect limits, frames to a 15,680-pixel side):
    checking it against the segmenter must not build that square at full resolution (PIL
    refused the 246-megapixel crop as a decompression bomb: a 500)."""
    wide = Image.new("RGB", (11313, 1414), "white")
    wide.paste((230, 20, 20), (10, 300, 11300, 1000))
    x, info = images.find_object(wide, SPEC, _redder_than_green)
    assert info["mask_source"] == "background" and x.shape == (3, SPEC.size, SPEC.size)


def test_reconstruct_cuts_a_busy_photo_out_with_the_bundles_segmenter(tmp_path: Path) -> None:
    plain, seg = tmp_path / "plain", tmp_path / "seg"
    make_tiny_bundle(plain)
    make_tiny_bundle(seg, segmenter=True)
    busy = _png(_red_on_busy())
    no_red = _png(Image.fromarray(np.asarray(_red_on_busy())[:, :40].copy()))
    answers = {}
    for name, bundle in (("plain", plain), ("seg", seg)):
        with TestClient(create_app(tiny_settings(bundle))) as c:
            for label, data in (("busy", busy), ("no_red", no_red), ("white", _png(_object_on()))):
                r = c.post("/v1/reconstruct", files={"image": ("p.png", data)},
                           data={"output": '{"format": "npy"}'})  # fmt: skip
                assert r.status_code == 200, r.text
                answers[name, label] = (r.headers["X-Gan3d-Mask"], r.headers["X-Gan3d-Latent"])
    assert answers["plain", "busy"][0] == "none"
    assert answers["seg", "busy"][0] == "segmenter"
    assert answers["seg", "busy"][1] != answers["plain", "busy"][1]
    assert answers["seg", "no_red"][0] == "none"  # nothing red: the whole frame, as without
    assert answers["seg", "no_red"][1] == answers["plain", "no_red"][1]
    # a plain background is found by its colour; the segmenter, asked to check it, finds no red
    # thing anywhere: the colour rule's answer stands
    assert answers["seg", "white"] == answers["plain", "white"]
    assert answers["seg", "white"][0] == "background"
