"""Networks: shapes and ranges, the paper preset's structure, BatchNorm in eval mode."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from training.engine.config import PRESETS, Stage
from training.models.networks import ModelConfig, build


@pytest.fixture
def tiny() -> ModelConfig:
    return PRESETS["tiny"].model


def test_output_shapes_and_ranges(tiny: ModelConfig) -> None:
    nets = build(tiny, seed=0)
    for n in nets.values():
        n.eval()
    z = torch.randn(3, tiny.z_dim)
    r, s = tiny.resolution, tiny.image_size
    with torch.no_grad():
        p = nets["G"].probabilities(z)
        assert p.shape == (3, 1, r, r, r) and p.min() >= 0 and p.max() <= 1
        assert nets["D"](p).shape == (3,)
        mu, logvar = nets["E"](torch.randn(3, 3, s, s))
        assert mu.shape == logvar.shape == (3, tiny.z_dim)
        mu, logvar = nets["V"](p)
        assert mu.shape == logvar.shape == (3, tiny.z_dim)


def test_paper_preset_is_the_paper() -> None:
    cfg = PRESETS["paper"]
    m = cfg.model
    assert (m.resolution, m.z_dim, m.g_widths) == (64, 200, (512, 256, 128, 64))
    assert cfg.batch_size == 100 and cfg.beta1 == 0.5 and cfg.d_acc_threshold == 0.8
    (stage,) = cfg.stages
    assert (stage.lr_g, stage.lr_d, stage.adversarial) == (0.0025, 1e-5, 1.0)
    g = build(m)["G"]
    convs = [c for c in g.modules() if isinstance(c, torch.nn.ConvTranspose3d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 1]
    assert all(c.kernel_size == (4, 4, 4) for c in convs)
    assert [c.stride for c in convs] == [(1, 1, 1)] + [(2, 2, 2)] * 4
    e_convs = [c for c in build(m)["E"].modules() if isinstance(c, torch.nn.Conv2d)]
    # one conv per level (no e_depth extras) + the head: at 128 px that is six layers, the
    # paper's five at 256 px with its 11x11 stride-4 first layer
    assert m.e_depth == 1 and len(e_convs) == len(m.e_widths) + 1


def test_deeper_image_encoder(tiny: ModelConfig) -> None:
    deep = dataclasses.replace(tiny, e_depth=2)
    e = build(deep)["E"]
    convs = [c for c in e.modules() if isinstance(c, torch.nn.Conv2d)]
    assert len(convs) == 1 + 2 * len(tiny.e_widths)  # a 3x3 conv after each downsampling
    mu, logvar = e(torch.randn(2, 3, tiny.image_size, tiny.image_size))
    assert mu.shape == logvar.shape == (2, tiny.z_dim)


def test_eval_mode_batchnorm_gives_distinct_shapes_per_z(tiny: ModelConfig) -> None:
    g = build(tiny, seed=0)["G"]
    g.train()
    with torch.no_grad():  # move the running statistics away from their initial values
        for _ in range(5):
            g(torch.randn(16, tiny.z_dim))
    g.eval()
    z = torch.randn(4, tiny.z_dim)
    with torch.no_grad():
        together = g.probabilities(z)
        alone = torch.cat([g.probabilities(z[i : i + 1]) for i in range(4)])
    # eval mode: a sample does not depend on the rest of its batch, and z matters
    assert torch.allclose(together, alone, atol=1e-5)
    assert (together[0] - together[1]).abs().max() > 1e-3


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="resolution must be"):
        ModelConfig(resolution=48)
    with pytest.raises(ValueError, match="e_depth"):
        ModelConfig(resolution=32, g_widths=(8, 8, 8), d_widths=(8, 8, 8), e_depth=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        Stage("x", 1, mode="encoder")
    with pytest.raises(ValueError, match="no adversarial term"):
        Stage("x", 1, adversarial=0.1, mode="image")
    with pytest.raises(ValueError, match="needs 3 G and D widths"):
        ModelConfig(resolution=32, g_widths=(8, 8), d_widths=(8, 8))
