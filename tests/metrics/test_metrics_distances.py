"""Fréchet distance, sliced Wasserstein-2, MMD and Gaussian KL against known answers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from schedopt.metrics import (
    fitted_gaussian_kl,
    fitted_kl,
    frechet_distance,
    frechet_distance_gaussians,
    kl_divergence_gaussians,
    mean_and_covariance,
    mmd,
    sliced_wasserstein,
)


def _spd(rng, d, scale=1.0):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


def test_frechet_gaussians_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    for d in (1, 3, 8):
        m1, m2 = rng.normal(size=d), rng.normal(size=d)
        c1, c2 = _spd(rng, d), _spd(rng, d, 2.0)
        cross = scipy.linalg.sqrtm(c1 @ c2).real
        ref = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * cross)
        got = frechet_distance_gaussians(m1, c1, m2, c2)
        assert float(got) == pytest.approx(ref, rel=1e-4, abs=1e-4)
        assert float(frechet_distance_gaussians(m2, c2, m1, c1)) == pytest.approx(ref, rel=1e-4)


def test_frechet_closed_form_for_diagonal_gaussians():
    a, b, mu = np.array([4.0, 1.0, 0.25]), np.array([1.0, 1.0, 1.0]), np.array([1.0, -2.0, 0.5])
    expected = np.sum(mu**2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance_gaussians(np.zeros(3), np.diag(a), mu, np.diag(b))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_frechet_of_shifted_and_identical_sample_sets():
    x = jax.random.normal(jax.random.key(0), (2000, 4)) * jnp.array([1.0, 2.0, 0.5, 1.0])
    shift = jnp.array([1.0, -1.0, 0.5, 2.0])
    # the fitted covariances are identical, so the distance is exactly |shift|^2
    assert float(frechet_distance(x, x + shift)) == pytest.approx(float(shift @ shift), rel=1e-3)
    assert abs(float(frechet_distance(x, x))) < 1e-3
    # two independent samples of one Gaussian: small, but not zero
    y = jax.random.normal(jax.random.key(1), (2000, 4)) * jnp.array([1.0, 2.0, 0.5, 1.0])
    assert 0 < float(frechet_distance(x, y)) < 0.1


def test_kl_divergence_gaussians_against_the_one_dimensional_formula_and_numpy():
    m1, v1, m2, v2 = 0.3, 2.0, -0.5, 0.7
    expected = 0.5 * (v1 / v2 - 1 - np.log(v1 / v2) + (m1 - m2) ** 2 / v2)
    got = kl_divergence_gaussians(
        jnp.array([m1]), jnp.array([[v1]]), jnp.array([m2]), jnp.array([[v2]])
    )
    assert float(got) == pytest.approx(expected, rel=1e-5)
    rng = np.random.default_rng(1)
    d = 5
    mu1, mu2, c1, c2 = rng.normal(size=d), rng.normal(size=d), _spd(rng, d), _spd(rng, d)
    inv2 = np.linalg.inv(c2)
    ref = 0.5 * (
        np.trace(inv2 @ c1)
        + (mu2 - mu1) @ inv2 @ (mu2 - mu1)
        - d
        + np.linalg.slogdet(c2)[1]
        - np.linalg.slogdet(c1)[1]
    )
    assert float(kl_divergence_gaussians(mu1, c1, mu2, c2)) == pytest.approx(ref, rel=1e-4)
    assert abs(float(kl_divergence_gaussians(mu1, c1, mu1, c1))) < 1e-5


def test_fitted_kl():
    chol = np.array([[1.0, 0.0, 0.0], [0.5, 0.8, 0.0], [0.1, -0.3, 0.4]])
    cov = chol @ chol.T
    x = jax.random.normal(jax.random.key(0), (100_000, 3)) @ chol.T
    # samples of the reference itself: only the estimation bias ~ d (d + 1) / (4 n) remains
    assert 0 <= float(fitted_kl(x, np.zeros(3), cov)) < 1e-3
    shifted = float(fitted_kl(x + jnp.array([0.5, 0.0, 0.0]), np.zeros(3), cov))
    expected = 0.5 * 0.25 * np.linalg.inv(cov)[0, 0]
    assert shifted == pytest.approx(expected, rel=0.02)
    # the two directions differ for unequal covariances; forward is KL(reference || fitted),
    # as in schedopt.gaussian.gaussian_kl (data versus samples)
    forward = float(fitted_kl(2 * x, np.zeros(3), cov))
    reverse = float(fitted_kl(2 * x, np.zeros(3), cov, direction="reverse"))
    assert forward == pytest.approx(1.5 * (0.25 - 1 - np.log(0.25)), rel=0.01)
    assert reverse == pytest.approx(1.5 * (4 - 1 - np.log(4)), rel=0.01)
    with pytest.raises(ValueError, match="more samples than dimensions"):
        fitted_kl(x[:3], np.zeros(3), cov)
    with pytest.raises(ValueError, match="direction='both'"):
        fitted_kl(x, np.zeros(3), cov, direction="both")
    # the deprecated name keeps its old meaning of `direction`, and says so
    with pytest.warns(DeprecationWarning, match="fitted_kl"):
        old = float(fitted_gaussian_kl(2 * x, np.zeros(3), cov))
    assert old == reverse


def test_sliced_wasserstein_known_answers():
    key = jax.random.key(0)
    x = jax.random.normal(jax.random.key(1), (500, 3))
    assert float(sliced_wasserstein(x, x, key)) == 0.0
    # a shift c: every projection moves by theta.c, so SW2^2 = E (theta.c)^2 = |c|^2 / d
    c = jnp.array([3.0, 0.0, 0.0])
    sw = float(sliced_wasserstein(x, x + c, key, num_projections=4000))
    assert sw**2 == pytest.approx(9.0 / 3, rel=0.05)
    # in 1-D it is the exact W2 between empirical laws: a x + b vs x, paired in order
    z = jax.random.normal(jax.random.key(2), (300, 1))
    w2 = float(jnp.sqrt(jnp.mean((0.5 * z + 1.0 - z) ** 2)))
    assert float(sliced_wasserstein(z, 1.5 * z + 1.0 - z, key, 3)) == pytest.approx(w2, rel=1e-5)


def test_sliced_wasserstein_unequal_sizes():
    key = jax.random.key(0)
    x = jax.random.normal(jax.random.key(1), (200, 2))
    # each point twice is the same empirical law
    assert float(sliced_wasserstein(x, jnp.concatenate([x, x]), key)) < 1e-5
    y = jax.random.normal(jax.random.key(2), (300, 2)) + 1.0
    # 1-D: compare with scipy's W1-style integral of the squared quantile difference
    xs, ys = np.sort(np.asarray(x[:, 0])), np.sort(np.asarray(y[:, 0]))
    levels = (np.arange(60_000) + 0.5) / 60_000
    ref = np.sqrt(np.mean((xs[(levels * 200).astype(int)] - ys[(levels * 300).astype(int)]) ** 2))
    got = float(sliced_wasserstein(x[:, :1], y[:, :1], key, 2))
    assert got == pytest.approx(ref, rel=1e-3)


def test_mmd_known_answers():
    x = jax.random.normal(jax.random.key(0), (1000, 2))
    assert float(mmd(x, x, 1.0, unbiased=False)) == pytest.approx(0.0, abs=1e-6)
    y = jax.random.normal(jax.random.key(1), (1000, 2))
    assert abs(float(mmd(x, y, 1.0))) < 3e-3  # same law: the U-statistic is centered at 0
    # N(0, I) vs N(m, I), kernel exp(-|a-b|^2 / 2h^2):
    # MMD^2 = 2 (h^2 / (h^2 + 2))^(d/2) (1 - exp(-|m|^2 / (2 (h^2 + 2))))
    h, m, d = 1.5, jnp.array([1.0, 0.5]), 2
    expected = 2 * (h**2 / (h**2 + 2)) ** (d / 2) * (1 - np.exp(-float(m @ m) / (2 * (h**2 + 2))))
    assert float(mmd(x, y + m, h)) == pytest.approx(expected, rel=0.1)
    # several bandwidths: the kernels add
    both = float(mmd(x, y + m, jnp.array([h, 2 * h])))
    assert both == pytest.approx(float(mmd(x, y + m, h)) + float(mmd(x, y + m, 2 * h)), rel=1e-4)
    assert float(mmd(x, y + m)) > 0.01  # the median bandwidth sees the shift too
    with pytest.raises(ValueError, match="bandwidth"):
        mmd(x, y, -1.0)


def test_distances_are_differentiable_and_jittable():
    x = jax.random.normal(jax.random.key(0), (64, 3))
    y = jax.random.normal(jax.random.key(1), (64, 3)) + 0.5
    key = jax.random.key(2)
    for f in (
        lambda x: frechet_distance(x, y),
        lambda x: mmd(x, y, 1.0),
        lambda x: sliced_wasserstein(x, y, key, 16),
    ):
        g = jax.jit(jax.grad(f))(x)
        assert g.shape == x.shape and np.all(np.isfinite(g)) and float(jnp.abs(g).sum()) > 0


def test_shape_errors():
    with pytest.raises(ValueError, match="same event size"):
        frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"x.shape=\(5,\)"):
        sliced_wasserstein(np.zeros(5), np.zeros((5, 1)), jax.random.key(0))
    with pytest.raises(ValueError, match="num_projections=0"):
        sliced_wasserstein(np.zeros((5, 1)), np.zeros((5, 1)), jax.random.key(0), 0)
    with pytest.raises(ValueError, match="mismatched shapes"):
        kl_divergence_gaussians(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    m, c = mean_and_covariance(np.arange(6.0).reshape(3, 2))
    np.testing.assert_allclose(c, np.cov(np.arange(6.0).reshape(3, 2).T))


def test_mmd_under_jit_with_captured_bandwidths():
    import jax
    import jax.numpy as jnp

    from schedopt.metrics.distances import mmd as metric_mmd

    x = jax.random.normal(jax.random.key(0), (50, 2))
    h = jnp.array([0.5, 1.0])
    jitted = jax.jit(lambda a: metric_mmd(a, a + 1.0, h))(x)
    np.testing.assert_allclose(jitted, metric_mmd(x, x + 1.0, h), rtol=1e-5)
