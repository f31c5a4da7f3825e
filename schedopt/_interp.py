"""Monotone interpolation in JAX: piecewise-linear and PCHIP (monotone cubic Hermite).

PCHIP uses the Fritsch--Carlson weighted-harmonic-mean slopes (as scipy's
``PchipInterpolator``), so strictly increasing data give a monotone interpolant.
Both interpolants are differentiable with respect to the data values.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


def pchip_slopes(x: Float[Array, " n"], y: Float[Array, " n"]) -> Float[Array, " n"]:
    """Shape-preserving knot slopes of the PCHIP interpolant through ``(x, y)``.

    Interior: ``m_k = (w1 + w2) / (w1 / d_{k-1} + w2 / d_k)`` when the secants ``d`` agree in
    sign, else 0; ends: the three-point formula, clipped to keep monotonicity.

    >>> pchip_slopes(jnp.array([0.0, 1.0, 2.0]), jnp.array([0.0, 1.0, 2.0]))
    Array([1., 1., 1.], dtype=float32)
    """
    h = jnp.diff(x)
    d = jnp.diff(y) / h
    if x.shape[0] == 2:
        return jnp.stack([d[0], d[0]])
    h0, h1 = h[:-1], h[1:]
    d0, d1 = d[:-1], d[1:]
    w1 = 2 * h1 + h0
    w2 = h1 + 2 * h0
    same = d0 * d1 > 0
    safe0 = jnp.where(same, d0, 1.0)
    safe1 = jnp.where(same, d1, 1.0)
    interior = jnp.where(same, (w1 + w2) / (w1 / safe0 + w2 / safe1), 0.0)

    def end(h_a, h_b, d_a, d_b):
        m = ((2 * h_a + h_b) * d_a - h_a * d_b) / (h_a + h_b)
        m = jnp.where(jnp.sign(m) != jnp.sign(d_a), 0.0, m)
        clip = (jnp.sign(d_a) != jnp.sign(d_b)) & (jnp.abs(m) > 3 * jnp.abs(d_a))
        return jnp.where(clip, 3 * d_a, m)

    first = end(h[0], h[1], d[0], d[1])
    last = end(h[-1], h[-2], d[-1], d[-2])
    return jnp.concatenate([first[None], interior, last[None]])


def pchip(x: Float[Array, " n"], y: Float[Array, " n"], xq: ArrayLike) -> Array:
    """Evaluate the PCHIP interpolant through knots ``(x, y)`` (``x`` increasing) at ``xq``.

    Outside ``[x[0], x[-1]]`` the end cubic is extended.

    >>> pchip(jnp.array([0.0, 1.0, 2.0]), jnp.array([0.0, 1.0, 4.0]), 1.0)
    Array(1., dtype=float32)
    """
    xq = jnp.asarray(xq, dtype=y.dtype)
    m = pchip_slopes(x, y)
    i = jnp.clip(jnp.searchsorted(x, xq, side="right") - 1, 0, x.shape[0] - 2)
    h = x[i + 1] - x[i]
    u = (xq - x[i]) / h
    u2, u3 = u * u, u * u * u
    h00 = 2 * u3 - 3 * u2 + 1
    h10 = u3 - 2 * u2 + u
    h01 = -2 * u3 + 3 * u2
    h11 = u3 - u2
    return h00 * y[i] + h10 * h * m[i] + h01 * y[i + 1] + h11 * h * m[i + 1]


def clip_through(x: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> Array:
    """``clip(x, lo, hi)`` whose derivative is ``x``'s wherever ``lo <= x <= hi``.

    ``jnp.clip`` is built from ``maximum`` and ``minimum``, which split the derivative
    between both arguments at a tie, so a value exactly on a bound (a knot, a grid's end)
    gets half its slope; here a tie keeps all of it.

    >>> import jax
    >>> float(jax.grad(lambda v: clip_through(v, 0.0, 1.0))(0.0))
    1.0
    """
    x = jnp.asarray(x)
    return jnp.where((x >= lo) & (x <= hi), x, jnp.clip(x, lo, hi))
