"""Photo-like renders of a Shape by sphere tracing its SDF: pure numpy, headless, no GL.

    render(shape, rng, size=64) -> (rgb [S, S, 3] uint8, mask [S, S] uint8 in {0, 1})

Random viewpoint (full azimuth, moderate elevation), random part colours and lighting, and a
background from plain to textured/cluttered, so that an image encoder trained on these copes with
real photos. Rendering is supersampled (default 2x2 rays a pixel) for anti-aliased edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.data.shapes.sdf import Shape

MAX_STEPS = 96
HIT_EPS = 1e-3
BOUND_RADIUS = 1.75  # the normalised shape lies inside this sphere


@dataclass(frozen=True)
class View:
    azimuth: float  # radians around +y, 0 = looking at the front (+z)
    elevation: float  # radians above the horizon
    distance: float
    fov: float  # vertical field of view, radians


def random_view(rng: np.random.Generator) -> View:
    return View(
        azimuth=float(rng.uniform(0.0, 2.0 * math.pi)),
        elevation=float(np.radians(rng.uniform(5.0, 40.0))),
        distance=float(rng.uniform(3.6, 4.3)),
        fov=float(np.radians(rng.uniform(36.0, 44.0))),
    )


def camera_rays(view: View, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera origin [3] and unit ray directions [n*n, 3] (row 0 = top of the image)."""
    ce, se = math.cos(view.elevation), math.sin(view.elevation)
    eye = view.distance * np.array([ce * math.sin(view.azimuth), se, ce * math.cos(view.azimuth)])
    fwd = -eye / np.linalg.norm(eye)
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    half = math.tan(view.fov / 2.0)
    s = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    u, v = np.meshgrid(s * half, -s * half)  # u: columns (x), v: rows (down)
    d = fwd + u.reshape(-1, 1) * right + v.reshape(-1, 1) * up
    return eye, d / np.linalg.norm(d, axis=1, keepdims=True)


def trace(shape: Shape, eye: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sphere tracing. -> hit [N] bool, t [N] distance along each ray."""
    b = dirs @ eye
    disc = b * b - (eye @ eye - BOUND_RADIUS**2)
    t = np.where(disc > 0, -b - np.sqrt(np.maximum(disc, 0.0)), np.inf)
    t_far = np.where(disc > 0, -b + np.sqrt(np.maximum(disc, 0.0)), -np.inf)
    hit = np.zeros(len(dirs), dtype=bool)
    active = np.nonzero(disc > 0)[0]
    for _ in range(MAX_STEPS):
        if active.size == 0:
            break
        d = shape.sdf(eye + t[active, None] * dirs[active])
        done = d < HIT_EPS
        hit[active[done]] = True
        t[active] += np.where(done, 0.0, d)
        active = active[~done & (t[active] < t_far[active])]
    return hit, t


def _normals(shape: Shape, p: np.ndarray, eps: float = 2e-3) -> np.ndarray:
    offsets = np.eye(3) * eps
    grad = np.stack([shape.sdf(p + o) - shape.sdf(p - o) for o in offsets], axis=-1)
    return grad / np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-9)


def _colour(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.uniform(0, 255), rng.uniform(20, 220), rng.uniform(70, 245)]]])
    return np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"))[0, 0] / 255.0


def part_colours(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """A colour per primitive of ``shape`` [P, 3] in [0, 1]: one per named part (the same
    for the whole object a third of the time)."""
    labels = sorted({prim.part for prim in shape.parts})
    same = rng.random() < 0.33
    base = _colour(rng)
    palette = {lab: (base if same else _colour(rng)) for lab in labels}
    return np.stack([palette[prim.part] for prim in shape.parts])


def background(rng: np.random.Generator, n: int) -> np.ndarray:
    """A background [n, n, 3] float in [0, 1]: plain, gradient, texture, clutter or room."""
    kind = rng.integers(0, 5)
    c0, c1 = _colour(rng), _colour(rng)
    if kind == 0:
        return np.broadcast_to(c0, (n, n, 3)).copy()
    if kind == 1:
        a = rng.uniform(0, 2 * math.pi)
        s = np.linspace(-1, 1, n)
        x, y = np.meshgrid(s, s)
        w = ((x * math.cos(a) + y * math.sin(a)) + 1.5) / 3.0
        return c0 * (1 - w[..., None]) + c1 * w[..., None]
    if kind == 2:
        k = int(rng.integers(3, 12))
        low = rng.random((k, k)).astype(np.float32)
        smooth = np.asarray(Image.fromarray(low).resize((n, n), Image.BICUBIC))
        fine = rng.normal(0.0, 0.08, (n, n))
        w = np.clip(smooth + fine, 0, 1)[..., None]
        return c0 * (1 - w) + c1 * w
    img = Image.new("RGB", (n, n), tuple(int(v * 255) for v in c0))
    draw = ImageDraw.Draw(img)
    if kind == 3:  # clutter: random rectangles, ellipses and lines
        for _ in range(int(rng.integers(6, 20))):
            box = (
                sorted(rng.integers(-n // 4, n + n // 4, 2)),
                sorted(rng.integers(-n // 4, n + n // 4, 2)),
            )
            xy = [box[0][0], box[1][0], box[0][1], box[1][1]]
            fill = tuple(int(v * 255) for v in _colour(rng))
            shape_kind = rng.integers(0, 3)
            if shape_kind == 0:
                draw.rectangle(xy, fill=fill)
            elif shape_kind == 1:
                draw.ellipse(xy, fill=fill)
            else:
                draw.line(xy, fill=fill, width=int(rng.integers(1, max(2, n // 16))))
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5)) * n / 64))
    else:  # room: wall above a floor line
        horizon = int(rng.uniform(0.45, 0.8) * n)
        draw.rectangle([0, horizon, n, n], fill=tuple(int(v * 255) for v in c1))
    return np.asarray(img, dtype=np.float64) / 255.0


def render(
    shape: Shape,
    rng: np.random.Generator,
    *,
    size: int = 64,
    supersample: int = 2,
    plain: bool = False,
    view: View | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """-> rgb [size, size, 3] uint8, mask [size, size] uint8 (1 where the object covers >= half
    of the pixel). ``plain`` gives a white background and fixed colours (previews)."""
    view = view or random_view(rng)
    n = size * supersample
    eye, dirs = camera_rays(view, n)
    # 1. albedo per named part (one colour for the whole object a third of the time)
    if plain:
        albedo = np.tile([0.62, 0.66, 0.74], (len(shape.parts), 1))
    else:
        albedo = part_colours(shape, rng)  # [P, 3]
    # 2. lighting: ambient + a key light from the camera's side + a little specular
    light = eye / np.linalg.norm(eye) + (rng.normal(0, 0.6, 3) if not plain else [0.5, 1.0, 0.3])
    light = light / np.linalg.norm(light)
    ambient = 0.35 if plain else float(rng.uniform(0.2, 0.5))

    def shade(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # rays [N, 3] -> rgb, hit
        hit, t = trace(shape, eye, d)
        p = eye + t[hit, None] * d[hit]
        normal = _normals(shape, p)
        diffuse = np.clip(normal @ light, 0, 1)[:, None]
        half_vec = light - d[hit]
        half_vec /= np.linalg.norm(half_vec, axis=1, keepdims=True)
        spec = np.clip(np.sum(normal * half_vec, axis=1), 0, 1)[:, None] ** 24 * 0.25
        rgb = np.zeros((len(d), 3))
        a = albedo[shape.part_index(p)]
        rgb[hit] = np.clip(a * (ambient + (1 - ambient) * diffuse) + spec, 0, 1)
        return rgb, hit

    # 3. one ray a pixel, then all supersamples only where the silhouette crosses the pixel
    sub = dirs.reshape(size, supersample, size, supersample, 3).transpose(0, 2, 1, 3, 4)
    sub = sub.reshape(size * size, supersample * supersample, 3)  # [pixel, sample, 3]
    rgb1, hit1 = shade(sub[:, 0])
    h = hit1.reshape(size, size)
    pad = np.pad(h, 1, mode="edge")
    edge = (
        (pad[:-2, 1:-1] != h) | (pad[2:, 1:-1] != h) | (pad[1:-1, :-2] != h) | (pad[1:-1, 2:] != h)
    ).reshape(-1)
    obj = np.repeat(rgb1[:, None], supersample * supersample, axis=1)
    cover = np.repeat(hit1[:, None].astype(np.float64), supersample * supersample, axis=1)
    if edge.any():
        rgb_e, hit_e = shade(sub[edge].reshape(-1, 3))
        obj[edge] = rgb_e.reshape(-1, supersample * supersample, 3)
        cover[edge] = hit_e.reshape(-1, supersample * supersample)
    cov_s = cover.mean(axis=1).reshape(size, size, 1)
    obj_s = obj.mean(axis=1).reshape(size, size, 3)
    bg = np.ones((size, size, 3)) if plain else background(rng, size)
    colour = np.where(cov_s > 0, obj_s / np.maximum(cov_s, 1e-9), 0.0)
    img = colour * cov_s + bg * (1 - cov_s)
    if not plain:  # sensor noise and exposure jitter
        img = img * rng.uniform(0.85, 1.15) + rng.normal(0, rng.uniform(0, 0.03), img.shape)
    rgb = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    return rgb, (cov_s[..., 0] >= 0.5).astype(np.uint8)
