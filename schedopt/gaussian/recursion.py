"""Per-eigenvalue affine recursions over steps, differentiated by one reverse sweep.

A multistep solver on Gaussian data keeps a small state per eigenvalue (the offset and
the previous denoiser outputs, or their moments), updated by a map that is affine in the
state: ``z_{k+1} = step(z_k, c, x_k)``, with the eigenvalues ``c`` and per-step scalars
``x_k`` (the solver's plan and noise level, the same for every eigenvalue).
:func:`affine_recursion` chains it with one ``lax.scan``.

Its VJP (``jax.custom_vjp``), for a cotangent ``lambda_N`` of ``z_N``: the forward sweep
keeps the states ``z_k``; one backward sweep runs ``lambda_k = J_k^T lambda_{k+1}``
(``J_k = d step / d z_k``) and forms step ``k``'s cotangents
``d x_k = sum_i lambda_{k+1, i} . d step / d x_k`` and
``d c += lambda_{k+1} . d step / d c`` from the kept state, only for the inputs that carry a
tangent (symbolic zeros: a constant plan, or eigenvalues that are not differentiated, cost
nothing). Against autodiff through the rematerialised, unrolled scan it replaced, the
reverse loop does less per step (no rematerialisation inside it, no cotangents of
constants; unrolled steps fused badly on XLA's CPU backend).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .chain import UNROLL


def affine_recursion(step, z0, c, xs):
    """``z_N`` of ``z_{k+1} = step(z_k, c, xs[k])`` for ``k < num_steps``.

    ``step(z, c, x_k)`` must be affine in ``z`` (a pytree of ``(d,)`` arrays; its Jacobian
    in ``z`` may depend on ``c`` and ``x_k``, not on ``z``); ``xs`` is a pytree of per-step
    arrays with leading axis ``num_steps``. Reverse mode is one backward sweep (see
    :mod:`schedopt.gaussian.recursion`); being a ``jax.custom_vjp``, it has no forward-mode
    derivative.

    >>> step = lambda z, c, x: x * z + c  # z' = x z + c
    >>> z = affine_recursion(step, jnp.ones(2), jnp.ones(2), jnp.array([2.0, 2.0, 0.5]))
    >>> z.tolist()  # ((1 * 2 + 1) * 2 + 1) * 0.5 + 1
    [4.5, 4.5]
    """
    if jax.tree_util.tree_leaves(xs)[0].shape[0] == 0:
        return z0
    return _recursion(step, z0, c, xs)


def _scan(body, z0, xs, reverse=False, unroll=1):
    steps = jax.tree_util.tree_leaves(xs)[0].shape[0]
    return jax.lax.scan(body, z0, xs, reverse=reverse, unroll=min(unroll, steps))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _recursion(step, z0, c, xs):
    return _scan(lambda z, x: (step(z, c, x), None), z0, xs, unroll=UNROLL)[0]


def _values(tree):
    return jax.tree_util.tree_map(lambda p: p.value, tree, is_leaf=_is_primal)


def _perturbed(tree):
    return jax.tree_util.tree_map(lambda p: p.perturbed, tree, is_leaf=_is_primal)


def _is_primal(x):
    return isinstance(x, jax.custom_derivatives.CustomVJPPrimal)


def _instantiate(tree):
    def fill(x):
        if isinstance(x, jax.custom_derivatives.SymbolicZero):
            return jnp.zeros(x.shape, x.dtype)
        return x

    is_zero = lambda x: isinstance(x, jax.custom_derivatives.SymbolicZero)  # noqa: E731
    return jax.tree_util.tree_map(fill, tree, is_leaf=is_zero)


def _recursion_fwd(step, z0, c, xs):
    # which of c and the per-step leaves carry a tangent: only their cotangents are formed
    wanted = (_perturbed(c), _perturbed(xs))
    z0, c, xs = _values(z0), _values(c), _values(xs)
    z_n, states = _scan(lambda z, x: (step(z, c, x), z), z0, xs, unroll=UNROLL)
    return z_n, (states, c, xs, wanted)


def _recursion_bwd(step, residuals, cotangent):
    states, c, xs, (c_wanted, xs_wanted) = residuals
    x_leaves, x_tree = jax.tree_util.tree_flatten(xs)
    wanted = [bool(w) for w in jax.tree_util.tree_leaves(xs_wanted)]

    def back(carry, inputs):  # lambda_k = J_k^T lambda_{k+1}, and step k's cotangents
        adjoint, dc = carry
        z, x = inputs
        x = jax.tree_util.tree_leaves(x)

        def local(z, c, x_wanted):
            parts = iter(x_wanted)
            leaves = [next(parts) if w else leaf for leaf, w in zip(x, wanted, strict=True)]
            return step(z, c, jax.tree_util.tree_unflatten(x_tree, leaves))

        x_wanted = [leaf for leaf, w in zip(x, wanted, strict=True) if w]
        if c_wanted:
            _, pullback = jax.vjp(local, z, c, x_wanted)
            adjoint, dc_k, dx = pullback(adjoint)
            dc = dc + dc_k
        else:
            _, pullback = jax.vjp(lambda z, x: local(z, c, x), z, x_wanted)
            adjoint, dx = pullback(adjoint)
        return (adjoint, dc), dx

    carry = (_instantiate(cotangent), jnp.zeros_like(c))
    (adjoint0, dc), dx = _scan(back, carry, (states, xs), reverse=True)
    parts = iter(dx)
    dxs = [next(parts) if w else jnp.zeros_like(x) for x, w in zip(x_leaves, wanted, strict=True)]
    return adjoint0, dc, jax.tree_util.tree_unflatten(x_tree, dxs)


_recursion.defvjp(_recursion_fwd, _recursion_bwd, symbolic_zeros=True)
