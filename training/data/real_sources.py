"""Real 3D models from Debian packages: where they are, what they are, whose they are.

    find_models()  -> [RealModel]   # every labelled model of the installed training packages

Sources (installed by name by `python -m training data --source real`, never at service run time):
- sweethome3d-furniture: five .sh3f libraries (zip: OBJ + MTL + textures, and a Java properties
  catalogue with name, category, width/depth/height in cm, modelRotation, creator; the licence
  per library). Frame: y up, front +z, after modelRotation; SH3D stretches each model's box to
  the catalogue's width (x), height (y) and depth (z), and so do we.
- flightgear-data-ai: AI aircraft as AC3D (.ac). After assimp's conversion y is up and the nose
  points to -x (FlightGear's x axis points aft).
- torcs-data: racing cars as AC3D (.acc). After conversion y is up and the nose points to +x.
- minetest-mod-homedecor: the Minetest homedecor modpack's furniture meshes (OBJ; models and
  textures CC-BY-SA-4.0): beds, chairs, sofas, tables, shelves, lamps. Labelled from their file
  names; textured from the modpack's node definitions (training/data/minetest.py). Frame: y up,
  front +z. Added after the others: its models draw their split on their own (SPLIT_GROUP).
- sweethome3d-furniture-nonfree (opt-in: find_models(nonfree=True), `--nonfree`): three more
  .sh3f libraries (Contributions, LucaPresidente, Trees; Free Art License 1.3, copyleft with
  attribution) from Debian's non-free section, in the same folder as sweethome3d-furniture:
  dpkg's file lists tell the two packages' libraries apart. They nearly double the tables and
  add shelves, chairs, sofas and beds. Their models come after the other three's and draw their
  split on their own (SPLIT_GROUP), so adding them moves no other model between the splits.

Reserved for independent evaluation and never read here: the sweethome3d application's own
catalogue, gl-117-data, crrcsim-data, assimp-testmodels, pybullet_data, scikit-image's samples.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from training.data import minetest

SH3D_NONFREE = "sweethome3d-furniture-nonfree"
MARITIME_PACKAGE = "flightgear-data-models"
PACKAGES = (
    "sweethome3d-furniture", "flightgear-data-ai", "torcs-data", minetest.PACKAGE, MARITIME_PACKAGE
)  # fmt: skip
SH3D_ROOT = Path("/usr/share/sweethome3d/furniture")
DPKG_INFO = Path("/var/lib/dpkg/info")
# Packages added after the first real dataset draw their split apart from the earlier ones
# (training.data.real_convert.assign_splits), so adding a source never moves an earlier model.
SPLIT_GROUP = {SH3D_NONFREE: 1, minetest.PACKAGE: 2, MARITIME_PACKAGE: 3}
FLIGHTGEAR_ROOT = Path("/usr/share/games/flightgear/AI/Aircraft")
FLIGHTGEAR_MODELS_ROOT = Path("/usr/share/games/flightgear/Models")
TORCS_ROOT = Path("/usr/share/games/torcs/cars")
# nose/front direction of each source, as a rotation about y that turns it to +z
_Y_TURN = {"+z": 0.0, "-x": np.pi / 2, "+x": -np.pi / 2, "-z": np.pi}
# flightgear-data-models' vessels modelled along z rather than FlightGear's x (aft): their bow,
# the narrower end (measured on their voxels: the end tenth's occupied voxels), by file stem
_MARITIME_FRONTS = {
    "LargeFerry": "-z", "MerchantLivestockCarrier": "-z", "barge": "+z", "Carrier_A01": "-z",
    "LCM6": "-z", "LHA1": "-z", "MaritimePrepositioningForceShip": "-z", "PSC9": "-z",
}  # fmt: skip

# Catalogue name -> category. Checked in order; the first rule whose pattern matches the
# lower-cased name wins; category None drops the model (not one of ours, or ambiguous).
LABEL_RULES: tuple[tuple[str, str | None], ...] = (
    # closed storage first (from data version 3): "Glass door cabinet" is a cabinet, not a door
    (r"\bcabinet|cupboard|wardrobe|dresser|chest of drawers|\bdrawers\b|^chest$|sideboard|"
     r"commode|nightstand|bedside table|\blocker\b", "cabinet"),
    (r"table tennis|table fan|tablet|football table|pool table|wheelchair|cup cake|"
     r"sunglasses|glasses\b|glass door|door|carpet|cardboard|card game|flashlight|"
     r"fluorescent|track light|wall (spot)?light|wall lamp|ceiling|pendant|chandelier|"
     r"hanging light|porch light|bedside|plate\b|glass blocks|railing|desk extension", None),
    (r"\bdesk lamp|\blamp|lamppost|street light|park light", "lamp"),
    (r"\barmchair|\bsofa|\bcouch|\bfuton", "sofa"),
    (r"\bchair|\bstool", "chair"),
    (r"\btable\b|\bdesk\b", "table"),
    (r"\bbed\b", "bed"),
    (r"bookcase|\bshel(f|ves)\b", "shelf"),
    (r"\bmug\b|\bcup\b|\bglass\b", "mug"),
    (r"\bcar\b|sedan|beetle|\bvan\b|\btruck\b", "car"),
    (r"plane\b", "airplane"),
    (r"\bboat|\bship\b|ferry|freighter|trawler|tanker|barge", "boat"),
)  # fmt: skip


@dataclass(frozen=True)
class RealModel:
    uid: str  # stable id: "<package>/<file inside the package or archive>"
    package: str  # Debian package that ships it
    path: str  # file on disk (an .sh3f archive for furniture)
    member: str  # model file inside the archive ("" when ``path`` is the model itself)
    name: str  # catalogue name, or the file's stem
    category: str  # one of training.data.shapes.CATEGORY_NAMES
    creator: str
    licence: str
    front: str  # the axis its front faces before canonicalisation: "+z", "-z", "-x", "+x"
    rotation: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)  # row-major 3x3 (SH3D)
    size: tuple[float, float, float] | None = None  # catalogue width, height, depth (cm)
    # the category whose split the model draws, where its label changed after that split was
    # fixed (a wardrobe was a shelf up to data version 2): every model keeps its split
    split_as: str = ""
    # why the model is left out once the splits are drawn ("" = kept): a file of a source that
    # is not an object of its category (an aircraft's light or drop tank). It still takes its
    # place in the split order, so leaving it out moves no other model between the splits
    leave_out: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def canonical_rotation(self) -> np.ndarray:
        """4x4: the source's own rotation, then the turn that brings its front to +z."""
        m = np.eye(4)
        m[:3, :3] = np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)
        a = _Y_TURN[self.front]
        turn = np.eye(4)
        turn[[0, 0, 2, 2], [0, 2, 0, 2]] = [np.cos(a), np.sin(a), -np.sin(a), np.cos(a)]
        return turn @ m

    def split_key(self) -> float:
        """A fixed number in [0, 1) from the uid: the model's place in the split order."""
        return int(hashlib.sha256(self.uid.encode()).hexdigest()[:12], 16) / 16**12


# Up to data version 2 cupboards and wardrobes were shelves; they still draw their split as
# shelves (RealModel.split_as), so the cabinet category moved no model between the splits
_SHELF_UP_TO_V2 = r"bookcase|\bshel(f|ves)\b|cupboard|wardrobe"


def split_as(name: str, category: str) -> str:
    """The category a model draws its split in, where that is not its label ("" otherwise)."""
    if category == "cabinet" and re.search(_SHELF_UP_TO_V2, name.lower()):
        return "shelf"
    return ""


def label(name: str) -> str | None:
    low = name.lower()
    for pattern, category in LABEL_RULES:
        if re.search(pattern, low):
            return category
    return None


def read_properties(text: str) -> dict[str, str]:
    """Java .properties (the SH3D catalogue format): key=value lines, # comments, backslash
    line continuations and \\uXXXX escapes. Written by hand: ~15 lines, and the PyPI parsers
    add a dependency for a format this small."""
    out: dict[str, str] = {}
    logical, buf = [], ""
    for raw in text.splitlines():
        line = buf + raw.lstrip() if buf else raw.strip()
        if line.endswith("\\") and not line.endswith("\\\\"):
            buf = line[:-1]
            continue
        buf = ""
        logical.append(line)
    for line in logical:
        if not line or line[0] in "#!" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), value)
        out[key.strip()] = value.strip().replace("\\:", ":").replace("\\=", "=")
    return out


def package_files(package: str, root: Path, pattern: str) -> list[Path]:
    """The files matching ``pattern`` directly in ``root`` that Debian installed for ``package``
    (dpkg's file list), or, where dpkg lists none of them there (a folder of test fixtures),
    every file in ``root`` that matches."""
    listing = DPKG_INFO / f"{package}.list"
    root = Path(root)
    listed = [Path(line) for line in listing.read_text().splitlines()] if listing.is_file() else []
    mine = sorted(p for p in listed if p.parent == root and p.match(pattern))
    return mine or sorted(root.glob(pattern))


def sweethome3d_models(
    root: Path = SH3D_ROOT, package: str = "sweethome3d-furniture"
) -> list[RealModel]:
    models = []
    for lib in package_files(package, root, "*.sh3f"):
        with zipfile.ZipFile(lib) as z:
            props = read_properties(z.read("PluginFurnitureCatalog.properties").decode("latin-1"))
        licence = props.get("license", "see the library's LICENSE.TXT").split("  ")[0]
        ids = sorted(int(k.split("#")[1]) for k in props if k.startswith("model#"))
        for i in ids:
            name = props.get(f"name#{i}", "")
            category = label(name)
            if category is None or props.get(f"doorOrWindow#{i}") == "true":
                continue
            rot = props.get(f"modelRotation#{i}")
            size = tuple(float(props[f"{k}#{i}"]) for k in ("width", "height", "depth"))
            member = props[f"model#{i}"].lstrip("/")
            models.append(
                RealModel(
                    uid=f"{package}/{lib.stem}/{member}",
                    package=package,
                    path=str(lib),
                    member=member,
                    name=name,
                    category=category,
                    creator=props.get(f"creator#{i}", "unknown"),
                    licence=licence,
                    front="+z",
                    rotation=tuple(float(x) for x in rot.split()) if rot else RealModel.rotation,
                    size=size,  # type: ignore[arg-type]
                    split_as=split_as(name, category),
                )
            )
    return models


def _game_models(
    files: list[Path], root: Path, package: str, category: str, creator: str, licence: str,
    front: str,
) -> list[RealModel]:  # fmt: skip
    """One model per file of a game's data package (no catalogue: the package names the
    category; each file's stem is its name)."""
    return [
        RealModel(
            uid=f"{package}/{p.relative_to(root)}",
            package=package,
            path=str(p),
            member="",
            name=p.stem,
            category=category,
            creator=creator,
            licence=licence,
            front=front,
        )
        for p in files
    ]


# files under AI/Aircraft that are not an aircraft (data version 3): lights and beacons, stores and
# loose parts (a bomb, drop and wing tanks, wheels, an exhaust, a refuelling probe, a towed
# banner, the Space Shuttle's engines and pods), hot-air balloons, and a ferry (the same model
# is a boat in flightgear-data-models)
_NOT_AIRCRAFT = re.compile(  # on the path below AI/Aircraft
    r"(^|/)(lights?|refueling|balloon|ferry)/|/(bomb-\d+|droptank|tank|wheels|exhaust|banner|"
    r"omspods|ssme|toggle-white|flash|beacon|strobe|navl|navr|navback|taxi)\.ac$",
    re.IGNORECASE,
)


def flightgear_models(root: Path = FLIGHTGEAR_ROOT) -> list[RealModel]:
    """Every AC3D file of the AI aircraft, those that are not an aircraft marked ``leave_out``
    (they keep their place in the split order: see RealModel)."""
    files = sorted(p for p in Path(root).rglob("*.ac") if "light" not in p.stem.lower())
    models = _game_models(
        files, root, "flightgear-data-ai", "airplane", "FlightGear contributors", "GPL-2+", "-x"
    )
    return [
        replace(m, leave_out="not an aircraft (a part, light, store, balloon or boat)")
        if _NOT_AIRCRAFT.search(m.uid.split("/", 1)[1])
        else m
        for m in models
    ]


# objects of a source's models that are not part of the object, by name: the vessels' wake (a
# flat sheet of water behind the stern, as long as the ship; "rect" in two naval models) and
# their navigation lights
OBJECTS_LEFT_OUT = {MARITIME_PACKAGE: re.compile(r"wake|light|^rect$", re.IGNORECASE)}


def maritime_models(root: Path = FLIGHTGEAR_MODELS_ROOT) -> list[RealModel]:
    """flightgear-data-models' ships and boats (data version 3): the civilian and naval vessels
    of Models/Maritime (not its buoys, piers, beacons, liferafts, oil rig and iceberg; the
    13 MB high-detail cruiser, a copy of the other one, skipped) and Models/Geometry's
    sailboat. FlightGear's frame: x aft, like the AI aircraft (some vessels: _MARITIME_FRONTS)."""
    files = [
        p
        for p in sorted((Path(root) / "Maritime").glob("*/**/*.ac"))
        if p.relative_to(root).parts[1] in ("Civilian", "Military") and "high-detail" not in str(p)
    ]
    files += sorted((Path(root) / "Geometry").glob("sailboat*/*.ac"))
    models = _game_models(
        files, root, MARITIME_PACKAGE, "boat", "FlightGear contributors", "GPL-2+", "-x"
    )
    return [replace(m, front=_MARITIME_FRONTS.get(m.name, m.front)) for m in models]


def torcs_models(root: Path = TORCS_ROOT) -> list[RealModel]:
    """The full-detail model of each car (``<car>/<car>.acc``; the -lod files are skipped)."""
    files = sorted(p for p in Path(root).glob("*/*.acc") if p.stem == p.parent.name)
    licence = "GPL-2+ (acura-nsx-sz: Free Art License)"
    return _game_models(files, root, "torcs-data", "car", "TORCS contributors", licence, "+x")


def homedecor_models(root: Path = minetest.ROOT) -> list[RealModel]:
    """The meshes of minetest-mod-homedecor that are one of our categories (training/data/
    minetest.py reads their textures)."""
    out = []
    for path in minetest.mesh_files(root):
        name = minetest.display_name(path.stem)
        category = minetest.OVERRIDES.get(path.stem, label(name))
        if category is None:
            continue
        out.append(
            RealModel(
                uid=f"{minetest.PACKAGE}/{path.relative_to(root)}",
                package=minetest.PACKAGE,
                path=str(path),
                member="",
                name=name,
                category=category,
                creator=minetest.CREATOR,
                licence=minetest.LICENCE,
                front="+z",
                rotation=minetest.rotation_for(path, root) or RealModel.rotation,
                split_as=split_as(name, category),
            )
        )
    return out


def source_packages(nonfree: bool = False) -> tuple[str, ...]:
    """The Debian packages the real models come from, the opt-in non-free one last."""
    return (*PACKAGES, SH3D_NONFREE) if nonfree else PACKAGES


def find_models(nonfree: bool = False) -> list[RealModel]:
    """Every labelled model of the installed training packages, in a stable order."""
    missing = [pkg for pkg in source_packages(nonfree) if not (DPKG_INFO / f"{pkg}.list").is_file()]
    if missing:
        raise FileNotFoundError(
            f"Debian packages not installed: {', '.join(missing)} "
            f"(`apt-get install {' '.join(missing)}`, or `python -m training data --source real`"
            " as root installs them)"
        )
    # the later source last: every earlier model keeps its row (so its renders' seeds)
    nonfree_models = sweethome3d_models(package=SH3D_NONFREE) if nonfree else []
    first = sweethome3d_models() + flightgear_models() + torcs_models()
    return first + nonfree_models + homedecor_models() + maritime_models()
