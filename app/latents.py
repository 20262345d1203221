"""Latent vectors in numpy: seeds, interpolation, arithmetic, named concepts. No model here.

Every function returns float32 arrays; shapes are noted as [Z] (one latent) or [N, Z].
"""

from __future__ import annotations

import itertools

import numpy as np

MAX_SEED = 2**63 - 1


class LatentError(ValueError):
    """A latent request that cannot be served; the message says what to change."""


def from_seed(seed: int, size: int, *, std: float = 1.0, temperature: float = 1.0) -> np.ndarray:
    """The latent of a seed: N(0, (std * temperature)^2), identical on every machine. -> [Z]"""
    if not 0 <= seed <= MAX_SEED:
        raise LatentError(f"seed must be in [0, {MAX_SEED}], got {seed}")
    z = np.random.default_rng(seed).standard_normal(size)
    return (z * std * temperature).astype(np.float32)


def check_latent(z: list[float] | np.ndarray, size: int) -> np.ndarray:
    """A client-supplied latent -> [Z] float32, or LatentError naming the problem."""
    arr = np.asarray(z, dtype=np.float64)
    if arr.shape != (size,):
        raise LatentError(f"a latent must have {size} numbers, got shape {list(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise LatentError("a latent must contain only finite numbers (no NaN or infinity)")
    return arr.astype(np.float32)


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """a, b [Z]; t [N] in [0, 1] -> [N, Z]."""
    t = np.asarray(t, dtype=np.float32)[:, None]
    return ((1 - t) * a + t * b).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation (keeps the norm typical of prior samples). -> [N, Z];
    falls back to lerp when a and b are (anti)parallel or zero, where slerp is undefined."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return lerp(a, b, t)
    cos = float(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
    omega = np.arccos(cos)
    if np.sin(omega) < 1e-6:
        return lerp(a, b, t)
    t = np.asarray(t, dtype=np.float64)[:, None]
    out = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return out.astype(np.float32)


def path(keyframes: list[np.ndarray], steps: int, *, method: str = "slerp") -> np.ndarray:
    """Frames through all keyframes: ``steps`` frames per segment including its start, plus the
    last keyframe. -> [(K - 1) * steps + 1, Z]"""
    if len(keyframes) < 2:
        raise LatentError("interpolation needs at least two keyframes")
    fn = slerp if method == "slerp" else lerp
    t = np.arange(steps) / steps
    frames = [fn(a, b, t) for a, b in itertools.pairwise(keyframes)]
    return np.concatenate([*frames, keyframes[-1][None].astype(np.float32)])


def weighted_sum(terms: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """sum(w * z) over (w, z [Z]) -> [Z]."""
    if not terms:
        raise LatentError("arithmetic needs at least one term")
    return np.sum([w * z for w, z in terms], axis=0).astype(np.float32)


class Concepts:
    """Named latent vectors from the bundle's concepts file."""

    def __init__(self, vectors: dict[str, np.ndarray], size: int) -> None:
        bad = [k for k, v in vectors.items() if np.asarray(v).shape != (size,)]
        if bad:
            raise LatentError(f"concepts {bad} do not have the latent size {size}")
        self.vectors = {k: np.asarray(v, dtype=np.float32) for k, v in vectors.items()}

    @classmethod
    def load(cls, path, size: int) -> Concepts:
        with np.load(path) as data:
            return cls({k: data[k] for k in data.files}, size)

    def names(self) -> list[str]:
        return sorted(self.vectors)

    def get(self, name: str) -> np.ndarray:
        try:
            return self.vectors[name]
        except KeyError:
            raise LatentError(
                f"unknown concept {name!r}; known concepts: {', '.join(self.names())}"
            ) from None


def resolve(ref, concepts: Concepts, size: int, *, std: float = 1.0) -> np.ndarray:
    """A request's latent reference (seed | latent | concept | mean_of) -> [Z]."""
    if ref.seed is not None:
        return from_seed(ref.seed, size, std=std)
    if ref.latent is not None:
        return check_latent(ref.latent, size)
    if ref.concept is not None:
        return concepts.get(ref.concept)
    return np.mean([resolve(r, concepts, size, std=std) for r in ref.mean_of], axis=0).astype(
        np.float32
    )
