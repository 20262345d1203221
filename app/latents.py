"""Latent vectors in numpy: seeds, interpolation, arithmetic, named concepts. No model here.

Every function returns float32 arrays; shapes are noted as [Z] (one latent) or [N, Z].
"""

from __future__ import annotations

import itertools

import numpy as np

MAX_SEED = 2**63 - 1


class LatentError(ValueError):
    """A latent request that cannot be served; the message says what to change."""


def seed_rng(seed: int) -> np.random.Generator:
    """The random stream a seed names (PCG64: identical on every machine)."""
    if not 0 <= seed <= MAX_SEED:
        raise LatentError(f"seed must be in [0, {MAX_SEED}], got {seed}")
    return np.random.default_rng(seed)


def from_seed(seed: int, size: int, *, std: float = 1.0, temperature: float = 1.0) -> np.ndarray:
    """The latent of a seed: N(0, (std * temperature)^2), identical on every machine. -> [Z]"""
    z = seed_rng(seed).standard_normal(size)
    return (z * std * temperature).astype(np.float32)


def check_latent(z: list[float] | np.ndarray, size: int) -> np.ndarray:
    """A client-supplied latent -> [Z] float32, or LatentError naming the problem."""
    arr = np.asarray(z, dtype=np.float64)
    if arr.shape != (size,):
        raise LatentError(f"a latent must have {size} numbers, got shape {list(arr.shape)}")
    out = arr.astype(np.float32)
    if not np.all(np.isfinite(out)):  # after the cast: 1e39 is finite in float64, not float32
        raise LatentError(
            "a latent must contain only finite float32 numbers (no NaN, no infinity, "
            "magnitudes below 3.4e38)"
        )
    return out


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """a, b [Z]; t [N] in [0, 1] -> [N, Z]."""
    t = np.asarray(t, dtype=np.float64)[:, None]
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return ((1 - t) * a + t * b).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation (keeps the norm typical of prior samples). -> [N, Z];
    falls back to lerp when a and b are (anti)parallel or zero, where slerp is undefined."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)  # norms of float32 overflow
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
    out = np.concatenate([*frames, keyframes[-1][None].astype(np.float32)])
    if not np.isfinite(out).all():  # e.g. keyframes near float32's limit, cast after arithmetic
        raise LatentError("the path between these keyframes leaves float32; use smaller latents")
    return out


def weighted_sum(terms: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """sum(w * z) over (w, z [Z]) -> [Z]."""
    if not terms:
        raise LatentError("arithmetic needs at least one term")
    out = np.sum([w * np.asarray(z, np.float64) for w, z in terms], axis=0).astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise LatentError("the weighted sum overflows float32: use smaller weights or latents")
    return out


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


SOURCES = ("any", "real", "procedural")  # what a prior sample may be drawn from
NO_KERNELS = "this bundle's prior has no real-model kernels; use source any"


class MixturePrior:
    """The bundle's sampling prior (role "prior" file): a Gaussian mixture over latents, and
    optionally kernels around the codes of real training models. Sampling from it gives latents
    where the generator was trained, unlike N(0, I) when the encoder's codes do not fill the
    standard normal. Deterministic per seed.

    Mixture components: weights [K], means [K, Z], chol [K, Z, Z] (lower-triangular), names
    [K]. Kernels (optional; a kernel density estimate, one per real model): kernel_codes [M, Z],
    kernel_scales [M, Z] (the per-dimension spread of a sample around its code), kernel_names
    [M], and kernel_weight, the share of samples drawn from them. ``source`` "real" samples only
    the kernels, "procedural" only the mixture, "any" both by their weights."""

    def __init__(
        self,
        weights: np.ndarray,
        means: np.ndarray,
        chol: np.ndarray,
        names: list[str],
        *,
        kernel_codes: np.ndarray | None = None,
        kernel_scales: np.ndarray | None = None,
        kernel_names: list[str] | None = None,
        kernel_weight: float = 0.0,
    ) -> None:
        k, z = means.shape
        if weights.shape != (k,) or chol.shape != (k, z, z) or len(names) != k:
            raise LatentError("prior file: weights [K], means [K, Z], chol [K, Z, Z], names [K]")
        self.weights = weights.astype(np.float64) / weights.sum()
        self.means, self.chol, self.names = means.astype(np.float32), chol.astype(np.float32), names
        m = 0 if kernel_codes is None else len(kernel_codes)
        if m and (
            kernel_codes.shape != (m, z)
            or kernel_scales is None
            or kernel_scales.shape != (m, z)
            or len(kernel_names or []) != m
            or not 0 < kernel_weight <= 1
        ):
            raise LatentError(
                "prior file: kernel_codes and kernel_scales [M, Z], kernel_names [M] and "
                "kernel_weight in (0, 1]"
            )
        none = np.zeros((0, z), np.float32)
        self.kernel_codes = kernel_codes.astype(np.float32) if m else none
        self.kernel_scales = kernel_scales.astype(np.float32) if m else none
        self.kernel_names = list(kernel_names or [])
        self.kernel_weight = float(kernel_weight) if m else 0.0

    @property
    def has_kernels(self) -> bool:
        return len(self.kernel_codes) > 0

    @classmethod
    def load(cls, path) -> MixturePrior:
        with np.load(path) as d:
            kernels = {}
            if "kernel_codes" in d.files:
                kernels = dict(
                    kernel_codes=d["kernel_codes"],
                    kernel_scales=d["kernel_scales"],
                    kernel_names=[str(n) for n in d["kernel_names"]],
                    kernel_weight=float(d["kernel_weight"]),
                )
            return cls(d["weights"], d["means"], d["chol"], [str(n) for n in d["names"]], **kernels)

    def save(self, path) -> None:
        kernels = {}
        if self.has_kernels:
            kernels = dict(
                kernel_codes=self.kernel_codes,
                kernel_scales=self.kernel_scales,
                kernel_names=np.array(self.kernel_names),
                kernel_weight=np.float64(self.kernel_weight),
            )
        np.savez_compressed(
            path,
            weights=self.weights,
            means=self.means,
            chol=self.chol,
            names=np.array(self.names),
            **kernels,
        )

    def nearest(self, z: np.ndarray) -> int:
        return int(np.argmin(np.linalg.norm(self.means - z, axis=1)))

    def _choice_weights(self, source: str) -> np.ndarray:
        """[K + M] probabilities of the mixture components, then the kernels, for ``source``."""
        m = len(self.kernel_codes)
        if source == "real":
            if not m:
                raise LatentError(NO_KERNELS)
            return np.r_[np.zeros(len(self.weights)), np.full(m, 1.0 / m)]
        if source == "procedural" or not m:
            return np.r_[self.weights, np.zeros(m)]
        if source != "any":
            raise LatentError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")
        share = self.kernel_weight
        return np.r_[(1 - share) * self.weights, np.full(m, share / m)]

    def sample(
        self,
        seed: int,
        *,
        temperature: float = 1.0,
        centre: np.ndarray | None = None,
        source: str = "any",
    ) -> np.ndarray:
        """-> [Z]: a component or kernel (by weight, within ``source``), or around ``centre``
        the mixture component nearest it; then its mean, code or ``centre`` + temperature x
        its spread x a standard normal draw."""
        rng = seed_rng(seed)
        w = self._choice_weights(source)
        k = int(rng.choice(len(w), p=w / w.sum()))
        eps = rng.standard_normal(self.means.shape[1])
        if centre is not None:
            k = self.nearest(centre)
        if k >= len(self.weights):  # a kernel around a real model's code
            j = k - len(self.weights)
            spread = self.kernel_scales[j] * eps
            return (self.kernel_codes[j] + temperature * spread).astype(np.float32)
        base = self.means[k] if centre is None else centre
        return (base + temperature * (self.chol[k] @ eps)).astype(np.float32)


def fit_mixture(
    codes: np.ndarray, labels: np.ndarray, names: list[str], *, shrinkage: float = 0.1
) -> MixturePrior:
    """One full-covariance Gaussian per label, shrunk towards its diagonal (few samples per
    component in a 200-d space). codes [N, Z], labels [N] in range(len(names))."""
    means, chols, weights = [], [], []
    for i, _ in enumerate(names):
        x = codes[labels == i].astype(np.float64)
        mu = x.mean(0)
        cov = np.cov(x, rowvar=False) if len(x) > 1 else np.eye(x.shape[1]) * 1e-2
        cov = (1 - shrinkage) * cov + shrinkage * np.diag(np.diag(cov)) + 1e-6 * np.eye(len(mu))
        means.append(mu)
        chols.append(np.linalg.cholesky(cov))
        weights.append(len(x))
    return MixturePrior(np.array(weights, float), np.array(means), np.array(chols), list(names))


def with_kernels(
    prior: MixturePrior,
    codes: np.ndarray,
    names: list[str],
    *,
    bandwidth: float,
    weight: float,
) -> MixturePrior:
    """``prior`` plus a kernel around each of ``codes`` [M, Z] (named by category), each
    spreading its samples by ``bandwidth`` x the per-dimension std of its category's codes (the
    std of all codes for a category with one model), drawn for ``weight`` of the samples."""
    codes = codes.astype(np.float64)
    names = [str(n) for n in names]
    labels = np.asarray(names)
    overall = codes.std(0)
    spread = {}
    for n in set(names):
        mine = codes[labels == n]
        spread[n] = mine.std(0) if len(mine) > 1 else overall
    return MixturePrior(
        prior.weights,
        prior.means,
        prior.chol,
        prior.names,
        kernel_codes=codes,
        kernel_scales=np.stack([bandwidth * spread[n] for n in names]),
        kernel_names=names,
        kernel_weight=weight,
    )


class LatentSpace:
    """The bundle's latent space: its size, prior (normal or mixture) and named concepts."""

    def __init__(
        self, size: int, concepts: Concepts, *, std: float = 1.0, prior: MixturePrior | None = None
    ) -> None:
        self.size, self.std, self.concepts, self.prior = size, std, concepts, prior

    def seed(
        self,
        seed: int,
        *,
        temperature: float = 1.0,
        centre: np.ndarray | None = None,
        source: str = "any",
    ) -> np.ndarray:
        """The latent a seed names (around ``centre`` when given; from ``source``, see
        MixturePrior). -> [Z]"""
        if self.prior is not None:
            return self.prior.sample(seed, temperature=temperature, centre=centre, source=source)
        if source == "real":
            raise LatentError(NO_KERNELS)
        z = from_seed(seed, self.size, std=self.std, temperature=temperature)
        return z if centre is None else (centre + z).astype(np.float32)

    def resolve(self, ref) -> np.ndarray:
        """A request's reference (seed | latent | concept | mean_of) -> [Z]."""
        if ref.seed is not None:
            return self.seed(ref.seed)
        if ref.latent is not None:
            return check_latent(ref.latent, self.size)
        if ref.concept is not None:
            return self.concepts.get(ref.concept)
        return np.mean([self.resolve(r) for r in ref.mean_of], axis=0).astype(np.float32)
