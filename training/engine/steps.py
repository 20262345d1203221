"""One training step by the stage's mode (Stage.mode), on what a training process holds
(:class:`Run`). :func:`run_step`: (1) a batch of voxels and one rendered view per shape; then
in joint and voxel stages (2) encode the voxels (V) and, in joint stages, the image (E) to
q(z); (3) decode the posteriors and, in adversarial stages, a prior sample with G in one pass;
(4) discriminator step, taken only while D's accuracy on this batch is below the threshold
(paper: 80%); (5) G/E/V step on a1 KL + a2 reconstruction + latent match + adversarial loss.
Image stages replace 2-5 with one step of E alone against the frozen G and V; prototype
stages with one step of E as a classifier over the prototype codes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from training.engine import attributes
from training.engine.batches import Batches, augment_images
from training.engine.config import Stage, TrainConfig
from training.engine.losses import discriminator_step, kl_divergence, recon_loss
from training.models import prototypes

LOGVAR_MIN, LOGVAR_MAX = -8.0, 2.0
LOSSES = ("recon", "kl", "latent", "d_loss", "d_acc", "g_adv", "proto", "tie")


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
    set_frozen(nets, frozen=True)
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
    set_frozen(nets, frozen=True)
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
    set_frozen(nets, frozen=False)
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


def set_frozen(nets: dict[str, nn.Module], *, frozen: bool) -> None:
    """Image stages: G and V in eval mode (running BatchNorm statistics, as served) with no
    parameter gradients; other stages: everything trainable again."""
    for k in ("G", "V"):
        nets[k].train(not frozen)
        nets[k].requires_grad_(not frozen)
