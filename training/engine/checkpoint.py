"""Checkpoints: written atomically, carrying the config that rebuilds the networks."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch
from torch import nn

from training.engine.atomic import save_atomic
from training.engine.config import TrainConfig
from training.engine.segmenter import load_segmenter
from training.models.networks import build as build_networks

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(
    path: Path,
    cfg: TrainConfig,
    nets: dict[str, nn.Module],
    optimisers: dict[str, torch.optim.Optimizer],
    step: int,
    seconds: float,
) -> None:
    save_atomic(
        {
            "config": cfg.to_dict(),
            "step": step,
            "seconds": seconds,
            "nets": {k: n.state_dict() for k, n in nets.items()},
            **{k: o.state_dict() for k, o in optimisers.items()},
            "torch": torch.__version__,
            "hardware": hardware(),
        },
        path,
    )


def load_state(net: nn.Module, state: dict) -> None:
    """Load a network's weights; only a prototype head may be missing (a run extended with one
    starts it at zero, exactly as a fresh run would have it before its first prototype stage)."""
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("proto.") for k in missing):
        raise RuntimeError(
            f"checkpoint does not fit the network: missing {missing}, unexpected {unexpected}"
        )


def hardware() -> str:
    """What trained the model, for the model card."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA)"
    threads = torch.get_num_threads()
    return f"{os.cpu_count()} CPU cores ({platform.machine()}), torch {threads} threads"


def load_networks(path: Path) -> tuple[TrainConfig, dict[str, nn.Module], dict]:
    """Rebuild the networks from a checkpoint (its own config), in eval mode; with "S", the
    run's object cut-out network when it has one (training/engine/segmenter.py)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    cfg = TrainConfig.from_dict(state["config"])
    nets = build_networks(cfg.model, seed=cfg.seed)
    for k, n in nets.items():
        load_state(n, state["nets"][k])
        n.eval()
    segmenter = load_segmenter(Path(path).parent)
    if segmenter is not None:
        nets["S"] = segmenter
    return cfg, nets, state
