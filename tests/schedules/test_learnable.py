"""Learnable families: monotone with exact endpoints for every parameter value."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from schedopt.schedules import (
    EDM,
    Cosine,
    LogSNRLinear,
    MonotoneCubic,
    MonotoneMLP,
    PiecewiseLinear,
    Tabulated,
)

T = jnp.linspace(0.0, 1.0, 1001)
# A few sizes only: each new shape compiles anew.
logits = arrays(np.float64, st.sampled_from([1, 2, 5, 40]), elements=st.floats(-30, 30))


def assert_valid(schedule):
    """Strictly decreasing and exact at the ends; run in float64 so that tiny (but
    positive) increments are resolved."""
    lam = _logsnr(schedule, jnp.asarray(T, schedule_dtype(schedule)))
    assert bool(jnp.all(jnp.isfinite(lam)))
    assert bool(jnp.all(jnp.diff(lam) < 0))
    assert lam[0] == jnp.asarray(schedule.logsnr_max, lam.dtype)
    assert lam[-1] == jnp.asarray(schedule.logsnr_min, lam.dtype)


@jax.jit
def _logsnr(schedule, t):
    return schedule.logsnr(t)


def schedule_dtype(schedule):
    return jax.tree_util.tree_leaves(schedule)[0].dtype


@given(logits)
def test_piecewise_linear_is_monotone_with_exact_endpoints(values):
    with jax.enable_x64(True):
        assert_valid(PiecewiseLinear(logits=jnp.asarray(values)))


@given(logits)
def test_monotone_cubic_is_monotone_with_exact_endpoints(values):
    with jax.enable_x64(True):
        assert_valid(MonotoneCubic(logits=jnp.asarray(values), sigma_min=0.01, sigma_max=50.0))


@given(st.integers(0, 10_000), st.floats(-5, 5), st.sampled_from([1, 3, 32]))
def test_monotone_mlp_is_monotone_with_exact_endpoints(seed, scale, features):
    with jax.enable_x64(True):
        m = MonotoneMLP.init(jax.random.key(seed), features)
        m = jax.tree_util.tree_map(lambda x: x * scale if isinstance(x, jax.Array) else x, m)
        assert_valid(m)


@pytest.mark.parametrize(
    "target", [EDM(), Cosine(shift=0.5), LogSNRLinear(), Tabulated.scaled_linear()]
)
@pytest.mark.parametrize("cls", [PiecewiseLinear, MonotoneCubic])
def test_knot_families_initialise_to_any_fixed_family(cls, target):
    s = cls.from_schedule(target, num_knots=64)
    t = s.knot_times()
    np.testing.assert_allclose(s.logsnr(t), target.logsnr(t), atol=1e-3)
    between = jnp.linspace(0, 1, 777)
    span = float(target.logsnr_max - target.logsnr_min)
    assert float(jnp.max(jnp.abs(s.logsnr(between) - target.logsnr(between)))) < 0.02 * span


@pytest.mark.parametrize("target", [EDM(), Cosine(shift=0.5), Tabulated.scaled_linear()])
def test_mlp_initialises_to_a_fixed_family(target):
    s = MonotoneMLP.from_schedule(target)
    span = float(target.logsnr_max - target.logsnr_min)
    err = jnp.max(jnp.abs(s.logsnr(T) - target.logsnr(T)))
    assert float(err) < 1e-3 * span
    # ... and is still a trainable warp: gradients reach the network, not the base.
    grads = jax.grad(lambda m: m.logsnr(0.3))(s)
    assert float(jnp.abs(grads.w1)) > 0
    assert all(float(jnp.max(jnp.abs(g))) == 0 for g in jax.tree_util.tree_leaves(grads.base))


def test_gradients_flow_to_the_parameters():
    s = MonotoneCubic.uniform(8)
    g = jax.grad(lambda lg: MonotoneCubic(logits=lg).noise_level(0.4))(s.logits)
    eps = 1e-3
    e0 = jnp.zeros(8).at[2].set(eps)
    fd = (
        MonotoneCubic(logits=s.logits + e0).noise_level(0.4)
        - MonotoneCubic(logits=s.logits - e0).noise_level(0.4)
    ) / (2 * eps)
    np.testing.assert_allclose(g[2], fd, rtol=2e-2)


def test_invalid_logits_raise():
    with pytest.raises(ValueError, match="logits"):
        PiecewiseLinear(logits=jnp.array([0.0, jnp.nan]))
    with pytest.raises(ValueError, match="logsnrs"):
        PiecewiseLinear.from_logsnr_values(jnp.array([1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="num_knots=0"):
        MonotoneCubic.uniform(0)
