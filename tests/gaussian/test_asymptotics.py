"""Tangent laws and the asymptotic optimum."""

import jax
import jax.numpy as jnp
import numpy as np

from schedopt.gaussian import (
    Spectrum,
    asymptotically_optimal_schedule,
    euler_maclaurin_constant,
    optimal_tangent_gamma,
    path_lengths,
    tangent_law,
)
from schedopt.schedules import EDM, Tangent


def test_tangent_path_length_closed_form():
    # I = (pi^2 / 8)(gamma / sqrt(c) + sqrt(c) / gamma) as s_min -> 0, s_max -> inf.
    # float64: tan near pi/2 (sigma_max = 1e6) is beyond float32's resolution.
    c = np.array([0.1, 1.0, 4.0])
    with jax.enable_x64(True):
        for gamma in (0.5, 2.0):
            schedule = Tangent(gamma=gamma, sigma_min=1e-6, sigma_max=1e6)
            lengths = path_lengths(schedule, Spectrum(c), 1024)
            expected = np.pi**2 / 8 * (gamma / np.sqrt(c) + np.sqrt(c) / gamma)
            np.testing.assert_allclose(lengths, expected, rtol=1e-3)


def test_optimal_gamma_minimises_the_constant():
    sp = Spectrum([0.05, 0.3, 2.0, 7.0])
    gamma_star = float(optimal_tangent_gamma(sp))
    ends = dict(sigma_min=1e-5, sigma_max=1e5)
    gammas = gamma_star * np.exp(np.linspace(-0.5, 0.5, 21))
    values = [float(euler_maclaurin_constant(Tangent(gamma=g, **ends), sp)) for g in gammas]
    assert int(np.argmin(values)) == 10  # the closed form sits at the grid's centre


def test_asymptotic_optimum_is_the_tangent_law_for_one_eigenvalue():
    s = asymptotically_optimal_schedule(Spectrum([0.5]), 1e-2, 1e2)
    t = tangent_law(0.5, 1e-2, 1e2)
    ts = jnp.linspace(0, 1, 101)
    np.testing.assert_allclose(s.noise_level(ts), t.noise_level(ts), rtol=2e-3)


def test_asymptotic_optimum_beats_every_tangent_and_edm():
    sp = Spectrum.digits()
    best = float(euler_maclaurin_constant(asymptotically_optimal_schedule(sp), sp))
    for other in (EDM(), Tangent(gamma=1.0), Tangent(gamma=optimal_tangent_gamma(sp))):
        assert best < float(euler_maclaurin_constant(other, sp))


def test_asymptotic_optimum_handles_a_large_spectrum():
    s = jax.block_until_ready(
        asymptotically_optimal_schedule(Spectrum.power_law(100_000), num_iterations=5)
    )
    assert bool(jnp.all(jnp.diff(s.logsnr(jnp.linspace(0, 1, 50))) < 0))
