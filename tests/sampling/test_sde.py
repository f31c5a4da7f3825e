"""Stochastic samplers: exact Gaussian moments from the affine structure, Monte Carlo moments
for Gaussian / Rademacher / uniform noise, the reparameterised noise path and its gradients."""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt import gaussian as G
from schedopt.models import GaussianDenoiser
from schedopt.sampling import (
    Ancestral,
    EulerMaruyama,
    ReparameterisedNoisePath,
    ancestral,
    draw_noise,
    euler_maruyama,
)
from schedopt.schedules import EDM, PiecewiseLinear, RangedSchedule, VPLinear, grid, grid_times

C = jnp.array([0.02, 0.5, 3.0])
MU = jnp.array([0.4, -1.0, 0.25])
D = 3


def _starts(schedule, spectrum):
    s0 = schedule.noise_level(1.0)
    return {
        "exact": (spectrum.mean, spectrum.eigenvalues + s0**2),
        "ve": (jnp.zeros(D), jnp.full(D, s0**2)),
        "vp": (jnp.zeros(D), jnp.full(D, 1.0 + s0**2)),
    }


def _probe(num_noise):
    """A batch whose outputs reveal the affine map ``b + A y0 + sum_k B_k xi_k``:
    sample 0 is all zeros, samples ``1..d`` probe ``A``, the rest probe one ``xi_k`` each."""
    n = 1 + D + num_noise
    y0 = jnp.zeros((n, D)).at[1 : 1 + D].set(jnp.eye(D))
    xi = jnp.zeros((num_noise, n, D))
    xi = xi.at[jnp.arange(num_noise), 1 + D + jnp.arange(num_noise)].set(1.0)
    return y0, xi


def _moments_from_probe(out, num_noise, m0, v0):
    b = out[0]
    gain = jnp.diagonal(out[1 : 1 + D] - b)
    noise_gain = out[1 + D :] - b  # (num_noise, d)
    return b + gain * m0, gain**2 * v0 + jnp.sum(noise_gain**2, axis=0)


@eqx.filter_jit
def _em(den, schedule, y0, xi, times, process, kappa, to_zero):
    return euler_maruyama(
        den, schedule, y0, xi, times, process=process, kappa=kappa, to_zero=to_zero
    )


@pytest.mark.parametrize(
    "process, final, schedule",
    [
        ("ve", "zero", EDM()),
        ("vp", "zero", VPLinear()),
        ("vp", "min", EDM()),
        pytest.param("ve", "min", VPLinear(), marks=pytest.mark.slow),
        pytest.param("vp", "zero", EDM(), marks=pytest.mark.slow),
        pytest.param("ve", "zero", VPLinear(), marks=pytest.mark.slow),
    ],
)
def test_euler_maruyama_moments_match_closed_form(process, final, schedule):
    with jax.enable_x64(True):
        den, spectrum = GaussianDenoiser(C, mean=MU), G.Spectrum(C, mean=MU)
        kappa = 0.6
        times = grid_times(6, final)
        num_noise = times.shape[0] - 1
        y0, xi = _probe(num_noise)
        out = _em(den, schedule, y0, xi, times, process, kappa, final == "zero")
        solver = G.GaussianEulerMaruyama(process=process, kappa=kappa)
        for init, (m0, v0) in _starts(schedule, spectrum).items():
            mean, var = _moments_from_probe(out, num_noise, m0, v0)
            moments = G.output_moments(spectrum, G.step_grid(schedule, 6, final), solver, init)
            np.testing.assert_allclose(mean - MU, moments.mean_offset, atol=1e-11)
            np.testing.assert_allclose(var, moments.variance(), rtol=1e-10)


@pytest.mark.parametrize("eta, final", [(1.0, "zero"), (0.5, "min")])
def test_ancestral_moments_match_closed_form(eta, final):
    with jax.enable_x64(True):
        den, spectrum, schedule = GaussianDenoiser(C, mean=MU), G.Spectrum(C, mean=MU), EDM()
        levels = grid(schedule, 6, final)
        y0, xi = _probe(6)
        out = jax.jit(lambda lv, y, x: ancestral(den, lv, y, x, eta=eta))(levels, y0, xi)
        for init, (m0, v0) in _starts(schedule, spectrum).items():
            mean, var = _moments_from_probe(out, 6, m0, v0)
            moments = G.output_moments(
                spectrum, G.step_grid(schedule, 6, final), G.GaussianAncestral(eta), init
            )
            np.testing.assert_allclose(mean - MU, moments.mean_offset, atol=1e-11)
            np.testing.assert_allclose(var, moments.variance(), rtol=1e-10)


def _check_monte_carlo(samples, mean, var):
    """Mean and variance within 5 standard errors (estimated from the samples)."""
    x = np.asarray(samples, np.float64)
    n = x.shape[0]
    np.testing.assert_array_less(np.abs(x.mean(0) - mean), 5 * np.sqrt(var / n))
    centred = x - x.mean(0)
    se_var = np.sqrt(np.mean(centred**4, 0) - centred.var(0) ** 2) / np.sqrt(n)
    np.testing.assert_array_less(np.abs(x.var(0) - var), 5 * se_var)


@pytest.mark.parametrize(
    "sampler",
    [
        EulerMaruyama(10, "vp", noise="gaussian"),
        EulerMaruyama(10, "vp", noise="rademacher"),
        EulerMaruyama(10, "ve", noise="uniform", kappa=2.0),
        Ancestral(10, noise="gaussian"),
        pytest.param(
            EulerMaruyama(10, "ve", noise="rademacher", final="min"), marks=pytest.mark.slow
        ),
        pytest.param(Ancestral(10, eta=0.7, noise="uniform"), marks=pytest.mark.slow),
    ],
    ids=lambda s: f"{s.name}-{s.noise}",
)
def test_monte_carlo_moments(sampler):
    den, spectrum, schedule = GaussianDenoiser(C, mean=MU), G.Spectrum(C, mean=MU), VPLinear()
    n = 40_000
    x = eqx.filter_jit(lambda smp, k: smp.sample(den, schedule, k, (n, D), "vp"))(
        sampler, jax.random.key(7)
    )
    gsolver = (
        G.GaussianEulerMaruyama(process=sampler.process.name, kappa=sampler.kappa)
        if isinstance(sampler, EulerMaruyama)
        else G.GaussianAncestral(sampler.eta)
    )
    m = G.output_moments(spectrum, G.step_grid(schedule, 10, sampler.final), gsolver, "vp")
    _check_monte_carlo(x, np.asarray(MU + m.mean_offset), np.asarray(m.variance()))


def test_mis_scaled_noise_is_detected_by_the_monte_carlo_check():
    """The check can fail: kappa = 1.5 samples against the kappa = 1 closed form."""
    den, spectrum, schedule = GaussianDenoiser(C, mean=MU), G.Spectrum(C, mean=MU), VPLinear()
    x = EulerMaruyama(10, "vp", noise="rademacher", kappa=1.5).sample(
        den, schedule, jax.random.key(7), (40_000, D), "vp"
    )
    m = G.output_moments(spectrum, G.step_grid(schedule, 10), G.GaussianEulerMaruyama(), "vp")
    with pytest.raises(AssertionError):
        _check_monte_carlo(x, np.asarray(MU + m.mean_offset), np.asarray(m.variance()))


@pytest.mark.parametrize("noise", ["gaussian", "rademacher", "uniform"])
def test_noise_draws(noise):
    x = np.asarray(draw_noise(jax.random.key(0), (200_000,), noise))
    assert abs(x.mean()) < 5 / math.sqrt(2e5)
    assert abs(x.var() - 1.0) < 0.02
    if noise == "rademacher":
        assert set(np.unique(x).tolist()) == {-1.0, 1.0}
    if noise == "uniform":
        assert x.min() >= -math.sqrt(3) and x.max() <= math.sqrt(3)


def test_noise_path_increments_and_values():
    ts = jnp.array([0.0, 0.1, 0.4, 1.0])
    xi = jnp.array([[1.0], [-2.0], [0.5]])
    path = ReparameterisedNoisePath(ts, xi, kappa=2.0)
    for k in range(3):
        expected = np.sqrt(2.0 * (ts[k + 1] - ts[k])) * xi[k]
        np.testing.assert_allclose(path.evaluate(ts[k], ts[k + 1]), expected, rtol=1e-6)
        np.testing.assert_allclose(
            path.evaluate(ts[k + 1]) - path.evaluate(ts[k]), expected, rtol=1e-5, atol=1e-6
        )
    np.testing.assert_allclose(path.evaluate(0.0), 0.0)


def test_step_locations_are_differentiable():
    """Gradient w.r.t. the step times matches finite differences (a Brownian path gives none)."""
    with jax.enable_x64(True):
        den = GaussianDenoiser(C, mean=MU)
        schedule = VPLinear()
        y0 = jax.random.normal(jax.random.key(0), (4, D))
        xi = jax.random.rademacher(jax.random.key(1), (4, 4, D), jnp.float64)
        f = jax.jit(lambda t: jnp.sum(euler_maruyama(den, schedule, y0, xi, t, to_zero=False) ** 2))
        times = jnp.array([0.95, 0.7, 0.45, 0.2, 0.05])  # interior: s(t) is clamped past t = 1
        grad = jax.jit(jax.grad(f))(times)
        h = 1e-6
        fd = [(f(times.at[i].add(h)) - f(times.at[i].add(-h))) / (2 * h) for i in range(5)]
        assert np.all(np.abs(grad) > 1e-3)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_brownian_paths_block_time_gradients():
    """Why the reparameterised path exists: diffrax's Brownian tree refuses time gradients."""
    bm = diffrax.VirtualBrownianTree(0.0, 1.0, tol=1e-3, shape=(), key=jax.random.key(0))
    with pytest.raises(RuntimeError, match="cannot be autodifferentiated"):
        jax.grad(lambda t1: bm.evaluate(0.2, t1))(0.7)
    increment = lambda t1: ReparameterisedNoisePath(jnp.array([0.2, t1]), jnp.ones((1,))).evaluate(
        0.2, t1
    )
    np.testing.assert_allclose(jax.grad(increment)(0.7), 0.5 / np.sqrt(0.5), rtol=1e-6)


def test_first_step_drifts_by_the_schedules_slope_at_the_noisy_end():
    # y' = y + h (-lam'(1)) (D(y, s_0) - y) in VE with no noise; lam'(1) by finite differences
    with jax.enable_x64(True):
        den, schedule = GaussianDenoiser(C, mean=MU), EDM()
        y0 = jax.random.normal(jax.random.key(0), (2, D), jnp.float64)
        times = jnp.array([1.0, 0.8])
        out = euler_maruyama(
            den, schedule, y0, jnp.zeros((1, 2, D)), times, process="ve", to_zero=False
        )
        rate = -(schedule.logsnr(1.0) - schedule.logsnr(1.0 - 1e-7)) / 1e-7
        expected = y0 + 0.2 * rate * (den(y0, schedule.noise_level(1.0)) - y0)
        np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_gradient_wrt_a_learned_range_is_finite():
    schedule = RangedSchedule.from_schedule(EDM(), bounds=(0.002, 160.0), sigma_range=(0.1, 60.0))
    den = GaussianDenoiser(C, mean=MU)
    y0 = 60.0 * jax.random.normal(jax.random.key(0), (8, D))

    def loss(logits):
        s = eqx.tree_at(lambda r: r.range_logits, schedule, logits)
        return jnp.mean((EulerMaruyama(4)(den, s, y0, jax.random.key(1)) - MU) ** 2)

    grad = jax.jit(jax.grad(loss))(schedule.range_logits)
    assert bool(jnp.all(jnp.isfinite(grad))) and bool(jnp.any(grad != 0))


@pytest.mark.parametrize("eta", [1.0, 0.5])
def test_ancestral_gradient_wrt_every_level_matches_finite_differences(eta):
    # the last step lands on s' = 0, where a plain sqrt(s'^2 - s_up^2) has an infinite slope
    with jax.enable_x64(True):
        den = GaussianDenoiser(C, mean=MU)
        levels = jnp.array([20.0, 3.0, 0.6, 0.05, 0.0])
        y0 = 20.0 * jax.random.normal(jax.random.key(0), (4, D), jnp.float64)
        xi = jax.random.normal(jax.random.key(1), (4, 4, D), jnp.float64)
        f = jax.jit(lambda lv: jnp.sum(ancestral(den, lv, y0, xi, eta=eta) ** 2))
        grad = jax.jit(jax.grad(f))(levels)
        h = 1e-6
        fd = [(f(levels.at[i].add(h)) - f(levels.at[i].add(-h))) / (2 * h) for i in range(4)]
        assert bool(jnp.all(jnp.isfinite(grad)))
        np.testing.assert_allclose(grad[:4], fd, rtol=1e-5, atol=1e-6)


def test_gradient_wrt_schedule_and_kappa_matches_finite_differences():
    with jax.enable_x64(True):
        den = GaussianDenoiser(C, mean=MU)
        schedule = PiecewiseLinear.from_schedule(VPLinear(), num_knots=6)
        params, static = eqx.partition(schedule, eqx.is_inexact_array)
        y0 = jax.random.normal(jax.random.key(0), (4, D))
        xi = jax.random.normal(jax.random.key(1), (5, 4, D), jnp.float64)
        times = grid_times(6)

        @jax.jit
        def loss(p, kappa):
            out = euler_maruyama(den, eqx.combine(p, static), y0, xi, times, kappa=kappa)
            return jnp.mean((out - MU) ** 2)

        g_params, g_kappa = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, 0.8)
        direction = jax.random.normal(jax.random.key(2), g_params.logits.shape)
        h = 1e-6
        shift = lambda e: eqx.tree_at(lambda p: p.logits, params, params.logits + e * direction)
        fd = (loss(shift(h), 0.8) - loss(shift(-h), 0.8)) / (2 * h)
        np.testing.assert_allclose(g_params.logits @ direction, fd, rtol=1e-6)
        fd_kappa = (loss(params, 0.8 + h) - loss(params, 0.8 - h)) / (2 * h)
        np.testing.assert_allclose(g_kappa, fd_kappa, rtol=1e-6)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: EulerMaruyama(0), "num_steps"),
        (lambda: EulerMaruyama(4, kappa=0.0), "kappa"),
        (lambda: EulerMaruyama(4, kappa=-1.0), "kappa"),
        (lambda: EulerMaruyama(4, noise="laplace"), "noise"),
        (lambda: EulerMaruyama(4, process="flow"), "process"),
        (lambda: EulerMaruyama(4, final="max"), "final"),
        (lambda: Ancestral(4, eta=1.5), "eta"),
        (lambda: Ancestral(4, noise="normal"), "noise"),
        (lambda: EulerMaruyama(4)(GaussianDenoiser(C), EDM(), jnp.ones((2, D))), "key"),
        (
            lambda: euler_maruyama(
                GaussianDenoiser(C),
                EDM(),
                jnp.ones((2, D)),
                jnp.ones((3, 2, D)),
                jnp.array([1.0, 0.5, 0.0]),
            ),
            "xi",
        ),
        (
            lambda: ancestral(
                GaussianDenoiser(C),
                jnp.array([2.0, 1.0, 0.0]),
                jnp.ones((2, D)),
                jnp.ones((3, 2, D)),
            ),
            "xi",
        ),
        (lambda: ReparameterisedNoisePath(jnp.ones(3), jnp.ones((3, 1))), "xi"),
        (lambda: draw_noise(jax.random.key(0), (2,), "cauchy"), "noise"),
        (
            lambda: euler_maruyama(
                GaussianDenoiser(C),
                EDM(),
                jnp.ones((2, D)),
                jnp.ones((2, 2, D)),
                jnp.array([0.2, 0.5, 0.0]),
            ),
            "times",
        ),
        (
            lambda: euler_maruyama(
                GaussianDenoiser(C),
                EDM(),
                jnp.ones((2, D)),
                jnp.ones((1, 2, D)),
                jnp.array([1.5, 0.0]),
            ),
            "times",
        ),
        (
            lambda: ancestral(
                GaussianDenoiser(C), jnp.array([1.0, 2.0]), jnp.ones((2, D)), jnp.ones((1, 2, D))
            ),
            "noise_levels",
        ),
    ],
)
def test_bad_input_names_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()
