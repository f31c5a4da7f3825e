"""Every fixed family against its published formula, written here independently in NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.schedules import (
    EDM,
    Cosine,
    Laplace,
    LogSNRLinear,
    Polyexponential,
    Tabulated,
    Tangent,
    VPLinear,
    grid,
)

S_MIN, S_MAX = 0.002, 80.0


def karras_sigmas(n, sigma_min, sigma_max, rho):
    """k-diffusion's get_sigmas_karras (without the appended zero)."""
    ramp = np.linspace(0, 1, n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def test_edm_matches_karras_formula():
    for rho in (1.0, 3.0, 7.0):
        ours = np.asarray(grid(EDM(rho=rho), 10))
        np.testing.assert_allclose(ours[:-1], karras_sigmas(10, S_MIN, S_MAX, rho), rtol=2e-5)
        assert ours[-1] == 0.0


def test_exponential_is_log_uniform():
    ours = np.asarray(grid(LogSNRLinear(), 8))[:-1]
    expected = np.exp(np.linspace(np.log(S_MAX), np.log(S_MIN), 8))
    np.testing.assert_allclose(ours, expected, rtol=2e-5)


def test_polyexponential_matches_k_diffusion():
    rho = 2.5
    ramp = np.linspace(1, 0, 9) ** rho
    expected = np.exp(ramp * (np.log(S_MAX) - np.log(S_MIN)) + np.log(S_MIN))
    np.testing.assert_allclose(
        np.asarray(grid(Polyexponential(rho=rho), 9))[:-1], expected, rtol=2e-5
    )


def test_tangent_law_formula():
    gamma = 0.7
    t = np.linspace(0, 1, 11)
    lo, hi = np.arctan(S_MIN / gamma), np.arctan(S_MAX / gamma)
    expected = gamma * np.tan(lo + t * (hi - lo))
    np.testing.assert_allclose(np.asarray(Tangent(gamma=gamma).noise_level(t)), expected, rtol=5e-5)


def test_cosine_is_tangent_with_inverse_shift_and_matches_logsnr_cosine():
    t = jnp.linspace(0, 1, 33)
    np.testing.assert_allclose(
        Cosine(shift=0.25).logsnr(t), Tangent(gamma=4.0).logsnr(t), rtol=1e-5, atol=1e-5
    )
    # Unshifted, wide range: lam = -2 log tan(pi u / 2) on the truncated interval.
    lo, hi = np.arctan(S_MIN) * 2 / np.pi, np.arctan(S_MAX) * 2 / np.pi
    u = lo + np.asarray(t) * (hi - lo)
    np.testing.assert_allclose(Cosine().logsnr(t), -2 * np.log(np.tan(np.pi * u / 2)), atol=2e-4)


def test_laplace_logsnr_is_laplace_distributed_under_uniform_t():
    mu, b = 0.5, 0.8
    schedule = Laplace(mu=mu, b=b)
    lam = np.asarray(schedule.logsnr(jnp.linspace(0.0, 1.0, 20001)))

    # Truncated Laplace: P(lam > x) within the range is linear in the Laplace tail.
    def upper_tail(x):
        return np.where(x >= mu, 0.5 * np.exp(-(x - mu) / b), 1 - 0.5 * np.exp((x - mu) / b))

    lam_max, lam_min = schedule.logsnr_max, schedule.logsnr_min
    for x in (-3.0, -0.5, 0.5, 2.0, 5.0):
        expected = (upper_tail(x) - upper_tail(lam_max)) / (
            upper_tail(lam_min) - upper_tail(lam_max)
        )
        assert abs(np.mean(lam > x) - expected) < 1e-3


def test_vp_linear_matches_song_vp_sde():
    beta_min, beta_max = 0.1, 20.0
    schedule = VPLinear(beta_min=beta_min, beta_max=beta_max, sigma_min=0.01, sigma_max=100.0)
    # Independent: alpha^2(tau) = exp(-(b0 tau + (b1 - b0) tau^2 / 2)); find tau at the ends.
    tau = np.linspace(1e-6, 1, 200001)
    abar = np.exp(-(beta_min * tau + 0.5 * (beta_max - beta_min) * tau**2))
    s = np.sqrt((1 - abar) / abar)
    tau0, tau1 = np.interp(0.01, s, tau), np.interp(100.0, s, tau)
    t = np.linspace(0, 1, 7)
    tau_t = tau0 + t * (tau1 - tau0)
    abar_t = np.exp(-(beta_min * tau_t + 0.5 * (beta_max - beta_min) * tau_t**2))
    np.testing.assert_allclose(schedule.noise_level(t), np.sqrt((1 - abar_t) / abar_t), rtol=1e-3)


def test_ddpm_linear_table_matches_alphas_cumprod():
    betas = np.linspace(1e-4, 0.02, 1000)
    abar = np.cumprod(1 - betas)
    table = Tabulated.ddpm_linear()
    np.testing.assert_allclose(table.timestep_noise_levels(), np.sqrt((1 - abar) / abar), rtol=1e-4)
    assert table.num_timesteps == 1000


def test_scaled_linear_matches_stable_diffusion():
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
    abar = np.cumprod(1 - betas)
    sd = Tabulated.scaled_linear()
    np.testing.assert_allclose(sd.timestep_noise_levels(), np.sqrt((1 - abar) / abar), rtol=1e-4)
    # The widely quoted SD sigma_max and sigma_min.
    assert abs(float(sd.sigma_max) - 14.6146) < 1e-3
    assert abs(float(sd.sigma_min) - 0.0292) < 1e-4


def test_tabulated_conversions_round_trip():
    sd = Tabulated.scaled_linear()
    k = jnp.array([0.0, 17.0, 500.0, 999.0])
    t = sd.timestep_to_t(k)
    np.testing.assert_allclose(sd.t_to_timestep(t), k, atol=1e-3)
    levels = sd.noise_level(t)
    np.testing.assert_allclose(sd.noise_level_to_timestep(levels), k, atol=2e-3)
    # Between timesteps, log sigma is interpolated linearly (k-diffusion's convention).
    mid = sd.noise_level(sd.timestep_to_t(17.5))
    lo, hi = sd.timestep_noise_levels()[17], sd.timestep_noise_levels()[18]
    np.testing.assert_allclose(mid, np.sqrt(lo * hi), rtol=1e-5)


def test_fixed_parameters_are_differentiable():
    g = jax.grad(lambda rho: EDM(rho=rho).noise_level(0.5))(7.0)
    eps = 1e-2
    fd = (EDM(rho=7.0 + eps).noise_level(0.5) - EDM(rho=7.0 - eps).noise_level(0.5)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-2)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: EDM(rho=0.0), "rho"),
        (lambda: EDM(sigma_min=1.0, sigma_max=0.5), "sigma_min"),
        (lambda: Tangent(gamma=float("nan")), "gamma"),
        (lambda: Laplace(b=-1.0), "b"),
        (lambda: VPLinear(beta_min=5.0, beta_max=1.0), "beta_max"),
        (lambda: Tabulated(jnp.array([1.0, 2.0, 0.0])), "strictly decreasing"),
        (lambda: Tabulated.ddpm_linear(beta_start=0.5, beta_end=0.1), "beta_start"),
        (lambda: Tabulated.from_alphas_cumprod([0.9, 1.2]), "alphas_cumprod"),
    ],
)
def test_invalid_parameters_raise_naming_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()
