"""Photo-like renders of real models, and of the procedural shapes (shape_scene: a mesh of the
shape coloured by part), with pyrender (OpenGL through Mesa's OSMesa, headless).

    Photographer(scene, rng).shoot(rng, background) -> (rgb [S, S, 3] uint8, mask [S, S] uint8)

pyrender draws the model's own materials and textures (trimesh hands them over) with real
lighting; we only pick the camera, the lights and the background, the way people photograph
objects: elevation 0-45 degrees, any azimuth, focal lengths from wide to long, the object
filling 55-95% of the frame, on white, plain, gradient, textured or photographic backgrounds.
Chosen over our own sphere tracer (analytic shapes only) and Blender (a 300 MB install and a
process per scene); OSMesa needs no display or GPU (Debian: libosmesa6).

Background pools are kept apart: training draws textures from the training packages' own
.sh3f libraries; held-out evaluation renders use photographs from Debian's mate-backgrounds,
which no training step ever sees.
"""

from __future__ import annotations

import functools
import math
import os
import zipfile
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")  # before pyrender imports OpenGL

import numpy as np
import trimesh
from PIL import Image

from app.images import TARGET_FILL
from training.data.real_sources import SH3D_ROOT
from training.data.shapes.render import background as procedural_background
from training.data.shapes.render import part_colours
from training.data.shapes.sdf import Shape, cell_centres

SUPERSAMPLE = 2
BACKGROUND_KINDS = ("white", "plain", "gradient", "photo", "clutter")
BACKGROUND_SHARES = (0.3, 0.1, 0.15, 0.3, 0.15)  # training renders; product photos are common
# held-out wide photographs (shoot_wide): the object's bounding sphere spans this share of the
# frame's height; its bounding box then spans 0.16-0.37 of the frame's side (median 0.24; 5-95%
# of the real validation models' shots)
WIDE_FILL = (0.25, 0.5)
EVAL_BACKGROUNDS = Path("/usr/share/backgrounds/mate")  # Debian mate-backgrounds
# plausible single colours for models drawn without their own materials: wood, white,
# black, grey, fabric reds/blues/greens, metal
PALETTE = np.array([
    [0.55, 0.36, 0.2], [0.72, 0.53, 0.33], [0.93, 0.93, 0.91], [0.12, 0.12, 0.13],
    [0.5, 0.5, 0.52], [0.6, 0.15, 0.12], [0.18, 0.3, 0.55], [0.3, 0.45, 0.3], [0.75, 0.75, 0.78],
])  # fmt: skip


def load_backgrounds(paths: list[Path], size: int, limit: int = 400) -> list[np.ndarray]:
    """Image files -> square crops [size, size, 3] float in [0, 1] (centre crop, resized)."""
    out = []
    for p in paths[:limit]:
        try:
            im = Image.open(p).convert("RGB")
        except OSError:
            continue
        s = min(im.size)
        if s < 64:
            continue
        left, top = (im.width - s) // 2, (im.height - s) // 2
        im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.BILINEAR)
        out.append(np.asarray(im, dtype=np.float32) / 255.0)
    return out


def training_textures(sh3f_files: list[Path], size: int, limit: int = 300) -> list[np.ndarray]:
    """Texture images (wood, fabric, tiles, ...) from inside the .sh3f libraries."""
    import io

    out = []
    for lib in sorted(sh3f_files):
        with zipfile.ZipFile(lib) as z:
            for n in sorted(z.namelist()):
                if n.lower().endswith((".jpg", ".jpeg")) and len(out) < limit:
                    try:
                        im = Image.open(io.BytesIO(z.read(n))).convert("RGB")
                    except OSError:
                        continue
                    if min(im.size) >= 128:
                        s = min(im.size)
                        im = im.crop((0, 0, s, s)).resize((size, size), Image.BILINEAR)
                        out.append(np.asarray(im, dtype=np.float32) / 255.0)
    return out


@functools.lru_cache(maxsize=2)
def training_pool(n: int) -> list[np.ndarray]:
    """The training backgrounds' textures at [n, n] (once per process): the furniture
    libraries' textures, or none where sweethome3d-furniture is not installed (then the
    "photo" kind falls back to gradients)."""
    return training_textures(sorted(SH3D_ROOT.glob("*.sh3f")), n)


def _sdf_near_surface(shape: Shape, r: int, k: int = 4) -> np.ndarray:
    """The shape's signed distance at the centres of an [r, r, r] grid, exact within a band
    around the surface and the coarse grid's value (r / k a side) elsewhere: a distance changes
    by at most the distance moved, so a point whose coarse cell's centre is farther from the
    surface than the cell's half diagonal (with a margin, the ellipsoid's distance being a
    bound) is on the same side; marching cubes reads only the sign there. ~5x fewer
    evaluations at r = 64."""
    rc = r // k
    coarse = shape.sdf(cell_centres(rc)).reshape(rc, rc, rc)
    sdf = coarse.repeat(k, 0).repeat(k, 1).repeat(k, 2)
    near = np.abs(sdf) <= 1.5 * np.sqrt(3) / rc + 4.0 / r
    sdf[near] = shape.sdf(cell_centres(r)[near.reshape(-1)])
    return sdf


def shape_scene(shape: Shape, rng: np.random.Generator, resolution: int) -> trimesh.Scene:
    """A procedural shape as a mesh for the Photographer: marching cubes of its signed distance
    (carved parts included) on a ``resolution`` grid over its frame (photographs of S pixels
    need no finer one than S), at half a grid step outside the surface, as the voxels are set
    (Shape.voxels), so that no part thinner than a step is lost; every vertex the colour of its
    nearest part (colours drawn as the sphere tracer draws them)."""
    from skimage import measure

    r = resolution
    sdf = _sdf_near_surface(shape, r)
    # a closed surface: the field is outside past the grid's edge
    padded = np.pad(sdf, 1, constant_values=1.0)
    verts, faces, _, _ = measure.marching_cubes(padded, level=1.0 / r)  # half a step (2 / r)
    verts = (verts - 1 + 0.5) / r * 2.0 - 1.0  # padded voxel index -> the frame's [-1, 1]
    colours = part_colours(shape, rng)[shape.part_index(verts)]
    rgba = np.concatenate([colours, np.ones((len(colours), 1))], axis=1)
    mesh = trimesh.Trimesh(verts, faces, vertex_colors=(rgba * 255).astype(np.uint8))
    return trimesh.Scene(mesh)


@functools.lru_cache(maxsize=1)
def evaluation_pool(n: int) -> list[np.ndarray]:
    """evaluation_photos(n), once per process (the workers rendering held-out models)."""
    return evaluation_photos(n)


def evaluation_photos(size: int) -> list[np.ndarray]:
    files = sorted(p for p in EVAL_BACKGROUNDS.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    if not files:
        raise FileNotFoundError(
            f"no photographs under {EVAL_BACKGROUNDS}: apt-get install mate-backgrounds"
        )
    return load_backgrounds(files, size)


def pick_background(
    rng: np.random.Generator, n: int, photos: list[np.ndarray], *, kind: str | None = None
) -> tuple[str, np.ndarray]:
    """-> (kind, [n, n, 3] float in [0, 1]); kinds: white, plain, gradient, photo, clutter."""
    kind = kind or str(
        rng.choice(
            ["white", "plain", "gradient", "photo", "clutter"], p=[0.3, 0.1, 0.15, 0.3, 0.15]
        )
    )
    if kind == "white":
        return kind, np.full((n, n, 3), rng.uniform(0.93, 1.0))
    if kind == "plain":
        return kind, np.broadcast_to(rng.uniform(0.55, 1.0, 3), (n, n, 3)).copy()
    if kind == "photo" and photos:
        im = photos[int(rng.integers(len(photos)))]
        im = np.asarray(Image.fromarray((im * 255).astype(np.uint8)).resize((n, n)))
        return kind, (im[:, ::-1] if rng.random() < 0.5 else im) / 255.0
    return kind, procedural_background(rng, n) if kind == "clutter" else _gradient(rng, n)


def _gradient(rng: np.random.Generator, n: int) -> np.ndarray:
    c0, c1 = rng.uniform(0.5, 1.0, 3), rng.uniform(0.3, 1.0, 3)
    w = np.linspace(0, 1, n)[:, None, None] * np.ones((1, n, 1))
    return c0 * (1 - w) + c1 * w


def _crop_box(hit: np.ndarray, fill: float, rng: np.random.Generator) -> tuple[int, ...]:
    """A square (x0, y0, x1, y1) around the covered pixels, which span ``fill`` of its side,
    shifted a little at random."""
    ys, xs = np.nonzero(hit)
    if len(xs) == 0:
        return (0, 0, hit.shape[1], hit.shape[0])
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = max(x1 - x0, y1 - y0) / fill
    cx = (x0 + x1) / 2 + rng.uniform(-0.05, 0.05) * side
    cy = (y0 + y1) / 2 + rng.uniform(-0.05, 0.05) * side
    half = side / 2
    return tuple(round(v) for v in (cx - half, cy - half, cx + half, cy + half))


def _crop(img: Image.Image, box: tuple[int, ...], background: Image.Image | None) -> Image.Image:
    """Crop ``box`` (may reach past the image); outside, the background stretched to the box
    (or black for a mask)."""
    w, h = box[2] - box[0], box[3] - box[1]
    canvas = background.resize((w, h)) if background is not None else Image.new(img.mode, (w, h))
    canvas.paste(img, (-box[0], -box[1]))
    return canvas


def _to_pyrender(pr, geom: trimesh.Trimesh, colour: np.ndarray | None) -> object:
    """trimesh geometry -> pyrender mesh: its own material, face colours or texture, or one
    plain ``colour``. A texture without texture coordinates (it happens in real files, and
    pyrender's shader then fails to compile) is drawn in the material's main colour."""
    visual, smooth = geom.visual, True
    if colour is None and visual.kind == "texture":
        uv = getattr(visual, "uv", None)
        if uv is None or len(uv) != len(geom.vertices):
            main = getattr(visual.material, "main_color", None)
            colour = np.asarray(main[:3], dtype=np.float64) / 255.0 if main is not None else None
            colour = colour if colour is not None else np.array([0.6, 0.6, 0.6])
    if colour is None and visual.kind == "face":
        smooth = False  # pyrender draws face colours on unshared vertices only
    if colour is None:
        return pr.Mesh.from_trimesh(geom, smooth=smooth)
    plain = geom.copy()
    plain.visual = trimesh.visual.ColorVisuals(plain)
    mat = pr.MetallicRoughnessMaterial(
        baseColorFactor=[*np.clip(colour, 0, 1), 1.0], metallicFactor=0.1, roughnessFactor=0.7
    )
    return pr.Mesh.from_trimesh(plain, material=mat)


def _direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector [3]: azimuth around +y from +z, elevation above the horizon (radians)."""
    ce = math.cos(elevation)
    return np.array([ce * math.sin(azimuth), math.sin(elevation), ce * math.cos(azimuth)])


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera pose (OpenGL: the camera looks down its -z) at ``eye`` facing ``target``."""
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= max(np.linalg.norm(right), 1e-9)
    up = np.cross(right, fwd)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, -fwd, eye
    return pose


class Photographer:
    """One model's pyrender scenes (its own materials, and one plain colour), shot many times."""

    def __init__(self, scene: trimesh.Scene, *, size: int = 64, renderer=None) -> None:
        """``renderer``: a pyrender OffscreenRenderer of side size * SUPERSAMPLE to draw with
        (shared_renderer: one per process), else one of its own, deleted by ``close``."""
        import pyrender

        self._pr = pyrender
        self.size = size
        self.radius = float(np.linalg.norm(scene.bounds, axis=1).max())
        self._scene = scene
        self._own: pyrender.Scene | None = None
        self._owns_renderer = renderer is None
        n = size * SUPERSAMPLE
        self._renderer = renderer or pyrender.OffscreenRenderer(n, n)

    def _build(self, colour: np.ndarray | None) -> object:
        pr = self._pr
        ps = pr.Scene(bg_color=[0, 0, 0, 0], ambient_light=[0.0, 0.0, 0.0])
        for node in self._scene.graph.nodes_geometry:
            transform, name = self._scene.graph[node]
            geom = self._scene.geometry[name]
            if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
                continue
            ps.add(_to_pyrender(pr, geom, colour), pose=transform)
        return ps

    def shoot(
        self,
        rng: np.random.Generator,
        photos: list[np.ndarray],
        *,
        background: str | None = None,
        own_materials: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """-> rgb [S, S, 3] uint8, mask [S, S] uint8 in {0, 1}, background kind."""
        pr = self._pr
        own = rng.random() < 0.7 if own_materials is None else own_materials
        if own:
            self._own = self._own or self._build(None)
            ps = self._own
        else:
            c = PALETTE[int(rng.integers(len(PALETTE)))] * rng.uniform(0.8, 1.1)
            ps = self._build(np.clip(c, 0, 1))
        fov = math.radians(rng.uniform(25.0, 55.0))
        fill = rng.uniform(0.55, 0.95)
        dist = self.radius / math.sin(fill * fov / 2)
        az, el = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(0.0, 45.0))
        eye = dist * np.array(
            [math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)]
        )
        added = [
            ps.add(
                pr.PerspectiveCamera(yfov=fov, znear=0.05, zfar=dist + 4),
                pose=_look_at(eye, np.zeros(3)),
            )
        ]
        rgb, depth = self._render(ps, added, rng, az)
        n = self.size * SUPERSAMPLE
        kind, bg = pick_background(rng, n, photos, kind=background)
        hit = depth > 0  # coverage; edges are anti-aliased by the box down-sampling below
        alpha = hit[..., None].astype(np.float64)
        img = rgb / 255.0 * alpha + bg * (1 - alpha)
        img = img * rng.uniform(0.9, 1.1) + rng.normal(0, rng.uniform(0, 0.02), img.shape)
        # frame it as the service frames an upload (app/images.py): a square around the object
        # that it fills TARGET_FILL of (jittered), background continued past the render's edge
        box = _crop_box(hit, TARGET_FILL * rng.uniform(0.85, 1.1), rng)
        full = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
        cover = Image.fromarray(hit.astype(np.uint8) * 255)
        small = _crop(full, box, Image.fromarray((bg * 255).astype(np.uint8)))
        mask = _crop(cover, box, None)
        small = small.resize((self.size, self.size), Image.BOX)
        mask = mask.resize((self.size,) * 2, Image.BOX)
        return np.asarray(small), (np.asarray(mask) >= 128).astype(np.uint8), kind

    def _render(self, ps, added: list, rng: np.random.Generator, az: float) -> tuple:
        """Lights the scene (a key light from the camera's side and above, a weaker fill light,
        ambient), renders it -> (rgb, depth) at the renderer's size; ``added`` (the camera) and
        the lights are taken out again."""
        pr = self._pr
        for strength in (rng.uniform(2.5, 5.0), rng.uniform(0.5, 1.5)):
            la = az + rng.normal(0, 1.0)
            le = math.radians(rng.uniform(20, 80))
            d = np.array([math.cos(le) * math.sin(la), math.sin(le), math.cos(le) * math.cos(la)])
            added.append(
                ps.add(pr.DirectionalLight(intensity=strength), pose=_look_at(d * 3, np.zeros(3)))
            )
        ps.ambient_light = np.full(3, rng.uniform(0.15, 0.45))
        try:
            return self._renderer.render(ps)
        finally:
            for node in added:
                ps.remove_node(node)

    def shoot_wide(
        self, rng: np.random.Generator, photos: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """A photo nobody cropped to the object: its own materials, the object small
        (WIDE_FILL of the frame) and off-centre on a photograph, the whole frame at the
        renderer's size -> rgb [N, N, 3] uint8, mask [N, N] bool (N = 2 S)."""
        pr = self._pr
        self._own = self._own or self._build(None)
        fov = math.radians(rng.uniform(35.0, 55.0))
        fill = rng.uniform(*WIDE_FILL)
        dist = self.radius / math.sin(fill * fov / 2)
        az, el = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(0.0, 45.0))
        eye = dist * np.array(
            [math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)]
        )
        # look past the object, so that it sits anywhere in the frame
        forward = -eye / np.linalg.norm(eye)
        right = np.cross(forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right) + 1e-9
        up = np.cross(right, forward)
        reach = dist * math.tan(fov / 2) * (1 - fill) * 0.8
        target = right * rng.uniform(-reach, reach) + up * rng.uniform(-reach, reach)
        camera = pr.PerspectiveCamera(yfov=fov, znear=0.05, zfar=dist + 4)
        added = [self._own.add(camera, pose=_look_at(eye + target, target))]
        rgb, depth = self._render(self._own, added, rng, az)
        n = self.size * SUPERSAMPLE
        _, bg = pick_background(rng, n, photos, kind="photo")
        hit = depth > 0
        alpha = hit[..., None].astype(np.float64)
        img = rgb / 255.0 * alpha + bg * (1 - alpha)
        return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), hit

    def close(self) -> None:
        if self._owns_renderer:
            self._renderer.delete()


@functools.lru_cache(maxsize=2)
def shared_renderer(size: int) -> object:
    """One offscreen renderer per process for photographs of side ``size`` (making one costs
    more than photographing a procedural shape twice)."""
    import pyrender

    return pyrender.OffscreenRenderer(size * SUPERSAMPLE, size * SUPERSAMPLE)
