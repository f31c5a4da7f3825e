"""Per-eigenvalue affine recursions over steps, differentiated by one reverse sweep.

A multistep solver on Gaussian data keeps a small state per eigenvalue (the offset and
the previous denoiser outputs, or their moments), updated by a map that is affine in the
state: ``z_{k+1} = step(z_k, c, x_k)``, with the eigenvalues ``c`` and per-step scalars
``x_k`` (the solver's plan and noise level, the same for every eigenvalue).
:func:`affine_recursion` chains it with one ``lax.scan`` of multiply-adds.

Its VJP, for a cotangent ``lambda_N`` of ``z_N``: one forward sweep keeps the states
``z_k``, one backward sweep runs the adjoints ``lambda_k = J_k^T lambda_{k+1}``
(``J_k = d step / d z``, independent of ``z``: the map is affine), and then the
cotangents of ``c`` and of every ``x_k`` come at once from
``sum_i lambda_{k+1, i} . step(z_{k, i}, c_i, x_k)`` differentiated over the whole
``(num_steps, d)`` layout, with ``x_k`` broadcast to every eigenvalue so that the sums over
eigenvalues are folded by halves (:func:`sum_last`: vectorised adds, fused with the
products) rather than by one sequential reduction per step inside the reverse loop.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

#: Width below which :func:`sum_last` stops folding and reduces.
LANES = 128


def affine_recursion(step, z0, c, xs):
    """``z_N`` of ``z_{k+1} = step(z_k, c, xs[k])`` for ``k < num_steps``.

    ``step(z, c, x_k)`` must be affine in ``z`` (a pytree of ``(d,)`` arrays) and
    elementwise in ``c`` (``(d,)``) and ``x_k``: it must also accept each leaf of ``x_k``
    with a trailing axis of length ``d`` (one value per eigenvalue). ``xs`` is a pytree of
    per-step arrays, leading axis ``num_steps``. Reverse mode is one backward sweep (see
    :mod:`schedopt.gaussian.recursion`; a ``jax.custom_vjp``: no forward-mode derivative).

    >>> step = lambda z, c, x: x * z + c  # z' = x z + c
    >>> z = affine_recursion(step, jnp.ones(2), jnp.ones(2), jnp.array([2.0, 2.0, 0.5]))
    >>> z.tolist()  # ((1 * 2 + 1) * 2 + 1) * 0.5 + 1
    [4.5, 4.5]
    """
    if jax.tree_util.tree_leaves(xs)[0].shape[0] == 0:
        return z0
    return _recursion(step, z0, c, xs)


def sum_last(x):
    """Sum over the last axis, folded by halves down to :data:`LANES` entries first.

    >>> float(sum_last(jnp.arange(1000.0)))
    499500.0
    """
    while x.shape[-1] > LANES and x.shape[-1] % 2 == 0:
        half = x.shape[-1] // 2
        x = x[..., :half] + x[..., half:]
    return jnp.sum(x, axis=-1)


def _scan(body, z0, xs, reverse=False):
    return jax.lax.scan(body, z0, xs, reverse=reverse)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _recursion(step, z0, c, xs):
    return _scan(lambda z, x: (step(z, c, x), None), z0, xs)[0]


def _recursion_fwd(step, z0, c, xs):
    z_n, states = _scan(lambda z, x: (step(z, c, x), z), z0, xs)
    return z_n, (states, c, xs)


def _recursion_bwd(step, residuals, cotangent):
    states, c, xs = residuals

    def back(carry, inputs):  # lambda_k = J_k^T lambda_{k+1}, and step k's cotangents
        adjoint, dc = carry
        z, x = inputs
        _, pullback = jax.vjp(step, z, c, x)
        adjoint, dc_k, dx = pullback(adjoint)
        return (adjoint, dc + dc_k), dx

    (adjoint0, dc), dxs = _scan(back, (cotangent, jnp.zeros_like(c)), (states, xs), reverse=True)
    return adjoint0, dc, dxs


_recursion.defvjp(_recursion_fwd, _recursion_bwd)
