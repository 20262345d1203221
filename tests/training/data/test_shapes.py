"""Procedural shapes: determinism, attribute effects, solid bounded voxels, renders and masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from training.data.shapes import CATEGORIES, CATEGORY_NAMES, make_shape
from training.data.shapes.render import View, render

R = 32


def test_at_least_eight_categories_with_three_attributes() -> None:
    assert len(CATEGORIES) >= 8
    for c in CATEGORIES:
        assert len(c.attributes) >= 3, c.name
        assert any(a.kind == "binary" for a in c.attributes), c.name


@pytest.mark.parametrize("name", CATEGORY_NAMES)
def test_same_seed_same_shape_and_image(name: str) -> None:
    a, b = make_shape(name, 11), make_shape(name, 11)
    assert a.attributes == b.attributes
    assert np.array_equal(a.voxels(R), b.voxels(R))
    ia, ma = render(a, np.random.default_rng(5), size=32)
    ib, mb = render(b, np.random.default_rng(5), size=32)
    assert np.array_equal(ia, ib) and np.array_equal(ma, mb)
    assert not np.array_equal(a.voxels(R), make_shape(name, 12).voxels(R)) or (
        a.attributes != make_shape(name, 12).attributes
    )


@pytest.mark.parametrize("name", CATEGORY_NAMES)
def test_voxels_solid_bounded_nonempty(name: str) -> None:
    for seed in range(3):
        v = make_shape(name, seed).voxels(R)
        assert v.shape == (R, R, R) and v.dtype == bool
        assert 0.002 < v.mean() < 0.6
        # bounded: the outer layer of the grid stays empty
        assert not (v[0].any() or v[-1].any() or v[:, 0].any() or v[:, -1].any())
        assert not (v[:, :, 0].any() or v[:, :, -1].any())
        # centred and scaled: the largest extent spans most of the grid
        extents = [np.ptp(np.nonzero(v.any(axis=tuple({0, 1, 2} - {k})))[0]) + 1 for k in range(3)]
        assert max(extents) >= R - 4
        # solid: no enclosed empty cavity (filling holes adds nothing)
        assert np.array_equal(ndimage.binary_fill_holes(v), v)


def _added(name: str, attr: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(with, without) the attribute, both voxelised in the *with* shape's frame: adding a
    part may change the bounding box and so the normalisation."""
    on = make_shape(name, seed, **{attr: 1.0})
    off = make_shape(name, seed, **{attr: 0.0})
    return on.voxels(R), off.voxels(R, frame=on)


def test_armrests_add_voxels_at_the_sides_above_the_seat() -> None:
    for seed in range(3):
        on, off = _added("chair", "has_armrests", seed)
        extra = on & ~off
        assert extra.sum() > 20
        xs, ys, _ = np.nonzero(extra)
        xs_all = np.nonzero(on.any(axis=(1, 2)))[0]
        centre_x = (xs_all.min() + xs_all.max()) / 2
        assert np.all(np.abs(xs - centre_x) > 0.3 * (xs_all.max() - xs_all.min()) / 2)  # sides
        seat_top = np.nonzero(off[:, :, :].any(axis=(0, 2)))[0]
        assert ys.min() > seat_top.min() + 3  # above the floor, at armrest height


def test_sofa_armrests_widen_it() -> None:
    on, off = _added("sofa", "has_armrests")
    # normalised to the largest extent, so compare occupancy of the outermost x columns
    assert on.sum() != off.sum()
    assert (on[:4] | on[-4:]).sum() > 0


@pytest.mark.parametrize(
    ("name", "attr"),
    [("table", "has_shelf"), ("bed", "has_headboard"), ("mug", "has_handle"),
     ("car", "has_spoiler"), ("airplane", "has_tail_fin"), ("shelf", "has_doors"),
     ("boat", "has_mast"), ("boat", "has_deckhouse"),
     ("boat", "has_cargo")],
)  # fmt: skip
def test_binary_attribute_adds_voxels(name: str, attr: str) -> None:
    on, off = _added(name, attr)
    assert (on & ~off).sum() > 10


def test_mug_handle_is_on_the_side_and_tail_fin_on_top() -> None:
    on, off = _added("mug", "has_handle")
    xs = np.nonzero((on & ~off).any(axis=(1, 2)))[0]
    assert xs.min() > R // 2  # the handle sticks out at +x
    on, off = _added("airplane", "has_tail_fin")
    ys, zs = np.nonzero((on & ~off).any(axis=0))
    assert ys.min() >= np.nonzero(off.any(axis=(0, 2)))[0].max() - 1  # above the fuselage
    assert zs.max() < R // 2  # at the tail (-z)


def test_unknown_attribute_and_category_are_reported() -> None:
    with pytest.raises(KeyError, match="has no attribute"):
        make_shape("chair", 0, wings=1)
    with pytest.raises(KeyError, match="known: chair"):
        make_shape("spaceship", 0)


def test_render_shape_dtype_and_mask_matches_object() -> None:
    shape = make_shape("chair", 3)
    rgb, mask = render(shape, np.random.default_rng(1), size=48)
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8
    assert mask.shape == (48, 48) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert 0.02 < mask.mean() < 0.8
    # on a plain white background every non-white pixel is the object, and vice versa
    view = View(azimuth=0.6, elevation=0.4, distance=4.0, fov=0.7)
    rgb, mask = render(shape, np.random.default_rng(0), size=48, plain=True, view=view)
    dark = rgb.min(axis=2) < 250
    assert (dark == mask.astype(bool)).mean() > 0.97


def test_renders_vary_with_the_view_rng() -> None:
    shape = make_shape("table", 1)
    a, _ = render(shape, np.random.default_rng(1), size=32)
    b, _ = render(shape, np.random.default_rng(2), size=32)
    assert not np.array_equal(a, b)


def test_cabinet_drawers_and_doors_differ_at_the_front() -> None:
    on, off = _added("cabinet", "has_drawers")
    changed = np.nonzero((on ^ off).any(axis=(0, 1)))[0]
    assert len(changed) and changed.min() > R // 2  # fronts and handles, at +z
    on, off = _added("cabinet", "has_legs")  # legs instead of a plinth: open under the body
    assert (off & ~on).sum() > 10 and (on & ~off).sum() > 0


def test_a_boats_mast_stands_above_its_hull_ahead_of_the_deckhouse() -> None:
    on, off = _added("boat", "has_mast")
    mast = on & ~off
    ys = np.nonzero(mast.any(axis=(0, 2)))[0]
    assert ys.max() > np.nonzero(off.any(axis=(0, 2)))[0].max()  # taller than the rest
    on, off = _added("boat", "has_deckhouse")
    house = np.nonzero((on & ~off).any(axis=(0, 1)))[0]
    assert house.max() < R // 2  # aft (-z): the bow points to +z


@pytest.mark.parametrize("name", ["airplane", "lamp", "mug"])
def test_photographed_shapes_keep_their_thin_parts_and_carves(name: str) -> None:
    """shape_scene (the mesh the procedural photographs are taken of): closed, facing out, and
    every part there (wings, a lamp's pole, a mug's hollow): voxelised, it is the shape."""
    from app.overlap import iou
    from app.voxelize import voxelize_mesh
    from training.data.photo import shape_scene

    shape = make_shape(name, 4)
    mesh = shape_scene(shape, np.random.default_rng(0), 64).to_geometry()
    assert mesh.is_watertight and mesh.volume > 0
    assert len(np.unique(mesh.visual.vertex_colors, axis=0)) >= 1
    truth = shape.voxels(R)
    assert iou(voxelize_mesh(mesh, R)[None], truth[None])[0] > 0.7
