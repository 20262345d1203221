"""The 3D-VAE-GAN training loop, read as numbered steps.

    python -m training train --preset cpu [--resume] [--run-dir runs/cpu]
    torchrun --nproc-per-node 2 -m training train --preset cpu   # DDP: gloo on CPU, nccl on CUDA

Each step: (1) a batch of voxels and one rendered view per shape; (2) encode the voxels (V) and,
in joint stages, the image (E) to q(z); (3) decode the posteriors and, in adversarial stages,
a prior sample with G in one pass; (4) discriminator step, taken only while D's accuracy on
this batch is below the threshold (paper: 80%); (5) G/E/V step on a1 KL + a2 reconstruction +
latent match + adversarial loss; (6) CSV log, checkpoint (config + step + optimiser and RNG
state, so --resume is exact). Image stages replace 2-5 with one step of E alone against the
frozen G and V (see Stage.mode).
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from training.data.procedural import DATA_PRESETS, build, load_split
from training.data.real_set import load_real, real_dataset_for
from training.engine import attributes
from training.engine.checkpoint import CHECKPOINT, load_state, save_checkpoint
from training.engine.config import TrainConfig
from training.models import prototypes
from training.models.networks import build as build_networks
from training.models.networks import images_to_input, to_channels_last

log = logging.getLogger(__name__)
LOGVAR_MIN, LOGVAR_MAX = -8.0, 2.0
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


def should_update_d(accuracy: float, threshold: float) -> bool:
    """The paper's adaptive rule: step D only while its accuracy on the last batch < threshold."""
    return accuracy < threshold


def discriminator_step(
    opt_d: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    d_loss: torch.Tensor,
    accuracy: float,
    threshold: float,
    *,
    distributed: bool = False,
) -> bool:
    """Step D by the adaptive rule; returns whether it stepped. D's backward pass is skipped when
    it will not step (most steps of a trained D: 72% in the cpu preset's adversarial stage),
    except under DDP, where every rank must run the same backward passes. The scaler is updated
    only after a step: a GradScaler with no inf check recorded raises in ``update``."""
    update = should_update_d(accuracy, threshold)
    if update or distributed:
        opt_d.zero_grad(set_to_none=True)
        scaler.scale(d_loss).backward()
    if update:
        scaler.step(opt_d)
        scaler.update()
    return update


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q || N(0, I)) averaged over latent dims and batch. mu, logvar [B, Z] -> scalar."""
    return 0.5 * torch.mean(mu.pow(2) + logvar.exp() - 1.0 - logvar)


def recon_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Weighted BCE averaged over voxels. logits, target [B, 1, R, R, R]."""
    w = torch.tensor(pos_weight, device=logits.device, dtype=logits.dtype)
    return F.binary_cross_entropy_with_logits(logits.float(), target, pos_weight=w.float())


def augment_images(
    images: torch.Tensor, gen: torch.Generator, color_jitter: float = 0.0
) -> torch.Tensor:
    """Random zoom (80-100% of the frame) and shift, so E tolerates framing; with
    ``color_jitter`` j > 0 also brightness, contrast and saturation each scaled by U(1-j, 1+j),
    so E cannot tell models apart by their colours alone. [B, 3, S, S] in [-1, 1]."""
    b = images.shape[0]
    scale = 0.8 + 0.2 * torch.rand(b, generator=gen)
    shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * (1 - scale)[:, None]
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, padding_mode="border", align_corners=False)
    if color_jitter <= 0:
        return out
    bright, contrast, sat = 1 + (torch.rand(3, b, 1, 1, 1, generator=gen) * 2 - 1) * color_jitter
    x = (out + 1) / 2 * bright
    gray = x.mean(1, keepdim=True)
    x = gray + (x - gray) * sat
    x = x.mean((1, 2, 3), keepdim=True) + (x - x.mean((1, 2, 3), keepdim=True)) * contrast
    return x.clamp(0, 1) * 2 - 1


class _Data:
    """The train split held in memory as uint8 tensors; batches drawn by (seed, step, rank).
    With real models, a ``real_fraction`` of each batch comes from them (a few hundred real
    models beside thousands of procedural shapes would otherwise be a rounding error). With
    ``ties``, the procedural shapes' binary attributes and counterfactual grids too
    (training/engine/attributes.py)."""

    def __init__(
        self,
        folder: Path,
        real_folder: Path | None = None,
        real_fraction: float = 0.0,
        ties: bool = False,
    ):
        d = load_split(folder, "train")
        self.parts = [(torch.from_numpy(d["voxels"]), torch.from_numpy(d["images"]))]
        self.fractions = [1.0 - real_fraction]
        if ties:  # only the tied attributes (attributes.TIED); the others read as absent
            self.binary = torch.from_numpy(attributes.tied_binary(d["attrs"]))
            cf = attributes.counterfactuals(folder)
            tied = attributes.TIED[np.maximum(cf["attribute"], 0)] & (cf["attribute"] >= 0)
            self.cf_voxels = torch.from_numpy(cf["voxels"])  # [N, SLOTS, R, R, R] uint8
            # [N, SLOTS] index into BINARY, -1: empty or not tied
            self.cf_attribute = torch.from_numpy(np.where(tied, cf["attribute"], -1))
        if real_folder is not None and real_fraction > 0:
            r = load_real(real_folder, "train")
            self.parts.append((torch.from_numpy(r["voxels"]), torch.from_numpy(r["images"])))
            self.fractions = [1.0 - real_fraction, real_fraction]

    def batch(
        self, rng: np.random.Generator, size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> voxels [B, 1, R, R, R] float in {0, 1}, images [B, 3, S, S] (normalised), each
        sample's row in the parts concatenated [B] int64 and whether it is mirrored [B] bool."""
        counts = np.diff(np.round(np.cumsum([0.0, *self.fractions]) * size).astype(int))
        vox_parts, img_parts, row_parts, offset = [], [], [], 0
        for (voxels, images), k in zip(self.parts, counts, strict=True):
            idx = torch.from_numpy(rng.integers(0, len(voxels), k))
            view = torch.from_numpy(rng.integers(0, images.shape[1], k))
            vox_parts.append(voxels[idx].float()[:, None])  # [k, 1, R, R, R] in {0, 1}
            img_parts.append(images_to_input(images[idx, view]))
            row_parts.append(idx + offset)
            offset += len(voxels)
        vox, img = torch.cat(vox_parts), torch.cat(img_parts)
        # mirror augmentation: x -> -x in the world is a left-right flip of the photograph
        flip = torch.from_numpy(rng.random(size) < 0.5)
        vox[flip] = vox[flip].flip(2)
        img[flip] = img[flip].flip(3)
        return vox, img, torch.cat(row_parts), flip

    def ties(
        self, rows: torch.Tensor, flip: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """For a batch (``rows``, ``flip`` from :meth:`batch`) -> binary attributes [B, A] (NaN:
        not applicable or not tied, and for real models), then for every tied attribute of every
        procedural shape: its batch position [M], the attribute [M] and the shape with that
        attribute toggled [M, 1, R, R, R] (tied attributes only)."""
        proc = rows < len(self.binary)
        binary = torch.full((len(rows), self.binary.shape[1]), float("nan"))
        binary[proc] = self.binary[rows[proc]]
        slots = torch.full((len(rows), self.cf_attribute.shape[1]), -1, dtype=torch.int64)
        slots[proc] = self.cf_attribute[rows[proc]]
        pos, slot = torch.nonzero(slots >= 0, as_tuple=True)
        grids = self.cf_voxels[rows[pos], slot].float()[:, None]
        grids[flip[pos]] = grids[flip[pos]].flip(2)  # mirrored like the batch's own grids
        return binary, pos, slots[pos, slot], grids


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
    amp = dev.type == "cuda"
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT

    # 1. configuration: a resumed run continues with the config stored in its checkpoint;
    # ``extend`` continues it with ``cfg`` instead, whose stages must begin with the stored ones
    # (stages appended to a preset): per-step seeding makes that equal a fresh run of ``cfg``
    state = None
    if resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        stored = TrainConfig.from_dict(state["config"])
        if not extend:
            cfg = stored
        elif not cfg.extends(stored):
            raise ValueError(
                f"--extend: preset {cfg.preset!r} must keep the checkpoint's settings and begin "
                "with its stages"
            )
    # 2. data: rank 0 builds the cache, the others wait and then find it cached
    if rank == 0:
        build(DATA_PRESETS[cfg.data], data_root)
    if world > 1:
        dist.barrier()
    folder = build(DATA_PRESETS[cfg.data], data_root)
    real_folder = None
    if cfg.real_fraction > 0:
        real_folder = real_dataset_for(cfg, data_root, install=rank == 0)
    # counterfactual grids only while a tie stage is still to come (not for a run resumed past them)
    first = cfg.stage_at(state["step"])[0] if state is not None else 0
    ties = any(s.tie_attributes > 0 for s in cfg.stages[first:])
    data = _Data(folder, real_folder, cfg.real_fraction, ties=ties)
    # 3. networks and optimisers
    nets = build_networks(cfg.model, seed=cfg.seed)
    for n in nets.values():
        n.to(dev).train()
    if dev.type == "cpu":  # 1-11% less a step on 2 cores (bench/train_memory_format.py)
        to_channels_last(nets)
    opt_g = torch.optim.Adam(nets["G"].parameters(), lr=1e-3, betas=(cfg.beta1, 0.999))
    e_params = [p for k, p in nets["E"].named_parameters() if not k.startswith("proto.")]
    opt_e = torch.optim.Adam(
        [*e_params, *nets["V"].parameters()], lr=1e-3, betas=(cfg.beta1, 0.999)
    )
    opt_d = torch.optim.Adam(nets["D"].parameters(), lr=1e-5, betas=(cfg.beta1, 0.999))
    # prototype stages: E's trunk and prototype head (training/models/prototypes.py)
    opt_p = None
    if cfg.model.e_prototypes:
        opt_p = torch.optim.Adam(nets["E"].parameters(), lr=1e-3, betas=(cfg.beta1, 0.999))
    optimisers = {"opt_g": opt_g, "opt_e": opt_e, "opt_d": opt_d, "opt_p": opt_p}
    optimisers = {k: o for k, o in optimisers.items() if o is not None}
    step, seconds = 0, 0.0
    if state is not None:
        for k, n in nets.items():
            load_state(n, state["nets"][k])
        for k, o in optimisers.items():
            if k in state:  # opt_p: absent from runs without a prototype head
                o.load_state_dict(state[k])
        step, seconds = state["step"], state["seconds"]
        log.info("resumed %s at step %d", ckpt_path, step)
    wrapped = {k: DDP(n) if world > 1 else n for k, n in nets.items()}
    G, D, E, V = wrapped["G"], wrapped["D"], wrapped["E"], wrapped["V"]
    scaler_d = torch.amp.GradScaler("cuda", enabled=amp)
    scaler_g = torch.amp.GradScaler("cuda", enabled=amp)
    end = cfg.total_steps if stop_after is None else min(cfg.total_steps, step + stop_after)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = _open_log(run_dir / "log.csv") if rank == 0 else None
    writer = csv.DictWriter(log_file, LOG_FIELDS) if log_file else None
    targets = None  # prototype stages: IoU of each train shape with each prototype
    if writer and step == 0:
        writer.writeheader()
    bar = tqdm(range(step, end), initial=0, desc=cfg.preset, disable=rank != 0)
    t_last = time.perf_counter()

    for step in bar:
        index, stage = cfg.stage_at(step)
        if stage.reset_optimisers and step == cfg.stage_start(index):
            for o in (opt_g, opt_e):
                o.state.clear()
        # every optimiser the run has takes its rate from the stage (opt_p, E's trunk and head
        # in prototype stages, at lr_e: leaving one out once kept it at its construction rate)
        rates = {"opt_g": stage.lr_g, "opt_e": stage.lr_e, "opt_d": stage.lr_d, "opt_p": stage.lr_e}
        for k, o in optimisers.items():
            for group in o.param_groups:
                group["lr"] = rates[k]
        b = (stage.batch_size or cfg.batch_size) // world  # per-process batch
        rng = np.random.default_rng([cfg.seed, step, rank])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        # 1. batch
        vox, img, rows, flip = data.batch(rng, b)
        img = augment_images(img, gen, stage.color_jitter)
        vox, img = vox.to(dev), img.to(dev)
        d_loss = d_acc = g_adv = proto = tie = torch.zeros((), device=dev)
        d_updated = False
        if stage.mode == "prototype":
            # 2-5. E alone, as a classifier over the prototype bank (filled once, G and V frozen)
            _set_frozen(nets, frozen=True)
            if targets is None:
                parts = [voxels for voxels, _ in data.parts]
                targets = prototypes.prepare(
                    nets["E"], nets["G"], nets["V"], parts, seed=cfg.seed, dev=dev
                )
            with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                logits = E(img, prototype_logits=True)
            iou = targets[rows, flip.long()].to(dev)
            proto = prototypes.soft_cross_entropy(logits, iou, cfg.proto_temperature)
            recon = kl = latent = torch.zeros((), device=dev)
            loss = proto
        elif stage.mode == "image":
            # 2-5. E alone, fitted to the frozen G and V in eval mode (as the bundle serves them):
            # the deterministic code mu_E decodes to the shape and lands near mu_V
            _set_frozen(nets, frozen=True)
            with torch.no_grad(), torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                mu_v, _ = nets["V"](vox)
            with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                mu_e, logvar_e = E(img)
                logvar_e = logvar_e.clamp(LOGVAR_MIN, LOGVAR_MAX)
                logit_e = nets["G"](mu_e)
            recon = recon_loss(logit_e, vox, cfg.pos_weight)
            kl = kl_divergence(mu_e.float(), logvar_e.float())
            latent = F.mse_loss(mu_e.float(), mu_v.float())
            loss = cfg.a2_recon * recon + cfg.a1_kl * kl + cfg.latent_match * latent
        else:
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
                    binary, cf_pos, cf_attr, cf_vox = (t.to(dev) for t in data.ties(rows, flip))
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
                    opt_d, scaler_d, d_loss, float(d_acc), cfg.d_acc_threshold,
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
        for o in optimisers.values():
            o.zero_grad(set_to_none=True)
        scaler_g.scale(loss).backward()
        if stage.mode == "prototype":
            scaler_g.step(opt_p)
        else:
            if stage.mode != "image":
                scaler_g.step(opt_g)
            scaler_g.step(opt_e)
        scaler_g.update()
        # 6. log and checkpoint
        now = time.perf_counter()
        seconds += now - t_last
        t_last = now
        done = step + 1
        if writer and (done % cfg.log_every == 0 or done == end):
            row = {
                "step": done,
                "stage": stage.name,
                "d_updated": int(d_updated),
                "seconds": round(seconds, 2),
            } | {
                k: float(v.detach())
                for k, v in (
                    ("recon", recon),
                    ("kl", kl),
                    ("latent", latent),
                    ("d_loss", d_loss),
                    ("d_acc", d_acc),
                    ("g_adv", g_adv),
                    ("proto", proto),
                    ("tie", tie),
                )
            }
            writer.writerow(row)
            log_file.flush()
            bar.set_postfix(
                stage=stage.name,
                recon=f"{row['recon']:.4f}",
                d_acc=f"{row['d_acc']:.2f}",
                proto=f"{row['proto']:.3f}",
            )
        stage_end = cfg.stage_at(done)[1] is not stage or done == cfg.total_steps
        if stage_end and stage.mode in ("joint", "voxel") and prototypes.has_prototypes(nets["E"]):
            # G and V moved after the bank was filled: re-encode the same shapes with the new V
            _set_frozen(nets, frozen=True)
            prototypes.refill_bank(nets["E"], nets["V"], [v for v, _ in data.parts],
                                   seed=cfg.seed, dev=dev)  # fmt: skip
            targets = None  # a later prototype stage recomputes them with the new G
        if rank == 0 and (done % cfg.checkpoint_every == 0 or done == end or stage_end):
            save_checkpoint(ckpt_path, cfg, nets, optimisers, done, seconds)
            if stage_end:  # keep each stage's result (e.g. to compare VAE vs VAE-GAN)
                shutil.copyfile(ckpt_path, run_dir / f"checkpoint-{stage.name}.pt")
    if log_file:
        log_file.close()
    if world > 1:
        dist.barrier()
    return ckpt_path


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
