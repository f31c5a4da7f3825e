"""affine_recursion's custom VJP against JAX's autodiff through the same plain scan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.gaussian.recursion import affine_recursion


def _step(state, c, x):  # a DPM-Solver++(2M)-like step: (e, D_prev) -> (e', D)
    e, previous = state
    ratio, weights, s = x
    denoised = c / (c + s**2) * e
    return ratio * e + weights[0] * denoised + weights[1] * previous, denoised


def _plain(z0, c, xs):
    return jax.lax.scan(lambda z, x: (_step(z, c, x), None), z0, xs)[0]


def _inputs(n, d=5):
    rng = np.random.default_rng(n)
    c = jnp.asarray(rng.lognormal(size=d))
    xs = (
        jnp.asarray(rng.uniform(0.3, 1.0, n)),
        jnp.asarray(rng.normal(size=(n, 2))),
        jnp.asarray(np.geomspace(10.0, 0.1, n)),
    )
    z0 = (jnp.asarray(rng.normal(size=d)), jnp.zeros(d))
    return z0, c, xs


@pytest.mark.parametrize("n", [1, 2, 7])
def test_gradients_match_autodiff_through_the_scan(n):
    with jax.enable_x64(True):
        z0, c, xs = _inputs(n)

        def loss(form, z0, c, xs):
            e, previous = form(z0, c, xs)
            return jnp.sum(jnp.sin(e) + e * previous**2)

        mine = jax.grad(lambda *a: loss(lambda *b: affine_recursion(_step, *b), *a), (0, 1, 2))
        plain = jax.grad(lambda *a: loss(_plain, *a), (0, 1, 2))
        expected = jax.tree.leaves(plain(z0, c, xs))
        for a, b in zip(jax.tree.leaves(mine(z0, c, xs)), expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_only_the_inputs_with_a_tangent_are_differentiated():
    with jax.enable_x64(True):
        z0, c, xs = _inputs(4)

        def loss(ratio, form):  # c, the weights and the levels are constants here
            return jnp.sum(form(z0, c, (ratio, *xs[1:]))[0] ** 2)

        mine = jax.grad(loss)(xs[0], lambda *b: affine_recursion(_step, *b))
        np.testing.assert_allclose(mine, jax.grad(loss)(xs[0], _plain), rtol=1e-12)


def test_no_steps_return_the_start():
    z0, c, _ = _inputs(1)
    empty = (jnp.zeros(0), jnp.zeros((0, 2)), jnp.zeros(0))
    assert affine_recursion(_step, z0, c, empty) is z0
