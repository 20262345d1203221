"""Probability grid -> mesh -> bytes: geometry, options, formats, determinism, empty shapes."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import trimesh

from app.encoding import MESH_FORMATS, encode_mesh, encode_voxels, unpack_json
from app.meshing import MeshOptions, clean_up, count_parts, fill_cavities, join_parts, to_mesh


def _ball(r: int = 16, radius: float = 0.6, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    c = (np.arange(r) + 0.5) / r * 2 - 1
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    d = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2)
    return np.clip(0.5 + (radius - d) * r / 2, 0, 1).astype(np.float32)  # a soft edge


def test_ball_mesh_is_closed_outward_and_in_world_frame() -> None:
    m = to_mesh(_ball())
    assert m.is_watertight and m.volume > 0  # outward normals
    assert np.allclose(m.bounds, [[-0.6] * 3, [0.6] * 3], atol=0.08)
    assert m.volume == pytest.approx(4 / 3 * np.pi * 0.6**3, rel=0.1)


def test_upsampling_smooths_and_keeps_the_size() -> None:
    coarse, fine = to_mesh(_ball(8)), to_mesh(_ball(8), MeshOptions(upsample=4))
    assert len(fine.faces) > 4 * len(coarse.faces)
    assert np.allclose(fine.bounds, coarse.bounds, atol=0.15)


def test_largest_component_decimation_and_smoothing() -> None:
    two = np.maximum(_ball(24, 0.35, (-0.45, 0, 0)), _ball(24, 0.2, (0.6, 0, 0)))
    keep_all = MeshOptions(min_part_fraction=0)
    assert len(to_mesh(two, keep_all).split(only_watertight=False)) == 2
    # the default clean-up drops the small ball (19% of the large one's volume), not a larger one
    assert len(to_mesh(two).split(only_watertight=False)) == 1
    big_two = np.maximum(_ball(24, 0.35, (-0.45, 0, 0)), _ball(24, 0.3, (0.6, 0, 0)))
    assert len(to_mesh(big_two).split(only_watertight=False)) == 2
    one = to_mesh(two, MeshOptions(largest_component=True, min_part_fraction=0))
    assert len(one.split(only_watertight=False)) == 1 and one.bounds[1][0] < 0
    small = to_mesh(_ball(24), MeshOptions(target_faces=500, smooth_iterations=3))
    assert len(small.faces) <= 550


@pytest.mark.parametrize("upsample", [1, 2, 3])
def test_cropping_to_the_object_gives_the_whole_grid_surface(
    upsample: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    # a faint, noisy background (as generator outputs have), an off-centre ragged block
    prob = rng.uniform(0.0, 0.3, (24, 24, 24)).astype(np.float32)
    prob[5:14, 3:20, 8:12] = rng.uniform(0.3, 1.0, (9, 17, 4))
    prob[16, 2, 20] = 0.9  # and a lone voxel near the grid edge
    opts = MeshOptions(threshold=0.5, upsample=upsample)
    cropped = to_mesh(prob, opts)
    monkeypatch.setattr("app.meshing.CROP_MARGIN", 1000)  # the box becomes the whole grid
    whole = to_mesh(prob, opts)
    assert len(cropped.faces) == len(whole.faces) > 0
    assert np.allclose(
        np.sort(cropped.vertices, axis=0), np.sort(whole.vertices, axis=0), atol=1e-5
    )
    assert np.isclose(cropped.area, whole.area)


def _two_blocks(bridge: float) -> np.ndarray:
    """Two 4^3 blocks at 0.9, three voxels apart, with a straight bridge of ``bridge`` between
    them and a wider slab of 0.3 around it, on a faint background."""
    p = np.full((16, 16, 16), 0.02, np.float32)
    p[2:6, 6:10, 6:10] = 0.9
    p[9:13, 6:10, 6:10] = 0.9
    p[6:9, 5:11, 5:11] = 0.3  # likely enough to carry a bridge at 0.5 x 0.7, but costlier
    p[6:9, 7, 7] = bridge
    return p


def test_join_parts_bridges_along_the_likeliest_path_only() -> None:
    p = _two_blocks(0.6)
    out = join_parts(p, 0.7, 0.5)
    assert count_parts(p >= 0.7) == 2 and count_parts(out >= 0.7) == 1
    added = (out >= 0.7) & ~(p >= 0.7)
    assert added.sum() == 3 and added[6:9, 7, 7].all()  # the bridge, not the slab around it
    assert np.array_equal(out[p >= 0.7], p[p >= 0.7])  # the parts themselves are kept
    # nothing likely enough between them (0.3 and 0.02 < 0.5 x 0.7 without the 0.3 slab)
    apart = _two_blocks(0.02)
    apart[6:9, 5:11, 5:11] = 0.02
    assert count_parts(join_parts(apart, 0.7, 0.5) >= 0.7) == 2
    # join level 1 joins nothing; the two blocks are the same size: neither is dropped
    assert count_parts(clean_up(p, 0.7, join_level=1.0) >= 0.7) == 2


def test_fill_cavities_makes_a_hollow_shape_solid() -> None:
    p = np.zeros((12, 12, 12), np.float32)
    p[2:10, 2:10, 2:10] = 0.9
    p[4:8, 4:8, 4:8] = 0.1  # an enclosed hole
    assert len(to_mesh(p, MeshOptions(smooth_iterations=0, min_part_fraction=0, join_level=1))
               .split(only_watertight=False)) == 1  # fmt: skip
    filled = fill_cavities(p, 0.5)
    assert (filled[4:8, 4:8, 4:8] == 1).all() and np.array_equal(filled[p >= 0.5], p[p >= 0.5])
    open_box = p.copy()
    open_box[5, 5, 2:4] = 0.1  # a tunnel to the outside: not enclosed, left as it is
    assert np.array_equal(fill_cavities(open_box, 0.5), open_box)


def test_default_mesh_keeps_parts_one_voxel_thin() -> None:
    """A pole one voxel wide stays attached (the x2 blurred upsampling, the default up to
    3.10, broke it off); the default mesh is one surface reaching the pole's end."""
    p = np.full((24, 24, 24), 0.05, np.float32)
    p[4:20, 2:6, 4:20] = 0.95  # a base
    p[12, 6:22, 12] = 0.8  # a pole, one voxel thin
    m = to_mesh(p, MeshOptions(threshold=0.7))
    assert len(m.split(only_watertight=False)) == 1
    top = (21 + 0.5) / 24 * 2 - 1  # the pole's last voxel centre, world y
    assert m.bounds[1][1] > top
    blurred = to_mesh(p, MeshOptions(threshold=0.7, upsample=2, smooth_iterations=0))
    assert blurred is None or blurred.bounds[1][1] < top  # why upsampling is not the default


def test_empty_field_gives_none() -> None:
    assert to_mesh(np.zeros((8, 8, 8), np.float32)) is None
    assert to_mesh(np.full((8, 8, 8), 0.4, np.float32), MeshOptions(threshold=0.5)) is None


@pytest.mark.parametrize("fmt", sorted(MESH_FORMATS))
def test_mesh_formats_reload_and_are_deterministic(fmt: str) -> None:
    m = to_mesh(_ball())
    data = encode_mesh(m, fmt)
    assert data == encode_mesh(m, fmt)
    back = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh")
    assert len(back.faces) == len(m.faces)
    assert np.allclose(back.bounds, m.bounds, atol=1e-4)


def test_glb_has_normals_and_a_material() -> None:
    data = encode_mesh(to_mesh(_ball()), "glb")
    assert data[:4] == b"glTF"
    length = int.from_bytes(data[12:16], "little")
    doc = json.loads(data[20 : 20 + length])
    assert "NORMAL" in doc["meshes"][0]["primitives"][0]["attributes"]
    assert doc["materials"][0]["pbrMetallicRoughness"]["baseColorFactor"][3] == 1.0


def test_voxel_formats_round_trip() -> None:
    p = _ball()
    occ = p >= 0.5
    arr = np.load(io.BytesIO(encode_voxels(p, "npy", threshold=0.5)))
    assert arr.dtype == np.float32 and np.array_equal(arr, p)
    arr = np.load(io.BytesIO(encode_voxels(p, "npy", threshold=0.5, occupancy=True)))
    assert arr.dtype == np.uint8 and np.array_equal(arr.astype(bool), occ)
    assert np.array_equal(unpack_json(json.loads(encode_voxels(p, "json", threshold=0.5))), occ)
    vox = trimesh.exchange.binvox.load_binvox(
        io.BytesIO(encode_voxels(p, "binvox", threshold=0.5)), axis_order="xzy"
    )
    assert np.array_equal(vox.matrix, occ)
