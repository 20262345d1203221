"""Latent helpers: seeds, interpolation, arithmetic, concepts, validation messages."""

from __future__ import annotations

import numpy as np
import pytest

from app.latents import (
    Concepts,
    LatentError,
    check_latent,
    from_seed,
    lerp,
    path,
    slerp,
    weighted_sum,
)


def test_seed_latents_are_deterministic_and_scaled() -> None:
    a, b = from_seed(7, 200), from_seed(7, 200)
    assert a.dtype == np.float32 and a.shape == (200,) and np.array_equal(a, b)
    assert not np.array_equal(a, from_seed(8, 200))
    assert np.allclose(from_seed(7, 200, temperature=0.5), a * 0.5, atol=1e-6)
    with pytest.raises(LatentError, match="seed must be"):
        from_seed(-1, 200)


def test_check_latent_messages() -> None:
    assert check_latent([0.0] * 4, 4).dtype == np.float32
    with pytest.raises(LatentError, match="must have 4 numbers, got shape \\[3\\]"):
        check_latent([0.0] * 3, 4)
    with pytest.raises(LatentError, match="finite"):
        check_latent([0.0, np.nan, 0.0, 0.0], 4)


def test_lerp_and_slerp_endpoints_and_norm() -> None:
    a, b = from_seed(1, 64), from_seed(2, 64)
    t = np.linspace(0, 1, 5)
    for fn in (lerp, slerp):
        f = fn(a, b, t)
        assert (
            f.shape == (5, 64)
            and np.allclose(f[0], a, atol=1e-5)
            and np.allclose(f[-1], b, atol=1e-5)
        )
    # slerp keeps the norm of equal-norm endpoints; lerp shrinks it in the middle
    b_scaled = b / np.linalg.norm(b) * np.linalg.norm(a)
    mid_s = slerp(a, b_scaled, np.array([0.5]))[0]
    mid_l = lerp(a, b_scaled, np.array([0.5]))[0]
    assert np.linalg.norm(mid_s) == pytest.approx(np.linalg.norm(a), rel=1e-4)
    assert np.linalg.norm(mid_l) < np.linalg.norm(a)
    assert np.allclose(slerp(a, a, t), lerp(a, a, t))  # parallel: falls back to lerp


def test_path_through_keyframes() -> None:
    keys = [from_seed(i, 8) for i in range(3)]
    frames = path(keys, 4, method="lerp")
    assert frames.shape == (9, 8)
    assert np.allclose(frames[0], keys[0]) and np.allclose(frames[4], keys[1])
    assert np.allclose(frames[-1], keys[2])
    with pytest.raises(LatentError, match="two keyframes"):
        path(keys[:1], 4)


def test_arithmetic_and_concepts() -> None:
    c = Concepts({"chair": np.ones(3), "armrests": np.array([1.0, 0, 0])}, 3)
    z = weighted_sum([(1.0, c.get("chair")), (-2.0, c.get("armrests"))])
    assert np.allclose(z, [-1, 1, 1])
    with pytest.raises(
        LatentError, match="unknown concept 'sofa'; known concepts: armrests, chair"
    ):
        c.get("sofa")
    with pytest.raises(LatentError, match="latent size"):
        Concepts({"x": np.ones(2)}, 3)


def test_mixture_prior_fit_sample_and_round_trip(tmp_path) -> None:
    from app.latents import LatentSpace, MixturePrior, fit_mixture

    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(-5, 0.1, (50, 4)), rng.normal(5, 0.1, (150, 4))])
    labels = np.r_[np.zeros(50, int), np.ones(150, int)]
    prior = fit_mixture(codes, labels, ["a", "b"])
    assert np.allclose(prior.weights, [0.25, 0.75]) and np.allclose(prior.means[1], 5, atol=0.05)
    z = np.stack([prior.sample(s) for s in range(400)])
    assert 0.65 < np.mean(z[:, 0] > 0) < 0.85  # about 3/4 from the heavier component
    assert np.all(np.abs(np.abs(z) - 5) < 1)  # all near a component, none in between
    assert np.array_equal(prior.sample(7), prior.sample(7))
    near_a = prior.sample(3, centre=np.full(4, -4.0), temperature=0.0)
    assert np.allclose(near_a, -4.0)  # the centre, spread by the nearest component
    prior.save(tmp_path / "p.npz")
    back = MixturePrior.load(tmp_path / "p.npz")
    assert np.array_equal(back.sample(11), prior.sample(11)) and back.names == ["a", "b"]
    space = LatentSpace(4, Concepts({}, 4), prior=prior)
    assert np.array_equal(space.seed(5), prior.sample(5))


def test_real_model_kernels_sample_by_source_and_round_trip(tmp_path) -> None:
    from app.latents import LatentSpace, MixturePrior, fit_mixture, with_kernels

    rng = np.random.default_rng(0)
    mixture = fit_mixture(rng.normal(-5, 0.1, (40, 4)), np.zeros(40, int), ["proc"])
    codes = np.array([[5.0, 5, 5, 5], [5.0, 5, 5, 7], [9.0, 9, 9, 9]])
    prior = with_kernels(mixture, codes, ["chair", "chair", "lamp"], bandwidth=0.5, weight=0.25)
    # the spread of a kernel: bandwidth x its category's per-dimension std (one lamp: all codes')
    assert np.allclose(prior.kernel_scales[0], 0.5 * codes[:2].std(0))
    assert np.allclose(prior.kernel_scales[2], 0.5 * codes.std(0))
    real = np.stack([prior.sample(s, source="real") for s in range(300)])
    assert np.all(real[:, 0] > 3)  # only around the real codes
    # chair kernels (2 of the 3) spread only where the chairs differ, the last dimension
    chairs = np.all(real[:, :3] == 5, axis=1)
    assert 0.55 < chairs.mean() < 0.78 and np.all(np.abs(real[~chairs, 0] - 9) < 5)
    proc = np.stack([prior.sample(s, source="procedural") for s in range(100)])
    assert np.all(proc[:, 0] < -4)
    mixed = np.stack([prior.sample(s) for s in range(400)])
    assert 0.15 < np.mean(mixed[:, 0] > 0) < 0.35  # about kernel_weight from the kernels
    assert np.array_equal(prior.sample(3, source="real"), prior.sample(3, source="real"))
    with pytest.raises(LatentError, match="unknown source"):
        prior.sample(1, source="imaginary")
    prior.save(tmp_path / "p.npz")
    back = MixturePrior.load(tmp_path / "p.npz")
    assert back.kernel_names == ["chair", "chair", "lamp"] and back.kernel_weight == 0.25
    assert np.array_equal(back.sample(11, source="real"), prior.sample(11, source="real"))
    # a prior without kernels samples as before and refuses "real"
    assert np.array_equal(mixture.sample(5, source="procedural"), mixture.sample(5))
    with pytest.raises(LatentError, match="no real-model kernels"):
        mixture.sample(5, source="real")
    with pytest.raises(LatentError, match="no real-model kernels"):
        LatentSpace(4, Concepts({}, 4)).seed(1, source="real")
