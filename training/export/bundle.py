"""Write a model bundle: ONNX files, concept vectors, metrics, previews, model card, manifest.

    python -m training export --run-dir runs/cpu --out models/gan3d-cpu

The manifest is the contract in app/bundle.py; the written bundle is verified with the same
``verify`` the service runs at start-up before this function returns.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from app.bundle import (
    AttributeSpec,
    ImageSpec,
    LatentSpec,
    Manifest,
    TrainingSummary,
    file_entry,
    verify,
    write_manifest,
)
from app.latents import MixturePrior
from training.data.procedural import DATA_PRESETS, build, load_split
from training.data.real_set import load_real, real_dataset_for
from training.data.shapes import CATEGORY_NAMES, all_attributes
from training.engine.checkpoint import load_networks
from training.evaluation.common import prototype_categories
from training.evaluation.procedural import evaluate, write_metrics
from training.export.card import write_model_card
from training.export.directions import fit_and_measure, save_directions
from training.export.onnx import export_networks
from training.export.previews import write_previews

log = logging.getLogger(__name__)


def write_bundle(
    checkpoint: Path,
    out: Path,
    *,
    name: str,
    version: str,
    data_root: Path = Path("data"),
    evaluation: tuple[dict, dict[str, np.ndarray], MixturePrior] | None = None,
    commands: list[str] | None = None,  # "{preset}" is filled in from the checkpoint
    judge_steps: int = 400,
    preview_size: int = 128,
    notes: list[str] | None = None,
    half_weights: bool = False,
) -> Manifest:
    """``evaluation``: (metrics, concepts, prior) from ``evaluate`` (computed here when None)."""
    cfg, nets, state = load_networks(checkpoint)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # 1. ONNX files, each parity-checked against torch
    exported = export_networks(nets, cfg, out, half_weights=half_weights)
    # 2. evaluation and concept vectors (held-out splits)
    if evaluation is None:
        evaluation = evaluate(checkpoint, data_root=data_root, judge_steps=judge_steps)
    metrics, concepts, prior = evaluation
    metrics = {**metrics, "export_max_abs_error": {r: e for r, (_, _, e) in exported.items()}}
    # 3. the latent space's files: edit directions (fitted here so that they follow the model,
    # training/export/directions.py), prototype codes, concepts, prior; and the metrics
    directions, metrics["directions"] = fit_and_measure(
        checkpoint, data_root=data_root, threshold=metrics["threshold"], judge_steps=judge_steps
    )
    save_directions(directions, out / "directions.json")
    bank_cats = prototype_categories(cfg, nets["E"], data_root)
    if bank_cats is not None:  # the prototype codes and their categories (/v1/reconstruct)
        np.savez(
            out / "prototypes.npz",
            bank=nets["E"].proto.bank.detach().cpu().numpy().astype(np.float32),
            categories=np.array([CATEGORY_NAMES[c] for c in bank_cats]),
        )
    np.savez(out / "concepts.npz", **concepts)
    prior.save(out / "prior.npz")
    write_metrics(metrics, out / "metrics.json")
    # 4. previews and the model card
    real_manifest, real_test = _real_data(cfg, data_root)
    previews = write_previews(
        nets,
        concepts,
        prior,
        load_split(build(DATA_PRESETS[cfg.data], data_root), "test"),
        out / "previews",
        threshold=metrics["threshold"],
        image_threshold=metrics.get("image_threshold"),
        size=preview_size,
        real_test=real_test,
        directions=directions,
        bank_categories=bank_cats,
    )
    summary = _summary(cfg, state, real_manifest, commands)
    write_model_card(
        out / "MODEL_CARD.md",
        name=name,
        cfg=cfg,
        summary=summary,
        metrics=metrics,
        previews=[p.relative_to(out).as_posix() for p in previews],
        notes=notes,
        real_manifest=real_manifest,
    )
    # 5. the manifest, pinning every file; verified as the service will
    manifest = _manifest(out, name, version, cfg, exported, bank_cats, previews, summary, metrics)
    write_manifest(out, manifest)
    verify(out)
    log.info("bundle %s written and verified", out)
    return manifest


def _real_data(cfg, data_root: Path) -> tuple[dict | None, dict[str, np.ndarray] | None]:
    """-> (the real dataset's manifest, its test split), or (None, None) for a run without."""
    if cfg.real_fraction <= 0:
        return None, None
    real_folder = real_dataset_for(cfg, data_root)
    real_manifest = json.loads((real_folder / "real_manifest.json").read_text())
    return real_manifest, load_real(real_folder, "test")


def _summary(cfg, state: dict, real_manifest: dict | None, commands) -> TrainingSummary:
    """What trained the model, for the manifest and the card."""
    return TrainingSummary(
        preset=cfg.preset,
        seed=cfg.seed,
        steps=state["step"],
        wall_time_s=round(state["seconds"], 1),
        hardware=state.get("hardware", "unknown"),
        data=f"procedural shapes, data preset {cfg.data!r} ({DATA_PRESETS[cfg.data].key()})"
        + (f" + real models ({real_manifest['key']})" if real_manifest else ""),
        commands=[c.format(preset=cfg.preset) for c in commands or []],
        extra={"config": cfg.to_dict(), "torch": torch.__version__},
    )


def _manifest(
    out: Path, name: str, version: str, cfg, exported: dict, bank_cats, previews: list[Path],
    summary: TrainingSummary, metrics: dict,
) -> Manifest:  # fmt: skip
    """The bundle's manifest (app/bundle.py's contract): every file with its sha256."""
    files = [file_entry(out, fname, role, sig) for role, (fname, sig, _) in exported.items()]
    files.append(file_entry(out, "concepts.npz", "concepts"))
    files.append(file_entry(out, "directions.json", "directions"))
    if bank_cats is not None:
        files.append(file_entry(out, "prototypes.npz", "prototypes"))
    files.append(file_entry(out, "prior.npz", "prior"))
    files.append(file_entry(out, "metrics.json", "metrics"))
    files.append(file_entry(out, "MODEL_CARD.md", "model_card"))
    files += [file_entry(out, p.relative_to(out).as_posix(), "preview") for p in previews]
    return Manifest(
        name=name,
        version=version,
        latent=LatentSpec(size=cfg.model.z_dim, prior="mixture", std=1.0),
        voxel_resolution=cfg.model.resolution,
        image=ImageSpec(
            size=cfg.model.image_size,
            prototypes=None if bank_cats is None else len(bank_cats),
        ),
        threshold=metrics["threshold"],
        image_threshold=metrics.get("image_threshold"),
        categories=list(CATEGORY_NAMES),
        attributes=[AttributeSpec(name=n, kind=k, categories=c) for n, k, c in all_attributes()],
        files=files,
        training=summary,
        metrics=_headline(metrics),
    )


def _headline(m: dict) -> dict:
    """The numbers a client wants at a glance (full detail in metrics.json)."""
    return {
        "reconstruction_iou_mean": m["reconstruction_iou"]["mean_at_best"],
        "generation_one_nna": m["generation"]["one_nna"],
        "generation_cov": m["generation"]["cov"],
        "generation_mmd": m["generation"]["mmd"],
        "arithmetic_success": m["arithmetic_success"],
        "interpolation_valid_frames": m["interpolation"]["valid_frames"],
        "train_seconds": m["checkpoint"]["train_seconds"],
    }


def save_evaluation(
    run_dir: Path, metrics: dict, concepts: dict[str, np.ndarray], prior: MixturePrior
) -> None:
    write_metrics(metrics, run_dir / "metrics.json")
    np.savez(run_dir / "concepts.npz", **concepts)
    prior.save(run_dir / "prior.npz")


def load_evaluation(run_dir: Path) -> tuple[dict, dict[str, np.ndarray], MixturePrior] | None:
    """What `python -m training evaluate` saved in the run folder, if anything."""
    m, c, p = run_dir / "metrics.json", run_dir / "concepts.npz", run_dir / "prior.npz"
    if not (m.is_file() and c.is_file() and p.is_file()):
        return None
    return json.loads(m.read_text()), dict(np.load(c)), MixturePrior.load(p)
