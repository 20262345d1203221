"""The real-data path on tiny models written here in the packages' own formats: a .sh3f
furniture library (zip: OBJ + Java properties catalogue) and TORCS/FlightGear AC3D files.
Converted (assimp for AC3D), labelled, put in the canonical frame, voxelised solid, split."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh

from app.voxelize import fill_solid, voxelize_mesh
from training.data import real_sources as realsources
from training.data.real_convert import assign_splits, drop_duplicates, load_scene, voxelize_model
from training.data.real_sources import (
    MARITIME_PACKAGE,
    SH3D_NONFREE,
    RealModel,
    flightgear_models,
    label,
    maritime_models,
    read_properties,
    split_as,
    sweethome3d_models,
    torcs_models,
)

R = 16
needs_assimp = pytest.mark.skipif(
    shutil.which("assimp") is None, reason="Debian's assimp-utils (scripts/test.sh installs it)"
)

CATALOGUE = """# a catalogue in SH3D's format
id=Test#lib
name=Test library
license=Public domain

id#1=Test#stool
name#1=Bar stool
category#1=Kitchen
model#1=/lib/stool/stool.obj
width#1=40
depth#1=40
height#1=80
creator#1=Tester

id#2=Test#table
name#2=Coffee \\
 table
model#2=/lib/table/table.obj
modelRotation#2=1 0 0 0 0 1 0 -1 0
width#2=120
depth#2=60
height#2=45
creator#2=J\\u00f6rg

id#3=Test#door
name#3=Front door
model#3=/lib/door/door.obj
width#3=90
depth#3=10
height#3=200
doorOrWindow#3=true
"""


def _obj(mesh: trimesh.Trimesh) -> bytes:
    return trimesh.exchange.obj.export_obj(mesh).encode()


def _sh3f(folder: Path) -> Path:
    """A library with a stool (y up), a table modelled z up (modelRotation turns it) and a door."""
    stool = trimesh.creation.box(extents=[1, 1, 1])
    table = trimesh.creation.box(extents=[1, 1, 1])  # stretched by the catalogue sizes
    path = folder / "Test.sh3f"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("PluginFurnitureCatalog.properties", CATALOGUE.encode("latin-1"))
        z.writestr("lib/stool/stool.obj", _obj(stool))
        z.writestr("lib/table/table.obj", _obj(table))
        z.writestr("lib/door/door.obj", _obj(stool))
    return path


def _ac3d(boxes: list[tuple[list[float], list[float]]], names: list[str] | None = None) -> str:
    """AC3D text: one object per axis-aligned box (centre, extents), named "box" or ``names``."""
    kids = []
    for (centre, ext), name in zip(boxes, names or ["box"] * len(boxes), strict=True):
        m = trimesh.creation.box(extents=ext)
        m.apply_translation(centre)
        verts = "\n".join(" ".join(f"{c:.4f}" for c in v) for v in m.vertices)
        surfs = "\n".join(
            f"SURF 0x10\nmat 0\nrefs 3\n{a} 0 0\n{b} 0 0\n{c} 0 0" for a, b, c in m.faces
        )
        kids.append(
            f'OBJECT poly\nname "{name}"\nnumvert {len(m.vertices)}\n{verts}\n'
            f"numsurf {len(m.faces)}\n{surfs}\nkids 0"
        )
    mat = (
        'MATERIAL "grey" rgb 0.6 0.6 0.6  amb 0.2 0.2 0.2  emis 0 0 0  spec 0 0 0  shi 10  trans 0'
    )
    return f"AC3Db\n{mat}\nOBJECT world\nkids {len(kids)}\n" + "\n".join(kids) + "\n"


def _extent(v: np.ndarray, axis: int) -> int:
    other = tuple({0, 1, 2} - {axis})
    idx = np.nonzero(v.any(axis=other))[0]
    return int(idx.max() - idx.min() + 1)


def _top(v: np.ndarray, rows: int) -> np.ndarray:
    """The highest ``rows`` occupied layers in y."""
    y = np.nonzero(v.any(axis=(0, 2)))[0].max()
    return v[:, y - rows + 1 : y + 1, :]


def test_properties_continuations_escapes_and_comments() -> None:
    p = read_properties(CATALOGUE)
    assert p["name#2"] == "Coffee table" and p["creator#2"] == "Jörg"
    assert p["license"] == "Public domain" and "# a catalogue" not in "".join(p)


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("Bar stool", "chair"), ("Armchair", "sofa"), ("Corner sofa", "sofa"),
        ("Coffee table", "table"), ("Wooden desk", "table"), ("Desk lamp", "lamp"),
        ("Bunk bed", "bed"), ("Bookcase", "shelf"), ("Coffee mug", "mug"),
        ("VW new beetle", "car"), ("Biplane", "airplane"), ("Bedside table", "cabinet"),
        ("Wardrobe", "cabinet"), ("Glass door cabinet", "cabinet"), ("Chest", "cabinet"),
        ("Chest freezer", None), ("Winchester armchair", "sofa"), ("Upper shelves cabinet",
        "cabinet"), ("Bedside lamp", None), ("Glass door", None),
        ("Table tennis bat", None), ("Ceiling lamp", None), ("Cardboard box", None),
        ("Wheelchair", None), ("Plate, glass and cutlery", None), ("Glass blocks", None),
        ("Railing glass", None), ("Wine glass", "mug"),
    ],
)  # fmt: skip
def test_labels_from_catalogue_names(name: str, category: str | None) -> None:
    assert label(name) == category


def test_sh3f_library_is_labelled_framed_and_voxelised_solid(tmp_path: Path) -> None:
    _sh3f(tmp_path)
    models = sweethome3d_models(tmp_path)
    by_name = {m.name: m for m in models}
    assert set(by_name) == {"Bar stool", "Coffee table"}  # the door is not furniture of ours
    table = by_name["Coffee table"]
    assert table.category == "table" and table.creator == "Jörg"
    assert table.licence == "Public domain" and table.uid.endswith("lib/table/table.obj")
    # catalogue sizes survive the canonical frame: 120 wide (x), 45 high (y), 60 deep (z)
    lo, hi = load_scene(table, tmp_path / "cache").bounds
    ext = hi - lo
    assert np.allclose(ext / ext.max(), [1.0, 45 / 120, 60 / 120], atol=1e-3)
    assert np.allclose((lo + hi) / 2, 0, atol=1e-6)
    v = voxelize_model(table, R, tmp_path / "cache")
    assert v[R // 2, R // 2, R // 2]  # solid: the centre is filled
    assert _extent(v, 0) > _extent(v, 2) > _extent(v, 1)


def test_two_packages_sharing_a_folder_are_told_apart_by_dpkg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sweethome3d-furniture and its non-free sibling install .sh3f libraries in one folder:
    each model is credited to the package whose dpkg file list holds its library."""
    lib = _sh3f(tmp_path)
    other = lib.with_name("Other.sh3f")
    shutil.copy(lib, other)
    info = tmp_path / "dpkg"
    info.mkdir()
    (info / f"{SH3D_NONFREE}.list").write_text(f"/usr/share/doc\n{tmp_path}\n{other}\n")
    monkeypatch.setattr(realsources, "DPKG_INFO", info)
    nonfree = sweethome3d_models(tmp_path, package=SH3D_NONFREE)
    assert {m.path for m in nonfree} == {str(other)} and len(nonfree) == 2
    assert all(m.package == SH3D_NONFREE and m.uid.startswith(SH3D_NONFREE) for m in nonfree)
    # a package dpkg lists nothing for here (a fixture folder): every library in the folder
    assert {m.path for m in sweethome3d_models(tmp_path)} == {str(lib), str(other)}


@needs_assimp
def test_torcs_car_is_converted_and_turned_nose_to_plus_z(tmp_path: Path) -> None:
    car = tmp_path / "cars" / "racer"
    car.mkdir(parents=True)
    # a 4 x 1 x 2 body along x (TORCS: x forward) with a tall block at the nose (+x)
    ac = _ac3d([([0, 0.5, 0], [4, 1, 2]), ([1.8, 1.5, 0], [0.4, 1.0, 2])])
    (car / "racer.acc").write_text(ac)
    (car / "racer-lod1.acc").write_text(ac)  # level-of-detail copies are skipped
    (models,) = [torcs_models(tmp_path / "cars")]
    assert [m.name for m in models] == ["racer"] and models[0].category == "car"
    v = voxelize_model(models[0], R, tmp_path / "cache")
    assert _extent(v, 2) > _extent(v, 0)  # long axis now z
    top = np.nonzero(_top(v, 2).any(axis=(0, 1)))[0]
    assert top.min() > R // 2  # the tall block is at the front, +z


@needs_assimp
def test_flightgear_aircraft_nose_minus_x_becomes_plus_z(tmp_path: Path) -> None:
    models_dir = tmp_path / "Aircraft" / "jet" / "Models"
    models_dir.mkdir(parents=True)
    # fuselage along x with the fin at the tail (+x: FlightGear's x points aft)
    ac = _ac3d([([0, 0, 0], [4, 0.4, 0.4]), ([1.8, 0.6, 0], [0.3, 0.8, 0.1])])
    (models_dir / "jet.ac").write_text(ac)
    (m,) = flightgear_models(tmp_path / "Aircraft")
    v = voxelize_model(m, R, tmp_path / "cache")
    fin = np.nonzero(_top(v, 2).any(axis=(0, 1)))[0]
    assert fin.max() < R // 2  # the fin, so the tail, is at -z


def test_an_aircrafts_loose_parts_lights_and_balloons_are_left_out(tmp_path: Path) -> None:
    files = [
        "jet/Models/jet.ac", "jet/Models/Lights/Beacon.ac", "jet/Models/droptank.ac",
        "jet/Models/refueling/probe.ac", "balloon/Models/balloon2.ac", "Ferry/FerryBoat1.ac",
        "Bombardier-Challenger/Models/chal604.ac", "flash2a/Models/flash2a.ac",
    ]  # fmt: skip
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("AC3Db\n")
    kept = {m.uid.split("/", 1)[1]: not m.leave_out for m in flightgear_models(tmp_path)}
    assert [f for f in files if kept[f]] == [
        "jet/Models/jet.ac",
        "Bombardier-Challenger/Models/chal604.ac",
        "flash2a/Models/flash2a.ac",
    ]


def test_ships_and_boats_from_the_maritime_models(tmp_path: Path) -> None:
    files = [
        "Maritime/Civilian/Trawler.ac", "Maritime/Military/CG-57/CG57.ac",
        "Maritime/Military/CG-57-high-detail/CG-57.ac", "Maritime/Misc/RedBuoy.ac",
        "Maritime/Ice/iceberg1.ac", "Geometry/sailboat1/sailboat.ac", "Geometry/other/box.ac",
    ]  # fmt: skip
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("AC3Db\n")
    models = maritime_models(tmp_path)
    assert [m.uid for m in models] == [
        f"{MARITIME_PACKAGE}/{f}"
        for f in ("Maritime/Civilian/Trawler.ac", "Maritime/Military/CG-57/CG57.ac",
                  "Geometry/sailboat1/sailboat.ac")
    ]  # fmt: skip
    assert {(m.category, m.front, m.licence) for m in models} == {("boat", "-x", "GPL-2+")}


@needs_assimp
def test_a_ships_wake_and_lights_are_left_out_and_its_bow_turned_to_plus_z(tmp_path: Path) -> None:
    folder = tmp_path / "Maritime" / "Civilian"
    folder.mkdir(parents=True)
    # a hull along x with the deckhouse aft (+x: FlightGear's x points aft), a wake sheet behind
    # the stern twice the ship's length, and a light high above the bow
    boxes = [([0, 0, 0], [4, 0.4, 0.6]), ([1.5, 0.5, 0], [0.6, 0.6, 0.4]),
             ([5, -0.2, 0], [8, 0.01, 1.0]), ([-1.8, 2.0, 0], [0.1, 0.1, 0.1])]  # fmt: skip
    (folder / "Coaster.ac").write_text(_ac3d(boxes, ["Hull", "DeckHouse", "Wake", "MastLight"]))
    (m,) = maritime_models(tmp_path)
    v = voxelize_model(m, R, tmp_path / "cache")
    assert _extent(v, 2) > R * 0.8  # the hull, not the wake, spans the grid
    assert _extent(v, 1) < R // 2  # no light above the bow
    house = np.nonzero(_top(v, 2).any(axis=(0, 1)))[0]
    assert house.max() < R // 2  # the deckhouse, so the stern, is at -z


def test_a_relabelled_or_left_out_model_moves_no_other_model_between_splits() -> None:
    # data version 3: wardrobes became cabinets and an aircraft's lights left, after the splits
    # of shelves and aircraft were fixed with them in
    shelves = [_model(f"shelf{i}", "shelf") for i in range(12)]
    wardrobes = [_model(f"wardrobe{i}", "shelf") for i in range(4)]
    before = assign_splits(shelves + wardrobes)
    assert split_as("Wardrobe", "cabinet") == "shelf" and split_as("Sink cabinet", "cabinet") == ""
    moved = [
        RealModel(m.uid, "pkg", "/x", "", "Wardrobe", "cabinet", "c", "l", "+z", split_as="shelf")
        for m in wardrobes
    ]
    after = assign_splits(shelves + moved)
    assert after == before
    lights = [RealModel(m.uid, "pkg", "/x", "", "", "shelf", "c", "l", "+z", leave_out="a light")
              for m in wardrobes]  # fmt: skip
    assert assign_splits(shelves + lights) == before  # left out only after the draw


def _model(uid: str, category: str) -> RealModel:
    return RealModel(uid, "pkg", "/x", "", uid, category, "c", "l", "+z")


def test_splits_are_by_model_fixed_and_per_category() -> None:
    models = [_model(f"chair{i}", "chair") for i in range(20)] + [
        _model(f"car{i}", "car") for i in range(10)
    ]
    a = assign_splits(models)
    assert a == assign_splits(list(reversed(models)))  # order does not matter
    chairs = [a[m.uid] for m in models[:20]]
    assert chairs.count("test") == 4 and chairs.count("val") == 2
    cars = [a[m.uid] for m in models[20:]]
    assert cars.count("test") == 2 and cars.count("val") == 1


def test_a_source_added_later_moves_no_earlier_model_between_splits() -> None:
    first = [_model(f"chair{i}", "chair") for i in range(20)]
    later = [
        RealModel(f"{SH3D_NONFREE}/c{i}", SH3D_NONFREE, "/x", "", "c", "chair", "c", "l", "+z")
        for i in range(15)
    ]
    before, after = assign_splits(first), assign_splits(first + later)
    assert {u: after[u] for u in before} == before
    added = [after[m.uid] for m in later]
    assert added.count("test") == 3 and added.count("val") == 2  # its own draw, same shares


def test_near_duplicates_dropped_within_a_category() -> None:
    v = np.zeros((4, R, R, R), dtype=bool)
    v[0, 2:10, 2:10, 2:10] = True
    v[1] = v[0]
    v[1, 2, 2, 2] = False  # a near-copy (a livery, a LOD)
    v[2] = v[0]  # identical, but another category: kept
    v[3, 10:14, 2:4, 2:4] = True
    models = [_model("a", "chair"), _model("b", "chair"), _model("c", "car"), _model("d", "chair")]
    keep, dropped = drop_duplicates(models, v)
    assert keep == [0, 2, 3] and dropped == {"b": "a"}


def test_solid_fill_closes_small_gaps_and_keeps_thin_parts() -> None:
    shell = np.zeros((R, R, R), dtype=bool)
    shell[3:12, 3:12, 3:12] = True
    shell[4:11, 4:11, 4:11] = False  # hollow box ...
    shell[7, 7, 3] = False  # ... with a one-voxel window
    shell[13, 1:15, 8] = True  # and a one-voxel-thin rod beside it
    solid = fill_solid(shell)
    assert solid[7, 7, 7] and solid[4:11, 4:11, 4:11].all()
    assert solid[13, 1:15, 8].all() and not solid[14].any()


@pytest.mark.parametrize("r", [16, 32])
def test_voxeliser_is_on_the_grid_not_half_a_voxel_off(r: int) -> None:
    """A centred, mirror-symmetric mesh voxelises mirror-symmetric; a centred pole lands in the
    two middle cells (the old voxeliser put it in cell r/2 only, shifted on every axis)."""
    pole = trimesh.creation.box(extents=[0.1, 2.0, 0.1])
    v = voxelize_mesh(pole, r)
    assert list(np.nonzero(v.any(axis=(1, 2)))[0]) == [r // 2 - 1, r // 2]
    assert list(np.nonzero(v.any(axis=(0, 1)))[0]) == [r // 2 - 1, r // 2]
    shape = trimesh.util.concatenate(
        [trimesh.creation.box(extents=[2, 0.3, 1]), trimesh.creation.cylinder(0.2, 1.2)]
    )
    v = voxelize_mesh(shape, r)
    assert np.array_equal(v, v[::-1]) and np.array_equal(v, v[:, :, ::-1])
    assert np.array_equal(v, v[:, ::-1])


def test_the_nonfree_models_are_a_dataset_of_their_own() -> None:
    """Opting in builds another cached dataset; without it the key is what it would be had the
    option never existed (real-41a558cdd1 at REAL_DATA_VERSION 1, the data of bundles up to
    3.11.0)."""
    from training.data.real_set import RealConfig

    assert RealConfig().key() == "real-e72c028872"  # changes with REAL_DATA_VERSION only
    assert RealConfig(nonfree=True).key() != RealConfig().key()
