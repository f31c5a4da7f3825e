"""Closed forms of Williams et al.'s costs for Gaussian data ``N(mu, C)``, ``C`` with
eigenvalues ``c_i``.

With the exact denoiser each eigen-direction evolves alone (``y - mu ~ N(0, c + s^2)``,
score ``-(y - mu) / (c + s^2)``), so every cost is a sum over directions:

- corrector: ``L_c(s, s') = v(s')^2 sum_i (s^2 - s'^2)^2 / ((c_i + s'^2)^2 (c_i + s^2))``,
  locally ``delta_c(s) = v(s)^2 sum_i 4 s^2 / (c_i + s^2)^3``, i.e. ``4 s^4 / (c + s^2)^3`` per
  direction for ``v = s``;
- predictor (one Euler step, gain ``g = (c + s s') / (c + s^2)``): the pushforward is
  ``N(0, b)``, ``b = g^2 (c + s^2)``, the target ``N(0, a)``, ``a = c + s'^2``, and
  ``L_p = v(s')^2 sum_i (a_i - b_i)^2 / (a_i^2 b_i)``; since ``a - b = c (s - s')^2 / (c + s^2)``,
  locally ``L_p(s, s + h) = v(s)^2 sum_i c_i^2 / (c_i + s^2)^5 h^4``.

For one eigenvalue and ``v = s`` the corrector length is
``Lambda(s) = int_0^s sqrt(delta_c) = 2 (asinh(s / sqrt c) - s / sqrt(c + s^2))``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from .._checks import check_array_positive, check_choice
from .costs import COSTS, velocity


def _eigenvalues(eigenvalues: ArrayLike) -> Array:
    c = jnp.atleast_1d(jnp.asarray(eigenvalues, dtype=jnp.result_type(float)))
    check_array_positive("eigenvalues", c)
    return c


def gaussian_interval_cost(
    eigenvalues: ArrayLike,
    noise_level: ArrayLike,
    next_level: ArrayLike,
    cost: str = "corrector",
    velocity_name: str = "sigma",
) -> Array:
    """Exact ``L(s, s')`` for Gaussian data with covariance eigenvalues ``eigenvalues``.

    ``noise_level`` and ``next_level`` broadcast against each other (elementwise).

    >>> round(float(gaussian_interval_cost([1.0], 1.0, 0.0)), 6)  # v(0) = 0
    0.0
    >>> round(float(gaussian_interval_cost([1.0], 1.0, 0.5, velocity_name="one")), 4)
    0.18
    """
    check_choice("cost", cost, COSTS)
    c = _eigenvalues(eigenvalues)
    s = jnp.asarray(noise_level, dtype=c.dtype)[..., None]
    s2 = jnp.asarray(next_level, dtype=c.dtype)[..., None]
    v2 = velocity(velocity_name, s2[..., 0]) ** 2
    if cost == "corrector":
        per = ((s - s2) * (s + s2)) ** 2 / ((c + s2**2) ** 2 * (c + s**2))
    else:
        a = c + s2**2
        b = (c + s * s2) ** 2 / (c + s**2)
        per = (c * (s - s2) ** 2 / (c + s**2)) ** 2 / (a**2 * b)  # a - b, without cancellation
    return v2 * jnp.sum(per, axis=-1)


def gaussian_local_cost(
    eigenvalues: ArrayLike, noise_level: ArrayLike, cost: str = "corrector", velocity_name="sigma"
) -> Array:
    """``delta(s)`` of ``L(s, s + h) ~ delta(s) |h|^order`` (order 2 corrector, 4 predictor).

    >>> round(float(gaussian_local_cost([1.0], 1.0)), 6)  # 4 s^4 / (c + s^2)^3
    0.5
    """
    check_choice("cost", cost, COSTS)
    c = _eigenvalues(eigenvalues)
    s = jnp.asarray(noise_level, dtype=c.dtype)[..., None]
    v2 = velocity(velocity_name, s[..., 0]) ** 2
    if cost == "corrector":
        per = 4.0 * s**2 / (c + s**2) ** 3
    else:
        per = c**2 / (c + s**2) ** 5
    return v2 * jnp.sum(per, axis=-1)


def gaussian_corrector_length(eigenvalue: float, noise_level: ArrayLike) -> Array:
    """``Lambda(s) = int_0^s sqrt(delta_c(r)) dr`` for one eigenvalue ``c`` and ``v = s``.

    The equal-cost (corrector-optimal) grid on ``[s_min, s_max]`` has equal increments of it.

    >>> round(float(gaussian_corrector_length(1.0, 1.0)), 4)  # 2 (asinh 1 - 1/sqrt 2)
    0.3485
    """
    c = _eigenvalues(eigenvalue)[0]
    s = jnp.asarray(noise_level, dtype=c.dtype)
    return 2.0 * (jnp.arcsinh(s / jnp.sqrt(c)) - s / jnp.sqrt(c + s**2))
