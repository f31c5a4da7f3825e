"""Closed-form step maps against a direct simulation of the same sampler.

The reference is a plain Python loop over steps with the exact Gaussian denoiser
``D(y; s) = mu + c / (c + s^2) (y - mu)``, written here independently of the module.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.gaussian import (
    Euler,
    GaussianAncestral,
    GaussianEulerMaruyama,
    Heun,
    Spectrum,
    gaussian_kl,
    output_moments,
    sigma_grid,
    solver_from_name,
    step_grid,
)
from schedopt.gaussian.registry import SOLVERS
from schedopt.schedules import EDM, Cosine

C = np.array([0.05, 0.4, 1.0, 3.0])
MU = np.array([0.3, -1.0, 0.5, 2.0])
SPECTRUM = Spectrum(C, mean=MU)


def denoise(y, s):
    return MU + C / (C + s**2) * (y - MU)


def euler_loop(y, sigmas):
    for s, s_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        y = y + (s_next - s) * (y - denoise(y, s)) / s
    return y


def heun_loop(y, sigmas):
    for s, s_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        d = (y - denoise(y, s)) / s
        y_e = y + (s_next - s) * d
        if s_next > 0:
            d_next = (y_e - denoise(y_e, s_next)) / s_next
            y = y + (s_next - s) * 0.5 * (d + d_next)
        else:
            y = y_e
    return y


def closed_form_map(solver, grid, y0):
    """Apply the module's affine steps ``e' = a e + b mu`` (noise-free part)."""
    co = solver.coefficients(jnp.asarray(C), grid)
    e = y0 - MU
    for k in range(co.a.shape[0]):
        e = np.asarray(co.a[k]) * e + np.asarray(co.b[k]) * MU
    return e + MU


GRIDS = {
    "edm-8": np.asarray(step_grid(EDM(), 8).sigmas),
    "cosine-5-min": np.asarray(step_grid(Cosine(), 5, "min").sigmas),
    "hand": np.array([50.0, 7.0, 1.3, 0.2, 0.0]),
}


@pytest.mark.parametrize("grid_name", sorted(GRIDS))
@pytest.mark.parametrize("solver, loop", [(Euler(), euler_loop), (Heun(), heun_loop)])
def test_deterministic_maps_equal_simulation(solver, loop, grid_name):
    with jax.enable_x64(True):
        sigmas = GRIDS[grid_name].astype(np.float64)
        y0 = np.random.default_rng(0).normal(size=C.shape) * 3
        expected = loop(y0, sigmas)
        ours = closed_form_map(solver, sigma_grid(sigmas), y0)
        np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)


def test_euler_is_ddim_and_its_gain_ratio_is_a_cosine():
    # One Euler step's gain over the exact flow's is cos(phi - phi'), phi = atan(s / sqrt(c)).
    s, s_next = 3.0, 0.7
    co = Euler().coefficients(jnp.asarray(C), sigma_grid([s, s_next]))
    exact = np.sqrt((C + s_next**2) / (C + s**2))
    cos = np.cos(np.arctan(s / np.sqrt(C)) - np.arctan(s_next / np.sqrt(C)))
    np.testing.assert_allclose(np.asarray(co.a[0]) / exact, cos, rtol=1e-5)
    np.testing.assert_allclose(np.exp(co.log_r[0]), cos**2, rtol=1e-5)


def monte_carlo(step, y0, n_steps):
    y = y0
    for k in range(n_steps):
        y = step(k, y)
    return y


@pytest.mark.parametrize("noise", ["gaussian", "rademacher"])
def test_ancestral_moments_match_monte_carlo(noise):
    sigmas = np.asarray(step_grid(EDM(), 6).sigmas, dtype=np.float64)
    rng = np.random.default_rng(1)
    n = 200_000
    eta = 0.7

    def step(k, y):
        s, s_next = sigmas[k], sigmas[k + 1]
        up = min(s_next, eta * s_next * np.sqrt(s**2 - s_next**2) / s)
        down = np.sqrt(s_next**2 - up**2)
        y = y + (down - s) * (y - denoise(y, s)) / s
        xi = (
            rng.normal(size=y.shape)
            if noise == "gaussian"
            else rng.choice([-1.0, 1.0], size=y.shape)
        )
        return y + up * xi

    y0 = rng.normal(size=(n, C.size)) * sigmas[0]  # VE initialisation
    y = monte_carlo(step, y0, len(sigmas) - 1)
    m = output_moments(SPECTRUM, sigma_grid(sigmas), GaussianAncestral(eta=eta), init="ve")
    check_moments(y, m, n)


def check_moments(y, moments, n):
    mean = MU + np.asarray(moments.mean_offset)
    var = np.asarray(moments.variance())
    se_mean = np.sqrt(var / n)
    assert np.all(np.abs(y.mean(0) - mean) < 5 * se_mean), (y.mean(0), mean)
    # Variance of the sample variance ~ 2 v^2 / n for near-Gaussian output.
    assert np.all(np.abs(y.var(0) - var) < 5 * var * np.sqrt(2 / n) + 1e-12), (y.var(0), var)


@pytest.mark.parametrize("process", ["ve", "vp"])
@pytest.mark.parametrize("kappa", [1.0, 0.25])
def test_euler_maruyama_moments_match_monte_carlo(process, kappa):
    schedule = EDM(sigma_max=20.0)
    grid = step_grid(schedule, 12)
    t = np.asarray(grid.t, dtype=np.float64)
    rng = np.random.default_rng(2)
    n = 200_000
    lam = np.asarray(schedule.logsnr(grid.t), dtype=np.float64)
    dlam = np.asarray(grid.dlogsnr_dt, dtype=np.float64)
    s_all = np.exp(-lam / 2)

    def step(k, y):  # y-space for VE, x-space for VP
        s = s_all[k]
        if k == len(t) - 1:  # last step: denoise
            return denoise(y / (1.0 if process == "ve" else alpha(lam[k])), s)
        h = t[k] - t[k + 1]
        xi = rng.normal(size=y.shape)
        if process == "ve":
            g2 = -(s**2) * dlam[k]
            return y + g2 * h * (denoise(y, s) - y) / s**2 + np.sqrt(kappa * g2 * h) * xi
        a, sig2 = alpha(lam[k]), 1 / (1 + np.exp(lam[k]))
        beta = -sig2 * dlam[k]
        score = (a * denoise(y / a, s) - y) / sig2
        return y + h * beta * (0.5 * y + score) + np.sqrt(kappa * beta * h) * xi

    if process == "ve":
        y0 = rng.normal(size=(n, C.size)) * s_all[0]
    else:
        y0 = rng.normal(size=(n, C.size))
    y = monte_carlo(step, y0, len(t))
    m = output_moments(
        SPECTRUM, grid, GaussianEulerMaruyama(process=process, kappa=kappa), init=process
    )
    check_moments(y, m, n)


def alpha(lam):
    return np.sqrt(1 / (1 + np.exp(-lam)))


def test_euler_maruyama_needs_the_schedule_derivative():
    with pytest.raises(ValueError, match="step_grid"):
        GaussianEulerMaruyama().coefficients(jnp.asarray(C), sigma_grid([10.0, 1.0, 0.0]))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: solver_from_name("rk4"), "solver='rk4'"),
        (lambda: GaussianAncestral(eta=1.5), "eta=1.5"),
        (lambda: GaussianEulerMaruyama(kappa=0.0), "kappa"),
        (lambda: GaussianEulerMaruyama(process="flow"), "process='flow'"),
        (lambda: sigma_grid([1.0, 2.0, 0.0]), "strictly decreasing"),
        (lambda: sigma_grid([1.0, 0.0, 0.0]), "decreasing"),
        (lambda: sigma_grid([float("nan"), 0.0]), "finite"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_nfe_counts():
    assert Euler().nfe(10) == 10 and Heun().nfe(10) == 19


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_kl_gradient_is_finite_with_tiny_eigenvalues_and_a_small_last_level(name):
    # Eigenvalues down to 6e-6 (the digits spectrum's smallest) and EDM's last level 0.002
    # before the step to 0: products such as (c + s^2)(c + s'^2)^3 underflow in float32,
    # and a masked branch with an inf derivative turns a jnp.where's gradient into NaN.
    spectrum = Spectrum(jnp.asarray([6.4e-6, 1e-4, 0.05, 2.8]))
    grid = step_grid(EDM(), 5, derivative=True)

    def kl(sigmas):
        return gaussian_kl(spectrum, grid._replace(sigmas=sigmas), solver_from_name(name))

    value, grad = jax.value_and_grad(kl)(grid.sigmas)
    assert np.isfinite(float(value)), name
    assert np.all(np.isfinite(np.asarray(grad))) and np.any(np.asarray(grad) != 0), name
