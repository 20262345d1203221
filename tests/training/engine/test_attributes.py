"""Tied attributes: counterfactual grids, the two terms, a tie stage, the re-encoded bank."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from training.data.procedural import DATA_PRESETS, attribute_names, load_split
from training.data.procedural import build as build_data
from training.data.shapes import CATEGORY_NAMES, category, make_shape
from training.engine import attributes
from training.engine.checkpoint import load_networks
from training.engine.config import PRESETS, Stage
from training.engine.train import train
from training.models import prototypes
from training.models.judge import BINARY, binary_targets

NAN = math.nan
Z = 32  # one latent dimension per binary attribute (25) and a few more


def test_counterfactuals_toggle_each_binary_attribute_of_each_shape(tiny_data_root: Path) -> None:
    folder = build_data(DATA_PRESETS["tiny"], tiny_data_root)
    cf = attributes.counterfactuals(folder, workers=1)
    split = load_split(folder, "train")
    assert cf["voxels"].shape == (len(split["voxels"]), attributes.SLOTS, 16, 16, 16)
    binary = binary_targets(split["attrs"], attribute_names())
    for i in (0, len(binary) - 1):
        cat = CATEGORY_NAMES[int(split["category"][i])]
        own = [a.name for a in category(cat).attributes if a.kind == "binary"]
        slots = cf["attribute"][i]
        assert [BINARY[j] for j in slots[slots >= 0]] == own
        assert (slots[len(own) :] == -1).all()
        name = own[0]
        toggled = make_shape(cat, int(split["seed"][i]),
                             **{name: 1.0 - binary[i, BINARY.index(name)]})  # fmt: skip
        assert np.array_equal(cf["voxels"][i, 0], toggled.voxels(16))
    again = attributes.counterfactuals(folder)  # from the cache
    assert np.array_equal(again["voxels"], cf["voxels"])
    assert not list(folder.glob("*.tmp*"))


def test_supervision_pulls_known_attribute_dimensions_to_their_targets() -> None:
    v = attributes.TIE_VALUE
    binary = torch.tensor([[1.0, 0.0, NAN], [NAN, NAN, NAN]])
    at_target = torch.zeros(2, 5)
    at_target[0, :2] = torch.tensor([v, -v])
    assert float(attributes.supervision_loss(at_target, binary)) == 0.0
    off = at_target.clone()
    off[0, 1] = 0.0
    assert float(attributes.supervision_loss(off, binary)) == v**2 / 2  # mean of (v^2, 0)
    off[1] = 9.0  # the unknown row and dimensions never count
    off[0, 2:] = 9.0
    assert float(attributes.supervision_loss(off, binary)) == v**2 / 2
    assert float(attributes.supervision_loss(off, torch.full((2, 3), NAN))) == 0.0


def test_toggle_sets_only_the_attribute_dimension_to_the_other_value() -> None:
    z = torch.arange(12.0).reshape(2, 6)
    binary = torch.tensor([[1.0, NAN], [NAN, 0.0]])
    out = attributes.toggle(z, torch.tensor([0, 1]), binary)
    assert out[0, 0] == -attributes.TIE_VALUE and out[1, 1] == attributes.TIE_VALUE
    keep = torch.ones_like(z, dtype=torch.bool)
    keep[0, 0] = keep[1, 1] = False
    assert torch.equal(out[keep], z[keep]) and z[0, 0] == 0.0  # z itself untouched


def test_difference_loss_counts_only_the_voxels_that_differ() -> None:
    original = torch.zeros(1, 1, 2, 2, 2)
    toggled = original.clone()
    toggled[0, 0, 0, 0, 0] = 1.0  # one voxel differs (an armrest, say)
    right = torch.full_like(original, -9.0)
    right[0, 0, 0, 0, 0] = 9.0
    low = float(attributes.difference_loss(right, toggled, original))
    wrong_elsewhere = right.clone()
    wrong_elsewhere[0, 0, 1] = 9.0  # voxels both shapes agree on: not this term's business
    assert float(attributes.difference_loss(wrong_elsewhere, toggled, original)) == low
    missed = right.clone()
    missed[0, 0, 0, 0, 0] = -9.0
    assert float(attributes.difference_loss(missed, toggled, original)) > 8.0 > 0.01 > low
    assert float(attributes.difference_loss(right, original, original)) == 0.0


def _tie_cfg(weight: float, *, prototypes_k: int = 0):
    tiny = PRESETS["tiny"]
    stages = (Stage("v", 40, lr_g=3e-3, lr_e=3e-3, mode="voxel", tie_attributes=weight),)
    if prototypes_k:
        stages = (Stage("v0", 20, lr_g=3e-3, mode="voxel"), Stage("p", 5, mode="prototype"),
                  *stages)  # fmt: skip
    return dataclasses.replace(
        tiny,
        model=dataclasses.replace(tiny.model, z_dim=Z, e_prototypes=prototypes_k),
        stages=stages,
        log_every=5,
    )


def test_only_attributes_several_categories_share_are_tied() -> None:
    assert [name for name, tied in zip(BINARY, attributes.TIED, strict=True) if tied] == [
        "has_armrests", "pedestal_base", "has_legs"]  # fmt: skip
    split_attrs = np.full((1, len(attribute_names())), 1.0, np.float32)
    binary = attributes.tied_binary(split_attrs)
    assert (binary[0, attributes.TIED] == 1.0).all() and np.isnan(binary[0, ~attributes.TIED]).all()


def test_tied_attributes_need_a_dimension_each() -> None:
    with pytest.raises(ValueError, match=f"z_dim >= {len(BINARY)}"):
        dataclasses.replace(PRESETS["tiny"], stages=(Stage("v", 5, tie_attributes=1.0),))
    with pytest.raises(ValueError, match="does not train V or G"):
        Stage("i", 5, mode="image", tie_attributes=1.0)


def _supervision(ckpt: Path, tiny_data_root: Path) -> float:
    split = load_split(build_data(DATA_PRESETS["tiny"], tiny_data_root), "train")
    _, nets, _ = load_networks(ckpt)
    with torch.no_grad():
        mu, _ = nets["V"](torch.from_numpy(split["voxels"][:, None]).float())
    binary = torch.from_numpy(attributes.tied_binary(split["attrs"]))  # as training reads them
    return float(attributes.supervision_loss(mu, binary))


def test_a_tie_stage_moves_the_codes_towards_the_attribute_targets(
    tmp_path: Path, tiny_data_root: Path
) -> None:
    tied = train(_tie_cfg(1.0), run_dir=tmp_path / "tied", data_root=tiny_data_root)
    plain = train(_tie_cfg(0.0), run_dir=tmp_path / "plain", data_root=tiny_data_root)
    with (tmp_path / "tied" / "log.csv").open() as f:
        ties = [float(r["tie"]) for r in csv.DictReader(f)]
    assert ties[0] > 0 and ties[-1] < ties[0]
    assert _supervision(tied, tiny_data_root) < 0.5 * _supervision(plain, tiny_data_root)


def test_a_stage_training_v_after_the_prototype_stages_re_encodes_the_bank(
    tmp_path: Path, tiny_data_root: Path
) -> None:
    cfg = _tie_cfg(1.0, prototypes_k=8)
    mid = train(cfg, run_dir=tmp_path, data_root=tiny_data_root, stop_after=25)
    bank_before = torch.load(mid, weights_only=False)["nets"]["E"]["proto.bank"].clone()
    end = train(cfg, run_dir=tmp_path, data_root=tiny_data_root, resume=True)
    _, nets, _ = load_networks(end)
    folder = build_data(DATA_PRESETS["tiny"], tiny_data_root)
    grids = torch.from_numpy(load_split(folder, "train")["voxels"])
    expected = prototypes.choose_bank(nets["V"], [grids], 8, cfg.seed, torch.device("cpu"))
    assert torch.allclose(nets["E"].proto.bank, expected, atol=1e-5)
    assert not torch.allclose(bank_before, expected, atol=1e-3)


def test_a_run_resumed_past_its_tie_stages_needs_no_counterfactual_grids(
    tmp_path: Path, tiny_data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Continuing a finished recipe (a longer prototype stage, on a machine that never built
    the counterfactual grids) must not make them: they serve tie stages alone."""
    cfg = _tie_cfg(1.0)
    cfg = dataclasses.replace(cfg, stages=(*cfg.stages, Stage("after", 5, mode="voxel")))
    train(cfg, run_dir=tmp_path, data_root=tiny_data_root, stop_after=40)

    def refuse(*args, **kwargs):
        raise AssertionError("counterfactual grids read after the tie stages")

    monkeypatch.setattr(attributes, "counterfactuals", refuse)
    done = train(cfg, run_dir=tmp_path, data_root=tiny_data_root, resume=True)
    assert torch.load(done, weights_only=False)["step"] == cfg.total_steps
