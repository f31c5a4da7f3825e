"""The multistep solvers' exact Gaussian forms against their samplers on the same grids.

Deterministic solvers map the offset ``e_0 = y_0 - mu`` to ``G e_0``; the sampler run with
the exact denoiser gives ``G`` coordinate by coordinate. For DPM-Solver++(2M) SDE the
output is linear in ``e_0`` and the draws, so its variance is ``G^2 v_0 + sum_k H_k^2``,
with ``H_k`` the sampler's response to a unit draw at step ``k`` alone: an exact check of
the covariance recursion, without Monte Carlo.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.gaussian import (
    SOLVERS,
    GaussianDPMSolverPPSDE,
    Spectrum,
    StepGrid,
    gaussian_kl,
    output_moments,
    sigma_grid,
    solver_from_name,
    step_grid,
)
from schedopt.models import GaussianDenoiser
from schedopt.objectives import GaussianKL
from schedopt.sampling import dpmpp_2m_sde, probability_flow
from schedopt.schedules import EDM, MonotoneCubic
from schedopt.search import gaussian_step_costs

C = np.array([0.05, 0.4, 1.0, 3.0])
MU = np.array([0.3, -1.0, 0.5, 2.0])
DETERMINISTIC = ["dpmpp-2m", "dpmpp-3m", "unipc", "ipndm"]


def _den():
    return GaussianDenoiser(jnp.asarray(C), jnp.asarray(MU))


@functools.partial(jax.jit, static_argnames=("solver", "to_zero"))
def _sample(levels, y0, solver, to_zero):
    return probability_flow(_den(), levels, y0, solver=solver, to_zero=to_zero)


@pytest.mark.parametrize("to_zero", [True, False])
@pytest.mark.parametrize("n", [2, 3, 5, 12, 25])
@pytest.mark.parametrize("solver", DETERMINISTIC)
def test_gain_is_the_samplers_affine_map(solver, n, to_zero):
    with jax.enable_x64(True):
        levels = np.geomspace(50.0, 0.01, n)
        sigmas = np.concatenate([levels, [0.0]]) if to_zero else levels
        e0 = np.random.default_rng(n).normal(size=4) * 10
        _, offset = solver_from_name(solver).propagate(
            jnp.asarray(C), jnp.asarray(MU), sigma_grid(sigmas), jnp.zeros(4), jnp.asarray(e0)
        )
        out = _sample(jnp.asarray(levels), jnp.asarray(MU + e0)[None], solver, to_zero)
        np.testing.assert_allclose(np.asarray(out[0]) - MU, offset, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("eta", [0.0, 0.7, 1.0])
@pytest.mark.parametrize("n", [2, 5, 12])
def test_sde_covariance_recursion_is_exact(n, eta):
    with jax.enable_x64(True):
        levels = jnp.asarray(np.geomspace(50.0, 0.01, n))
        run = jax.jit(lambda y0, xi: dpmpp_2m_sde(_den(), levels, y0, xi, eta=eta)[0] - MU)
        e0 = np.random.default_rng(0).normal(size=4) * 10
        gain = np.asarray(run(jnp.asarray(MU + e0)[None], jnp.zeros((n - 1, 1, 4)))) / e0
        responses = []
        for k in range(n - 1):
            xi = np.zeros((n - 1, 1, 4))
            xi[k] = 1.0
            responses.append(np.asarray(run(jnp.asarray(MU)[None], jnp.asarray(xi))))
        variance = gain**2 * (C + float(levels[0]) ** 2) + np.sum(np.square(responses), axis=0)
        moments = output_moments(
            Spectrum(C, MU),
            sigma_grid(np.concatenate([np.asarray(levels), [0.0]])),
            GaussianDPMSolverPPSDE(eta=eta),
        )
        np.testing.assert_allclose(moments.variance(), variance, rtol=1e-10)
        np.testing.assert_allclose(moments.mean_offset, 0.0, atol=1e-12)


def test_sde_with_eta_zero_is_dpmpp_2m():
    spectrum, grid = Spectrum(C, MU), step_grid(EDM(), 6)
    for init in ("exact", "ve", "vp"):
        sde = gaussian_kl(spectrum, grid, GaussianDPMSolverPPSDE(eta=0.0), init)
        np.testing.assert_allclose(sde, gaussian_kl(spectrum, grid, "dpmpp-2m", init), rtol=1e-5)


@pytest.mark.parametrize("solver", [*DETERMINISTIC, "dpmpp-2m-sde"])
def test_gaussian_kl_objective_jits_and_differentiates(solver):
    objective = GaussianKL(Spectrum.digits(), num_steps=5, solver=solver)
    schedule = MonotoneCubic.from_schedule(EDM(), 16)
    value, grad = jax.jit(jax.value_and_grad(lambda s: objective(s)))(schedule)
    assert np.isfinite(float(value)) and float(value) > 0
    assert np.all(np.isfinite(grad.logits)) and float(jnp.max(jnp.abs(grad.logits))) > 0
    assert objective.describe()["solver"] == solver


def test_higher_order_solvers_beat_euler_on_the_same_grid():
    """Not a tautology: on EDM's 10-step grid every multistep solver's exact KL is below
    DDIM's (they are higher order at the same cost)."""
    spectrum, grid = Spectrum.digits(), step_grid(EDM(), 10)
    euler = float(gaussian_kl(spectrum, grid, "euler"))
    for solver in DETERMINISTIC:
        assert float(gaussian_kl(spectrum, grid, solver)) < euler, solver


def test_registry_names_match_the_samplers():
    from schedopt.sampling import SAMPLERS

    for name in SOLVERS:
        assert name in SAMPLERS
        assert solver_from_name(name).name == name


def test_multistep_has_no_per_step_map_and_the_dp_search_refuses_it():
    with pytest.raises(ValueError, match="multistep"):
        solver_from_name("unipc").coefficients(jnp.asarray(C), sigma_grid([4.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="multistep 'dpmpp-2m'"):
        gaussian_step_costs(Spectrum(C), [4.0, 1.0, 0.5], "dpmpp-2m")


def test_a_traced_grid_must_say_where_it_ends():
    f = jax.jit(lambda s: gaussian_kl(Spectrum(C), StepGrid(sigmas=s), "dpmpp-2m"))
    with pytest.raises(ValueError, match="ends at 0"):
        f(jnp.array([4.0, 1.0, 0.0]))
