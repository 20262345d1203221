"""The 3D-VAE-GAN training loop, read as numbered steps.

    python -m training train --preset cpu [--resume] [--run-dir runs/cpu]
    torchrun --nproc-per-node 2 -m training train --preset cpu   # DDP: gloo on CPU, nccl on CUDA

:func:`train`: (1) the configuration (a resumed run's own, or an extension of it); (2) the data;
(3) networks and optimisers, restored when resuming; (4) the loop, one :func:`run_step` a step,
then the log and the checkpoint (config + step + optimiser state, so --resume is exact).

:func:`run_step`, one step by the stage's mode, is training/engine/steps.py.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from training.data.procedural import DATA_PRESETS, build
from training.data.real_set import real_dataset_for
from training.engine.batches import Batches
from training.engine.checkpoint import CHECKPOINT, load_state, save_checkpoint
from training.engine.config import Stage, TrainConfig
from training.engine.steps import LOSSES, Run, run_step, set_frozen
from training.models import prototypes
from training.models.networks import build as build_networks
from training.models.networks import to_channels_last

log = logging.getLogger(__name__)
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
        set_frozen(nets, frozen=True)
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
