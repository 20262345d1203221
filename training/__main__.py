"""`python -m training <command>`: data | train."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def _data(args: argparse.Namespace) -> None:
    from training.dataset import DATA_PRESETS, build

    cfg = DATA_PRESETS[args.preset]
    out = build(cfg, Path(args.root), workers=args.workers, force=args.force)
    card = json.loads((out / "dataset_card.json").read_text())
    print(f"{out}: {card['samples']} samples, {card['samples_per_second']} samples/s")
    if args.preview:
        from training.preview import dataset_preview

        print(dataset_preview(Path(args.preview), resolution=cfg.resolution))


def _train(args: argparse.Namespace) -> None:
    from training.config import PRESETS
    from training.train import train

    run_dir = Path(args.run_dir or f"runs/{args.preset}")
    ckpt = train(PRESETS[args.preset], run_dir=run_dir, data_root=Path(args.root),
                 resume=args.resume, device=args.device, stop_after=args.stop_after)  # fmt: skip
    print(ckpt)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data", help="build (or reuse) the cached procedural dataset")
    p.add_argument("--preset", choices=["tiny", "cpu", "paper"], default="cpu")
    p.add_argument("--root", default="data", help="cache folder (default: data/)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.add_argument("--preview", metavar="PNG", help="also write the preview grid here")
    p.set_defaults(func=_data)
    p = sub.add_parser("train", help="train a preset (torchrun for several processes)")
    p.add_argument("--preset", choices=["tiny", "cpu", "paper"], default="cpu")
    p.add_argument("--run-dir", help="checkpoint and log folder (default: runs/<preset>)")
    p.add_argument("--root", default="data", help="dataset cache folder")
    p.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when present)")
    p.add_argument("--stop-after", type=int, help="end after this many steps (resumable)")
    p.set_defaults(func=_train)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
