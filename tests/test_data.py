"""Data sets: digits split and scaling, mixture densities and samples, toy sets, registry."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from schedopt.data import (
    DATASETS,
    GaussianMixture,
    gaussian_with_spectrum,
    grid_mixture,
    load_dataset,
    load_digits,
    moons,
    ring,
    swiss_roll,
    to_pixels,
    unequal_mixture,
)


def test_digits_split_is_fixed_stratified_and_scaled():
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    assert x_train.shape == (1437, 8, 8, 1) and x_test.shape == (360, 8, 8, 1)
    assert x_train.min() == -1.0 and x_train.max() == 1.0
    # every class is in the test split in proportion (stratified)
    counts = np.bincount(y_test, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38
    # the same call gives the same split; the two splits are disjoint
    np.testing.assert_array_equal(load_digits("train")[0], x_train)
    train_rows = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    overlap = sum(row.tobytes() in train_rows for row in x_test.reshape(len(x_test), -1))
    assert overlap <= 3  # sklearn's digits holds a couple of exact duplicates
    x_all, _ = load_digits("all")
    assert len(x_all) == 1797
    from sklearn.datasets import load_digits as sk

    np.testing.assert_allclose(
        np.sort(to_pixels(x_all).ravel()), np.sort(sk().images.ravel()), atol=1e-5
    )


def test_digits_bad_split():
    with pytest.raises(ValueError, match="split='val'"):
        load_digits("val")


def _gmm_2d():
    return GaussianMixture(
        jnp.array([0.2, 0.8]),
        jnp.array([[0.0, 1.0], [2.0, -1.0]]),
        jnp.array([[[1.0, 0.3], [0.3, 0.5]], [[0.2, 0.0], [0.0, 2.0]]]),
    )


def test_mixture_log_prob_matches_scipy():
    gmm = _gmm_2d()
    x = np.random.default_rng(0).normal(size=(7, 2)) * 2
    ref = np.log(
        sum(
            float(gmm.weights[k])
            * multivariate_normal(np.asarray(gmm.means[k]), np.asarray(gmm.covariances[k])).pdf(x)
            for k in range(2)
        )
    )
    np.testing.assert_allclose(gmm.log_prob(jnp.asarray(x)), ref, rtol=1e-5)
    np.testing.assert_allclose(gmm.responsibilities(jnp.asarray(x)).sum(-1), 1.0, rtol=1e-6)


def test_mixture_samples_have_the_exact_moments_and_labels():
    gmm = unequal_mixture(dim=6, num_components=4, seed=3)
    x, labels = gmm.sample_with_labels(jax.random.key(0), 200_000)
    x, labels = np.asarray(x), np.asarray(labels)
    np.testing.assert_allclose(np.bincount(labels) / len(labels), gmm.weights, atol=5e-3)
    np.testing.assert_allclose(x.mean(0), gmm.mean(), atol=0.01)
    np.testing.assert_allclose(np.cov(x.T), gmm.covariance(), atol=0.01)
    # samples of component k have that component's covariance
    np.testing.assert_allclose(np.cov(x[labels == 0].T), gmm.covariances[0], atol=0.01)


def test_unequal_mixture_is_unequal_and_deterministic():
    a, b = unequal_mixture(seed=1), unequal_mixture(seed=1)
    np.testing.assert_array_equal(a.covariances, b.covariances)
    assert a.dim == 64 and a.num_components == 8
    traces = np.trace(np.asarray(a.covariances), axis1=1, axis2=2)
    assert traces.max() / traces.min() > 2.0
    assert len(set(np.round(np.asarray(a.weights), 6))) == a.num_components


@pytest.mark.parametrize(
    "preset, k", [(ring(8), 8), (grid_mixture(5), 25), (ring(3, radius=2.0), 3)]
)
def test_2d_presets(preset, k):
    assert preset.num_components == k and preset.dim == 2
    np.testing.assert_allclose(np.asarray(preset.mean()), 0.0, atol=1e-6)


def test_gaussian_with_spectrum_rotated_keeps_the_spectrum():
    eig = np.array([3.0, 1.0, 0.1, 0.01])
    g = gaussian_with_spectrum(eig, mean=np.arange(4.0), rotation_seed=0)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(g.covariance()))[::-1], eig, rtol=1e-5)
    assert not np.allclose(np.asarray(g.covariance()), np.diag(eig))
    np.testing.assert_allclose(g.mean(), np.arange(4.0))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: GaussianMixture(jnp.ones(2), jnp.zeros((3, 2)), jnp.ones((3, 2, 2))), "weights"),
        (
            lambda: GaussianMixture(jnp.array([0.5, 0.6]), jnp.zeros((2, 1)), jnp.ones((2, 1, 1))),
            "sum",
        ),
        (lambda: GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), -jnp.eye(2)[None]), "positive"),
        (lambda: GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(3)[None]), "shape"),
        (lambda: gaussian_with_spectrum([1.0, 0.0]), "eigenvalues"),
        (lambda: ring(0), "num_modes=0"),
        (lambda: grid_mixture(3, spacing=-1.0), "spacing"),
    ],
)
def test_bad_mixtures_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_mixture_is_jittable_pytree():
    gmm = _gmm_2d()
    f = jax.jit(lambda g, x: g.log_prob(x))
    x = jnp.zeros((3, 2))
    np.testing.assert_allclose(f(gmm, x), gmm.log_prob(x), rtol=1e-6)


@pytest.mark.parametrize("sampler", [moons, swiss_roll])
def test_toy_sets(sampler):
    x = np.asarray(sampler(jax.random.key(0), 20_000))
    assert x.shape == (20_000, 2) and np.all(np.isfinite(x))
    assert np.all(np.abs(x.mean(0)) < 0.4) and np.all((x.std(0) > 0.5) & (x.std(0) < 1.5))
    np.testing.assert_array_equal(sampler(jax.random.key(0), 5), sampler(jax.random.key(0), 5))
    with pytest.raises(ValueError, match="noise"):
        sampler(jax.random.key(0), 5, noise=-1.0)


def test_moons_are_two_moons():
    x = np.asarray(moons(jax.random.key(1), 5000, noise=0.0)) * np.array([0.87, 0.5]) + [0.5, 0.25]
    on_upper = np.isclose(np.hypot(x[:, 0], x[:, 1]), 1.0, atol=1e-4)
    on_lower = np.isclose(np.hypot(x[:, 0] - 1.0, x[:, 1] - 0.5), 1.0, atol=1e-4)
    assert np.all(on_upper | on_lower) and 0.45 < on_upper.mean() < 0.55


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_loads(name):
    ds = load_dataset(name, num_train=64, num_test=32)
    assert ds.train.dtype == np.float32 and ds.train.shape[1:] == ds.event_shape
    assert np.all(np.isfinite(ds.train)) and np.all(np.isfinite(ds.test))
    if name != "digits":
        assert ds.train.shape[0] == 64 and ds.test.shape[0] == 32
        assert not np.array_equal(ds.train[:32], ds.test)
    assert ds.is_image == (name == "digits")
    if ds.distribution is not None:
        assert ds.distribution.dim == ds.train.shape[1]


def test_dataset_errors_name_the_argument():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="num_train=0"):
        load_dataset("ring", num_train=0)
    with pytest.raises(ValueError, match="bad parameters"):
        load_dataset("ring", color="red")
    with pytest.raises(ValueError, match="digits"):
        load_dataset("digits", dim=3)


def test_dataset_seed_determines_samples():
    a, b = load_dataset("gmm64", seed=1, num_train=10), load_dataset("gmm64", seed=1, num_train=10)
    c = load_dataset("gmm64", seed=2, num_train=10)
    np.testing.assert_array_equal(a.train, b.train)
    assert not np.array_equal(a.train, c.train)
