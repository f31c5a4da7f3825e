"""Exact oracles against independent references: the linear-regression formula for
Gaussians and Tweedie's formula on the mixture's exact noisy log-density."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp
from jax.scipy.stats import multivariate_normal

from schedopt.models import GaussianDenoiser, GaussianMixtureDenoiser


def _random_spd(key, k, d):
    a = jax.random.normal(key, (k, d, d))
    return a @ jnp.swapaxes(a, 1, 2) / d + 0.05 * jnp.eye(d)


def _tweedie(weights, means, covs, y, s):
    """``D = y + s^2 grad log p_s(y)`` with ``p_s`` the mixture convolved with ``N(0, s^2 I)``."""

    def log_p(x):
        comps = jnp.stack(
            [
                multivariate_normal.logpdf(x, means[k], covs[k] + s**2 * jnp.eye(x.shape[0]))
                for k in range(means.shape[0])
            ]
        )
        return logsumexp(comps + jnp.log(weights))

    return jax.vmap(lambda x: x + s**2 * jax.grad(log_p)(x))(y)


@pytest.mark.parametrize("s", [0.05, 0.7, 5.0])
def test_gaussian_matches_regression_formula(s):
    with jax.enable_x64(True):
        cov = _random_spd(jax.random.key(0), 1, 4)[0]
        mean = jnp.array([0.5, -1.0, 2.0, 0.0])
        den = GaussianDenoiser.from_covariance(cov, mean=mean)
        y = jax.random.normal(jax.random.key(1), (6, 4)) * 3
        expected = mean + (y - mean) @ jnp.linalg.solve(cov + s**2 * jnp.eye(4), cov)
        np.testing.assert_allclose(den(y, s), expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(den.covariance, cov, rtol=1e-10, atol=1e-12)


def test_gaussian_per_sample_levels_match_scalar_levels():
    den = GaussianDenoiser(jnp.array([0.1, 1.0, 3.0]))
    y = jax.random.normal(jax.random.key(0), (3, 3))
    levels = jnp.array([0.1, 1.0, 10.0])
    batched = den(y, levels)
    for i in range(3):
        np.testing.assert_allclose(batched[i], den(y[i : i + 1], levels[i])[0], rtol=1e-6)


@pytest.mark.parametrize("s", [0.02, 0.5, 3.0])
@pytest.mark.parametrize("diagonal", [False, True])
def test_mixture_matches_tweedie(s, diagonal):
    with jax.enable_x64(True):
        k, d = 3, 3
        weights = jnp.array([0.2, 0.5, 0.3])
        means = jax.random.normal(jax.random.key(2), (k, d)) * 2
        if diagonal:
            diag = jax.random.uniform(jax.random.key(3), (k, d), minval=0.05, maxval=1.0)
            den = GaussianMixtureDenoiser(weights, means, diag)
            covs = jax.vmap(jnp.diag)(diag)
        else:
            covs = _random_spd(jax.random.key(3), k, d)
            den = GaussianMixtureDenoiser(weights, means, covs)
        y = jax.random.normal(jax.random.key(4), (5, d)) * 2
        np.testing.assert_allclose(
            den(y, s), _tweedie(weights, means, covs, y, s), rtol=1e-9, atol=1e-10
        )


def test_mixture_with_one_component_is_the_gaussian_oracle():
    cov = _random_spd(jax.random.key(0), 1, 3)
    mean = jnp.array([[1.0, 2.0, -1.0]])
    mix = GaussianMixtureDenoiser(jnp.ones(1), mean, cov)
    gauss = GaussianDenoiser.from_covariance(cov[0], mean=mean[0])
    y = jax.random.normal(jax.random.key(1), (4, 3))
    np.testing.assert_allclose(mix(y, 0.8), gauss(y, 0.8), rtol=2e-5, atol=2e-6)


def test_mixture_from_data_module_mixture():
    from schedopt.data import GaussianMixture

    gmm = GaussianMixture(
        jnp.array([0.5, 0.5]), jnp.array([[-2.0], [2.0]]), jnp.full((2, 1, 1), 0.1)
    )
    den = GaussianMixtureDenoiser.from_mixture(gmm)
    assert den.num_components == 2 and den.dim == 1
    # far on the right, the posterior is the right component's
    np.testing.assert_allclose(den(jnp.array([[6.0]]), 0.1), [[2.0 + 4.0 * 0.1 / 0.11]], rtol=1e-5)


def test_samples_have_the_data_moments():
    cov = _random_spd(jax.random.key(0), 2, 2)
    means = jnp.array([[-3.0, 0.0], [3.0, 1.0]])
    weights = jnp.array([0.25, 0.75])
    den = GaussianMixtureDenoiser(weights, means, cov)
    x = np.asarray(den.sample(jax.random.key(5), 40_000))
    mean = np.asarray(weights @ means)
    second = sum(
        np.asarray(weights[k] * (cov[k] + jnp.outer(means[k], means[k]))) for k in range(2)
    )
    np.testing.assert_allclose(x.mean(0), mean, atol=0.04)
    np.testing.assert_allclose(np.cov(x.T, bias=True), second - np.outer(mean, mean), atol=0.1)
    g = GaussianDenoiser.from_covariance(cov[0], mean=means[0])
    xg = np.asarray(g.sample(jax.random.key(6), 40_000))
    np.testing.assert_allclose(np.cov(xg.T), cov[0], atol=0.03)


def test_oracle_is_differentiable_in_the_noise_level():
    den = GaussianMixtureDenoiser(
        jnp.array([0.5, 0.5]), jnp.array([[-1.0], [1.0]]), jnp.full((2, 1), 0.2)
    )
    y = jnp.array([[0.3]])
    g = jax.grad(lambda s: den(y, s).sum())(0.5)
    eps = 1e-3
    fd = (den(y, 0.5 + eps).sum() - den(y, 0.5 - eps).sum()) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-3)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: GaussianDenoiser(jnp.array([1.0, 0.0])), "eigenvalues"),
        (lambda: GaussianDenoiser(jnp.array([1.0, 2.0]), mean=jnp.zeros(3)), "mean"),
        (
            lambda: GaussianDenoiser.from_covariance(jnp.array([[1.0, 2.0], [2.0, 1.0]])),
            "covariance",
        ),
        (
            lambda: GaussianDenoiser.from_covariance(jnp.array([[1.0, 0.5], [0.0, 1.0]])),
            "symmetric",
        ),
        (
            lambda: GaussianMixtureDenoiser(jnp.ones(2), jnp.zeros((3, 2)), jnp.ones((3, 2))),
            "weights.shape",
        ),
        (
            lambda: GaussianMixtureDenoiser(
                jnp.array([1.0, -1.0]), jnp.zeros((2, 1)), jnp.ones((2, 1))
            ),
            "weights",
        ),
        (
            lambda: GaussianMixtureDenoiser(jnp.ones(1), jnp.zeros((1, 2)), -jnp.ones((1, 2))),
            "covariances",
        ),
        (
            lambda: GaussianMixtureDenoiser(jnp.ones(1), jnp.zeros((1, 2)), jnp.ones((1, 3, 3))),
            "covariances.shape",
        ),
    ],
)
def test_bad_input_names_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()
