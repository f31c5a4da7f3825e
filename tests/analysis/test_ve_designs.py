"""Song's geometric and EDM's polynomial VE schedules are existing Schedules (the notation of
Wang, He & Tao), and both VE samplers (PF-ODE, Euler-Maruyama) converge on them."""

import jax
import numpy as np
import pytest

from schedopt.analysis import decompose_error
from schedopt.data import ring
from schedopt.models import GaussianMixtureDenoiser
from schedopt.sampling import EulerMaruyama, ODESampler
from schedopt.schedules import EDM, LogSNRLinear, grid

S_MIN, S_MAX = 0.002, 80.0


def test_logsnr_linear_is_songs_geometric_schedule():
    t = np.linspace(0.0, 1.0, 11)
    sched = LogSNRLinear(sigma_min=S_MIN, sigma_max=S_MAX)
    np.testing.assert_allclose(sched.noise_level(t), S_MIN * (S_MAX / S_MIN) ** t, rtol=1e-4)


@pytest.mark.parametrize("rho", [1.0, 3.0, 7.0, 12.0])
def test_edm_grid_is_karras_polynomial(rho):
    n = 10
    i = np.arange(n)
    expected = (S_MAX ** (1 / rho) + i / (n - 1) * (S_MIN ** (1 / rho) - S_MAX ** (1 / rho))) ** rho
    levels = np.asarray(grid(EDM(rho=rho, sigma_min=S_MIN, sigma_max=S_MAX), n))
    np.testing.assert_allclose(levels[:-1], expected, rtol=1e-4)
    assert levels[-1] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("schedule", [LogSNRLinear(), EDM(rho=3.0)])
@pytest.mark.parametrize("sampler", [ODESampler(64, "heun"), EulerMaruyama(200, process="ve")])
def test_ve_samplers_converge_on_both_designs(schedule, sampler):
    gm = ring(8)
    d = decompose_error(
        GaussianMixtureDenoiser.from_mixture(gm),
        gm,
        schedule,
        sampler,
        jax.random.key(0),
        num_samples=256,
        reference_steps=400,
    )
    assert float(d.discretisation) < 0.25  # EM's strong error is O(sqrt(h))-ish here
    assert float(d.sliced_w2) < 0.15
