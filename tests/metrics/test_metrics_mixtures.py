"""Mixture log-likelihood, mode coverage, k-NN precision/recall and evaluate_samples."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.data import gaussian_with_spectrum, load_dataset, ring
from schedopt.metrics import (
    evaluate_samples,
    format_metrics,
    mixture_log_likelihood,
    mode_coverage,
    precision_recall,
)


def test_log_likelihood_of_own_samples_is_minus_the_entropy():
    eig = np.array([2.0, 0.5, 0.1])
    g = gaussian_with_spectrum(eig, mean=[1.0, 2.0, 3.0], rotation_seed=1)
    x = g.sample(jax.random.key(0), 100_000)
    entropy = 0.5 * 3 * (1 + np.log(2 * np.pi)) + 0.5 * np.sum(np.log(eig))
    assert float(mixture_log_likelihood(x, g)) == pytest.approx(-entropy, abs=0.02)
    # moving the samples away lowers it
    assert float(mixture_log_likelihood(x + 1.0, g)) < -entropy - 1.0
    with pytest.raises(ValueError, match="3 dimensions"):
        mixture_log_likelihood(np.zeros((4, 2)), g)


def test_mode_coverage_known_cases():
    gmm = ring(8, radius=1.0, std=0.1)
    x, labels = gmm.sample_with_labels(jax.random.key(0), 4000)
    full = mode_coverage(x, gmm)
    assert full["modes_covered"] == 8 and full["coverage"] == 1.0
    assert full["close_fraction"] == pytest.approx(0.99, abs=0.01)
    assert full["mode_weight_tv"] < 0.03
    # samples of half of the modes only
    half = mode_coverage(x[np.asarray(labels) < 4], gmm)
    assert half["modes_covered"] == 4 and half["mode_weight_tv"] == pytest.approx(0.5, abs=0.02)
    # everything collapsed at the center: no sample is close to a mode
    center = mode_coverage(jnp.zeros((100, 2)), gmm)
    assert center["close_fraction"] == 0.0 and center["modes_covered"] == 0
    # spread twice too wide: fewer close samples (|z|^2 <= chi2_0.99 / 4 = 2.3: P = 0.68)
    wide = mode_coverage(gmm.means[labels] + 2 * (x - gmm.means[labels]), gmm)
    assert wide["close_fraction"] == pytest.approx(0.68, abs=0.03)
    with pytest.raises(ValueError, match="quantile=1.5"):
        mode_coverage(x, gmm, quantile=1.5)


def test_precision_recall_known_cases():
    gmm = ring(8)
    real = gmm.sample(jax.random.key(0), 1000)
    assert precision_recall(real, real) == {"precision": 1.0, "recall": 1.0}
    x, labels = gmm.sample_with_labels(jax.random.key(1), 2000)
    half = precision_recall(real, x[np.asarray(labels) < 4])
    assert half["precision"] > 0.95 and half["recall"] == pytest.approx(0.5, abs=0.05)
    far = precision_recall(real, real + 10.0)
    assert far == {"precision": 0.0, "recall": 0.0}
    with pytest.raises(ValueError, match="at least 4 samples"):
        precision_recall(real, real[:3])


def test_evaluate_samples_on_a_mixture():
    ds = load_dataset("ring", num_train=10, num_test=1000)
    good = evaluate_samples(ds.distribution.sample(jax.random.key(5), 1000), ds)
    bad = evaluate_samples(ds.distribution.sample(jax.random.key(5), 1000) * 1.5, ds)
    assert good["modes_covered"] == 8 and good["gaussian_kl"] < 0.01
    for name in ("sw2", "mmd", "gaussian_kl"):
        assert bad[name] > good[name]
    assert bad["log_likelihood"] < good["log_likelihood"]
    assert good["log_likelihood"] == pytest.approx(good["log_likelihood_reference"], abs=0.1)
    table = format_metrics(good)
    assert "modes_covered" in table and len(table.splitlines()) == len(good) + 2


def test_evaluate_samples_errors():
    ds = load_dataset("ring", num_train=10, num_test=100)
    with pytest.raises(ValueError, match=r"samples.shape=\(10, 3\)"):
        evaluate_samples(np.zeros((10, 3)), ds)
    with pytest.raises(ValueError, match="finite"):
        evaluate_samples(np.full((10, 2), np.inf), ds)
