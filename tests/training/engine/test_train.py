"""Training loop: the adaptive D rule, learning, exact resume, DDP with gloo."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.data.procedural import DATA_PRESETS, load_split
from training.data.procedural import build as build_data
from training.engine.checkpoint import load_networks
from training.engine.config import PRESETS, Stage
from training.engine.losses import discriminator_step, recon_loss, should_update_d
from training.engine.train import train
from training.models.networks import build, images_to_input


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "log.csv").open() as f:
        return list(csv.DictReader(f))


def test_adaptive_rule() -> None:
    assert should_update_d(0.5, 0.8) and should_update_d(0.79, 0.8)
    assert not should_update_d(0.8, 0.8) and not should_update_d(0.95, 0.8)


def test_discriminator_step_with_a_loss_scaler() -> None:
    """The CUDA path scales D's loss: a step where D does not update must not call the scaler's
    update (it raises with no inf check recorded) nor run D's backward pass."""
    torch.manual_seed(0)
    d = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam(d.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")  # enabled, as on CUDA
    before = [p.detach().clone() for p in d.parameters()]
    loss = d(torch.randn(8, 4)).pow(2).mean()
    assert not discriminator_step(opt, scaler, loss, accuracy=0.9, threshold=0.8)
    assert all(p.grad is None for p in d.parameters())
    assert all(torch.equal(a, p) for a, p in zip(before, d.parameters(), strict=True))
    loss = d(torch.randn(8, 4)).pow(2).mean()
    assert discriminator_step(opt, scaler, loss, accuracy=0.5, threshold=0.8)
    assert not any(torch.equal(a, p) for a, p in zip(before, d.parameters(), strict=True))


def _gan_only(threshold: float) -> object:
    cfg = PRESETS["tiny"]
    return dataclasses.replace(
        cfg,
        stages=(Stage("gan", 6, adversarial=0.1, lr_d=1e-2),),
        d_acc_threshold=threshold,
        log_every=1,
    )


def test_d_is_frozen_when_accuracy_is_above_threshold(tmp_path: Path, tiny_data_root: Path) -> None:
    ckpt = train(_gan_only(-1.0), run_dir=tmp_path / "never", data_root=tiny_data_root)
    assert all(r["d_updated"] == "0" for r in _rows(tmp_path / "never"))
    _, nets, _ = load_networks(ckpt)
    d0 = dict(build(PRESETS["tiny"].model, seed=0)["D"].named_parameters())
    # weights untouched (BatchNorm running statistics still move: they are buffers)
    assert all(torch.equal(d0[k], v) for k, v in nets["D"].named_parameters())
    train(_gan_only(1.01), run_dir=tmp_path / "always", data_root=tiny_data_root)
    assert all(r["d_updated"] == "1" for r in _rows(tmp_path / "always"))


def test_a_few_dozen_steps_lower_reconstruction(tmp_path: Path, tiny_data_root: Path) -> None:
    cfg = dataclasses.replace(PRESETS["tiny"], stages=(Stage("vae", 40, lr_g=3e-3, lr_e=3e-3),))
    train(cfg, run_dir=tmp_path, data_root=tiny_data_root)
    recon = [float(r["recon"]) for r in _rows(tmp_path)]
    assert sum(recon[-2:]) / 2 < 0.8 * sum(recon[:2]) / 2


def test_image_stage_fits_only_the_image_encoder(tmp_path: Path, tiny_data_root: Path) -> None:
    stages = (Stage("v", 30, lr_g=3e-3, mode="voxel"), Stage("i", 40, lr_e=3e-3, mode="image"))
    cfg = dataclasses.replace(PRESETS["tiny"], stages=stages, log_every=1)
    before = train(cfg, run_dir=tmp_path, data_root=tiny_data_root, stop_after=30)
    a = torch.load(before, weights_only=False)["nets"]
    shutil.copyfile(before, tmp_path / "before.pt")
    after = train(cfg, run_dir=tmp_path, data_root=tiny_data_root, resume=True)
    b = torch.load(after, weights_only=False)["nets"]
    # G and V frozen, BatchNorm running statistics included (they run in eval mode, as served)
    for k in ("G", "V", "D"):
        assert all(torch.equal(a[k][n], b[k][n]) for n in a[k]), k
    assert not all(torch.equal(a["E"][n], b["E"][n]) for n in a["E"])
    # voxel stages leave E out (no latent match); the image stage teaches E to reconstruct
    assert all(float(r["latent"]) == 0.0 for r in _rows(tmp_path) if r["stage"] == "v")
    split = load_split(build_data(DATA_PRESETS["tiny"], tiny_data_root), "train")
    vox = torch.from_numpy(split["voxels"][:, None]).float()
    img = images_to_input(torch.from_numpy(split["images"][:, 0]))

    def loss(path: Path) -> float:  # E's code decoded by the (frozen, eval-mode) G
        _, nets, _ = load_networks(path)
        with torch.no_grad():
            return float(recon_loss(nets["G"](nets["E"](img)[0]), vox, cfg.pos_weight))

    assert loss(after) < loss(tmp_path / "before.pt")


def test_a_stage_may_take_its_own_batch_size(
    tmp_path: Path, tiny_data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.engine.batches import Batches

    sizes: list[int] = []
    draw = Batches.batch

    def spy(self, rng, size):
        sizes.append(size)
        return draw(self, rng, size)

    monkeypatch.setattr(Batches, "batch", spy)
    stages = (Stage("v", 2, mode="voxel"), Stage("wide", 2, mode="voxel", batch_size=12))
    train(dataclasses.replace(PRESETS["tiny"], stages=stages), run_dir=tmp_path,
          data_root=tiny_data_root)  # fmt: skip
    assert sizes == [PRESETS["tiny"].batch_size] * 2 + [12] * 2
    with pytest.raises(ValueError, match="batch_size"):
        Stage("bad", 2, batch_size=-1)


def test_resume_continues_exactly(tmp_path: Path, tiny_data_root: Path) -> None:
    cfg = PRESETS["tiny"]
    full = train(cfg, run_dir=tmp_path / "full", data_root=tiny_data_root)
    part = train(cfg, run_dir=tmp_path / "part", data_root=tiny_data_root, stop_after=20)
    assert torch.load(part, weights_only=False)["step"] == 20
    # resuming with a different preset object still uses the checkpoint's own config
    other = dataclasses.replace(cfg, batch_size=2)
    part = train(other, run_dir=tmp_path / "part", data_root=tiny_data_root, resume=True)
    a_cfg, a, sa = load_networks(full)
    b_cfg, b, sb = load_networks(part)
    assert sb["step"] == sa["step"] == cfg.total_steps and a_cfg == b_cfg
    for k in a["G"].state_dict():
        assert torch.allclose(a["G"].state_dict()[k], b["G"].state_dict()[k], atol=1e-6), k
    steps = [int(r["step"]) for r in _rows(tmp_path / "part")]
    assert steps == sorted(steps) and steps[-1] == cfg.total_steps


def test_extend_appends_stages_like_a_fresh_run(tmp_path: Path, tiny_data_root: Path) -> None:
    from training.engine.config import Stage

    short = PRESETS["tiny"]
    longer = dataclasses.replace(short, stages=(*short.stages, Stage("more", 6, lr_g=1e-3)))
    fresh = train(longer, run_dir=tmp_path / "fresh", data_root=tiny_data_root)
    train(short, run_dir=tmp_path / "ext", data_root=tiny_data_root)
    ext = train(
        longer, run_dir=tmp_path / "ext", data_root=tiny_data_root, resume=True, extend=True
    )
    _, a, sa = load_networks(fresh)
    _, b, sb = load_networks(ext)
    assert sa["step"] == sb["step"] == longer.total_steps
    for k in a["G"].state_dict():
        assert torch.allclose(a["G"].state_dict()[k], b["G"].state_dict()[k], atol=1e-6), k
    other = dataclasses.replace(longer, batch_size=2)  # a changed setting is refused
    with pytest.raises(ValueError, match="--extend"):
        train(other, run_dir=tmp_path / "ext", data_root=tiny_data_root, resume=True, extend=True)


def test_two_process_gloo_ddp(tmp_path: Path, tiny_data_root: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29533",
        "-m",
        "training",
        "train",
        "--preset",
        "tiny",
        "--root",
        str(tiny_data_root),
        "--run-dir",
        str(tmp_path),
        "--stop-after",
        "4",
        "--device",
        "cpu",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 4


def test_colour_jitter_changes_colours_only_when_asked() -> None:
    from training.engine.batches import augment_images

    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    plain = augment_images(x, torch.Generator().manual_seed(1))
    # no jitter: the same draws and result as before jitter existed (earlier stages unchanged)
    assert torch.equal(plain, augment_images(x, torch.Generator().manual_seed(1), 0.0))
    jittered = augment_images(x, torch.Generator().manual_seed(1), 0.3)
    assert not torch.allclose(plain, jittered) and jittered.abs().max() <= 1


def test_a_stored_config_with_retired_switches_loads_when_they_are_off() -> None:
    from training.engine.config import TrainConfig

    stored = PRESETS["tiny"].to_dict()
    stored["stages"] = [
        {**s, "leave_self_out": False, "strong_augment": False} for s in stored["stages"]
    ]  # fmt: skip: as 3.10.1's manifest has them
    assert TrainConfig.from_dict(stored) == PRESETS["tiny"]
    stored["stages"][0]["strong_augment"] = True
    with pytest.raises(ValueError, match="strong_augment"):
        TrainConfig.from_dict(stored)


def test_a_stage_may_start_its_optimisers_afresh(tmp_path: Path, tiny_data_root: Path) -> None:
    def adam_steps(reset: bool) -> int:
        stages = (Stage("a", 6, lr_g=1e-3, mode="voxel"),
                  Stage("b", 3, lr_g=1e-3, mode="voxel", reset_optimisers=reset))  # fmt: skip
        cfg = dataclasses.replace(PRESETS["tiny"], stages=stages)
        ckpt = train(cfg, run_dir=tmp_path / str(reset), data_root=tiny_data_root)
        state = torch.load(ckpt, weights_only=False)
        steps = {float(s["step"]) for s in state["opt_g"]["state"].values()}
        assert len(steps) == 1
        return int(steps.pop())

    assert adam_steps(reset=False) == 9
    assert adam_steps(reset=True) == 3
