"""The real-model dataset: Debian packages -> labelled, canonical, solid voxels + photo-like
renders, split by model, with a manifest of where every model came from.

    python -m training data --source real      -> data/real-<hash>/

    real-{train,val,test}.npz  voxels [N, R^3/8] uint8 (packbits), images [N, V, S, S, 3] uint8,
                               masks [N, V, S, S] uint8, category [N] int16, seed [N] int64 (-1 -
                               the model's row in the manifest), attrs [N, A] float32 (all NaN:
                               the catalogues carry no attributes), background [N, V] (the kind
                               of background of each render: white, plain, gradient, photo, ...)
    real_manifest.json         every model: uid, package, source file, creator, licence, category,
                               split; plus dropped duplicates, files left out (not objects of
                               their category) and files that failed, with reasons
Train models get TRAIN_VIEWS renders on the training background pool; val and test models get
EVAL_VIEWS held-out renders: half on white or plain backgrounds, half on photographs from a
package no training step sees (training/data/photo.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app.voxelize import ShapeFileError
from training.data.real_convert import assign_splits, drop_duplicates, load_scene, voxelize_mesh
from training.data.real_sources import (
    SH3D_NONFREE,
    RealModel,
    find_models,
    source_packages,
)
from training.data.shapes import CATEGORY_NAMES

log = logging.getLogger(__name__)
# everything the command needs from Debian: the models, AC3D conversion, headless OpenGL,
# and the held-out photographs for evaluation backgrounds
TOOL_PACKAGES = ("assimp-utils", "libosmesa6", "mate-backgrounds")
# bump when the sources, conversion, voxelisation or rendering change (1: bundles up to 3.11.0,
# real-41a558cdd1; 2: minetest-mod-homedecor added; 3: flightgear-data-models' boats, cabinets,
# the aircraft's loose parts, lights and balloons left out)
REAL_DATA_VERSION = 3
WIDE_VIEWS = 4  # wide photographs per held-out model (evaluation only: wide_photos)


@dataclass(frozen=True)
class RealConfig:
    resolution: int = 32
    image_size: int = 64
    train_views: int = 24  # renders per train model (training backgrounds)
    eval_views: int = 8  # held-out renders per val/test model: half plain, half photographs
    nonfree: bool = (
        False  # also sweethome3d-furniture-nonfree's models (training/data/real_sources.py)
    )

    def key(self) -> str:
        fields = asdict(self)
        if not self.nonfree:  # the key every dataset had before the option existed
            del fields["nonfree"]
        blob = json.dumps({**fields, "version": REAL_DATA_VERSION}, sort_keys=True)
        return f"real-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def install_packages(nonfree: bool = False) -> None:
    """apt-get the Debian packages the real data needs (root only; otherwise say what to run)."""
    wanted = (*source_packages(nonfree), *TOOL_PACKAGES)
    missing = [
        p for p in wanted if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0
    ]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            f"install these Debian packages first: apt-get install {' '.join(missing)}"
            + (" (from Debian's non-free section)" if SH3D_NONFREE in missing else "")
        )
    log.info("installing %s", " ".join(missing))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    main = [p for p in missing if p != SH3D_NONFREE]
    if main:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *main], check=True, env=env)
    if SH3D_NONFREE in missing:
        _install_from_non_free(SH3D_NONFREE, env)


def _install_from_non_free(package: str, env: dict[str, str]) -> None:
    """Fetch ``package`` by name from Debian's non-free section of this release and install it,
    without adding the section to the system's apt sources (a private source list, lists
    folder and download folder under a temporary directory)."""
    lines = Path("/etc/os-release").read_text().splitlines()
    release = dict(line.split("=", 1) for line in lines if "=" in line)
    codename = release.get("VERSION_CODENAME", "").strip('"') or "bookworm"
    with tempfile.TemporaryDirectory() as tmp:
        parts = Path(tmp) / "sources.list.d"
        (Path(tmp) / "lists" / "partial").mkdir(parents=True)
        parts.mkdir()
        (parts / "non-free.sources").write_text(
            f"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: {codename}\n"
            "Components: non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
        apt = [
            "-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={parts}",
            "-o", f"Dir::State::Lists={tmp}/lists",
        ]  # fmt: skip
        subprocess.run(["apt-get", *apt, "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", *apt, "download", package], check=True, env=env, cwd=tmp)
        (deb,) = Path(tmp).glob(f"{package}_*.deb")
        subprocess.run(["dpkg", "-i", str(deb)], check=True, env=env)


def _voxelize_job(args: tuple[RealModel, int, Path]) -> np.ndarray | str:
    model, resolution, cache = args
    try:
        v = voxelize_mesh(load_scene(model, cache).to_mesh(), resolution)
        return v if v.any() else "voxelises to an empty grid"
    except (ShapeFileError, ValueError, IndexError) as e:
        return str(e)


def _render_job(args: tuple[RealModel, str, RealConfig, Path, int]) -> dict[str, np.ndarray]:
    model, split, cfg, cache, row = args
    n = cfg.image_size * 2
    rng = np.random.default_rng([row, 7])
    try:
        return _render(model, split, cfg, cache, rng, n)
    except Exception as e:  # a model pyrender cannot draw with its own materials
        log.warning("%s: own materials failed (%s); plain colours instead", model.uid, e)
        return _render(model, split, cfg, cache, np.random.default_rng([row, 7]), n, own=False)


def _render(
    model: RealModel,
    split: str,
    cfg: RealConfig,
    cache: Path,
    rng: np.random.Generator,
    n: int,
    own: bool | None = None,
) -> dict[str, np.ndarray]:
    from training.data.photo import Photographer, evaluation_pool, training_pool

    ph = Photographer(load_scene(model, cache), size=cfg.image_size)
    images, masks, kinds = [], [], []
    try:
        if split == "train":
            pool = training_pool(n)
            shots = [ph.shoot(rng, pool, own_materials=own) for _ in range(cfg.train_views)]
        else:  # held out: other backgrounds (photographs no training step sees) and lights
            pool = evaluation_pool(n)
            half = cfg.eval_views // 2
            shots = [
                ph.shoot(
                    rng, pool, background="white" if k % 2 == 0 else "plain", own_materials=own
                )
                for k in range(half)
            ] + [
                ph.shoot(rng, pool, background="photo", own_materials=own)
                for _ in range(cfg.eval_views - half)
            ]
    finally:
        ph.close()
    for rgb, mask, kind in shots:
        images.append(rgb)
        masks.append(mask)
        kinds.append(kind)
    return {"images": np.stack(images), "masks": np.stack(masks), "background": np.array(kinds)}


def build_real(
    cfg: RealConfig, root: Path, *, workers: int = 2, force: bool = False, install: bool = True
) -> Path:
    """Build (or reuse) the real dataset under ``root``. Returns its folder."""
    out = Path(root) / cfg.key()
    manifest_path = out / "real_manifest.json"
    if manifest_path.is_file() and not force:
        log.info("reusing cached real dataset %s", out)
        return out
    if install:
        install_packages(cfg.nonfree)
    start = time.perf_counter()
    cache = Path(root) / "real-cache"
    models = find_models(cfg.nonfree)
    from tqdm import tqdm

    # 1. convert + canonical frame + solid voxels (failures are recorded, never fatal)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(
            tqdm(
                pool.map(_voxelize_job, [(m, cfg.resolution, cache) for m in models], chunksize=4),
                total=len(models),
                desc="voxelise",
            )
        )
    failed = {m.uid: r for m, r in zip(models, results, strict=True) if isinstance(r, str)}
    ok = [(m, r) for m, r in zip(models, results, strict=True) if not isinstance(r, str)]
    models, voxels = [m for m, _ in ok], np.stack([v for _, v in ok])
    # 2. near-duplicates (liveries, LOD variants, re-used meshes), then the split by model
    keep, duplicates = drop_duplicates(models, voxels)
    models, voxels = [models[i] for i in keep], voxels[keep]
    splits = assign_splits(models)
    # files that are not objects of their category leave only now: each kept model's split and
    # row (its renders' seed) are what they were when those files were still counted
    left_out = {m.uid: m.leave_out for m in models if m.leave_out}
    kept = [i for i, m in enumerate(models) if not m.leave_out]
    # 3. renders, then one file per split
    jobs = [(models[i], splits[models[i].uid], cfg, cache, i) for i in kept]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        done = list(tqdm(pool.map(_render_job, jobs), total=len(jobs), desc="render"))
    renders = dict(zip(kept, done, strict=True))
    out.mkdir(parents=True, exist_ok=True)
    n_attrs = len(_attribute_names())
    for split in ("train", "val", "test"):
        rows = [i for i in kept if splits[models[i].uid] == split]
        np.savez(
            out / f"real-{split}.npz",
            voxels=np.stack([np.packbits(voxels[i].reshape(-1)) for i in rows]),
            images=np.stack([renders[i]["images"] for i in rows]),
            masks=np.stack([renders[i]["masks"] for i in rows]),
            background=np.stack([renders[i]["background"] for i in rows]),
            category=np.array([CATEGORY_NAMES.index(models[i].category) for i in rows], np.int16),
            seed=np.array([-1 - i for i in rows], dtype=np.int64),
            attrs=np.full((len(rows), n_attrs), np.nan, dtype=np.float32),
        )
    manifest = {
        "key": cfg.key(),
        "config": asdict(cfg),
        "packages": list(source_packages(cfg.nonfree)),
        "models": [{**models[i].to_dict(), "split": splits[models[i].uid], "row": i} for i in kept],
        "counts": {
            s: {
                c: sum(1 for i in kept if models[i].category == c and splits[models[i].uid] == s)
                for c in CATEGORY_NAMES
            }
            for s in ("train", "val", "test")
        },
        "duplicates_dropped": duplicates,
        "left_out": left_out,
        "failed": failed,
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")  # last: marks completion
    return out


def real_dataset_for(cfg, data_root: Path, *, install: bool = True) -> Path:
    """The real dataset a run (TrainConfig) trains on: at its voxel resolution and image size,
    with the sources it chose (built or reused)."""
    real_cfg = RealConfig(
        resolution=cfg.model.resolution, image_size=cfg.model.image_size, nonfree=cfg.real_nonfree
    )
    return build_real(real_cfg, data_root, install=install)


def _attribute_names() -> list[str]:
    from training.data.procedural import attribute_names

    return attribute_names()


def wide_photos(folder: Path, split: str) -> dict[str, np.ndarray]:
    """WIDE_VIEWS photographs per model of a held-out split that nobody cropped to the object
    (training/data/photo.py, shoot_wide: small and off-centre on the evaluation photographs, at four
    times the encoder's side) -> {"images": [N, V, 4S, 4S, 3] uint8, "masks": [N, V, 4S, 4S]
    bool}; rendered once, then read from ``folder``/wide-<split>.npz. Evaluation only."""
    from training.data.photo import Photographer, evaluation_photos

    path = Path(folder) / f"wide-{split}.npz"
    if path.is_file():
        return dict(np.load(path))
    manifest = json.loads((Path(folder) / "real_manifest.json").read_text())
    size = manifest["config"]["image_size"]
    fields = set(RealModel.__dataclass_fields__)
    rows = sorted((m for m in manifest["models"] if m["split"] == split), key=lambda m: m["row"])
    photos = evaluation_photos(size * 4)
    images, masks = [], []
    for m in rows:
        model = RealModel(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in m.items() if k in fields}
        )
        rng = np.random.default_rng([m["row"], 99])
        scene = load_scene(model, Path(folder).parent / "real-cache")
        ph = Photographer(scene, size=size * 2)  # renders at twice its size
        try:
            shots = [ph.shoot_wide(rng, photos) for _ in range(WIDE_VIEWS)]
        finally:
            ph.close()
        images.append(np.stack([rgb for rgb, _ in shots]))
        masks.append(np.stack([hit for _, hit in shots]))
    out = {"images": np.stack(images), "masks": np.stack(masks)}
    np.savez_compressed(path, **out)
    return out


def load_real(folder: Path, split: str) -> dict[str, np.ndarray]:
    """One split of the real dataset; voxels unpacked to [N, R, R, R] uint8 in {0, 1}."""
    d = dict(np.load(Path(folder) / f"real-{split}.npz"))
    r = round((d["voxels"].shape[1] * 8) ** (1 / 3))
    d["voxels"] = np.unpackbits(d["voxels"], axis=1).reshape(-1, r, r, r)
    return d
