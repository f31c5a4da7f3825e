"""Distances between sample sets: Fréchet, sliced Wasserstein-2, MMD and Gaussian KL.

The one implementation of each: the sample-based objectives (:mod:`schedopt.objectives`)
and the metrics call these same functions.

All are written in JAX: jit-able, and differentiable with respect to the samples (so an
objective can use them as a distribution discrepancy). Sample sets have shape
``(n, *event_shape)`` and are flattened to ``(n, d)``.
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Scalar

from .._checks import check_positive_int, is_concrete


def _flat(name: str, x: ArrayLike, min_samples: int = 1) -> Array:
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(
            f"`{name}` must have shape (n, ...) with n samples, got {name}.shape={x.shape}"
        )
    if x.shape[0] < min_samples:
        raise ValueError(
            f"`{name}` needs at least {min_samples} samples, got {name}.shape={x.shape}"
        )
    return x.reshape(x.shape[0], -1).astype(jnp.result_type(x.dtype, float))


def _same_dim(x: Array, y: Array, names=("x", "y")) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must have the same event size, got "
            f"{x.shape[1]} and {y.shape[1]}"
        )


def mean_and_covariance(x: ArrayLike) -> tuple[Float[Array, " d"], Float[Array, "d d"]]:
    """Sample mean and unbiased sample covariance (``ddof = 1``) of ``x`` of shape ``(n, ...)``.

    >>> m, c = mean_and_covariance(jnp.array([[0.0], [2.0]]))
    >>> float(m[0]), float(c[0, 0])
    (1.0, 2.0)
    """
    x = _flat("x", x, min_samples=2)
    mu = jnp.mean(x, axis=0)
    centered = x - mu
    return mu, centered.T @ centered / (x.shape[0] - 1)


def _sqrtm_psd(c: Array) -> Array:
    eig, vec = jnp.linalg.eigh(0.5 * (c + c.T))
    return (vec * jnp.sqrt(jnp.clip(eig, 0.0))) @ vec.T


def frechet_distance_gaussians(
    mean1: ArrayLike, cov1: ArrayLike, mean2: ArrayLike, cov2: ArrayLike
) -> Scalar:
    """Squared W2 of Gaussians, ``|m1 - m2|^2 + tr(C1 + C2 - 2 (R C2 R)^(1/2))``, ``R = C1^(1/2)``.

    The symmetric form keeps every square root that of a positive semi-definite matrix.

    >>> float(frechet_distance_gaussians(jnp.zeros(2), 4 * jnp.eye(2), jnp.ones(2), jnp.eye(2)))
    4.0
    """
    m1, m2 = jnp.asarray(mean1), jnp.asarray(mean2)
    c1, c2 = jnp.asarray(cov1), jnp.asarray(cov2)
    if m1.shape != m2.shape or c1.shape != c2.shape or c1.shape != m1.shape * 2:
        raise ValueError(
            f"mismatched shapes: mean1 {m1.shape}, cov1 {c1.shape}, "
            f"mean2 {m2.shape}, cov2 {c2.shape}"
        )
    root1 = _sqrtm_psd(c1)
    cross = _sqrtm_psd(root1 @ c2 @ root1)
    return jnp.sum((m1 - m2) ** 2) + jnp.trace(c1) + jnp.trace(c2) - 2.0 * jnp.trace(cross)


def frechet_distance(x: ArrayLike, y: ArrayLike) -> Scalar:
    """Fréchet distance (FID without Inception) between Gaussians fitted to two sample sets.

    Pass features (e.g. :func:`schedopt.metrics.digits_features`) for an FID-like score.
    Concrete inputs are evaluated in float64 with NumPy (the traces nearly cancel for
    close sets); under ``jit``/``grad`` the same formula runs in JAX at the input dtype,
    written with the eigenvalues of ``C_y^1/2 C_x C_y^1/2`` (floored at the smallest
    normal number) so that its gradient with respect to ``x`` stays finite when a
    covariance is rank-deficient.

    >>> import jax
    >>> x = jax.random.normal(jax.random.key(0), (500, 3))
    >>> abs(float(frechet_distance(x, x))) < 1e-6
    True
    """
    x, y = _flat("x", x, 2), _flat("y", y, 2)
    _same_dim(x, y)
    if is_concrete(x) and is_concrete(y):
        # the traces cancel when the sets are close: evaluate concrete inputs in float64
        return jnp.asarray(_frechet_distance_float64(np.asarray(x), np.asarray(y)), x.dtype)
    return _frechet_distance(x, y)


def _frechet_distance_float64(x: np.ndarray, y: np.ndarray) -> float:
    def moments(z):
        z = z.astype(np.float64)
        return z.mean(0), np.cov(z, rowvar=False).reshape(z.shape[1], z.shape[1])

    def sqrtm(c):
        eig, vec = np.linalg.eigh(0.5 * (c + c.T))
        return (vec * np.sqrt(np.clip(eig, 0.0, None))) @ vec.T

    (m1, c1), (m2, c2) = moments(x), moments(y)
    root1 = sqrtm(c1)
    cross = sqrtm(root1 @ c2 @ root1)
    return float(np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2.0 * np.trace(cross))


@jax.jit
def _frechet_distance(x, y):
    (mx, cx), (my, cy) = mean_and_covariance(x), mean_and_covariance(y)
    root_y = _sqrtm_psd(cy)
    cross = jnp.linalg.eigvalsh(root_y @ cx @ root_y)
    trace_sqrt = jnp.sum(jnp.sqrt(jnp.maximum(cross, jnp.finfo(x.dtype).tiny)))
    return jnp.sum((mx - my) ** 2) + jnp.trace(cx) + jnp.trace(cy) - 2.0 * trace_sqrt


def kl_divergence_gaussians(
    mean1: ArrayLike, cov1: ArrayLike, mean2: ArrayLike, cov2: ArrayLike
) -> Scalar:
    """``KL(N(m1, C1) || N(m2, C2))``, closed form, in nats.

    ``0.5 (tr(C2^-1 C1) + (m2 - m1)^T C2^-1 (m2 - m1) - d + log det C2 - log det C1)``.

    >>> float(kl_divergence_gaussians(jnp.zeros(1), jnp.eye(1), jnp.ones(1), jnp.eye(1)))
    0.5
    """
    m1, m2 = jnp.asarray(mean1), jnp.asarray(mean2)
    c1, c2 = jnp.asarray(cov1), jnp.asarray(cov2)
    if m1.shape != m2.shape or c1.shape != c2.shape or c1.shape != m1.shape * 2:
        raise ValueError(
            f"mismatched shapes: mean1 {m1.shape}, cov1 {c1.shape}, "
            f"mean2 {m2.shape}, cov2 {c2.shape}"
        )
    l1, l2 = jnp.linalg.cholesky(c1), jnp.linalg.cholesky(c2)
    solve = jax.scipy.linalg.solve_triangular
    a = solve(l2, l1, lower=True)  # tr(C2^-1 C1) = ||L2^-1 L1||_F^2
    b = solve(l2, m2 - m1, lower=True)
    logdet = 2.0 * (jnp.sum(jnp.log(jnp.diag(l2))) - jnp.sum(jnp.log(jnp.diag(l1))))
    return 0.5 * (jnp.sum(a**2) + jnp.sum(b**2) - m1.shape[0] + logdet)


def fitted_kl(
    samples: ArrayLike, mean: ArrayLike, cov: ArrayLike, direction: str = "forward"
) -> Scalar:
    """KL between the reference ``N(mean, cov)`` and the Gaussian fitted to ``samples``.

    ``direction`` has the meaning it has everywhere in schedopt (as in
    :func:`schedopt.gaussian.gaussian_kl`): ``"forward"`` is ``KL(reference || fitted)``
    (data versus samples), ``"reverse"`` is ``KL(fitted || reference)``. Needs more samples
    than dimensions (a non-singular fitted covariance).

    >>> import jax
    >>> x = jax.random.normal(jax.random.key(0), (4000, 2)) + 1.0
    >>> round(float(fitted_kl(x, jnp.zeros(2), jnp.eye(2))), 1)  # ||1||^2 / 2
    1.0
    """
    x = _flat("samples", samples, 2)
    if x.shape[0] <= x.shape[1]:
        raise ValueError(
            f"`samples` must hold more samples than dimensions to fit a covariance, got "
            f"samples.shape={x.shape}"
        )
    if direction not in ("forward", "reverse"):
        raise ValueError(f"`direction` must be 'forward' or 'reverse', got direction={direction!r}")
    m, c = mean_and_covariance(x)
    ref = (jnp.asarray(mean, x.dtype).reshape(-1), jnp.asarray(cov, x.dtype))
    if direction == "forward":
        return kl_divergence_gaussians(*ref, m, c)
    return kl_divergence_gaussians(m, c, *ref)


def fitted_gaussian_kl(
    samples: ArrayLike, mean: ArrayLike, cov: ArrayLike, direction: str = "forward"
) -> Scalar:
    """Deprecated: :func:`fitted_kl` with ``direction`` the other way round (here
    ``"forward"`` was ``KL(fitted || reference)``, the reverse of schedopt's meaning).

    >>> import jax, warnings
    >>> x = jax.random.normal(jax.random.key(0), (4000, 2))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     old = fitted_gaussian_kl(x, jnp.zeros(2), jnp.eye(2))
    >>> bool(old == fitted_kl(x, jnp.zeros(2), jnp.eye(2), direction="reverse"))
    True
    """
    if direction not in ("forward", "reverse"):
        raise ValueError(f"`direction` must be 'forward' or 'reverse', got direction={direction!r}")
    flipped = "reverse" if direction == "forward" else "forward"
    warnings.warn(
        "schedopt.metrics.fitted_gaussian_kl is deprecated: use schedopt.metrics.fitted_kl, "
        f"whose direction={flipped!r} is this call's direction={direction!r} (`direction` "
        "now means what it means in schedopt.gaussian.gaussian_kl: forward = KL(data || samples))",
        DeprecationWarning,
        stacklevel=2,
    )
    return fitted_kl(samples, mean, cov, flipped)


def sliced_wasserstein(
    x: ArrayLike, y: ArrayLike, key: PRNGKeyArray, num_projections: int = 256
) -> Scalar:
    """Sliced Wasserstein-2 ``sqrt(E W2^2(theta.x, theta.y))``, ``theta`` uniform on the sphere.

    Each 1-D ``W2^2`` is the mean squared difference of the two empirical quantile
    functions (exact for equal sample sizes: sorted samples paired in order).

    >>> import jax
    >>> x = jax.random.normal(jax.random.key(0), (100, 1))
    >>> round(float(sliced_wasserstein(x, x + 3.0, jax.random.key(1), 4)), 4)
    3.0
    """
    x, y = _flat("x", x), _flat("y", y)
    _same_dim(x, y)
    k = check_positive_int("num_projections", num_projections)
    return _sliced_wasserstein(x, y, key, k)


@functools.partial(jax.jit, static_argnums=3)
def _sliced_wasserstein(x, y, key, k):
    theta = jax.random.normal(key, (x.shape[1], k), x.dtype)
    theta = theta / jnp.linalg.norm(theta, axis=0, keepdims=True)
    px, py = jnp.sort(x @ theta, axis=0), jnp.sort(y @ theta, axis=0)
    n, m = x.shape[0], y.shape[0]
    if n == m:
        return jnp.sqrt(jnp.mean((px - py) ** 2))
    # exact for step quantile functions: both are constant on the merged level grid
    edges = np.unique(np.concatenate([np.arange(n + 1) / n, np.arange(m + 1) / m]))
    widths = np.diff(edges)
    mids = edges[:-1] + 0.5 * widths
    ix = np.minimum((mids * n).astype(np.int64), n - 1)
    iy = np.minimum((mids * m).astype(np.int64), m - 1)
    sq = jnp.sum(jnp.asarray(widths, x.dtype)[:, None] * (px[ix] - py[iy]) ** 2, axis=0)
    return jnp.sqrt(jnp.mean(sq))


def median_bandwidth(x: ArrayLike, y: ArrayLike, max_samples: int = 1000) -> Scalar:
    """Median heuristic: median pairwise distance of the pooled samples (``max_samples`` each)."""
    x, y = _flat("x", x), _flat("y", y)
    max_samples = check_positive_int("max_samples", max_samples)
    return _median_distance(jnp.concatenate([x[:max_samples], y[:max_samples]]))


@jax.jit
def _median_distance(z):
    iu = np.triu_indices(z.shape[0], 1)
    return jnp.sqrt(jnp.median(_sq_dists(z, z)[iu]))


def _sq_dists(a: Array, b: Array) -> Array:
    d2 = jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2.0 * a @ b.T
    return jnp.clip(d2, 0.0)


def mmd(
    x: ArrayLike, y: ArrayLike, bandwidth: ArrayLike | None = None, unbiased: bool = True
) -> Scalar:
    """Squared maximum mean discrepancy with the Gaussian kernel ``exp(-||a - b||^2 / (2 h^2))``.

    ``bandwidth`` ``h`` is a scalar or a 1-D array (kernels summed); ``None`` uses the
    median heuristic. ``unbiased=True`` is the U-statistic (can be slightly negative);
    ``False`` the V-statistic (>= 0, and 0 up to rounding for identical sets).

    >>> import jax
    >>> x = jax.random.normal(jax.random.key(0), (200, 2))
    >>> abs(float(mmd(x, x, 1.0, unbiased=False))) < 1e-6
    True
    """
    x, y = _flat("x", x, 2), _flat("y", y, 2)
    _same_dim(x, y)
    if bandwidth is None:
        h = median_bandwidth(x, y)
    else:
        if is_concrete(bandwidth) and not np.all(np.asarray(bandwidth) > 0):
            # NumPy, not jnp: inside jit a jnp comparison of a captured constant is traced.
            raise ValueError(f"`bandwidth` must be > 0, got bandwidth={bandwidth!r}")
        h = jnp.asarray(bandwidth, x.dtype)
    return _mmd(x, y, jnp.atleast_1d(h), bool(unbiased))


@functools.partial(jax.jit, static_argnums=3)
def _mmd(x, y, h, unbiased):
    def kernel(a, b):
        d2 = _sq_dists(a, b)
        return jnp.sum(jnp.exp(-d2[..., None] / (2.0 * h**2)), axis=-1)

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    n, m = x.shape[0], y.shape[0]
    if unbiased:
        sxx = (jnp.sum(kxx) - jnp.trace(kxx)) / (n * (n - 1))
        syy = (jnp.sum(kyy) - jnp.trace(kyy)) / (m * (m - 1))
    else:
        sxx, syy = jnp.mean(kxx), jnp.mean(kyy)
    return sxx + syy - 2.0 * jnp.mean(kxy)
