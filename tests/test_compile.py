"""schedopt._compile: equinox-style jit with XLA compiler options."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt._compile import FAST_COMPILE, fast_compile_options, fast_jit, filter_jit
from schedopt.gaussian import Spectrum, gaussian_kl
from schedopt.gaussian.solvers import step_grid
from schedopt.schedules import EDM, MonotoneCubic


def test_fast_compile_gives_the_numbers_of_the_default_compile():
    spectrum, schedule = Spectrum([0.1, 1.0, 7.0]), MonotoneCubic.from_schedule(EDM(), 8)

    def kl(schedule, num_steps, solver):
        return jax.value_and_grad(lambda s: gaussian_kl(spectrum, step_grid(s, num_steps), solver))(
            schedule
        )

    fast, default = filter_jit(kl, FAST_COMPILE), eqx.filter_jit(kl)
    for solver in ("euler", "heun"):
        (v1, g1), (v2, g2) = fast(schedule, 6, solver), default(schedule, 6, solver)
        # float32: the two programs fuse (round) differently, a few ulps apart
        np.testing.assert_allclose(v1, v2, rtol=1e-5)
        np.testing.assert_allclose(g1.logits, g2.logits, rtol=1e-4, atol=1e-6)


def test_static_arguments_and_fallback():
    calls = []

    def f(x, scale, names):
        calls.append(scale)  # runs once per trace
        return x * scale + len(names)

    g = fast_jit(f)
    assert g(jnp.ones(2), 2.0, ("a",)).tolist() == [3.0, 3.0]
    assert g(jnp.zeros(2), 2.0, ("a",)).tolist() == [1.0, 1.0]
    assert g(jnp.zeros(2), 3.0, ("a",)).tolist() == [1.0, 1.0]
    assert calls == [2.0, 3.0]  # the second call reused the first program
    # an unhashable static leaf is passed on to equinox, which says what is wrong
    unhashable = filter_jit(lambda x, s: x + len(s), FAST_COMPILE)
    with pytest.raises(ValueError, match="hash"):
        unhashable(jnp.ones(1), bytearray(b"ab"))
    assert fast_compile_options() in (None, FAST_COMPILE)
