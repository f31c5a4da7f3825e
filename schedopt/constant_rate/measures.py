"""Discrepancy measures between forward-diffused distributions at two noise levels
(Okada et al., Constant Rate Scheduling).

A measure maps two logSNRs ``(a, b)`` to a discrepancy ``D(p_a, p_b) >= 0`` between the
distributions of the VP forward process ``x = alpha x0 + sigma eps``
(``alpha^2 = sigmoid(lam)``, ``sigma^2 = sigmoid(-lam)``, the paper's convention) at those
levels. It is a *squared* distance, second order in the step, so ``sqrt(D) / |du|`` is
a speed (see :mod:`schedopt.constant_rate.speed`). A researcher adds a measure by
subclassing :class:`AbstractMeasure` and writing ``__call__``.

Sample-based measures hold a fixed bank of clean samples ``x0`` and noises ``eps``
(common random numbers): every level is diffused from the same draws, so Monte Carlo
noise largely cancels between neighbouring levels and each measure is a deterministic,
jit-able and differentiable function of ``(a, b)``.

=====================  ===============================================================
``GaussianFrechet``    closed form for data ``N(mu, C)`` with identity features:
                       ``|mu|^2 (alpha_a - alpha_b)^2 + sum_i (sqrt V_i(a) - sqrt V_i(b))^2``,
                       ``V_i = alpha^2 c_i + sigma^2``
``SampleFrechet``      model-free: Fréchet distance of Gaussians fitted to features of
                       the diffused data at ``a`` and ``b`` (the paper's measure 1)
``DataPrediction``     ``E ||x0_hat(x, a) - x0_hat(x, b)||^2`` at the same noisy input
                       ``x`` (the paper's measure 2; in :mod:`.predictions`)
``NoisePrediction``    the same with the noise prediction ``eps_hat`` (the paper's measure 3)
``Combined``           ``sum_k w_k D_k``
=====================  ===============================================================
"""

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractVar
from jaxtyping import Array, ArrayLike, Float, Scalar

from .._checks import check_array_finite, check_choice, check_positive_int, is_concrete
from ..metrics.distances import frechet_distance_gaussians

FRECHET_METHODS = ("local", "exact")
INPUTS = ("vp", "edm")


def sigmoid_difference(a: ArrayLike, b: ArrayLike) -> Array:
    """``sigmoid(a) - sigmoid(b)`` without cancellation, as
    ``sinh((a - b) / 2) / (2 cosh(a / 2) cosh(b / 2))``.

    This is ``alpha_a^2 - alpha_b^2`` of the VP process, accurate in float32 also where
    ``alpha`` is within ``1e-6`` of 1.

    >>> float(sigmoid_difference(12.0, 12.01)) < 0
    True
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    return 0.5 * jnp.sinh(0.5 * (a - b)) / (jnp.cosh(0.5 * a) * jnp.cosh(0.5 * b))


def vp_scales(logsnr: ArrayLike) -> tuple[Array, Array]:
    """``(alpha, sigma)`` of the VP process at ``logsnr``: ``alpha^2 = sigmoid(lam)``.

    >>> [round(float(v), 4) for v in vp_scales(0.0)]
    [0.7071, 0.7071]
    """
    lam = jnp.asarray(logsnr, dtype=jnp.result_type(float))
    return jnp.sqrt(jax.nn.sigmoid(lam)), jnp.sqrt(jax.nn.sigmoid(-lam))


class AbstractMeasure(eqx.Module):
    """A discrepancy ``D(p_a, p_b)`` between the diffused distributions at logSNRs ``a, b``.

    Subclasses implement ``__call__`` (a scalar, jit-able and differentiable in the two
    logSNRs). :meth:`pairwise` evaluates it on consecutive levels of a grid, one pair at
    a time (``jax.lax.map``, so memory stays that of one pair); override it to vectorise.
    """

    name: ClassVar[str] = "measure"

    @abc.abstractmethod
    def __call__(self, logsnr_a: ArrayLike, logsnr_b: ArrayLike) -> Scalar:
        """The discrepancy between the distributions at ``logsnr_a`` and ``logsnr_b``."""

    def pairwise(self, logsnrs: Float[ArrayLike, " m"]) -> Float[Array, " m-1"]:
        """``D(lam_j, lam_{j+1})`` for consecutive entries of a 1-D array of logSNRs."""
        lam = _check_levels(logsnrs)
        return jax.lax.map(lambda ab: self(ab[0], ab[1]), (lam[:-1], lam[1:]))

    def describe(self) -> dict:
        """JSON-able settings, recorded in schedule cards."""
        return {"measure": self.name}


def _check_levels(logsnrs: ArrayLike) -> Array:
    lam = jnp.asarray(logsnrs, dtype=jnp.result_type(float))
    if lam.ndim != 1 or lam.shape[0] < 2:
        raise ValueError(f"`logsnrs` must be 1-D with >= 2 levels, got shape {lam.shape}")
    return lam


# ---- closed form ----------------------------------------------------------------------


class GaussianFrechet(AbstractMeasure):
    """Exact Fréchet distance (identity features) for Gaussian data ``N(mean, C)``.

    The diffused data is ``N(alpha mu, alpha^2 C + sigma^2 I)``; the covariances at two
    levels commute, so ``D = |mu|^2 (alpha_a - alpha_b)^2 + sum_i (sqrt V_i(a) -
    sqrt V_i(b))^2`` with ``V_i = 1 + alpha^2 (c_i - 1)`` (evaluated without cancellation).

    >>> m = GaussianFrechet(jnp.array([4.0]))
    >>> a, b = 0.0, -1.0  # sqrt(V) = sqrt(1 + 3 sigmoid(lam))
    >>> bool(abs(m(a, b) - (jnp.sqrt(2.5) - jnp.sqrt(1 + 3 * jax.nn.sigmoid(-1.0))) ** 2) < 1e-6)
    True
    """

    name: ClassVar[str] = "gaussian-fd"
    eigenvalues: Float[Array, " d"]
    mean: Float[Array, " d"] | None = None

    def __check_init__(self):
        if self.eigenvalues.ndim != 1:
            raise ValueError(f"`eigenvalues` must be 1-D, got shape {self.eigenvalues.shape}")
        check_array_finite("eigenvalues", self.eigenvalues)
        if self.mean is not None and self.mean.shape != self.eigenvalues.shape:
            raise ValueError(
                f"`mean` must have shape {self.eigenvalues.shape}, got {self.mean.shape}"
            )

    def __call__(self, logsnr_a, logsnr_b):
        la, lb = jnp.asarray(logsnr_a), jnp.asarray(logsnr_b)
        c = self.eigenvalues
        va = 1.0 + jax.nn.sigmoid(la) * (c - 1.0)
        vb = 1.0 + jax.nn.sigmoid(lb) * (c - 1.0)
        d_alpha2 = sigmoid_difference(la, lb)  # alpha_a^2 - alpha_b^2
        out = jnp.sum((d_alpha2 * (c - 1.0)) ** 2 / (jnp.sqrt(va) + jnp.sqrt(vb)) ** 2)
        if self.mean is not None:
            d_alpha = d_alpha2 / (vp_scales(la)[0] + vp_scales(lb)[0])
            out = out + jnp.sum(self.mean**2) * d_alpha**2
        return out

    def pairwise(self, logsnrs):
        lam = _check_levels(logsnrs)
        return jax.vmap(self)(lam[:-1], lam[1:])

    def describe(self):
        return {"measure": self.name, "dim": int(self.eigenvalues.shape[0])}


# ---- sample banks ---------------------------------------------------------------------


class AbstractSampleMeasure(AbstractMeasure):
    """A measure estimated from a fixed bank of clean samples and noises (common random
    numbers: every level is diffused from the same ``data`` and ``noise``)."""

    data: AbstractVar[Array]
    noise: AbstractVar[Array]

    def diffuse(self, logsnr: ArrayLike) -> Array:
        """``alpha x0 + sigma eps`` (VP) of the whole bank at ``logsnr``."""
        alpha, sigma = vp_scales(logsnr)
        return alpha * self.data + sigma * self.noise

    def describe(self):
        return {
            "measure": self.name,
            "num_samples": int(self.data.shape[0]),
            "event_shape": list(self.data.shape[1:]),
        }


def sample_bank(
    data: ArrayLike, num_samples: int | None, seed: int, *, decorrelate: bool = True
) -> tuple[Array, Array]:
    """``num_samples`` rows of ``data`` (without replacement; all if ``None``) and standard
    normal noises of the same shape, both drawn from ``seed``.

    With ``decorrelate`` (default, used when ``n > 2 d + 1``) the noises are made exactly
    mean-zero, uncorrelated with the data and of identity sample covariance (Gram-Schmidt
    against the centred data, then whitened). Without it, the sample cross-covariance
    ``O(1 / sqrt(n))`` of data and noise would dominate the discrepancy at both ends of
    the noise range, where the true change is second order.

    >>> x0, eps = sample_bank(jax.random.normal(jax.random.key(0), (50, 3)), 40, seed=0)
    >>> x0.shape, eps.shape
    ((40, 3), (40, 3))
    >>> bool(jnp.abs((x0 - x0.mean(0)).T @ eps).max() < 1e-4)
    True
    """
    arr = jnp.asarray(data, dtype=jnp.result_type(float))
    if arr.ndim < 2 or arr.shape[0] < 2:
        raise ValueError(f"`data` must have shape (n >= 2, *event_shape), got shape {arr.shape}")
    check_array_finite("data", arr)
    key_rows, key_noise = jax.random.split(jax.random.key(seed))
    if num_samples is not None:
        n = check_positive_int("num_samples", num_samples)
        if n > arr.shape[0]:
            raise ValueError(
                f"`num_samples` must be <= the number of data rows {arr.shape[0]}, "
                f"got num_samples={num_samples}"
            )
        arr = arr[jax.random.permutation(key_rows, arr.shape[0])[:n]]
    eps = jax.random.normal(key_noise, arr.shape, arr.dtype)
    n, d = arr.shape[0], int(np.prod(arr.shape[1:]))
    if decorrelate and n > 2 * d + 1:
        eps = _decorrelated(arr.reshape(n, d), eps.reshape(n, d)).reshape(arr.shape)
    return arr, eps


def _decorrelated(x: Array, eps: Array) -> Array:
    """``eps`` made mean-zero, orthogonal to the centred ``x`` and of identity covariance."""
    n = x.shape[0]
    xc = np.asarray(x - x.mean(0), np.float64)
    e = np.asarray(eps, np.float64)
    e = e - e.mean(0)
    basis, sv, _ = np.linalg.svd(xc, full_matrices=False)
    basis = basis[:, sv > 1e-9 * max(sv.max(initial=0.0), 1e-300)]
    e = e - basis @ (basis.T @ e)
    q, _ = np.linalg.qr(e)  # orthonormal columns spanning the decorrelated noise
    # rotate back towards the draws (q^T e's polar factor) so each column stays "its" noise
    u, _, vt = np.linalg.svd(q.T @ e)
    return jnp.asarray(np.sqrt(n - 1.0) * q @ (u @ vt), eps.dtype)


class SampleFrechet(AbstractSampleMeasure):
    """Model-free Fréchet distance of features of the diffused data (Okada et al.'s measure 1).

    Gaussians are fitted to ``phi(x_a)`` and ``phi(x_b)`` (``phi`` = ``feature_map``,
    identity by default; Okada et al. use Inception, :func:`digits_feature_map` is the digits
    analogue). ``method="local"`` (default) is the distance to second order in the step,
    ``|dm|^2 + sum_ij dC_ij^2 / (2 (c_i + c_j))`` in the eigenbasis of ``(C_a + C_b) / 2``
    (the Wasserstein metric tensor of Gaussians; no cancellation in float32, error
    ``O(step^4)``); ``"exact"`` is :func:`schedopt.metrics.frechet_distance_gaussians`,
    which loses precision to cancellation for close levels in float32.

    >>> x = jax.random.normal(jax.random.key(1), (4000, 2)) * jnp.array([2.0, 0.5])
    >>> est = SampleFrechet.from_data(x)(0.0, -0.2)
    >>> ref = GaussianFrechet(jnp.array([4.0, 0.25]))(0.0, -0.2)
    >>> bool(abs(est / ref - 1) < 0.1)
    True
    """

    name: ClassVar[str] = "fd"
    data: Array
    noise: Array
    feature_map: Callable[[Array], Array] | None = None
    method: str = eqx.field(static=True, default="local")

    def __check_init__(self):
        check_choice("method", self.method, FRECHET_METHODS)
        if self.data.shape != self.noise.shape:
            raise ValueError(
                f"`data` and `noise` must have the same shape, got {self.data.shape} and "
                f"{self.noise.shape}"
            )

    @classmethod
    def from_data(
        cls,
        data: ArrayLike,
        *,
        num_samples: int | None = None,
        seed: int = 0,
        feature_map: Callable[[Array], Array] | None = None,
        method: str = "local",
    ) -> "SampleFrechet":
        """A bank of ``num_samples`` rows of ``data`` (all by default) with fresh noises."""
        x0, eps = sample_bank(data, num_samples, seed)
        return cls(x0, eps, feature_map=feature_map, method=method)

    def features(self, x: Array) -> Float[Array, "n f"]:
        feats = x if self.feature_map is None else self.feature_map(x)
        return feats.reshape(feats.shape[0], -1)

    def __call__(self, logsnr_a, logsnr_b):
        fa = self.features(self.diffuse(logsnr_a))
        fb = self.features(self.diffuse(logsnr_b))
        return self._distance(fa, fb)

    def pairwise(self, logsnrs):
        # each level's features once (shared by its two intervals), then every pair
        lam = _check_levels(logsnrs)
        feats = jax.lax.map(lambda x: self.features(self.diffuse(x)), lam)
        return jax.vmap(self._distance)(feats[:-1], feats[1:])

    def _distance(self, fa: Array, fb: Array) -> Scalar:
        if self.method == "exact":
            n = fa.shape[0]
            ma, mb = jnp.mean(fa, 0), jnp.mean(fb, 0)
            ca = (fa - ma).T @ (fa - ma) / (n - 1)
            cb = (fb - mb).T @ (fb - mb) / (n - 1)
            return frechet_distance_gaussians(ma, ca, mb, cb)
        return _local_frechet(fa, fb)

    def describe(self):
        return dict(super().describe(), method=self.method, features=_name(self.feature_map))


def _local_frechet(fa: Array, fb: Array) -> Scalar:
    """Second-order Fréchet distance of Gaussians fitted to two (close) feature sets.

    With ``d = fb - fa`` and ``s = fa + fb`` (rows paired by the common random numbers),
    ``cov(fb) - cov(fa) = (cov(d, s) + cov(s, d)) / 2`` exactly, with no cancellation.
    """
    n = fa.shape[0]
    diff, total = fb - fa, fb + fa
    dc, sc = diff - jnp.mean(diff, 0), total - jnp.mean(total, 0)
    cross = dc.T @ sc / (n - 1)
    delta_cov = 0.5 * (cross + cross.T)
    mid_cov = 0.25 * (sc.T @ sc + dc.T @ dc) / (n - 1)  # (cov(fa) + cov(fb)) / 2
    eig, vec = jnp.linalg.eigh(mid_cov)
    eig = jnp.clip(eig, 0.0)
    rotated = vec.T @ delta_cov @ vec
    denom = 2.0 * (eig[:, None] + eig[None, :])
    tiny = 1e-12 * jnp.maximum(jnp.max(denom), 1e-30)
    safe = jnp.where(denom > tiny, denom, 1.0)
    cov_term = jnp.sum(jnp.where(denom > tiny, rotated**2 / safe, 0.0))
    return jnp.sum(jnp.mean(diff, 0) ** 2) + cov_term


def _name(fn) -> str:
    if fn is None:
        return "identity"
    return getattr(fn, "name", getattr(fn, "__name__", type(fn).__name__))


# ---- combinations -----------------------------------------------------------------------


class Combined(AbstractMeasure):
    """``D = sum_k w_k D_k``: measures combined with non-negative weights.

    :func:`combine` builds one, optionally normalising each measure to unit length first.

    >>> m = Combined((GaussianFrechet(jnp.array([4.0])), GaussianFrechet(jnp.array([9.0]))),
    ...              jnp.array([1.0, 2.0]))
    >>> bool(abs(m(0.0, -1.0) - (m.measures[0](0.0, -1.0) + 2 * m.measures[1](0.0, -1.0))) < 1e-7)
    True
    """

    name: ClassVar[str] = "combined"
    measures: tuple[AbstractMeasure, ...]
    weights: Float[Array, " k"]

    def __check_init__(self):
        if not self.measures or not all(isinstance(m, AbstractMeasure) for m in self.measures):
            raise ValueError(
                "`measures` must be a non-empty tuple of AbstractMeasure, got "
                f"{self.measures!r:.200}"
            )
        if self.weights.shape != (len(self.measures),):
            raise ValueError(
                f"`weights` must have shape ({len(self.measures)},), got {self.weights.shape}"
            )
        check_array_finite("weights", self.weights)
        if is_concrete(self.weights) and np.any(np.asarray(self.weights) < 0):
            raise ValueError(f"`weights` must be >= 0, got weights={self.weights.tolist()}")

    def __call__(self, logsnr_a, logsnr_b):
        values = jnp.stack([m(logsnr_a, logsnr_b) for m in self.measures])
        return jnp.sum(self.weights * values)

    def pairwise(self, logsnrs):
        values = jnp.stack([m.pairwise(logsnrs) for m in self.measures])
        return jnp.sum(self.weights[:, None] * values, axis=0)

    def describe(self):
        return {
            "measure": self.name,
            "measures": [m.describe() for m in self.measures],
            "weights": [float(w) for w in np.asarray(self.weights)],
        }


def combine(
    measures, weights: ArrayLike | None = None, *, normalize_on: ArrayLike | None = None
) -> AbstractMeasure:
    """Weighted sum of measures; a single unweighted measure is returned as is.

    With ``normalize_on`` (a 1-D grid of logSNRs), each measure is first divided by the
    square of its length ``sum_j sqrt(D_k(lam_j, lam_{j+1}))`` on that grid, so that the
    weights mix shapes rather than units.

    >>> g = jnp.linspace(5.0, -5.0, 33)
    >>> m = combine([GaussianFrechet(jnp.array([4.0])), GaussianFrechet(jnp.array([0.1]))],
    ...             normalize_on=g)
    >>> [round(float(jnp.sum(jnp.sqrt(k.pairwise(g))) * jnp.sqrt(w)), 4)
    ...  for k, w in zip(m.measures, m.weights)]
    [1.0, 1.0]
    """
    measures = tuple(measures)
    w = jnp.ones((len(measures),)) if weights is None else jnp.asarray(weights, float)
    if len(measures) == 1 and weights is None and normalize_on is None:
        return measures[0]
    if normalize_on is not None:
        lengths = jnp.stack([jnp.sum(jnp.sqrt(m.pairwise(normalize_on))) for m in measures])
        w = w / lengths**2
    return Combined(measures, jnp.asarray(w, dtype=jnp.result_type(float)))
