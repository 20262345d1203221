"""minetest-mod-homedecor's meshes on a tiny modpack written here in its own layout: labelled
from file names, textured from the node definition's tiles, and a wall-mounted mesh (modelled
lying on its back) stood upright."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from app.voxelize import voxelize_mesh
from training.data import minetest
from training.data.real_convert import load_scene
from training.data.real_sources import homedecor_models

# a chair modelled lying on its back as a wall-mounted node is: seat in the x-y plane at
# z = -0.1..0 (its "up" is +z), back at +y (y = 0.4..0.5, reaching z = 0.8); two groups
LUA = """
homedecor.plain_wood = { name = "homedecor_generic_wood_plain.png", color = 0xffa76820 }
homedecor.register("kitchen_chair_wood", {
    description = "Kitchen chair",
    mesh = "homedecor_kitchen_chair.obj",
    tiles = {
        homedecor.plain_wood,  -- the frame (a comment between tiles drops no tile)
        "wool_white.png",  -- from another mod: not in this package
    },
    paramtype2 = "colorwallmounted",
})
homedecor.register("table_lamp", {
    mesh = "homedecor_table_lamp.obj",
    tiles = { { name = "homedecor_generic_wood_plain.png", color = 0xffffffff } },
    paramtype2 = "facedir",
})
homedecor.register("coffee", { mesh = "homedecor_coffeemaker.obj", tiles = { "x.png" } })
"""


def _box_obj(boxes: list[tuple[list[float], list[float]]]) -> str:
    """One OBJ group per box (extents, centre)."""
    lines, offset = [], 0
    for i, (extents, centre) in enumerate(boxes):
        box = trimesh.creation.box(extents=extents)
        box.apply_translation(centre)
        lines.append(f"g {i + 1}")
        lines += [f"v {x} {y} {z}" for x, y, z in box.vertices]
        lines += [f"f {a + 1 + offset} {b + 1 + offset} {c + 1 + offset}" for a, b, c in box.faces]
        offset += len(box.vertices)
    return "\n".join(lines) + "\n"


def _modpack(root: Path) -> Path:
    mod = root / "homedecor_seating"
    (mod / "models").mkdir(parents=True)
    (mod / "textures").mkdir()
    (mod / "init.lua").write_text(LUA)
    Image.new("RGB", (16, 16), (200, 200, 200)).save(
        mod / "textures" / "homedecor_generic_wood_plain.png"
    )
    seat_and_back = [([1.0, 1.0, 0.1], [0, 0, -0.05]), ([1.0, 0.1, 0.8], [0, 0.45, 0.4])]
    (mod / "models" / "homedecor_kitchen_chair.obj").write_text(_box_obj(seat_and_back))
    (mod / "models" / "homedecor_table_lamp.obj").write_text(
        _box_obj([([0.3, 1.0, 0.3], [0, 0, 0])])
    )
    (mod / "models" / "homedecor_coffeemaker.obj").write_text(_box_obj([([1, 1, 1], [0, 0, 0])]))
    return root


def test_labelled_from_file_names_and_wall_mounted_meshes_stood_up(tmp_path: Path) -> None:
    root = _modpack(tmp_path / "homedecor")
    models = {m.name: m for m in homedecor_models(root)}
    assert set(models) == {"kitchen chair", "table lamp"}  # the coffee maker is none of ours
    assert models["kitchen chair"].category == "chair" and models["table lamp"].category == "lamp"
    assert models["kitchen chair"].rotation == minetest.UPRIGHT
    assert models["table lamp"].rotation == (1, 0, 0, 0, 1, 0, 0, 0, 1)
    assert models["kitchen chair"].licence.startswith("CC-BY-SA-4.0")
    # stood up: the back (modelled along +z) now rises along +y, behind the seat (-z; the
    # real chairs, beds and sofas were checked the same way in pictures)
    scene = load_scene(models["kitchen chair"], tmp_path / "cache")
    v = voxelize_mesh(scene.to_mesh(), 16)
    ys, _, zs = np.nonzero(v.transpose(1, 0, 2))  # y, x, z
    top = ys >= np.percentile(ys, 80)
    assert zs[top].mean() < zs.mean(), "the back should be at the rear (-z), above the seat"
    assert ys.max() - ys.min() > 8  # tall: the back stands up


def test_tiles_become_materials(tmp_path: Path) -> None:
    root = _modpack(tmp_path / "homedecor")
    chair = next(m for m in homedecor_models(root) if m.name == "kitchen chair")
    obj = minetest.textured_obj(Path(chair.path), chair.name, tmp_path / "cache", root)
    mtl = (obj.parent / "homedecor_kitchen_chair.mtl").read_text()
    # tile 1: the package's texture, multiplied by homedecor.plain_wood's colour (0xa76820)
    assert "map_Kd homedecor_generic_wood_plain.png" in mtl and "Kd 0.655 0.408 0.125" in mtl
    assert (obj.parent / "homedecor_generic_wood_plain.png").is_file()
    # tile 2: wool from another mod: a plain off-white guessed from its name
    assert "newmtl m1\nKd 0.900 0.900 0.880" in mtl
    scene = trimesh.load(obj, force="scene")
    assert len(scene.geometry) == 2
    kinds = sorted(g.visual.kind or "" for g in scene.geometry.values())
    assert "texture" in kinds
