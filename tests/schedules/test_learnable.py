"""Learnable families: monotone with exact endpoints for every parameter value."""

import equinox as eqx
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


# ---- floating point: every parameter value, float32 and float64 -------------------------

FINE = 4097  # grid points of the rounding checks (spacing 2.4e-4)


def _random_mlp(rng, scale, base, dtype):
    m = MonotoneMLP.init(jax.random.key(0), 16, base=base)
    values = tuple(
        jnp.asarray(rng.normal(size=np.shape(x)) * scale, dtype) for x in (m.w1, m.w2, m.b2, m.w3)
    )
    return eqx.tree_at(lambda m: (m.w1, m.w2, m.b2, m.w3), m, values)


def _check_rounding(schedule, dtype, *, strict):
    t = jnp.linspace(0.0, 1.0, FINE, dtype=dtype)
    lam = np.asarray(_logsnr(schedule, t))
    lo, hi = np.asarray(schedule.logsnr_min, dtype), np.asarray(schedule.logsnr_max, dtype)
    assert np.all(np.isfinite(lam))
    assert lam[0] == hi and lam[-1] == lo
    assert np.all((lam >= lo) & (lam <= hi))
    steps = np.diff(lam)
    assert np.all(steps < 0) if strict else np.all(steps <= 0), steps.max()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("base", [None, EDM()])
def test_mlp_is_finite_strictly_monotone_and_inside_its_ends_for_any_parameters(dtype, base):
    # Scales up to 1e30 saturate every hidden unit (the old parametrisation then divided
    # 0 by 0, reversed by up to 42 in logSNR and left [lam_min, lam_max]).
    rng = np.random.default_rng(0)
    with jax.enable_x64(dtype == jnp.float64):
        for scale in (1.0, 100.0, 1e4, 1e30):
            for _ in range(25):
                _check_rounding(_random_mlp(rng, scale, base, dtype), dtype, strict=True)
        saturated = MonotoneMLP(
            w1=jnp.asarray(-1e30, dtype),
            w2=jnp.full((4,), 1e30, dtype),
            b2=jnp.asarray([-1e30, 1e30, 3e38, -3e38], dtype),
            w3=jnp.full((4,), 1e30, dtype),
        )
        _check_rounding(saturated, dtype, strict=True)


@pytest.mark.parametrize("cls", [PiecewiseLinear, MonotoneCubic])
@pytest.mark.parametrize("knots", ["uniform", "adaptive"])
def test_knot_families_never_reverse_in_float32(cls, knots):
    # float32, logits up to +-30: rounding may flatten a step inside a knot interval held
    # at its 1e-6 minimum share, but never reverses one (MonotoneCubic's summed Hermite
    # basis used to reverse by 1-4 ulp in most such draws).
    rng = np.random.default_rng(1)
    start = cls.from_schedule(EDM(), 32, placement=knots)
    for scale in (1.0, 3.0, 10.0, 30.0):
        for _ in range(25):
            logits = jnp.asarray(rng.normal(size=32) * scale, jnp.float32)
            _check_rounding(
                eqx.tree_at(lambda s: s.logits, start, logits), jnp.float32, strict=scale == 1.0
            )
