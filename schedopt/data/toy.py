"""2-D toy distributions without a closed-form density: two moons and a swiss roll.

Both are written in JAX (jit-able, deterministic given ``key``) and scaled to roughly
unit variance per coordinate, centered at the origin.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_finite_float, check_positive_int


def moons(key: PRNGKeyArray, num_samples: int, noise: float = 0.05) -> Float[Array, "n 2"]:
    """Two interleaving half circles (as scikit-learn's ``make_moons``), centered and scaled.

    ``x = (cos u, sin u)`` or ``(1 - cos u, 1/2 - sin u)`` with ``u ~ U(0, pi)``, plus
    ``N(0, noise^2)``, then shifted by ``(-1/2, -1/4)`` and divided by ``(0.87, 0.5)``, which
    gives about unit variance per coordinate.

    >>> import jax
    >>> moons(jax.random.key(0), 10).shape
    (10, 2)
    """
    n = check_positive_int("num_samples", num_samples)
    noise = check_finite_float("noise", noise)
    if noise < 0:
        raise ValueError(f"`noise` must be >= 0, got noise={noise!r}")
    return _moons(key, n, noise)


@functools.partial(jax.jit, static_argnums=1)
def _moons(key, n, noise):
    key_u, key_side, key_eps = jax.random.split(key, 3)
    u = jax.random.uniform(key_u, (n,), minval=0.0, maxval=jnp.pi)
    side = jax.random.bernoulli(key_side, 0.5, (n,))
    upper = jnp.stack([jnp.cos(u), jnp.sin(u)], axis=-1)
    lower = jnp.stack([1.0 - jnp.cos(u), 0.5 - jnp.sin(u)], axis=-1)
    x = jnp.where(side[:, None], upper, lower)
    x = x + noise * jax.random.normal(key_eps, x.shape)
    return (x - jnp.array([0.5, 0.25])) / jnp.array([0.87, 0.5])


def swiss_roll(key: PRNGKeyArray, num_samples: int, noise: float = 0.05) -> Float[Array, "n 2"]:
    """A 2-D swiss roll: ``u (cos u, sin u) / 7.5`` with ``u ~ U(1.5 pi, 4.5 pi)``, plus noise.

    >>> import jax
    >>> swiss_roll(jax.random.key(0), 10).shape
    (10, 2)
    """
    n = check_positive_int("num_samples", num_samples)
    noise = check_finite_float("noise", noise)
    if noise < 0:
        raise ValueError(f"`noise` must be >= 0, got noise={noise!r}")
    return _swiss_roll(key, n, noise)


@functools.partial(jax.jit, static_argnums=1)
def _swiss_roll(key, n, noise):
    key_u, key_eps = jax.random.split(key)
    u = jax.random.uniform(key_u, (n,), minval=1.5 * jnp.pi, maxval=4.5 * jnp.pi)
    x = u[:, None] * jnp.stack([jnp.cos(u), jnp.sin(u)], axis=-1) / 7.5
    return x + noise * jax.random.normal(key_eps, x.shape)
