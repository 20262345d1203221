"""The object cut-out network (bundle role "segmenter"): a frame -> where the object is.

Why: on a plain background the service finds the object by its colour (app/images.py) and
frames it the way the encoder was trained. In a photograph it cannot, and the encoder must pick
the object out of the clutter itself. Measured on the real validation photographs (bundle
3.8.0): with the renders' true masks cutting the object out (an RGBA upload), IoU 0.327 ->
0.390 and category 65 -> 82%. This small U-Net learns those masks from the training renders,
which carry them (real and procedural, all their backgrounds); the service cuts out with it
whenever the colour rule finds no background (app/images.py, cut_out).

    python -m training segmenter --run-dir runs/cpu   # -> runs/cpu/segmenter.pt

Runs in the background like training: a checkpoint every CHECKPOINT_EVERY steps, resumed when
the command is run again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.data.procedural import DATA_PRESETS, build, load_split
from training.data.real_set import load_real, real_dataset_for
from training.data.real_sources import SH3D_ROOT
from training.engine.atomic import save_atomic
from training.engine.config import TrainConfig
from training.models.networks import images_to_input
from training.models.segmenter import Segmenter, SegmenterConfig

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 200  # steps
FILE = "segmenter.pt"
ZOOM_OUT = (0.25, 0.9)  # side of a zoomed-out object's frame, as a share of the input's
BACKGROUND_POOL = 600  # backgrounds drawn once for the zoomed-out samples
# their kinds: the busy ones (the service finds objects on white and plain ones by colour)
POOL_KINDS, POOL_SHARES = ("photo", "clutter", "gradient"), (0.5, 0.3, 0.2)


def _augment(x: torch.Tensor, m: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Mirror images, brightness/contrast/colour jitter and noise (the geometry stays)."""
    b = len(x)
    flip = torch.rand(b, generator=gen) < 0.5
    x, m = (
        torch.where(flip[:, None, None, None], x.flip(3), x),
        torch.where(flip[:, None, None, None], m.flip(3), m),
    )
    gain = 1 + 0.25 * (torch.rand(b, 3, 1, 1, generator=gen) * 2 - 1)
    shift = 0.2 * (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1)
    noise = torch.randn(x.shape, generator=gen) * 0.04 * torch.rand(b, 1, 1, 1, generator=gen)
    return (x * gain + shift + noise).clamp(-1, 1), m


def _zoom_out(
    x: torch.Tensor, m: torch.Tensor, pool: torch.Tensor, share: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``share`` of the batch shrunk to ZOOM_OUT of the side, placed anywhere on a
    background from ``pool`` [P, 3, S, S] (network input), cut out by its own mask."""
    x, m = x.clone(), m.clone()
    size = x.shape[-1]
    lo, hi = ZOOM_OUT
    for i in range(round(share * len(x))):
        t = max(4, round(size * (lo + (hi - lo) * torch.rand((), generator=gen).item())))
        ox, oy = (int(v) for v in torch.randint(size - t + 1, (2,), generator=gen))
        obj = F.interpolate(x[i : i + 1], size=(t, t), mode="area")[0]
        alpha = F.interpolate(m[i : i + 1], size=(t, t), mode="area")[0]
        bg = pool[int(torch.randint(len(pool), (), generator=gen))].clone()
        patch = bg[:, oy : oy + t, ox : ox + t]
        bg[:, oy : oy + t, ox : ox + t] = patch * (1 - alpha) + obj * alpha
        m[i] = 0
        m[i, :, oy : oy + t, ox : ox + t] = (alpha >= 0.5).float()
        x[i] = bg
    return x, m


def background_pool(size: int, textures: list[np.ndarray], seed: int) -> torch.Tensor:
    """BACKGROUND_POOL backgrounds [P, 3, S, S] as network input, drawn as the training renders
    draw theirs (training/data/photo.py), busy kinds only."""
    from training.data.photo import pick_background

    rng = np.random.default_rng([seed, 11])
    kinds = rng.choice(POOL_KINDS, BACKGROUND_POOL, p=POOL_SHARES)
    bgs = np.stack([pick_background(rng, size, textures, kind=str(k))[1] for k in kinds])
    return images_to_input(torch.from_numpy((bgs * 255 + 0.5).astype(np.uint8)))


def loss_fn(logits: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy + soft Dice (thin legs are few pixels; Dice keeps them counted)."""
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * m).sum((1, 2, 3)) + 1) / (p.sum((1, 2, 3)) + m.sum((1, 2, 3)) + 1)
    return F.binary_cross_entropy_with_logits(logits, m) + dice.mean()


@torch.no_grad()
def mask_iou(net: nn.Module, images: np.ndarray, masks: np.ndarray, batch: int = 128) -> float:
    """Mean IoU of the thresholded masks: images [N, S, S, 3] uint8, masks [N, S, S] {0, 1}."""
    net.eval()
    scores = []
    for i in range(0, len(images), batch):
        p = net(images_to_input(torch.from_numpy(images[i : i + batch])))[:, 0] > 0
        t = torch.from_numpy(masks[i : i + batch]).bool()
        scores.append(((p & t).sum((1, 2)) / (p | t).sum((1, 2)).clamp_min(1)).numpy())
    return float(np.concatenate(scores).mean())


def train_segmenter(
    cfg: SegmenterConfig,
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
    val: tuple[np.ndarray, np.ndarray],
    out: Path,
    *,
    stop_after: int | None = None,
    backgrounds: torch.Tensor | None = None,
) -> dict | None:
    """parts: {"procedural": (images [N, S, S, 3] uint8, masks [N, S, S]), "real"?: ...};
    backgrounds [P, 3, S, S] for the zoomed-out share (``cfg.zoom_out``; by default procedural)
    -> out/segmenter.pt holding the config, the weights and the validation mask IoU, and that
    summary; None when ``stop_after`` steps ended it early (run again to resume)."""
    torch.manual_seed(cfg.seed)
    net = Segmenter(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=cfg.lr * 0.05)
    ckpt, step, seconds = out / "segmenter-checkpoint.pt", 0, 0.0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        if state["config"] == asdict(cfg):
            net.load_state_dict(state["net"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            step, seconds = state["step"], state["seconds"]
            log.info("segmenter: resumed at step %d", step)
    if cfg.zoom_out > 0 and backgrounds is None:  # no texture pool: procedural backgrounds
        backgrounds = background_pool(cfg.size, [], cfg.seed)
    n_real = round(cfg.batch * cfg.real_fraction) if "real" in parts else 0
    sizes = {"real": n_real, "procedural": cfg.batch - n_real}
    t0 = time.perf_counter() - seconds
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    while step < end:
        # the batch of this step, drawn from (seed, step) so a resumed run draws the same
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        xs, ms = [], []
        for name, (images, masks) in parts.items():
            idx = torch.randint(len(images), (sizes[name],), generator=gen).numpy()
            xs.append(images_to_input(torch.from_numpy(images[idx])))
            ms.append(torch.from_numpy(masks[idx]).float()[:, None])
        x, m = torch.cat(xs), torch.cat(ms)
        if cfg.zoom_out > 0:
            x, m = _zoom_out(x, m, backgrounds, cfg.zoom_out, gen)
        x, m = _augment(x, m, gen)
        net.train()
        loss = loss_fn(net(x), m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if step % 50 == 0:
            log.info("segmenter step %d loss %.4f", step, loss.item())
        if step % CHECKPOINT_EVERY == 0 or step == end:
            save_atomic(
                {"config": asdict(cfg), "net": net.state_dict(), "opt": opt.state_dict(),
                 "sched": sched.state_dict(), "step": step,
                 "seconds": time.perf_counter() - t0},
                ckpt,
            )  # fmt: skip
    if step < cfg.steps:
        return None
    seconds = time.perf_counter() - t0
    result = {"val_mask_iou": mask_iou(net, *val), "train_seconds": round(seconds, 1)}
    save_atomic({"config": asdict(cfg), "net": net.state_dict(), **result}, out / FILE)
    log.info("segmenter: validation mask IoU %.3f after %.0f s", result["val_mask_iou"], seconds)
    return result


def train_for_run(
    checkpoint: Path,
    *,
    data_root: Path,
    steps: int | None = None,
    stop_after: int | None = None,
) -> dict | None:
    """A segmenter for the run of ``checkpoint``, from its datasets' train renders (real ones,
    when the run has them, make up ``real_fraction`` of each batch); validated on the real
    validation renders, or the procedural ones for a run without real models."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = TrainConfig.from_dict(state["config"])
    folder = build(DATA_PRESETS[cfg.data], data_root)

    def flat(split: dict) -> tuple[np.ndarray, np.ndarray]:  # [N, V, S, S, ...] -> [N * V, ...]
        return tuple(split[k].reshape(-1, *split[k].shape[2:]) for k in ("images", "masks"))

    parts = {"procedural": flat(load_split(folder, "train"))}
    val = flat(load_split(folder, "val"))
    if cfg.real_fraction > 0:
        real = real_dataset_for(cfg, data_root)
        parts["real"], val = flat(load_real(real, "train")), flat(load_real(real, "val"))
    seg_cfg = SegmenterConfig(size=cfg.model.image_size)
    if steps:
        seg_cfg = replace(seg_cfg, steps=steps)
    pool = None
    if seg_cfg.zoom_out > 0:  # the real train renders' textures, when the run has real models
        from training.data.photo import training_textures

        textures = (
            training_textures(sorted(SH3D_ROOT.glob("*.sh3f")), seg_cfg.size)
            if "real" in parts
            else []
        )
        pool = background_pool(seg_cfg.size, textures, seg_cfg.seed)
    return train_segmenter(
        seg_cfg, parts, val, Path(checkpoint).parent, stop_after=stop_after, backgrounds=pool
    )


def segmenter_summary(run_dir: Path) -> dict:
    """What the model card says of a run's segmenter: config, validation mask IoU, seconds."""
    state = torch.load(Path(run_dir) / FILE, weights_only=False)
    return {k: state[k] for k in ("config", "val_mask_iou", "train_seconds")}


def load_segmenter(run_dir: Path) -> Segmenter | None:
    """The run's trained segmenter (eval mode), or None when it has none."""
    path = Path(run_dir) / FILE
    if not path.exists():
        return None
    state = torch.load(path, weights_only=False)
    net = Segmenter(SegmenterConfig(**state["config"]))
    net.load_state_dict(state["net"])
    return net.eval()
