"""Prototype answers for the image encoder: the bank, the targets, the stage, extending a run."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from training.data.procedural import DATA_PRESETS, load_split
from training.data.procedural import build as build_data
from training.engine.checkpoint import load_networks
from training.engine.config import PRESETS, Stage
from training.engine.train import LOG_FIELDS, _open_log, train
from training.models import prototypes
from training.models.networks import ModelConfig, build, images_to_input

K = 8


def _proto_cfg(steps: int = 20, *, voxel_steps: int = 60):
    tiny = PRESETS["tiny"]
    return dataclasses.replace(
        tiny,
        model=dataclasses.replace(tiny.model, e_prototypes=K),
        stages=(
            Stage("v", voxel_steps, lr_g=3e-3, lr_e=3e-3, mode="voxel"),
            Stage("p", steps, lr_e=3e-3, mode="prototype"),
        ),
        log_every=5,
    )


class _LookupG(nn.Module):
    """A stand-in generator: the code is the grid's logits, so prototypes decode to set grids."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(len(z), 1, 2, 2, 2)


def test_targets_are_the_iou_with_each_decoded_prototype() -> None:
    grids = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0]], dtype=torch.float32)
    bank = grids * 20 - 10  # logits: sigmoid > 0.5 exactly where the grid is set
    shape = torch.zeros(1, 2, 2, 2, dtype=torch.uint8)
    shape[0, 0, 0, :] = 1  # cells 0 and 1 of the flattened grid
    iou = prototypes.shape_targets(_LookupG(), bank, [shape], torch.device("cpu"))
    assert iou.shape == (1, 2, 2)
    assert torch.allclose(iou[0, 0].float(), torch.tensor([1.0, 0.5]))
    # mirrored along x (the first axis): the shape moves to cells 4 and 5, matching neither
    assert torch.allclose(iou[0, 1].float(), torch.tensor([0.0, 0.0]))


def test_soft_cross_entropy_is_least_at_the_soft_label() -> None:
    iou = torch.tensor([[0.9, 0.5, 0.1]])
    label = torch.softmax(iou / 0.05, 1)
    at_label = prototypes.soft_cross_entropy(label.log(), iou, 0.05)
    for other in (torch.zeros(1, 3), torch.tensor([[0.0, 5.0, 0.0]])):
        assert at_label < prototypes.soft_cross_entropy(other, iou, 0.05)


def test_bank_takes_real_models_and_their_mirror_images_first() -> None:
    nets = build(
        ModelConfig(
            resolution=16,
            z_dim=4,
            g_widths=(8, 8),
            d_widths=(8, 8),
            image_size=32,
            e_widths=(8, 8, 8),
        )
    )
    v = nets["V"].eval()
    gen = torch.Generator().manual_seed(0)
    procedural = (torch.rand(6, 16, 16, 16, generator=gen) > 0.5).to(torch.uint8)
    real = (torch.rand(2, 16, 16, 16, generator=gen) > 0.5).to(torch.uint8)
    with torch.no_grad():
        bank = prototypes.choose_bank(v, [procedural, real], 5, seed=0, dev=torch.device("cpu"))
        expect = v(torch.cat([real, real.flip(1)]).float()[:, None])[0]
    assert bank.shape == (5, 4)
    assert torch.allclose(bank[:4], expect, atol=1e-5)
    with pytest.raises(ValueError, match="e_prototypes=9"):
        prototypes.choose_bank(v, [procedural[:3], real], 9, seed=0, dev=torch.device("cpu"))


def test_prototype_stage_fits_only_e_and_answers_with_a_blend_of_the_bank(
    tmp_path: Path, tiny_data_root: Path
) -> None:
    cfg = _proto_cfg()
    before = train(cfg, run_dir=tmp_path, data_root=tiny_data_root, stop_after=60)
    a = torch.load(before, weights_only=False)["nets"]
    assert not a["E"]["proto.ready"]
    after = train(cfg, run_dir=tmp_path, data_root=tiny_data_root, resume=True)
    b = torch.load(after, weights_only=False)["nets"]
    for k in ("G", "V", "D"):
        assert all(torch.equal(a[k][n], b[k][n]) for n in a[k]), k
    assert b["E"]["proto.ready"] == 1 and b["E"]["proto.bank"].abs().sum() > 0
    with (tmp_path / "log.csv").open() as f:
        losses = [float(r["proto"]) for r in csv.DictReader(f) if r["stage"] == "p"]
    assert losses[-1] < losses[0]
    # served answer: the softmax-weighted mean of the bank, and a log spread for logvar
    _, nets, _ = load_networks(after)
    split = load_split(build_data(DATA_PRESETS["tiny"], tiny_data_root), "train")
    img = images_to_input(torch.from_numpy(split["images"][:4, 0]))
    e = nets["E"]
    with torch.no_grad():
        mu, logvar = e(img)
        p = torch.softmax(e(img, prototype_logits=True), 1)
    assert torch.allclose(mu, p @ e.proto.bank, atol=1e-5)
    assert torch.isfinite(logvar).all()


def test_a_prototype_stage_steps_at_its_own_learning_rate(
    tmp_path: Path, tiny_data_root: Path
) -> None:
    """opt_p (E's trunk and head) once kept its construction rate, 1e-3, whatever lr_e a
    prototype stage named: a stage at rate 0 must leave E's weights as they were, where the
    same stage at its usual rate moves them."""
    cfg = _proto_cfg(steps=5)
    weights = [n for n, _ in build(cfg.model, seed=0)["E"].named_parameters()]
    moved = {}
    for lr in (0.0, cfg.stages[1].lr_e):
        run = dataclasses.replace(
            cfg, stages=(cfg.stages[0], dataclasses.replace(cfg.stages[1], lr_e=lr))
        )
        d = tmp_path / str(lr)
        voxel = train(run, run_dir=d, data_root=tiny_data_root, stop_after=60)
        before = torch.load(voxel, weights_only=False)["nets"]["E"]
        after = torch.load(
            train(run, run_dir=d, data_root=tiny_data_root, resume=True), weights_only=False
        )["nets"]["E"]
        moved[lr] = [n for n in weights if not torch.equal(before[n], after[n])]
    assert moved[0.0] == [] and moved[cfg.stages[1].lr_e]


def test_a_prototype_stage_needs_a_head() -> None:
    tiny = PRESETS["tiny"]
    with pytest.raises(ValueError, match="e_prototypes"):
        dataclasses.replace(tiny, stages=(Stage("p", 5, mode="prototype"),))
    with pytest.raises(ValueError, match="adversarial"):
        Stage("p", 5, adversarial=0.1, mode="prototype")


def test_a_run_without_a_head_extends_with_one_like_a_fresh_run(
    tmp_path: Path, tiny_data_root: Path
) -> None:
    longer = _proto_cfg(steps=10, voxel_steps=40)
    short = dataclasses.replace(
        longer,
        model=dataclasses.replace(longer.model, e_prototypes=0),
        stages=longer.stages[:1],
    )
    fresh = train(longer, run_dir=tmp_path / "fresh", data_root=tiny_data_root)
    train(short, run_dir=tmp_path / "ext", data_root=tiny_data_root)
    ext = train(
        longer, run_dir=tmp_path / "ext", data_root=tiny_data_root, resume=True, extend=True
    )
    _, a, _ = load_networks(fresh)
    _, b, _ = load_networks(ext)
    for k in ("G", "V", "E"):
        sa, sb = a[k].state_dict(), b[k].state_dict()
        assert all(torch.allclose(sa[n].float(), sb[n].float(), atol=1e-5) for n in sa), k


def test_a_log_from_before_a_new_column_is_rewritten_with_it(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    old = [f for f in LOG_FIELDS if f != "proto"]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, old)
        w.writeheader()
        w.writerow({k: "1" for k in old})
    _open_log(path).close()
    with path.open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == LOG_FIELDS
    assert rows == [{k: "" if k == "proto" else "1" for k in LOG_FIELDS}]


def test_bank_categories_follow_the_bank_layout() -> None:
    procedural = torch.arange(6) % 3  # categories 0, 1, 2
    real = torch.tensor([5, 7])
    cats = prototypes.bank_categories([procedural.numpy(), real.numpy()], 7, seed=3)
    order = prototypes._procedural_order(6, 3)
    assert cats.tolist() == [5, 7, 5, 7, *procedural[order[:3]].tolist()]


def test_the_guess_and_the_hinted_answer_come_from_the_logits() -> None:
    from app.prototypes import BLEND_TEMPERATURE
    from training.data.shapes import CATEGORY_NAMES
    from training.evaluation.common import category_mass, every_codes, hinted_codes
    from training.models.prototypes import answer_logits

    cfg = ModelConfig(resolution=16, z_dim=4, g_widths=(8, 8), d_widths=(8, 8), image_size=32,
                      e_widths=(8, 8, 8), e_prototypes=K)  # fmt: skip
    e = build(cfg)["E"].eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        e.proto.bank.copy_(torch.randn(K, 4, generator=gen))
        e.proto.weight.copy_(torch.randn(K, 8, generator=gen))
        e.proto.ready.fill_(1)
    x = torch.randn(3, 3, 32, 32, generator=gen).numpy()
    cats = torch.arange(K).numpy() % 3
    with torch.no_grad():
        t = torch.from_numpy(x)
        served = answer_logits(e, t)
        # the served logits: the image's and its mirror image's, averaged, so a photo and its
        # mirror image get the same answer
        both = (e(t, prototype_logits=True) + e(t.flip(3), prototype_logits=True)) / 2
        assert torch.allclose(served, both) and torch.allclose(served, answer_logits(e, t.flip(3)))
        assert not torch.allclose(served, e(t, prototype_logits=True), atol=1e-3)
        p = torch.softmax(served, 1)
    mass = category_mass(e, x, cats, 3)
    assert mass.shape == (3, 3) and torch.allclose(
        torch.from_numpy(mass).sum(1).double(), torch.ones(3, dtype=torch.float64)
    )
    assert abs(mass[0, 1] - p[0, cats == 1].sum().item()) < 1e-5
    # the hinted answer blends the category's codes at the service's temperature
    got = hinted_codes(e, x, cats, [CATEGORY_NAMES[2]] * 3)
    w = torch.softmax(served[:, cats == 2] / BLEND_TEMPERATURE, 1)
    assert torch.allclose(torch.from_numpy(got), w @ e.proto.bank[cats == 2], atol=1e-5)
    # category=any: every code by the encoder's own softmax
    every = every_codes(e, x, cats)
    assert torch.allclose(torch.from_numpy(every), p @ e.proto.bank, atol=1e-5)
