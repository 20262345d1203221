"""Real-data loaders: meshes in several formats and binvox, round-tripped; bad files skipped."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import trimesh

from training.data.real_convert import (
    ShapeFileError,
    load_folder,
    load_shape_file,
    read_binvox,
    voxelize_mesh,
)

R = 16


def _l_shape() -> trimesh.Trimesh:
    """A solid L: a tall box and a long box, 2:1 proportions, y up."""
    a = trimesh.creation.box(
        extents=[1, 2, 1], transform=trimesh.transformations.translation_matrix([0, 1, 0])
    )
    b = trimesh.creation.box(
        extents=[2, 1, 1], transform=trimesh.transformations.translation_matrix([1, 0.5, 0])
    )
    return trimesh.util.concatenate([a, b])


@pytest.mark.parametrize("suffix", [".obj", ".off", ".stl", ".ply", ".glb"])
def test_mesh_formats_round_trip(tmp_path: Path, suffix: str) -> None:
    box = trimesh.creation.box(extents=[2.0, 1.0, 1.0])
    path = tmp_path / f"box{suffix}"
    box.export(path)
    v = load_shape_file(path, R)
    assert v.shape == (R, R, R) and v.dtype == bool
    # solid: the centre is filled; proportions 2:1:1 survive; centred
    assert v[R // 2, R // 2, R // 2]
    ext = [np.ptp(np.nonzero(v.any(axis=tuple({0, 1, 2} - {k})))[0]) + 1 for k in range(3)]
    assert ext[0] >= R - 3 and abs(ext[1] - ext[0] / 2) <= 2 and abs(ext[2] - ext[1]) <= 1


def test_z_up_meshes_are_turned_y_up() -> None:
    tall_in_z = trimesh.creation.box(extents=[1.0, 1.0, 2.0])
    v = voxelize_mesh(tall_in_z, R, up="z")
    ext = [np.ptp(np.nonzero(v.any(axis=tuple({0, 1, 2} - {k})))[0]) + 1 for k in range(3)]
    assert ext[1] > ext[0] and ext[1] > ext[2]


def test_l_shape_keeps_its_orientation() -> None:
    v = voxelize_mesh(_l_shape(), R)
    # the tall part is at -x, so the top rows are occupied only at small x
    top = np.nonzero(v[:, -4, :].any(axis=1))[0]
    assert top.max() < R // 2


def test_binvox_round_trip(tmp_path: Path) -> None:
    grid = np.zeros((32, 32, 32), dtype=bool)
    grid[4:28, 2:10, 8:24] = True  # a flat slab low in y
    vg = trimesh.voxel.VoxelGrid(grid)
    data = trimesh.exchange.binvox.export_binvox(vg)
    path = tmp_path / "slab.binvox"
    path.write_bytes(data)
    v32 = read_binvox(path.read_bytes(), 32)
    assert np.array_equal(v32, grid)
    v16 = read_binvox(path.read_bytes(), 16)  # integer down-sampling keeps the slab low in y
    assert v16.shape == (16,) * 3 and v16[:, :5].any() and not v16[:, 6:].any()


def test_bad_files_are_reported_and_skipped(tmp_path: Path) -> None:
    trimesh.creation.box().export(tmp_path / "good.stl")
    (tmp_path / "broken.obj").write_text("v 0 0 0\nthis is not an obj file\nf 1 2\n")
    (tmp_path / "garbage.ply").write_bytes(b"\x00\x01 not a ply at all")
    (tmp_path / "bad.binvox").write_bytes(b"#binvox 1\nnonsense")
    (tmp_path / "notes.txt").write_text("ignored: not a shape format")
    res = load_folder(tmp_path, R)
    assert res.names == ["good.stl"] and res.voxels.shape == (1, R, R, R)
    assert set(res.skipped) == {"broken.obj", "garbage.ply", "bad.binvox"}
    for name, reason in res.skipped.items():
        assert name in reason


def test_unsupported_suffix_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "x.fbx"
    p.write_bytes(io.BytesIO(b"123").getvalue())
    with pytest.raises(ShapeFileError, match=r"x\.fbx: unsupported format"):
        load_shape_file(p, R)
