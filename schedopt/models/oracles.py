"""Exact denoisers (oracles): Gaussian and Gaussian-mixture data, no training error at all.

With data ``N(mu, C)``, ``C = U diag(c) U^T``, the noisy state ``y = x0 + s eps`` is
``N(mu, C + s^2 I)`` and the posterior mean is
``D(y; s) = mu + U diag(c / (c + s^2)) U^T (y - mu)``. A mixture
``sum_k w_k N(mu_k, C_k)`` gives ``D = sum_k r_k(y) D_k(y)`` with responsibilities
``r_k ∝ w_k N(y; mu_k, C_k + s^2 I)``. Each component's covariance is eigendecomposed
once, so every evaluation costs ``O(K d^2)`` per sample and is differentiable in ``y``
and ``s``. Oracles let a sampler's discretisation error be measured on its own.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._checks import check_array_finite, check_array_positive, check_positive_int, is_concrete
from .base import AbstractDenoiser, _broadcast_level


def _as_float(x: ArrayLike) -> Array:
    return jnp.asarray(x, dtype=jnp.result_type(float))


def _check_symmetric(name: str, cov: Array) -> None:
    if is_concrete(cov):
        arr = np.asarray(cov)
        if not np.allclose(arr, np.swapaxes(arr, -1, -2), rtol=1e-5, atol=1e-8):
            raise ValueError(
                f"`{name}` must be symmetric; got an asymmetric matrix of shape {arr.shape}"
            )


def _eigh_positive(name: str, cov: Array) -> tuple[Array, Array]:
    _check_symmetric(name, cov)
    values, vectors = jnp.linalg.eigh(cov)
    if is_concrete(values) and np.any(np.asarray(values) <= 0):
        bad = float(np.min(np.asarray(values)))
        raise ValueError(
            f"`{name}` must be positive definite; its smallest eigenvalue is {bad!r} "
            "(add a small multiple of the identity)"
        )
    return values, vectors


class GaussianDenoiser(AbstractDenoiser):
    """Exact posterior mean for data ``N(mean, U diag(eigenvalues) U^T)``.

    ``eigenvectors=None`` means the identity (the data is axis-aligned, as in the
    eigenbasis the Gaussian theory works in). ``y`` has shape ``(batch, d)``.

    >>> den = GaussianDenoiser(jnp.array([1.0, 4.0]))
    >>> den(jnp.array([[2.0, 2.0]]), 1.0).tolist()  # c / (c + s^2) * y
    [[1.0, 1.600000023841858]]
    """

    eigenvalues: Float[Array, " d"]
    mean: Float[Array, " d"]
    eigenvectors: Float[Array, "d d"] | None

    def __init__(
        self,
        eigenvalues: ArrayLike,
        mean: ArrayLike | None = None,
        eigenvectors: ArrayLike | None = None,
    ):
        self.eigenvalues = jnp.atleast_1d(_as_float(eigenvalues))
        d = self.eigenvalues.shape
        self.mean = jnp.zeros(d, self.eigenvalues.dtype) if mean is None else _as_float(mean)
        self.eigenvectors = None if eigenvectors is None else _as_float(eigenvectors)

    def __check_init__(self):
        if self.eigenvalues.ndim != 1:
            raise ValueError(f"`eigenvalues` must be 1-D, got shape {self.eigenvalues.shape}")
        check_array_positive("eigenvalues", self.eigenvalues)
        d = self.eigenvalues.shape[0]
        if self.mean.shape != (d,):
            raise ValueError(f"`mean` must have shape ({d},), got mean.shape={self.mean.shape}")
        check_array_finite("mean", self.mean)
        if self.eigenvectors is not None and self.eigenvectors.shape != (d, d):
            raise ValueError(
                f"`eigenvectors` must have shape ({d}, {d}), got {self.eigenvectors.shape}"
            )

    @classmethod
    def from_covariance(cls, covariance: ArrayLike, mean: ArrayLike | None = None):
        """From a full covariance matrix (eigendecomposed once).

        >>> den = GaussianDenoiser.from_covariance(jnp.array([[2.0, 1.0], [1.0, 2.0]]))
        >>> [round(v, 3) for v in den.eigenvalues.tolist()]
        [1.0, 3.0]
        """
        cov = _as_float(covariance)
        if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
            raise ValueError(f"`covariance` must be a square matrix, got shape {cov.shape}")
        values, vectors = _eigh_positive("covariance", cov)
        return cls(values, mean=mean, eigenvectors=vectors)

    @classmethod
    def from_spectrum(cls, spectrum) -> GaussianDenoiser:
        """From a :class:`schedopt.gaussian.Spectrum`: one axis-aligned direction per
        eigenvalue, with the spectrum's mean (given in the eigenbasis). The spectrum's
        multiplicity ``weights`` are not expanded into repeated directions.

        >>> from schedopt.gaussian import Spectrum
        >>> GaussianDenoiser.from_spectrum(Spectrum([0.5, 2.0])).dim
        2
        """
        return cls(spectrum.eigenvalues, mean=spectrum.mean)

    @property
    def dim(self) -> int:
        return int(self.eigenvalues.shape[0])

    @property
    def covariance(self) -> Float[Array, "d d"]:
        if self.eigenvectors is None:
            return jnp.diag(self.eigenvalues)
        u = self.eigenvectors
        return (u * self.eigenvalues) @ u.T

    def __call__(self, y, noise_level):
        s = _broadcast_level(noise_level, y)
        z = y - self.mean
        if self.eigenvectors is not None:
            z = z @ self.eigenvectors
        z = z * (self.eigenvalues / (self.eigenvalues + s**2))
        if self.eigenvectors is not None:
            z = z @ self.eigenvectors.T
        return self.mean + z

    def sample(self, key: PRNGKeyArray, num_samples: int) -> Float[Array, "n d"]:
        """Clean samples ``x0 ~ N(mean, C)``."""
        n = check_positive_int("num_samples", num_samples)
        z = jax.random.normal(key, (n, self.dim), self.eigenvalues.dtype)
        z = z * jnp.sqrt(self.eigenvalues)
        if self.eigenvectors is not None:
            z = z @ self.eigenvectors.T
        return self.mean + z


class GaussianMixtureDenoiser(AbstractDenoiser):
    """Exact posterior mean for data ``sum_k w_k N(mu_k, C_k)``, any ``K``.

    ``covariances`` is ``(K, d, d)`` (full) or ``(K, d)`` (diagonal). ``y`` has shape
    ``(batch, d)``.

    >>> den = GaussianMixtureDenoiser(jnp.array([0.5, 0.5]), jnp.array([[-2.0], [2.0]]),
    ...                               jnp.array([[0.01], [0.01]]))
    >>> round(float(den(jnp.array([[1.5]]), 0.1)[0, 0]), 3)  # close to the mode at 2
    1.75
    """

    log_weights: Float[Array, " K"]
    means: Float[Array, "K d"]
    eigenvalues: Float[Array, "K d"]
    eigenvectors: Float[Array, "K d d"] | None

    def __init__(self, weights: ArrayLike, means: ArrayLike, covariances: ArrayLike):
        w = _as_float(weights)
        m = _as_float(means)
        c = _as_float(covariances)
        if w.ndim != 1 or m.ndim != 2 or c.ndim not in (2, 3):
            raise ValueError(
                "a Gaussian mixture needs weights (K,), means (K, d) and covariances (K, d, d) "
                f"or (K, d); got weights.shape={w.shape}, means.shape={m.shape}, "
                f"covariances.shape={c.shape}"
            )
        k, d = m.shape
        expected_c = (k, d, d) if c.ndim == 3 else (k, d)
        if w.shape != (k,) or c.shape != expected_c:
            raise ValueError(
                f"mismatched shapes: weights.shape={w.shape}, means.shape={m.shape}, "
                f"covariances.shape={c.shape}; expected ({k},), ({k}, {d}), {expected_c}"
            )
        check_array_positive("weights", w)
        check_array_finite("means", m)
        self.log_weights = jnp.log(w) - jnp.log(jnp.sum(w))
        self.means = m
        if c.ndim == 3:
            self.eigenvalues, self.eigenvectors = _eigh_positive("covariances", c)
        else:
            check_array_positive("covariances", c)
            self.eigenvalues, self.eigenvectors = c, None

    @classmethod
    def from_mixture(cls, mixture) -> GaussianMixtureDenoiser:
        """From any object with ``weights``, ``means`` and ``covariances`` arrays
        (e.g. :class:`schedopt.data.GaussianMixture`)."""
        return cls(mixture.weights, mixture.means, mixture.covariances)

    @property
    def num_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def _rotate(self, z: Array) -> Array:  # (b, K, d) into each component's eigenbasis
        if self.eigenvectors is None:
            return z
        return jnp.einsum("bkd,kde->bke", z, self.eigenvectors)

    def _unrotate(self, z: Array) -> Array:
        if self.eigenvectors is None:
            return z
        return jnp.einsum("bke,kde->bkd", z, self.eigenvectors)

    def responsibilities(self, y, noise_level) -> Float[Array, "batch K"]:
        """Posterior component probabilities ``r_k(y) ∝ w_k N(y; mu_k, C_k + s^2 I)``."""
        return jax.nn.softmax(self._log_joint(y, noise_level)[0], axis=-1)

    def _log_joint(self, y, noise_level):
        s = _broadcast_level(noise_level, y)  # (b, 1) or ()
        z = self._rotate(y[:, None, :] - self.means[None])  # (b, K, d)
        var = self.eigenvalues[None] + (s**2)[..., None]  # (b, K, d)
        log_joint = self.log_weights - 0.5 * jnp.sum(z**2 / var + jnp.log(var), axis=-1)
        return log_joint, z, var

    def __call__(self, y, noise_level):
        log_joint, z, var = self._log_joint(y, noise_level)
        r = jax.nn.softmax(log_joint, axis=-1)  # (b, K)
        posterior = self.means[None] + self._unrotate(z * (self.eigenvalues[None] / var))
        return jnp.einsum("bk,bkd->bd", r, posterior)

    def sample(self, key: PRNGKeyArray, num_samples: int) -> Float[Array, "n d"]:
        """Clean samples from the mixture."""
        n = check_positive_int("num_samples", num_samples)
        key_k, key_z = jax.random.split(key)
        k = jax.random.categorical(key_k, self.log_weights, shape=(n,))
        z = jax.random.normal(key_z, (n, self.dim), self.means.dtype)
        z = z * jnp.sqrt(self.eigenvalues[k])
        if self.eigenvectors is not None:
            z = jnp.einsum("nd,ned->ne", z, self.eigenvectors[k])
        return self.means[k] + z
