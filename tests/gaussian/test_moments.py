"""KL of the sampler output: sign, rates, closed forms, directions and large spectra."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from schedopt.gaussian import (
    Spectrum,
    euler_maclaurin_constant,
    gaussian_kl,
    kl_per_direction,
    output_moments,
    sigma_grid,
    step_grid,
)
from schedopt.schedules import EDM, Cosine, LogSNRLinear


@given(
    arrays(np.float64, st.integers(2, 12), elements=st.floats(1e-3, 50.0)),
    arrays(np.float64, 3, elements=st.floats(1e-3, 10.0)),
    st.sampled_from(["euler", "heun", "ancestral"]),
    st.sampled_from(["exact", "ve", "vp"]),
    st.sampled_from(["forward", "reverse"]),
)
def test_kl_is_non_negative(levels, eigenvalues, solver, init, direction):
    sigmas = np.unique(levels)[::-1]
    if sigmas.shape[0] < 2:
        return
    sigmas = np.append(sigmas, 0.0)
    kl = gaussian_kl(
        Spectrum(eigenvalues, mean=eigenvalues - 1), sigma_grid(sigmas), solver, init, direction
    )
    assert float(kl) >= 0.0


def test_one_step_closed_form():
    # One Euler step to 0 from the exact marginal: var = c^2 / (c + s^2).
    c, s = 0.7, 2.0
    m = output_moments(Spectrum([c]), sigma_grid([s, 0.0]))
    np.testing.assert_allclose(m.variance(), c**2 / (c + s**2), rtol=1e-6)
    r = c / (c + s**2)
    np.testing.assert_allclose(kl_per_direction(m, "reverse"), 0.5 * (r - 1 - np.log(r)), rtol=1e-5)
    np.testing.assert_allclose(
        kl_per_direction(m, "forward"), 0.5 * (1 / r - 1 + np.log(r)), rtol=1e-5
    )


def test_mean_offset_from_a_zero_mean_start():
    # Output mean is mu (1 - G), G the product of gains (derived for the Gaussian KL).
    sp = Spectrum([0.5, 2.0], mean=[1.0, -3.0])
    sigmas = np.array([30.0, 4.0, 0.5, 0.0])
    m = output_moments(sp, sigma_grid(sigmas), "euler", init="ve")
    gains = np.prod(
        [
            (np.array([0.5, 2.0]) + s * t) / (np.array([0.5, 2.0]) + s**2)
            for s, t in zip(sigmas[:-1], sigmas[1:], strict=True)
        ],
        axis=0,
    )
    np.testing.assert_allclose(np.asarray(m.mean_offset), -np.array([1.0, -3.0]) * gains, rtol=1e-5)


@pytest.mark.parametrize(
    "schedule, ns",
    [
        (EDM(), [64, 128, 256, 512]),
        (LogSNRLinear(), [64, 128, 256, 512]),
        # Cosine's logSNR is log-singular at t = 0 (scale s_min / s'(0) ~ 1e-3 in t): the
        # asymptotic regime starts only once N resolves it.
        (Cosine(), [1024, 2048, 4096, 8192]),
    ],
    ids=["edm", "loglin", "cos"],
)
def test_euler_kl_decays_like_n_to_the_minus_two(schedule, ns):
    with jax.enable_x64(True):
        sp = Spectrum.digits()
        ns = np.array(ns)
        kls = np.array([float(gaussian_kl(sp, step_grid(schedule, int(n), "min"))) for n in ns])
        slope = np.polyfit(np.log(ns), np.log(kls), 1)[0]
        assert abs(slope + 2) < 0.1, slope  # within 5% of -2
        # ... with the Euler-Maclaurin constant: KL N^2 -> C.
        constant = float(euler_maclaurin_constant(schedule, sp, num_panels=2048))
        np.testing.assert_allclose(kls[-1] * ns[-1] ** 2, constant, rtol=0.02)


def test_heun_is_fourth_order_in_kl():
    with jax.enable_x64(True):
        sp = Spectrum([0.1, 1.0, 5.0])
        ns = np.array([32, 64, 128])
        kls = np.array(
            [float(gaussian_kl(sp, step_grid(EDM(), int(n), "min"), "heun")) for n in ns]
        )
        slope = np.polyfit(np.log(ns), np.log(kls), 1)[0]
        assert abs(slope + 4) < 0.2, slope


def test_directions_agree_to_leading_order():
    sp = Spectrum([0.3, 1.0])
    grid = step_grid(EDM(), 200, "min")
    fwd, rev = (
        gaussian_kl(sp, grid, direction="forward"),
        gaussian_kl(sp, grid, direction="reverse"),
    )
    np.testing.assert_allclose(fwd, rev, rtol=0.05)


def test_initialisations():
    sp = Spectrum([0.5, 2.0])
    grid = step_grid(EDM(sigma_max=1e4), 30)
    exact = gaussian_kl(sp, grid, init="exact")
    # With s_0 >> sqrt(c) both practical initialisations approach the exact one.
    np.testing.assert_allclose(gaussian_kl(sp, grid, init="ve"), exact, rtol=1e-3)
    np.testing.assert_allclose(gaussian_kl(sp, grid, init="vp"), exact, rtol=1e-3)
    small = step_grid(EDM(sigma_max=1.0), 30)
    assert float(gaussian_kl(sp, small, init="ve")) > float(gaussian_kl(sp, small, init="exact"))


def test_weights_count_multiplicity():
    grid = step_grid(EDM(), 8)
    one = gaussian_kl(Spectrum([0.5, 0.5, 2.0]), grid)
    weighted = gaussian_kl(Spectrum([0.5, 2.0], weights=[2.0, 1.0]), grid)
    np.testing.assert_allclose(weighted, one, rtol=1e-6)


def test_gradient_matches_finite_differences():
    sp = Spectrum.power_law(50, 1.2)

    def kl_of_rho(rho):
        return gaussian_kl(sp, step_grid(EDM(rho=rho), 10), "heun")

    g = jax.grad(kl_of_rho)(5.0)
    eps = 1e-2
    fd = (kl_of_rho(5.0 + eps) - kl_of_rho(5.0 - eps)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-2)
    sigmas = jnp.asarray(step_grid(EDM(), 6).sigmas)
    g_grid = jax.grad(lambda s: gaussian_kl(sp, sigma_grid(s)))(sigmas)
    e = jnp.zeros_like(sigmas).at[2].set(1e-2 * sigmas[2])
    fd2 = (gaussian_kl(sp, sigma_grid(sigmas + e)) - gaussian_kl(sp, sigma_grid(sigmas - e))) / (
        2 * e[2]
    )
    np.testing.assert_allclose(g_grid[2], fd2, rtol=1e-2)


def test_a_million_eigenvalues():
    sp = Spectrum.power_law(1_000_000, 1.0)
    f = jax.jit(jax.value_and_grad(lambda rho: gaussian_kl(sp, step_grid(EDM(rho=rho), 10))))
    value, grad = f(7.0)
    assert np.isfinite(float(value)) and np.isfinite(float(grad)) and float(value) > 0


def test_spectrum_validation():
    with pytest.raises(ValueError, match="eigenvalues"):
        Spectrum([1.0, 0.0])
    with pytest.raises(ValueError, match="mean"):
        Spectrum([1.0, 2.0], mean=[1.0])
    with pytest.raises(ValueError, match="init='cold'"):
        output_moments(Spectrum([1.0]), sigma_grid([1.0, 0.0]), init="cold")
    with pytest.raises(ValueError, match="direction='sideways'"):
        kl_per_direction(output_moments(Spectrum([1.0]), sigma_grid([1.0, 0.0])), "sideways")


def test_spectra_constructors():
    x = np.random.default_rng(0).normal(size=(20000, 3)) @ np.diag([1.0, 2.0, 0.5])
    sp = Spectrum.from_data(x + np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(np.sort(sp.eigenvalues), [0.25, 1.0, 4.0], rtol=0.05)
    np.testing.assert_allclose(np.sum(np.asarray(sp.mean) ** 2), 14.0, rtol=0.01)
    digits = Spectrum.digits()
    assert digits.dim == 61 and float(digits.eigenvalues.max()) < 4.0
    np.testing.assert_allclose(
        Spectrum.power_law(4, 2.0).eigenvalues, [1, 1 / 4, 1 / 9, 1 / 16], rtol=1e-6
    )
    with pytest.raises(ValueError, match="dim=0"):
        Spectrum.power_law(0)
