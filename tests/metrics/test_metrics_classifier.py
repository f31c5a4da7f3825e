"""The packaged digits classifier, its features' Fréchet distance, and its rebuild."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from schedopt.data import load_dataset, load_digits
from schedopt.metrics import classifier as clf
from schedopt.metrics import (
    classifier_accuracy,
    classifier_scores,
    digits_features,
    evaluate_samples,
    frechet_distance,
)


def test_packaged_classifier_is_accurate():
    assert clf._ASSET_DIR.exists()
    assert classifier_accuracy() >= 0.95


def test_feature_frechet_distance_orders_real_and_fake_images():
    x_train, _ = load_digits("train")
    x_test, _ = load_digits("test")
    f_test = digits_features(x_test)
    assert f_test.shape == (360, 64)
    assert abs(float(frechet_distance(f_test, f_test))) < 1e-2
    real = float(frechet_distance(digits_features(x_train), f_test))
    noise = np.clip(np.random.default_rng(0).normal(size=x_test.shape), -1, 1)
    blurred = 0.5 * (x_test + np.roll(x_test, 1, axis=2))
    fake = float(frechet_distance(digits_features(noise), f_test))
    blur = float(frechet_distance(digits_features(blurred), f_test))
    assert real < blur < fake and real < 0.2 * fake


def test_classifier_scores_separate_digits_from_noise():
    x_test, _ = load_digits("test")
    real = classifier_scores(x_test)
    assert real["confident_fraction"] > 0.9 and real["class_entropy"] > 2.25
    noise = classifier_scores(np.random.default_rng(0).uniform(-1, 1, size=(200, 64)))
    assert noise["mean_confidence"] < real["mean_confidence"]
    with pytest.raises(ValueError, match="8, 8, 1"):
        digits_features(np.zeros((3, 7, 7, 1)))


def test_evaluate_samples_on_digits():
    ds = load_dataset("digits")
    m = evaluate_samples(ds.train[:360], ds)
    assert {"fd", "precision", "recall", "mean_confidence", "sw2", "mmd"} <= set(m)
    assert "gaussian_kl" not in m  # no exact reference for digits
    same = evaluate_samples(ds.test, ds)
    assert abs(same["fd"]) < 1e-2 and same["precision"] == 1.0
    assert m["fd"] > same["fd"]


def test_classifier_rebuilt_into_the_cache_when_not_packaged(tmp_path, monkeypatch):
    """Without the packaged checkpoint it trains (here briefly), saves, and reloads."""
    monkeypatch.setattr(clf, "_ASSET_DIR", tmp_path / "absent")
    monkeypatch.setenv("SCHEDOPT_CACHE", str(tmp_path / "cache"))
    calls = []
    quick = clf.train_classifier

    def counted(*args, **kwargs):
        calls.append(1)
        return quick(num_epochs=1)

    monkeypatch.setattr(clf, "train_classifier", counted)
    clf.load_classifier.cache_clear()
    try:
        first = clf.load_classifier()
        assert (tmp_path / "cache" / f"digits_classifier-v{clf.VERSION}").exists()
        clf.load_classifier.cache_clear()
        second = clf.load_classifier()
        assert calls == [1]  # the second load read the cache
        x = load_digits("test")[0][:8]
        np.testing.assert_allclose(
            clf._logits(first, jax.numpy.asarray(x)), clf._logits(second, jax.numpy.asarray(x))
        )
        # a corrupt cache gives an error naming it
        cache = tmp_path / "cache" / f"digits_classifier-v{clf.VERSION}"
        for p in cache.rglob("*"):
            if p.is_file():
                p.write_bytes(b"x")
        clf.load_classifier.cache_clear()
        with pytest.raises(ValueError, match=str(cache)):
            clf.load_classifier()
    finally:
        clf.load_classifier.cache_clear()


@pytest.mark.slow
def test_rebuilt_classifier_matches_the_packaged_one():
    """Training is deterministic: a rebuild predicts like the packaged checkpoint."""
    x, y = load_digits("test")
    rebuilt = clf.train_classifier()
    pred = np.argmax(np.asarray(clf._logits(rebuilt, jax.numpy.asarray(x))), axis=1)
    packaged = np.argmax(np.asarray(clf._logits(clf.load_classifier(), jax.numpy.asarray(x))), 1)
    assert np.mean(pred == y) >= 0.95
    assert np.mean(pred == packaged) >= 0.98


def test_features_can_be_taken_and_differentiated_inside_a_trace():
    """First use inside jit (the classifier not loaded yet), and a gradient through it, as
    a Fréchet objective on classifier features needs."""
    x = jax.numpy.asarray(load_digits("test")[0][:16], jax.numpy.float32)
    clf.load_classifier.cache_clear()
    try:
        traced = jax.jit(digits_features)(x)
        grad = jax.grad(lambda y: digits_features(y).sum())(x)
    finally:
        clf.load_classifier.cache_clear()
    np.testing.assert_allclose(traced, digits_features(x), rtol=1e-5, atol=1e-5)
    assert grad.shape == x.shape and bool(np.all(np.isfinite(grad))) and float(abs(grad).max()) > 0
