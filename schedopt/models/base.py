"""The denoiser interface shared by samplers, objectives and training.

A denoiser is the posterior mean ``D(y; s) = E[x0 | y]`` in EDM variables: the state is
``y = x / alpha`` (so ``y = x0 + s * eps``) and ``s = sigma / alpha`` is the EDM noise
level. Everything else follows: score ``(D - y) / s^2``, noise prediction
``(y - D) / s`` and the probability-flow velocity ``dy/ds = (y - D) / s``.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


class AbstractDenoiser(eqx.Module):
    """``D(y, s)``: posterior mean of clean data given the noisy state at noise level ``s``.

    ``y`` has shape ``(batch, *event_shape)``; ``noise_level`` is a scalar or has shape
    ``(batch,)``. The output has the shape of ``y``. Implementations are pure and jit-able.
    """

    @abc.abstractmethod
    def __call__(self, y: Float[Array, "batch ..."], noise_level: ArrayLike) -> Array:
        """The denoised estimate of ``x0``."""

    def score(self, y: Float[Array, "batch ..."], noise_level: ArrayLike) -> Array:
        """``grad log p_s(y) = (D(y, s) - y) / s^2``."""
        s = _broadcast_level(noise_level, y)
        return (self(y, noise_level) - y) / s**2

    def velocity(self, y: Float[Array, "batch ..."], noise_level: ArrayLike) -> Array:
        """Probability-flow ODE right-hand side ``dy/ds = (y - D(y, s)) / s``."""
        s = _broadcast_level(noise_level, y)
        return (y - self(y, noise_level)) / s


def _broadcast_level(noise_level: ArrayLike, y: Array) -> Array:
    """Reshape a scalar or ``(batch,)`` noise level to broadcast against ``y``."""
    s = jnp.asarray(noise_level, dtype=y.dtype)
    return s.reshape(s.shape + (1,) * (y.ndim - s.ndim))
