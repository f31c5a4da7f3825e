"""Gaussian mixtures as plain arrays: exact densities, samples and the presets used in tests.

A mixture ``p(x) = sum_k w_k N(x; m_k, C_k)`` is held as ``weights (K,)``, ``means (K, d)``
and ``covariances (K, d, d)``; nothing else is needed to compute its exact posterior mean
under Gaussian noise, so oracles and metrics consume these arrays directly. A single
Gaussian with a given covariance spectrum is the ``K = 1`` case.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from .._checks import check_array_positive, check_positive_float, check_positive_int, is_concrete


class GaussianMixture(eqx.Module):
    """The mixture ``sum_k w_k N(m_k, C_k)``, held as plain arrays.

    ``weights`` has shape ``(K,)``, ``means`` ``(K, d)`` and ``covariances`` ``(K, d, d)``.

    >>> import jax, jax.numpy as jnp
    >>> gmm = GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-1.0], [1.0]]),
    ...                       jnp.full((2, 1, 1), 0.01))
    >>> gmm.sample(jax.random.key(0), 4).shape
    (4, 1)
    >>> round(float(gmm.log_prob(jnp.array([[1.0]]))[0]), 3)  # log(0.5 / sqrt(2 pi 0.01))
    0.69
    """

    weights: Float[Array, " K"]
    means: Float[Array, "K d"]
    covariances: Float[Array, "K d d"]

    def __init__(self, weights: ArrayLike, means: ArrayLike, covariances: ArrayLike):
        dtype = jnp.result_type(float)
        self.weights = jnp.asarray(weights, dtype)
        self.means = jnp.asarray(means, dtype)
        self.covariances = jnp.asarray(covariances, dtype)

    def __check_init__(self):
        w, m, c = self.weights, self.means, self.covariances
        if w.ndim != 1 or m.ndim != 2 or c.ndim != 3:
            raise ValueError(
                "a GaussianMixture needs weights (K,), means (K, d), covariances (K, d, d); got "
                f"weights.shape={w.shape}, means.shape={m.shape}, covariances.shape={c.shape}"
            )
        k, d = m.shape
        if w.shape != (k,) or c.shape != (k, d, d):
            raise ValueError(
                f"mismatched shapes: weights.shape={w.shape}, means.shape={m.shape}, "
                f"covariances.shape={c.shape}; expected ({k},), ({k}, {d}), ({k}, {d}, {d})"
            )
        if is_concrete(w):
            check_array_positive("weights", w)
            total = float(np.sum(np.asarray(w)))
            if abs(total - 1.0) > 1e-4:
                raise ValueError(f"`weights` must sum to 1, got sum(weights)={total!r}")
        if is_concrete(c):
            arr = np.asarray(c, dtype=np.float64)
            if not np.allclose(
                arr, np.swapaxes(arr, -1, -2), atol=1e-6 * max(1.0, np.abs(arr).max())
            ):
                raise ValueError("`covariances` must be symmetric")
            low = np.linalg.eigvalsh(arr).min(axis=-1)
            if np.any(~np.isfinite(low)) or np.any(low <= 0):
                k_bad = int(np.argmin(low))
                raise ValueError(
                    "`covariances` must be positive definite; covariances"
                    f"[{k_bad}] has smallest eigenvalue {float(low[k_bad])!r}"
                )

    @property
    def num_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def mean(self) -> Float[Array, " d"]:
        """Mixture mean ``sum_k w_k m_k``."""
        return self.weights @ self.means

    def covariance(self) -> Float[Array, "d d"]:
        """Mixture covariance ``sum_k w_k (C_k + m_k m_k^T) - m m^T``."""
        mu = self.mean()
        second = jnp.einsum("k,kij->ij", self.weights, self.covariances)
        second = second + jnp.einsum("k,ki,kj->ij", self.weights, self.means, self.means)
        return second - jnp.outer(mu, mu)

    def sample_with_labels(
        self, key: PRNGKeyArray, num_samples: int
    ) -> tuple[Float[Array, "n d"], Int[Array, " n"]]:
        """``num_samples`` draws and the index of the component each came from."""
        return _sample(self, key, check_positive_int("num_samples", num_samples))

    def sample(self, key: PRNGKeyArray, num_samples: int) -> Float[Array, "n d"]:
        """``num_samples`` i.i.d. draws, shape ``(num_samples, d)``."""
        return self.sample_with_labels(key, num_samples)[0]

    def component_log_probs(self, x: Float[Array, "n d"]) -> Float[Array, "n K"]:
        """``log w_k + log N(x_n; m_k, C_k)`` for every sample and component."""
        x = jnp.asarray(x, self.means.dtype)
        chol = jnp.linalg.cholesky(self.covariances)  # (K, d, d)
        diff = x[:, None, :] - self.means[None, :, :]  # (n, K, d)
        sol = jax.vmap(
            lambda L, r: jax.scipy.linalg.solve_triangular(L, r.T, lower=True).T,
            in_axes=(0, 1),
            out_axes=1,
        )(chol, diff)
        maha = jnp.sum(sol**2, axis=-1)
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        const = self.dim * math.log(2.0 * math.pi)
        return jnp.log(self.weights) - 0.5 * (maha + logdet + const)

    def mahalanobis(self, x: Float[Array, "n d"]) -> Float[Array, "n K"]:
        """Squared Mahalanobis distance of every sample to every component."""
        x = jnp.asarray(x, self.means.dtype)
        prec = jnp.linalg.inv(self.covariances)
        diff = x[:, None, :] - self.means[None, :, :]
        return jnp.einsum("nki,kij,nkj->nk", diff, prec, diff)

    def log_prob(self, x: Float[Array, "n d"]) -> Float[Array, " n"]:
        """Exact log-density ``log p(x_n)``."""
        return jax.scipy.special.logsumexp(self.component_log_probs(x), axis=-1)

    def responsibilities(self, x: Float[Array, "n d"]) -> Float[Array, "n K"]:
        """Posterior component probabilities ``p(k | x_n)``."""
        return jax.nn.softmax(self.component_log_probs(x), axis=-1)


@eqx.filter_jit
def _sample(gmm: GaussianMixture, key: PRNGKeyArray, n: int):
    key_k, key_z = jax.random.split(key)
    labels = jax.random.categorical(key_k, jnp.log(gmm.weights), shape=(n,))
    chol = jnp.linalg.cholesky(gmm.covariances)
    z = jax.random.normal(key_z, (n, gmm.dim), gmm.means.dtype)
    return gmm.means[labels] + jnp.einsum("nij,nj->ni", chol[labels], z), labels


# ---- presets ---------------------------------------------------------------------------


def ring(num_modes: int = 8, radius: float = 1.0, std: float = 0.1) -> GaussianMixture:
    """``num_modes`` equal isotropic 2-D Gaussians evenly spaced on a circle.

    >>> ring(8).means.shape
    (8, 2)
    """
    k = check_positive_int("num_modes", num_modes)
    r = check_positive_float("radius", radius)
    sd = check_positive_float("std", std)
    angles = 2.0 * np.pi * np.arange(k) / k
    means = r * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    covs = np.broadcast_to(sd**2 * np.eye(2), (k, 2, 2))
    return GaussianMixture(np.full(k, 1.0 / k), means, covs)


def grid_mixture(num_per_side: int = 5, spacing: float = 0.5, std: float = 0.05) -> GaussianMixture:
    """A centered ``num_per_side x num_per_side`` grid of equal isotropic 2-D Gaussians.

    >>> grid_mixture(5).num_components
    25
    """
    n = check_positive_int("num_per_side", num_per_side)
    h = check_positive_float("spacing", spacing)
    sd = check_positive_float("std", std)
    axis = h * (np.arange(n) - (n - 1) / 2)
    xx, yy = np.meshgrid(axis, axis, indexing="ij")
    means = np.stack([xx.ravel(), yy.ravel()], axis=-1)
    k = n * n
    return GaussianMixture(
        np.full(k, 1.0 / k), means, np.broadcast_to(sd**2 * np.eye(2), (k, 2, 2))
    )


def _random_rotation(rng: np.random.Generator, dim: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def unequal_mixture(
    dim: int = 64, num_components: int = 8, seed: int = 0, separation: float = 1.0
) -> GaussianMixture:
    """A ``dim``-dimensional mixture with unequal weights and unequal, rotated covariances.

    Component ``k`` has weight ``∝ 1 / (k + 1)``, a mean of norm ``separation * sqrt(2)``
    in a random direction, and covariance ``Q_k diag(c_k) Q_k^T`` with eigenvalues ``c_k``
    log-uniform in ``[10^-2.5, 10^-0.5] * 2^-k`` (a different spread per component).
    Deterministic given ``seed``.

    >>> unequal_mixture(dim=4, num_components=3).covariances.shape
    (3, 4, 4)
    """
    d = check_positive_int("dim", dim)
    k = check_positive_int("num_components", num_components)
    sep = check_positive_float("separation", separation)
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, k + 1)
    weights /= weights.sum()
    directions = rng.standard_normal((k, d))
    means = sep * np.sqrt(2.0) * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    covs = np.empty((k, d, d))
    for j in range(k):
        eig = 10.0 ** rng.uniform(-2.5, -0.5, size=d) * 2.0 ** (-j % 4)
        q = _random_rotation(rng, d)
        c = (q * eig) @ q.T
        covs[j] = 0.5 * (c + c.T)
    return GaussianMixture(weights, means, covs)


def gaussian_with_spectrum(
    eigenvalues: ArrayLike, mean: ArrayLike | None = None, *, rotation_seed: int | None = None
) -> GaussianMixture:
    """``N(mean, Q diag(eigenvalues) Q^T)`` as a one-component mixture.

    ``Q`` is the identity, or a random rotation drawn from ``rotation_seed``.

    >>> g = gaussian_with_spectrum([4.0, 1.0, 0.25])
    >>> [round(float(v), 2) for v in jnp.diag(g.covariance())]
    [4.0, 1.0, 0.25]
    """
    eig = np.asarray(eigenvalues, dtype=np.float64)
    if eig.ndim != 1 or eig.size < 1:
        raise ValueError(f"`eigenvalues` must be a non-empty 1-D array, got shape {eig.shape}")
    check_array_positive("eigenvalues", eig)
    d = eig.size
    mu = np.zeros(d) if mean is None else np.asarray(mean, dtype=np.float64)
    if mu.shape != (d,):
        raise ValueError(f"`mean` must have shape ({d},) to match eigenvalues, got {mu.shape}")
    if rotation_seed is None:
        cov = np.diag(eig)
    else:
        q = _random_rotation(np.random.default_rng(rotation_seed), d)
        cov = (q * eig) @ q.T
        cov = 0.5 * (cov + cov.T)
    return GaussianMixture(np.ones(1), mu[None], cov[None])
