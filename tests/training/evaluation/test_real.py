"""Photo-like renders (pyrender on OSMesa) and the real-split evaluation protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from app.latents import fit_mixture, with_kernels
from app.meshing import count_parts, drop_small_parts
from training.data.photo import Photographer
from training.data.shapes import CATEGORY_NAMES
from training.evaluation.real import (
    evaluate_real,
    service_inputs,
    single_piece_share,
)
from training.models.judge import train_judge
from training.models.networks import ModelConfig, build

S = 32


def _scene() -> trimesh.Scene:
    box = trimesh.creation.box(extents=[1.6, 0.8, 0.8])
    box.visual.face_colors = [200, 40, 40, 255]
    return trimesh.Scene(box)


@pytest.fixture(scope="module")
def photographer():
    ph = Photographer(_scene(), size=S)
    yield ph
    ph.close()


def test_render_on_white_shows_the_object_and_its_colour(photographer) -> None:
    rgb, mask, kind = photographer.shoot(
        np.random.default_rng(0), [], background="white", own_materials=True
    )
    assert kind == "white" and rgb.shape == (S, S, 3) and rgb.dtype == np.uint8
    assert 0.05 < mask.mean() < 0.9  # the object fills part of the frame
    assert rgb[mask == 0].mean() > 220  # white around it
    obj = rgb[mask == 1].astype(float)
    assert obj[:, 0].mean() > obj[:, 1].mean() + 20  # its own red material


def test_photo_backgrounds_come_from_the_given_pool(photographer) -> None:
    photo = np.zeros((2 * S, 2 * S, 3), np.float32)
    photo[..., 2] = 1.0  # a blue "photograph"
    rgb, mask, kind = photographer.shoot(np.random.default_rng(1), [photo], background="photo")
    assert kind == "photo"
    around = rgb[mask == 0].astype(float)
    assert around[:, 2].mean() > 200 and around[:, 0].mean() < 40


def test_renders_differ_by_view_and_repeat_by_seed(photographer) -> None:
    a = photographer.shoot(np.random.default_rng(5), [], background="white")[0]
    b = photographer.shoot(np.random.default_rng(5), [], background="white")[0]
    c = photographer.shoot(np.random.default_rng(6), [], background="white")[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_clean_up_drops_small_fragments_only() -> None:
    p = np.zeros((16, 16, 16), np.float32)
    p[2:10, 2:10, 2:10] = 0.9  # main part: 512 voxels
    p[12:14, 12:14, 12:14] = 0.8  # a fragment: 8 voxels
    p[12:16, 2:8, 2:8] = 0.7  # a second large part: 144 voxels (28% of the main)
    out = drop_small_parts(p, 0.5, 0.2)
    assert count_parts(p >= 0.5) == 3 and count_parts(out >= 0.5) == 2
    assert out[13, 13, 13] == 0 and out[5, 5, 5] == np.float32(0.9)
    assert np.array_equal(drop_small_parts(p, 0.5, 0.0), p)
    share = single_piece_share(np.stack([p, out, p[:, :, :]]), 0.5)
    assert share["single_piece_raw"] == 0.0 and share["mean_parts_raw"] == pytest.approx(8 / 3)
    # the two large parts stay apart after the clean-up, as voxels and as meshes
    assert share["single_piece_after_cleanup"] == 0.0 and share["single_piece_mesh"] == 0.0
    joined = p.copy()
    joined[10:12, 4, 4] = 0.3  # a likely bridge (>= 0.5 x the threshold 0.5) to the second
    one = single_piece_share(joined[None], 0.5)
    assert one["single_piece_raw"] == 0.0 and one["single_piece_mesh"] == 1.0


def test_real_protocol_groups_renders_by_background() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(resolution=16, z_dim=8, g_widths=(16, 8), d_widths=(8, 16),
                      image_size=32, e_widths=(8, 16, 16))  # fmt: skip
    nets = {k: n.eval() for k, n in build(cfg, seed=0).items()}
    rng = np.random.default_rng(0)
    n, views = 6, 4
    vox = np.zeros((n, 16, 16, 16), np.uint8)
    for i in range(n):
        vox[i, 2 : 6 + i, 3:12, 4:10] = 1
        vox[i, 3, 12:15, 6] = 1  # a pole: thin (training/evaluation/thin.py)
    real = {
        "voxels": vox,
        "category": np.arange(n, dtype=np.int16) % 3,
        "images": rng.integers(0, 255, (n, views, 32, 32, 3), dtype=np.uint8),
        "background": np.array([["white", "plain", "photo", "photo"]] * n),
    }
    attrs = np.full((n, 13), np.nan, np.float32)
    judge = train_judge(vox, real["category"], attrs, steps=5)
    mu = rng.standard_normal((30, 8)).astype(np.float32)
    prior = fit_mixture(mu, np.arange(30) % 2, ["a", "b"])
    draws = 60  # prior samples (the evaluation's 1,000 mesh slowly from an untrained G)
    m = evaluate_real(
        real_test=real, nets=nets, judge=judge, prior=prior, threshold=0.5, samples=draws
    )
    assert m["source_real"] is None  # no real-model kernels, no "real" samples
    kernels = with_kernels(prior, mu[:4], ["chair"] * 4, bandwidth=0.3, weight=0.1)
    k = evaluate_real(
        real_test=real, nets=nets, judge=judge, prior=kernels, threshold=0.5,
        real_train_voxels=vox[:2], samples=draws,
    )  # fmt: skip
    src = k["source_real"]
    assert src["samples"]["samples"] == draws
    assert src["generation_vs_real_test"]["sets"] == draws // n
    assert 0 <= src["nearest_train_iou"] <= 1 and 0 < src["test_nearest_train_iou"] <= 1
    assert m["models"] == n and m["renders_per_model"] == views
    assert m["reconstruction"]["plain"]["renders"] == 2 * n
    assert m["reconstruction"]["photo"]["renders"] == 2 * n
    assert 0 <= m["mesh_round_trip_thin_part_recall"] <= 1
    assert set(m["mesh_round_trip_thin_part_recall_per_category"]) <= set(CATEGORY_NAMES)
    assert "mesh_round_trip_iou_pooled32" not in m  # 16^3: nothing to pool to
    for group in m["reconstruction"].values():
        assert 0 <= group["iou"] <= 1 and 0 <= group["category_accuracy"] <= 1
        assert 0 <= group["single_piece_mesh"] <= 1
    assert 0 <= m["mesh_round_trip_iou"] <= 1
    assert m["samples"]["samples"] == draws
    assert 0 <= m["generation_vs_real_test"]["one_nna"] <= 1


def test_service_inputs_match_the_training_normalisation() -> None:
    """A photo already framed like training renders goes through the upload path unchanged
    in size and scale: same shape, values in the normalised range, object centred."""
    img = np.full((1, 32, 32, 3), 255, np.uint8)
    img[0, 8:24, 6:26] = (40, 90, 160)
    x = service_inputs(img)
    assert x.shape == (1, 3, 32, 32) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    dark = x[0].mean(0) < 0.5
    ys, xs = np.nonzero(dark)
    assert abs(ys.mean() - 15.5) < 2 and abs(xs.mean() - 15.5) < 2


def test_a_photo_the_service_refuses_is_reported_not_a_crash() -> None:
    img = np.full((2, 32, 32, 3), 255, np.uint8)
    img[0, 8:24, 6:26] = (40, 90, 160)  # an object; the second photo is one flat colour
    refused: list[int] = []
    x = service_inputs(img, refused=refused)
    assert refused == [1] and not x[1].any() and x[0].any()


class _RedderThanGreen(torch.nn.Module):
    """A rule for a segmenter: the red things (network input -> mask logits)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 20 * (x[:, :1] - x[:, 1:2])


def test_wide_photos_are_looked_at_again_and_reported_both_ways() -> None:
    """A small red block in a 128-px busy photo: the evaluation frames it as the service does
    (several segmenter looks), which differs from one look, and reports both."""
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (2, 2, 128, 128, 3), dtype=np.uint8)
    wide[..., 0] = wide[..., 1] // 3
    wide[:, :, 90:104, 20:34] = (230, 20, 20)
    flat = wide.reshape(-1, 128, 128, 3)
    many = service_inputs(flat, _RedderThanGreen(), size=32)
    one = service_inputs(flat, _RedderThanGreen(), size=32, passes=1)
    assert many.shape == one.shape == (4, 3, 32, 32) and not np.allclose(many, one)
    # the block fills about TARGET_FILL of the final crop's side
    red = (many[0, 0] - many[0, 1]) > 0.5
    _, xs = np.nonzero(red)
    assert 0.55 < (xs.max() - xs.min() + 1) / 32 < 0.9
    torch.manual_seed(0)
    cfg = ModelConfig(resolution=16, z_dim=8, g_widths=(16, 8), d_widths=(8, 16),
                      image_size=32, e_widths=(8, 16, 16))  # fmt: skip
    nets = {k: n.eval() for k, n in build(cfg, seed=0).items()} | {"S": _RedderThanGreen()}
    vox = np.zeros((2, 16, 16, 16), np.uint8)
    vox[:, 2:10, 3:12, 4:10] = 1
    real = {
        "voxels": vox,
        "category": np.arange(2, dtype=np.int16),
        "images": rng.integers(0, 255, (2, 2, 32, 32, 3), dtype=np.uint8),
        "background": np.array([["white", "photo"]] * 2),
    }
    judge = train_judge(vox, real["category"], np.full((2, 13), np.nan, np.float32), steps=5)
    prior = fit_mixture(rng.standard_normal((30, 8)).astype(np.float32), np.arange(30) % 2,
                        ["a", "b"])  # fmt: skip
    m = evaluate_real(real_test=real, nets=nets, judge=judge, prior=prior, threshold=0.5,
                      wide=wide, samples=12)  # fmt: skip
    w = m["reconstruction"]["photo_wide"]
    assert w["renders"] == 4
    for key in ("iou", "iou_one_look", "category_accuracy", "category_accuracy_one_look"):
        assert 0 <= w[key] <= 1
