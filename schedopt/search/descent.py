"""The searches' optimiser: Adam on a small parameter vector, keeping the best iterate.

One jitted scan, keyed by the loss function and the static parts of its arguments, so a
repeated search with the same settings reuses its compilation (what AYS-style and DMN-style
searches need; schedule fits go through :func:`schedopt.optimize.optimize` instead).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax


@eqx.filter_jit
def best_descent(loss, z0, args, learning_rate: float, num_iterations: int):
    """Adam from ``z0`` on ``loss(z, args)`` for ``num_iterations`` steps; the best iterate.

    >>> import jax.numpy as jnp
    >>> z = best_descent(lambda z, a: jnp.sum((z - a) ** 2), jnp.zeros(2), jnp.ones(2), 0.1, 200)
    >>> [round(float(v), 2) for v in z]
    [1.0, 1.0]
    """
    optimizer = optax.adam(learning_rate)

    def body(carry, _):
        z, state, best_z, best = carry
        value, grad = jax.value_and_grad(loss)(z, args)
        better = value < best
        best_z, best = jnp.where(better, z, best_z), jnp.where(better, value, best)
        updates, state = optimizer.update(grad, state, z)
        return (optax.apply_updates(z, updates), state, best_z, best), value

    init = (z0, optimizer.init(z0), z0, jnp.inf)
    (z, _, best_z, best), _ = jax.lax.scan(body, init, None, length=num_iterations)
    return jnp.where(loss(z, args) < best, z, best_z)
