"""``evaluate_samples``: every metric that applies to samples of a named data set."""

from __future__ import annotations

import jax
import numpy as np
from jaxtyping import ArrayLike, PRNGKeyArray

from .._checks import check_positive_int
from .._table import format_table
from ..data.registry import Dataset
from .distances import fitted_kl, frechet_distance, mmd, sliced_wasserstein
from .mixtures import mixture_log_likelihood, mode_coverage, precision_recall


def evaluate_samples(
    samples: ArrayLike,
    dataset: Dataset,
    *,
    key: PRNGKeyArray | None = None,
    max_reference: int = 5000,
    max_mmd: int = 2000,
) -> dict[str, float | int]:
    """Metrics of ``samples`` (shape ``(n, *dataset.event_shape)``) against ``dataset``.

    Against the held-out ``dataset.test`` (at most ``max_reference`` of it): sliced
    Wasserstein-2 ``sw2``, ``mmd`` (Gaussian kernel, median bandwidth, at most
    ``max_mmd`` per side) and k-NN ``precision``/``recall``. With a known mixture:
    ``gaussian_kl`` (``KL(fitted || mixture)`` of the Gaussian fitted to the samples and
    the exact moments of the mixture; needs more samples than dimensions), ``log_likelihood`` (and
    ``log_likelihood_reference`` of the test set) and :func:`mode_coverage`'s numbers.
    For digits: Fréchet distance ``fd`` of classifier features, precision/recall on
    those features, and :func:`classifier_scores`.

    >>> from schedopt.data import load_dataset
    >>> ds = load_dataset("ring", num_train=10, num_test=500)
    >>> m = evaluate_samples(ds.test, ds)
    >>> m["precision"], m["modes_covered"]
    (1.0, 8)
    """
    x = np.asarray(samples, np.float32)
    if x.ndim < 2 or x.shape[1:] != dataset.event_shape or x.shape[0] < 4:
        raise ValueError(
            f"`samples` must have shape (n >= 4, {', '.join(map(str, dataset.event_shape))}) for "
            f"dataset {dataset.name!r}, got samples.shape={x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("`samples` must be finite everywhere; some are NaN or infinite")
    max_reference = check_positive_int("max_reference", max_reference)
    max_mmd = check_positive_int("max_mmd", max_mmd)
    key = jax.random.key(0) if key is None else key
    ref = np.asarray(dataset.test[:max_reference], np.float32)
    flat, flat_ref = x.reshape(len(x), -1), ref.reshape(len(ref), -1)
    out: dict[str, float | int] = {"num_samples": int(len(x)), "num_reference": int(len(ref))}
    out["sw2"] = float(sliced_wasserstein(flat, flat_ref, key))
    out["mmd"] = float(mmd(flat[:max_mmd], flat_ref[:max_mmd]))
    dist = dataset.distribution
    if dist is not None and flat.shape[0] > flat.shape[1]:
        fitted = fitted_kl(flat, dist.mean(), dist.covariance(), direction="reverse")
        out["gaussian_kl"] = float(fitted)
    if dataset.name == "digits":
        from .classifier import classifier_scores, digits_features

        feats, feats_ref = digits_features(x), digits_features(ref)
        out["fd"] = float(frechet_distance(feats, feats_ref))
        out.update(precision_recall(feats_ref, feats))
        out.update(classifier_scores(x))
    else:
        out.update(precision_recall(flat_ref, flat))
    if dist is not None:
        out["log_likelihood"] = float(mixture_log_likelihood(flat, dist))
        out["log_likelihood_reference"] = float(mixture_log_likelihood(flat_ref, dist))
        out.update(mode_coverage(flat, dist))
    return out


def format_metrics(metrics: dict) -> str:
    """A two-column text table of a metrics dict.

    >>> print(format_metrics({"fd": 1.23456, "num_samples": 10}))
    metric       value
    -----------  ------
    fd           1.2346
    num_samples  10
    """
    return format_table(["metric", "value"], list(metrics.items()), float_format=".5g")
