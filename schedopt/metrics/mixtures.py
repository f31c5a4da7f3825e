"""Metrics against a known mixture, and k-NN precision/recall between sample sets.

- :func:`mixture_log_likelihood`: mean ``log p(x)`` of samples under the exact mixture.
- :func:`mode_coverage`: which modes receive samples, and how many samples are close to
  some mode (within the ``quantile`` Mahalanobis ball of their most responsible component).
- :func:`precision_recall`: Kynkäänniemi et al. (2019): precision is the share of
  generated samples inside the union of k-NN balls of the real samples, recall the share
  of real samples inside the union of k-NN balls of the generated ones.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Scalar

from .._checks import check_positive_int
from ..data.mixtures import GaussianMixture
from .distances import _flat, _same_dim, _sq_dists


def _check_mixture_samples(samples: ArrayLike, mixture: GaussianMixture) -> Array:
    x = _flat("samples", samples)
    if x.shape[1] != mixture.dim:
        raise ValueError(
            f"`samples` must have {mixture.dim} dimensions to match the mixture, got "
            f"samples.shape={jnp.shape(samples)}"
        )
    return x


def mixture_log_likelihood(samples: ArrayLike, mixture: GaussianMixture) -> Scalar:
    """Mean exact log-density ``(1/n) sum_i log p(x_i)`` of samples under ``mixture`` (nats).

    For samples drawn from ``mixture`` this estimates minus its differential entropy.

    >>> from schedopt.data import gaussian_with_spectrum
    >>> g = gaussian_with_spectrum([1.0])
    >>> round(float(mixture_log_likelihood(jnp.zeros((1, 1)), g)), 4)  # -log(2 pi) / 2
    -0.9189
    """
    return _mean_log_prob(mixture, _check_mixture_samples(samples, mixture))


@eqx.filter_jit
def _mean_log_prob(mixture, x):
    return jnp.mean(mixture.log_prob(x))


@eqx.filter_jit
def _assign(mixture, x):
    assigned = jnp.argmax(mixture.component_log_probs(x), axis=-1)
    maha = jnp.take_along_axis(mixture.mahalanobis(x), assigned[:, None], axis=1)[:, 0]
    return assigned, maha


def mode_coverage(
    samples: ArrayLike,
    mixture: GaussianMixture,
    *,
    quantile: float = 0.99,
    min_share: float = 0.1,
) -> dict:
    """Mode statistics of ``samples`` under ``mixture`` (a dict of floats).

    Each sample is assigned to its most responsible component; it is *close* when its
    squared Mahalanobis distance to that component is below the ``quantile`` of the
    chi-square law with ``d`` degrees of freedom. Mode ``k`` is *covered* when it has at
    least ``min_share * w_k * n`` close samples. Returned: ``modes_covered``,
    ``num_modes``, ``coverage`` (their ratio), ``close_fraction`` (share of close
    samples; about ``quantile`` for exact samples) and ``mode_weight_tv`` (total
    variation between the assignment histogram and the weights).

    >>> import jax
    >>> from schedopt.data import ring
    >>> gmm = ring(8)
    >>> mode_coverage(gmm.sample(jax.random.key(0), 4000), gmm)["modes_covered"]
    8
    """
    from scipy.stats import chi2

    if not 0.0 < quantile < 1.0:
        raise ValueError(f"`quantile` must be in (0, 1), got quantile={quantile!r}")
    if not min_share >= 0.0:
        raise ValueError(f"`min_share` must be >= 0, got min_share={min_share!r}")
    x = _check_mixture_samples(samples, mixture)
    n = x.shape[0]
    assigned, maha = (np.asarray(v) for v in _assign(mixture, x))
    close = maha <= chi2.ppf(quantile, mixture.dim)
    k = mixture.num_components
    weights = np.asarray(mixture.weights)
    close_counts = np.bincount(assigned[close], minlength=k)
    covered = close_counts >= np.maximum(1.0, min_share * weights * n)
    histogram = np.bincount(assigned, minlength=k) / n
    return {
        "modes_covered": int(covered.sum()),
        "num_modes": k,
        "coverage": float(covered.mean()),
        "close_fraction": float(close.mean()),
        "mode_weight_tv": float(0.5 * np.abs(histogram - weights).sum()),
    }


@functools.partial(jax.jit, static_argnums=(1, 2))
def _kth_neighbour_sq_radius(x: Array, k: int, chunk: int) -> Array:
    out = []
    for start in range(0, x.shape[0], chunk):
        d2 = _sq_dists(x[start : start + chunk], x)
        # the k+1 smallest include the point itself (distance 0)
        out.append(-jax.lax.top_k(-d2, k + 1)[0][:, k])
    return jnp.concatenate(out)


@functools.partial(jax.jit, static_argnums=3)
def _inside_union(points: Array, centers: Array, sq_radii: Array, chunk: int) -> Array:
    out = []
    for start in range(0, points.shape[0], chunk):
        d2 = _sq_dists(points[start : start + chunk], centers)
        out.append(jnp.any(d2 <= sq_radii[None, :], axis=1))
    return jnp.concatenate(out)


def precision_recall(
    real: ArrayLike, generated: ArrayLike, k: int = 3, chunk: int = 1024
) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with ``k``-NN balls.

    Works on raw samples or on features; both sets need more than ``k`` samples.

    >>> import jax
    >>> x = jax.random.normal(jax.random.key(0), (300, 2))
    >>> precision_recall(x, x)
    {'precision': 1.0, 'recall': 1.0}
    """
    k = check_positive_int("k", k)
    real, fake = _flat("real", real, k + 1), _flat("generated", generated, k + 1)
    _same_dim(real, fake, ("real", "generated"))
    chunk = check_positive_int("chunk", chunk)
    r_real = _kth_neighbour_sq_radius(real, k, chunk)
    r_fake = _kth_neighbour_sq_radius(fake, k, chunk)
    precision = jnp.mean(_inside_union(fake, real, r_real, chunk))
    recall = jnp.mean(_inside_union(real, fake, r_fake, chunk))
    return {"precision": float(precision), "recall": float(recall)}
