"""The 3D-VAE-GAN training loop, read as numbered steps.

    python -m training train --preset cpu [--resume] [--run-dir runs/cpu]
    torchrun --nproc-per-node 2 -m training train --preset cpu   # DDP: gloo on CPU, nccl on CUDA

:func:`train`: (1) the configuration (a resumed run's own, or an extension of it); (2) the data;
(3) networks and optimisers, restored when resuming; (4) the loop, one :func:`run_step` a step,
then the log and the checkpoint (config + step + optimiser state, so --resume is exact).

:func:`run_step` by the stage's mode (see Stage.mode): (1) a batch of voxels and one rendered
view per shape; then in joint and voxel stages (2) encode the voxels (V) and, in joint stages,
the image (E) to q(z); (3) decode the posteriors and, in adversarial stages, a prior sample with
G in one pass; (4) discriminator step, taken only while D's accuracy on this batch is below the
threshold (paper: 80%); (5) G/E/V step on a1 KL + a2 reconstruction + latent match +
adversarial loss. Image stages replace 2-5 with one step of E alone against the frozen G and V;
prototype stages with one step of E as a classifier over the prototype codes.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from training.data.procedural import DATA_PRESETS, build
from training.data.real_set import real_dataset_for
from training.engine import attributes
from training.engine.batches import Batches, augment_images
from training.engine.checkpoint import CHECKPOINT, load_state, save_checkpoint
from training.engine.config import Stage, TrainConfig
from training.engine.losses import discriminator_step, kl_divergence, recon_loss
from training.models import prototypes
from training.models.networks import build as build_networks
from training.models.networks import to_channels_last

log = logging.getLogger(__name__)
LOGVAR_MIN, LOGVAR_MAX = -8.0, 2.0
LOSSES = ("recon", "kl", "latent", "d_loss", "d_acc", "g_adv", "proto", "tie")
LOG_FIELDS = [
    "step",
    "stage",
    "recon",
    "kl",
    "latent",
    "d_loss",
    "d_acc",
    "d_updated",
    "g_adv",
    "proto",
    "tie",
    "seconds",
]


@dataclass
class Run:
    """What one training process holds while it trains."""

    cfg: TrainConfig
    nets: dict[str, nn.Module]  # G, D, E, V
    wrapped: dict[str, nn.Module]  # the same, each in DDP when several processes train
    optimisers: dict[str, torch.optim.Optimizer]  # opt_g, opt_e, opt_d and (a head) opt_p
    scaler_d: torch.amp.GradScaler
    scaler_g: torch.amp.GradScaler
    data: Batches
    dev: torch.device
    amp: bool  # mixed precision (CUDA)
    rank: int
    world: int
    targets: torch.Tensor | None = None  # prototype stages: each train shape's IoU with the bank


def train(
    cfg: TrainConfig,
    *,
    run_dir: Path,
    data_root: Path = Path("data"),
    resume: bool = False,
    extend: bool = False,
    device: str | None = None,
    stop_after: int | None = None,
) -> Path:
    """Train (or resume) a run; returns the checkpoint path. ``stop_after``: end early after
    this many steps in this call (tests, time-boxed sessions); the checkpoint allows resuming."""
    rank, world = _setup_distributed()
    dev = _pick_device(device, rank)
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT
    # 1. configuration
    cfg, state = _configuration(cfg, ckpt_path, resume=resume, extend=extend)
    # 2. data
    data = _data(cfg, data_root, state, rank=rank, world=world)
    # 3. networks and optimisers
    run = _networks(cfg, data, dev, rank=rank, world=world)
    step, seconds = 0, 0.0
    if state is not None:
        step, seconds = _restore(run, state)
        log.info("resumed %s at step %d", ckpt_path, step)
    # 4. the loop
    end = cfg.total_steps if stop_after is None else min(cfg.total_steps, step + stop_after)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = _open_log(run_dir / "log.csv") if rank == 0 else None
    writer = csv.DictWriter(log_file, LOG_FIELDS) if log_file else None
    if writer and step == 0:
        writer.writeheader()
    bar = tqdm(range(step, end), initial=0, desc=cfg.preset, disable=rank != 0)
    t_last = time.perf_counter()
    for step in bar:
        index, stage = cfg.stage_at(step)
        out = run_step(run, step, index, stage)
        now = time.perf_counter()
        seconds += now - t_last
        t_last = now
        done = step + 1
        if writer and (done % cfg.log_every == 0 or done == end):
            _log(writer, log_file, bar, done, stage, out, seconds)
        _after_step(run, stage, done, end, run_dir, seconds)
    if log_file:
        log_file.close()
    if world > 1:
        dist.barrier()
    return ckpt_path


def _configuration(
    cfg: TrainConfig, ckpt_path: Path, *, resume: bool, extend: bool
) -> tuple[TrainConfig, dict | None]:
    """-> (the config to train, the checkpoint's state when resuming). A resumed run continues
    with the config stored in its checkpoint; ``extend`` continues it with ``cfg`` instead,
    whose stages must begin with the stored ones (stages appended to a preset): per-step
    seeding makes that equal a fresh run of ``cfg``."""
    if not (resume and ckpt_path.is_file()):
        return cfg, None
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    stored = TrainConfig.from_dict(state["config"])
    if not extend:
        return stored, state
    if not cfg.extends(stored):
        raise ValueError(
            f"--extend: preset {cfg.preset!r} must keep the checkpoint's settings and begin "
            "with its stages"
        )
    return cfg, state


def _data(cfg: TrainConfig, data_root: Path, state: dict | None, *, rank: int, world: int):
    """The train split in memory: rank 0 builds the cache, the others wait and then find it
    cached; counterfactual grids only while a tie stage is still to come."""
    if rank == 0:
        build(DATA_PRESETS[cfg.data], data_root)
    if world > 1:
        dist.barrier()
    folder = build(DATA_PRESETS[cfg.data], data_root)
    real_folder = None
    if cfg.real_fraction > 0:
        real_folder = real_dataset_for(cfg, data_root, install=rank == 0)
    first = cfg.stage_at(state["step"])[0] if state is not None else 0
    ties = any(s.tie_attributes > 0 for s in cfg.stages[first:])
    return Batches(folder, real_folder, cfg.real_fraction, ties=ties)


def _networks(cfg: TrainConfig, data: Batches, dev: torch.device, *, rank: int, world: int) -> Run:
    """G, D, E, V on ``dev`` with their optimisers and gradient scalers."""
    nets = build_networks(cfg.model, seed=cfg.seed)
    for n in nets.values():
        n.to(dev).train()
    if dev.type == "cpu":  # 1-11% less a step on 2 cores (bench/train_memory_format.py)
        to_channels_last(nets)
    betas = (cfg.beta1, 0.999)
    e_params = [p for k, p in nets["E"].named_parameters() if not k.startswith("proto.")]
    optimisers = {
        "opt_g": torch.optim.Adam(nets["G"].parameters(), lr=1e-3, betas=betas),
        "opt_e": torch.optim.Adam([*e_params, *nets["V"].parameters()], lr=1e-3, betas=betas),
        "opt_d": torch.optim.Adam(nets["D"].parameters(), lr=1e-5, betas=betas),
    }
    if cfg.model.e_prototypes:  # prototype stages: E's trunk and prototype head
        optimisers["opt_p"] = torch.optim.Adam(nets["E"].parameters(), lr=1e-3, betas=betas)
    amp = dev.type == "cuda"
    return Run(
        cfg=cfg,
        nets=nets,
        wrapped={k: DDP(n) if world > 1 else n for k, n in nets.items()},
        optimisers=optimisers,
        scaler_d=torch.amp.GradScaler("cuda", enabled=amp),
        scaler_g=torch.amp.GradScaler("cuda", enabled=amp),
        data=data,
        dev=dev,
        amp=amp,
        rank=rank,
        world=world,
    )


def _restore(run: Run, state: dict) -> tuple[int, float]:
    """Weights and optimiser states from a checkpoint -> (its step, its seconds)."""
    for k, n in run.nets.items():
        load_state(n, state["nets"][k])
    for k, o in run.optimisers.items():
        if k in state:  # opt_p: absent from runs without a prototype head
            o.load_state_dict(state[k])
    return state["step"], state["seconds"]


def run_step(run: Run, step: int, index: int, stage: Stage) -> dict:
    """One training step of ``stage`` (the run's ``index``-th) -> its losses (tensors) and
    whether D stepped."""
    cfg = run.cfg
    if stage.reset_optimisers and step == cfg.stage_start(index):
        for k in ("opt_g", "opt_e"):
            run.optimisers[k].state.clear()
    # every optimiser the run has takes its rate from the stage (opt_p, E's trunk and head
    # in prototype stages, at lr_e: leaving one out once kept it at its construction rate)
    rates = {"opt_g": stage.lr_g, "opt_e": stage.lr_e, "opt_d": stage.lr_d, "opt_p": stage.lr_e}
    for k, o in run.optimisers.items():
        for group in o.param_groups:
            group["lr"] = rates[k]
    b = (stage.batch_size or cfg.batch_size) // run.world  # per-process batch
    rng = np.random.default_rng([cfg.seed, step, run.rank])
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    # 1. batch
    vox, img, rows, flip = run.data.batch(rng, b)
    img = augment_images(img, gen, stage.color_jitter)
    vox, img = vox.to(run.dev), img.to(run.dev)
    # 2-5. by the stage's mode
    if stage.mode == "prototype":
        out = _prototype_step(run, img, rows, flip)
    elif stage.mode == "image":
        out = _image_step(run, vox, img)
    else:
        out = _voxel_step(run, stage, vox, img, rows, flip, gen)
    for o in run.optimisers.values():
        o.zero_grad(set_to_none=True)
    run.scaler_g.scale(out["loss"]).backward()
    if stage.mode == "prototype":
        run.scaler_g.step(run.optimisers["opt_p"])
    else:
        if stage.mode != "image":
            run.scaler_g.step(run.optimisers["opt_g"])
        run.scaler_g.step(run.optimisers["opt_e"])
    run.scaler_g.update()
    return out


def _losses(dev: torch.device, **given: torch.Tensor | bool) -> dict:
    """Every logged loss (zero unless given), ``d_updated`` and the step's ``loss``."""
    return {k: torch.zeros((), device=dev) for k in LOSSES} | {"d_updated": False} | given


def _prototype_step(run: Run, img: torch.Tensor, rows: torch.Tensor, flip: torch.Tensor) -> dict:
    """2-5. E alone, as a classifier over the prototype bank (filled once, G and V frozen)."""
    nets, dev = run.nets, run.dev
    _set_frozen(nets, frozen=True)
    if run.targets is None:
        parts = [voxels for voxels, _ in run.data.parts]
        run.targets = prototypes.prepare(
            nets["E"], nets["G"], nets["V"], parts, seed=run.cfg.seed, dev=dev
        )
    with torch.autocast(dev.type, dtype=torch.float16, enabled=run.amp):
        logits = run.wrapped["E"](img, prototype_logits=True)
    iou = run.targets[rows, flip.long()].to(dev)
    proto = prototypes.soft_cross_entropy(logits, iou, run.cfg.proto_temperature)
    return _losses(dev, proto=proto, loss=proto)


def _image_step(run: Run, vox: torch.Tensor, img: torch.Tensor) -> dict:
    """2-5. E alone, fitted to the frozen G and V in eval mode (as the bundle serves them): the
    deterministic code mu_E decodes to the shape and lands near mu_V."""
    cfg, nets, dev = run.cfg, run.nets, run.dev
    _set_frozen(nets, frozen=True)
    with torch.no_grad(), torch.autocast(dev.type, dtype=torch.float16, enabled=run.amp):
        mu_v, _ = nets["V"](vox)
    with torch.autocast(dev.type, dtype=torch.float16, enabled=run.amp):
        mu_e, logvar_e = run.wrapped["E"](img)
        logvar_e = logvar_e.clamp(LOGVAR_MIN, LOGVAR_MAX)
        logit_e = nets["G"](mu_e)
    recon = recon_loss(logit_e, vox, cfg.pos_weight)
    kl = kl_divergence(mu_e.float(), logvar_e.float())
    latent = F.mse_loss(mu_e.float(), mu_v.float())
    loss = cfg.a2_recon * recon + cfg.a1_kl * kl + cfg.latent_match * latent
    return _losses(dev, recon=recon, kl=kl, latent=latent, loss=loss)


def _voxel_step(
    run: Run,
    stage: Stage,
    vox: torch.Tensor,
    img: torch.Tensor,
    rows: torch.Tensor,
    flip: torch.Tensor,
    gen: torch.Generator,
) -> dict:
    """2-5 of joint and voxel stages: encode, decode, D's step, then G/E/V's losses."""
    cfg, nets, dev, amp, world = run.cfg, run.nets, run.dev, run.amp, run.world
    G, D, E, V = (run.wrapped[k] for k in ("G", "D", "E", "V"))
    b = len(vox)
    d_loss = d_acc = g_adv = tie = torch.zeros((), device=dev)
    d_updated = False
    _set_frozen(nets, frozen=False)
    with_e = stage.mode == "joint"
    with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
        # 2. encode to q(z | voxels) and (joint stages) q(z | image)
        mu_v, logvar_v = V(vox)
        # bounded posterior variance: an exploding logvar turns z into noise and
        # destabilises the whole step (seen as KL spikes in early cpu runs)
        logvar_v = logvar_v.clamp(LOGVAR_MIN, LOGVAR_MAX)
        eps = torch.randn(3, b, cfg.model.z_dim, generator=gen).to(dev)
        zs = [mu_v + eps[0] * torch.exp(0.5 * logvar_v)]
        if with_e:
            mu_e, logvar_e = E(img)
            logvar_e = logvar_e.clamp(LOGVAR_MIN, LOGVAR_MAX)
            zs.append(mu_e + eps[1] * torch.exp(0.5 * logvar_e))
        # 3. decode the posteriors (and, when adversarial, a prior sample) in one pass
        use_gan = stage.adversarial > 0
        if use_gan:
            zs.append(eps[2])
        if stage.tie_attributes > 0:  # shapes with one attribute toggled (attributes.py)
            binary, cf_pos, cf_attr, cf_vox = (t.to(dev) for t in run.data.ties(rows, flip))
            zs.append(attributes.toggle(zs[0][cf_pos], cf_attr, binary[cf_pos]))
        logits = list(G(torch.cat(zs)).split([len(z) for z in zs]))
        logit_v = logits.pop(0)
        logit_e = logits.pop(0) if with_e else None
        logit_p = logits.pop(0) if use_gan else None
        logit_cf = logits.pop(0) if stage.tie_attributes > 0 else None
    if use_gan:
        # 4. discriminator on real vs prior samples; stepped only while accuracy < threshold
        fake = torch.sigmoid(logit_p.float()).detach()
        nets["D"].requires_grad_(True)  # frozen again for G's pass below
        with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
            out = D(torch.cat([vox, fake])).float()
        target = torch.cat([torch.ones(b, device=dev), torch.zeros(b, device=dev)])
        d_loss = F.binary_cross_entropy_with_logits(out, target)
        d_acc = ((out > 0).float() == target).float().mean()
        if world > 1:  # every rank decides alike
            dist.all_reduce(d_acc)
            d_acc /= world
        d_updated = discriminator_step(
            run.optimisers["opt_d"], run.scaler_d, d_loss, float(d_acc), cfg.d_acc_threshold,
            distributed=world > 1,
        )  # fmt: skip
    # 5. generator and encoders
    recon = recon_loss(logit_v, vox, cfg.pos_weight)
    kl = kl_divergence(mu_v.float(), logvar_v.float())
    latent = torch.zeros((), device=dev)
    if with_e:
        recon = recon + recon_loss(logit_e, vox, cfg.pos_weight)
        kl = kl + kl_divergence(mu_e.float(), logvar_e.float())
        latent = F.mse_loss(mu_e.float(), mu_v.float().detach())
    loss = cfg.a2_recon * recon + cfg.a1_kl * kl + cfg.latent_match * latent
    if logit_cf is not None:
        tie = attributes.supervision_loss(mu_v, binary)
        if len(cf_vox):
            tie = tie + recon_loss(logit_cf, cf_vox, cfg.pos_weight)
            tie = tie + attributes.difference_loss(logit_cf, cf_vox, vox[cf_pos])
        loss = loss + stage.tie_attributes * tie
    if use_gan:
        # D's weights get no gradient from G's loss (none would be used: opt_d stepped
        # above); under DDP they must, as DDP reduces every parameter's gradient
        nets["D"].requires_grad_(world > 1)
        with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
            # same batch composition as D's own step (real + fake): D has BatchNorm, and
            # a fake-only batch normalised by its own statistics fooled D for free
            g_out = D(torch.cat([vox, torch.sigmoid(logit_p)])).float()[b:]
        g_adv = F.binary_cross_entropy_with_logits(g_out, torch.ones(b, device=dev))
        loss = loss + stage.adversarial * g_adv
    return _losses(
        dev, recon=recon, kl=kl, latent=latent, d_loss=d_loss, d_acc=d_acc, g_adv=g_adv,
        tie=tie, d_updated=d_updated, loss=loss,
    )  # fmt: skip


def _log(writer, log_file, bar, done: int, stage: Stage, out: dict, seconds: float) -> None:
    """One CSV row of the step's losses, and the progress bar's summary."""
    row = {
        "step": done,
        "stage": stage.name,
        "d_updated": int(out["d_updated"]),
        "seconds": round(seconds, 2),
    } | {k: float(out[k].detach()) for k in LOSSES}
    writer.writerow(row)
    log_file.flush()
    bar.set_postfix(
        stage=stage.name,
        recon=f"{row['recon']:.4f}",
        d_acc=f"{row['d_acc']:.2f}",
        proto=f"{row['proto']:.3f}",
    )


def _after_step(run: Run, stage: Stage, done: int, end: int, run_dir: Path, seconds: float):
    """At a stage's end, the prototype bank re-encoded (G and V moved); the checkpoint every
    ``checkpoint_every`` steps, at the end and at each stage's end (kept as
    checkpoint-<stage>.pt, e.g. to compare VAE vs VAE-GAN)."""
    cfg, nets = run.cfg, run.nets
    stage_end = cfg.stage_at(done)[1] is not stage or done == cfg.total_steps
    if stage_end and stage.mode in ("joint", "voxel") and prototypes.has_prototypes(nets["E"]):
        _set_frozen(nets, frozen=True)
        prototypes.refill_bank(nets["E"], nets["V"], [v for v, _ in run.data.parts],
                               seed=cfg.seed, dev=run.dev)  # fmt: skip
        run.targets = None  # a later prototype stage recomputes them with the new G
    if run.rank == 0 and (done % cfg.checkpoint_every == 0 or done == end or stage_end):
        ckpt_path = run_dir / CHECKPOINT
        save_checkpoint(ckpt_path, cfg, nets, run.optimisers, done, seconds)
        if stage_end:
            shutil.copyfile(ckpt_path, run_dir / f"checkpoint-{stage.name}.pt")


def _setup_distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank() if world > 1 else 0), world


def _pick_device(device: str | None, rank: int) -> torch.device:
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", rank % torch.cuda.device_count())
    return torch.device("cpu")


def _open_log(path: Path):
    """The run's CSV log for appending; a log written before a column was added is rewritten
    with the current columns (old rows keep theirs, new ones are blank)."""
    if path.is_file():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames and reader.fieldnames != LOG_FIELDS:
                rows = list(reader)
                with path.open("w", newline="") as out:
                    w = csv.DictWriter(out, LOG_FIELDS)
                    w.writeheader()
                    w.writerows({k: r.get(k, "") for k in LOG_FIELDS} for r in rows)
    return path.open("a", newline="")


def _set_frozen(nets: dict[str, nn.Module], *, frozen: bool) -> None:
    """Image stages: G and V in eval mode (running BatchNorm statistics, as served) with no
    parameter gradients; other stages: everything trainable again."""
    for k in ("G", "V"):
        nets[k].train(not frozen)
        nets[k].requires_grad_(not frozen)
