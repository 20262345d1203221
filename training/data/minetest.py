"""Real models from Debian's minetest-mod-homedecor (models and textures CC-BY-SA-4.0): furniture
meshes as OBJ, textured the way Minetest textures them.

    mesh_files()                       -> every mesh (real_sources.homedecor_models labels them)
    textured_obj(path, name, cache)    -> an OBJ + MTL + textures that trimesh reads

A Minetest mesh carries no materials: its node definition (Lua) lists one "tile" per group of
the OBJ, in order — a texture, optionally with a colour it is multiplied by. ``textured_obj``
reads that list for the node that uses the mesh (string literals, ``{ name = ..., color = ...}``
tables and the ``homedecor.<name>`` materials of homedecor_common) and writes the OBJ again with
one material per group. A tile it cannot resolve (a Lua expression, or a texture from another
mod such as minetest-game's wool and wood) gets a plain colour guessed from its name (wood,
wool, metal), so every model renders with plausible materials. Written by hand: no library reads
Minetest's Lua node definitions, and this needs only their tile lists.

Frame: Minetest meshes are y up with the front towards +z (a chair's back at -z); one node is
one unit; a wall-mounted node's mesh lies on its back and is stood upright
(``rotation_for``). Names come from the file names (``homedecor_kitchen_chair`` -> "kitchen
chair").
"""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

PACKAGE = "minetest-mod-homedecor"
ROOT = Path("/usr/share/games/minetest/mods/homedecor")
LICENCE = "CC-BY-SA-4.0 (Creative Commons Attribution-ShareAlike 4.0)"
CREATOR = "VanessaE and the homedecor_modpack contributors"
# file stem -> category where the name alone says it wrongly or not at all
OVERRIDES: dict[str, str | None] = {
    "homedecor_desk_globe": None,  # a globe on a stand
    "homedecor_3d_vessels_shelf": None,  # a wall shelf of bottles
    "plasma_lamp": None,  # a glass cube
    "homedecor_oil_lamp": None,  # a lantern
    # pedestal tables drawn as crossed planes: their solid fill is a lattice, not a table
    "homedecor_table_large_square": None,
    "homedecor_table_small_round": None,
    "homedecor_table_small_square": None,
    "homedecor_3d_bookshelf": "shelf",
    "homedecor_openframe_bookshelf": "shelf",
    "lavalamp": "lamp",
}
_PREFIXES = ("homedecor_3d_", "homedecor_", "lrfurn_", "forniture_")
# plain colours (RGB 0-1) for tiles whose texture is not in this package, by words in the name
_GUESSES = (
    ("wood", (0.55, 0.36, 0.2)),
    ("wool", (0.9, 0.9, 0.88)),
    ("white", (0.93, 0.93, 0.91)),
    ("metal", (0.5, 0.5, 0.52)),
    ("black", (0.12, 0.12, 0.13)),
    ("glass", (0.8, 0.85, 0.9)),
)
_DEFAULT = (0.55, 0.36, 0.2)  # most of the furniture is wood


def display_name(stem: str) -> str:
    for p in _PREFIXES:
        if stem.startswith(p):
            stem = stem[len(p) :]
            break
    return stem.replace("_", " ")


def mesh_files(root: Path = ROOT) -> list[Path]:
    """Every mesh of the modpack, in a stable order (real_sources labels them)."""
    return sorted(Path(root).glob("*/models/*.obj"))


@functools.lru_cache(maxsize=4)
def _lua_sources(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*.lua")))


def _materials(lua: str) -> dict[str, tuple[str, int | None]]:
    """homedecor_common's ``homedecor.<name> = { name = "x.png", color = 0x... }`` materials."""
    out = {}
    pattern = (
        r'homedecor\.(\w+)\s*=\s*\{\s*name\s*=\s*"([^"]+)"'
        r"(?:\s*,\s*color\s*=\s*(0x[0-9a-fA-F]+))?"
    )
    for key, name, colour in re.findall(pattern, lua):
        out[key] = (name, int(colour, 16) if colour else None)
    return out


def _block(text: str, start: int) -> str:
    """The balanced ``{ ... }`` that opens at or after ``start``."""
    i = text.index("{", start)
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return text[i + 1 :]


def tiles_for(mesh: str, lua: str) -> list[tuple[str | None, int | None, str]]:
    """The tile list of the first node that uses ``mesh``: (texture file name or None, colour
    multiplier 0xAARRGGBB or None, the tile's text) per OBJ group."""
    definition = _definition(mesh, lua)
    tiles_at = definition.find("tiles")
    if tiles_at < 0:
        return []
    body = _block(definition, tiles_at)
    materials = _materials(lua)
    out: list[tuple[str | None, int | None, str]] = []
    for entry in _split_top_level(body):
        text = entry.strip()
        if not text:
            continue
        name = colour = None
        if text.startswith("{"):
            m = re.search(r'name\s*=\s*"([^"]+)"', text)
            name = m.group(1) if m else None
            c = re.search(r"color\s*=\s*(0x[0-9a-fA-F]+)", text)
            colour = int(c.group(1), 16) if c else None
        elif text.startswith('"'):
            name = text.strip('"')
        elif text.startswith("homedecor.") and text[10:] in materials:
            name, colour = materials[text[10:]]
        base = name.split("^")[0].strip("()") if name else None
        out.append((base or None, colour, text))
    return out


def _definition(mesh: str, lua: str) -> str:
    """The text of the first node definition that uses ``mesh`` ("" when none does)."""
    at = re.search(rf'mesh\s*=\s*"{re.escape(mesh)}"', lua)
    if at is None:
        return ""
    start = max(lua.rfind("register", 0, at.start()), 0)
    end = lua.find("register", at.end())
    return lua[start : end if end > 0 else len(lua)]


# A wall-mounted node's mesh is modelled lying on its back: the placement turns it upright.
# Turned here instead, -90 degrees about x (row-major 3x3): y -> z, z -> -y.
UPRIGHT = (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0)


def rotation_for(path: Path, root: Path = ROOT) -> tuple[float, ...] | None:
    """The rotation that stands the mesh upright, or None when it already is."""
    definition = _definition(Path(path).name, _lua_sources(Path(root)))
    wallmounted = re.search(r'paramtype2\s*=\s*"(color)?wallmounted"', definition)
    return UPRIGHT if wallmounted else None


def _split_top_level(body: str) -> list[str]:
    """The top-level comma-separated entries of a Lua table's body, its comments removed."""
    parts, depth, cur = [], 0, []
    for ch in re.sub(r"--[^\n]*", "", body):
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def _guess(text: str) -> tuple[float, float, float]:
    low = text.lower()
    for word, rgb in _GUESSES:
        if word in low:
            return rgb
    return _DEFAULT


def textured_obj(path: Path, name: str, cache: Path, root: Path = ROOT) -> Path:
    """The mesh at ``path`` (named ``name``) as an OBJ with an MTL and its textures, written
    once into ``cache``."""
    src = Path(path)
    out = Path(cache) / "minetest" / src.stem
    target = out / src.name
    if target.is_file():
        return target
    out.mkdir(parents=True, exist_ok=True)
    textures = {p.name: p for p in Path(root).rglob("textures/*.png")}
    tiles = tiles_for(src.name, _lua_sources(Path(root)))
    lines = src.read_text(errors="replace").splitlines()
    mtl, body, group = [], [f"mtllib {src.stem}.mtl"], 0
    for line in lines:
        if line.startswith("mtllib") or line.startswith("usemtl"):
            continue
        body.append(line)
        if line.startswith("g ") or line.startswith("o "):
            body.append(f"usemtl m{group}")
            group += 1
    for i in range(max(group, 1)):
        texture, colour, text = tiles[i] if i < len(tiles) else (None, None, "")
        rgb = (
            tuple(((colour >> s) & 0xFF) / 255 for s in (16, 8, 0))
            if colour is not None
            else (1.0, 1.0, 1.0)
        )
        mtl += [f"newmtl m{i}"]
        if texture in textures:
            shutil.copyfile(textures[texture], out / texture)
            mtl += [f"Kd {rgb[0]:.3f} {rgb[1]:.3f} {rgb[2]:.3f}", f"map_Kd {texture}"]
        else:
            r, g, b = _guess(text or name) if colour is None else rgb
            mtl += [f"Kd {r:.3f} {g:.3f} {b:.3f}"]
    if group == 0:  # no groups: the whole mesh takes the first tile
        body.insert(1, "usemtl m0")
    (out / f"{src.stem}.mtl").write_text("\n".join(mtl) + "\n")
    target.write_text("\n".join(body) + "\n")
    return target
