"""The multistep solvers against the reference packages, on the same grids with the same
closed-form Gaussian denoiser: k-diffusion's ``sample_dpmpp_2m`` and ``sample_dpmpp_2m_sde``
(unmodified, loaded by the ``k_diffusion`` fixture), diffusers' ``DPMSolverMultistepScheduler``
(2M, 3M, SDE) and ``UniPCMultistepScheduler``; iPNDM against a loop written here from its
published coefficients; and the unrolled and looped paths against each other.
"""

import functools

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.models import GaussianDenoiser
from schedopt.sampling import (
    IPNDM,
    ODE_SOLVERS,
    DPMSolverPP,
    DPMSolverPPSDE,
    ODESampler,
    ProbabilityFlowTerm,
    UniPC,
    UnrolledRungeKutta,
    dpmpp_2m_sde,
    ode_solver,
    probability_flow,
    unrolled_solve,
)

C = np.array([0.05, 0.5, 2.0])
MU = np.array([0.3, -1.0, 0.5])
SCALED_LINEAR = dict(
    num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
)


def levels_for(n: int, seed: int = 0) -> np.ndarray:
    """``n`` positive levels from 80 to 0.02, log-uniform with jitter (no hand-made grid)."""
    jitter = np.exp(np.random.default_rng(seed).normal(0.0, 0.1, n))
    return np.sort(np.geomspace(80.0, 0.02, n) * jitter)[::-1].copy()


def torch_denoiser(calls=None):
    import torch

    c, mu = torch.tensor(C), torch.tensor(MU)

    def denoise(y, s):
        if calls is not None:
            calls.append(1)
        s = s.reshape(-1, 1) if torch.is_tensor(s) and s.ndim else s
        return mu + c / (c + s**2) * (y - mu)

    return denoise


@functools.partial(jax.jit, static_argnames=("solver", "to_zero"))
def _ours(levels, y0, solver, to_zero):
    den = GaussianDenoiser(jnp.asarray(C, levels.dtype), jnp.asarray(MU, levels.dtype))
    return probability_flow(den, levels, y0, solver=solver, to_zero=to_zero)


def ours(solver, levels, y0, to_zero=True):
    """schedopt's sampler (jitted) on positive ``levels`` from ``y0``."""
    return np.asarray(_ours(jnp.asarray(levels), jnp.asarray(y0), solver, to_zero))


@pytest.mark.parametrize("n", [3, 5, 8, 20])
def test_dpmpp_2m_equals_k_diffusion(k_diffusion, n):
    import torch

    with jax.enable_x64(True):
        levels = levels_for(n, n)
        y0 = np.random.default_rng(1).normal(size=(4, 3)) * levels[0]
        calls = []
        sigmas = torch.tensor(np.concatenate([levels, [0.0]]))
        reference = k_diffusion.sampling.sample_dpmpp_2m(
            torch_denoiser(calls), torch.tensor(y0), sigmas, disable=True
        ).numpy()
        np.testing.assert_allclose(ours("dpmpp-2m", levels, y0), reference, rtol=0, atol=1e-12)
        assert len(calls) == ODESampler(n, "dpmpp-2m").nfe == n


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("n", [3, 6, 20])
def test_dpmpp_2m_sde_equals_k_diffusion_given_its_noise(k_diffusion, n, eta):
    import torch

    with jax.enable_x64(True):
        levels = levels_for(n, n)
        rng = np.random.default_rng(2)
        y0 = rng.normal(size=(4, 3)) * levels[0]
        xi = rng.normal(size=(n - 1, 4, 3))
        draws = iter(xi)
        calls = []
        reference = k_diffusion.sampling.sample_dpmpp_2m_sde(
            torch_denoiser(calls),
            torch.tensor(y0),
            torch.tensor(np.concatenate([levels, [0.0]])),
            disable=True,
            eta=eta,
            noise_sampler=lambda sigma, sigma_next: torch.tensor(next(draws)),
        ).numpy()
        den = GaussianDenoiser(jnp.asarray(C), jnp.asarray(MU))
        out = dpmpp_2m_sde(den, jnp.asarray(levels), jnp.asarray(y0), jnp.asarray(xi), eta=eta)
        np.testing.assert_allclose(np.asarray(out), reference, rtol=0, atol=1e-12)
        assert len(calls) == n


def test_dpmpp_2m_sde_matches_k_diffusion_brownian_noise_in_distribution(k_diffusion):
    """With k-diffusion's own Brownian-tree noise, its samples and ours (noise drawn per
    step) have the same mean and variance per coordinate (4 standard errors)."""
    import torch

    from schedopt.gaussian import Spectrum, output_moments, sigma_grid, solver_from_name

    n, batch = 5, 4000
    levels = levels_for(n, 7)
    torch.manual_seed(0)
    y0 = np.asarray(
        MU + np.sqrt(C + levels[0] ** 2) * np.random.default_rng(3).normal(size=(batch, 3))
    )
    reference = k_diffusion.sampling.sample_dpmpp_2m_sde(
        torch_denoiser(),
        torch.tensor(y0),
        torch.tensor(np.concatenate([levels, [0.0]])),
        disable=True,
        eta=1.0,
    ).numpy()
    den = GaussianDenoiser(jnp.asarray(C), jnp.asarray(MU))
    xi = jax.random.normal(jax.random.key(0), (n - 1, batch, 3))
    samples = np.asarray(dpmpp_2m_sde(den, jnp.asarray(levels), jnp.asarray(y0, jnp.float32), xi))
    exact = output_moments(
        Spectrum(C, MU),
        sigma_grid(np.concatenate([levels, [0.0]])),
        solver_from_name("dpmpp-2m-sde"),
        "exact",
    )
    mean, var = MU + np.asarray(exact.mean_offset), np.asarray(exact.variance())
    for x in (reference, samples):
        assert np.all(np.abs(x.mean(0) - mean) < 4 * np.sqrt(var / batch))
        assert np.all(np.abs(x.var(0) - var) < 4 * var * np.sqrt(2 / batch))


def _diffusers_run(scheduler, levels, y0, final_zero, noise=None):
    """diffusers' loop on VP states ``x = alpha y`` with an eps-predicting Gaussian model."""
    import torch

    n = len(levels) if final_zero else len(levels) - 1
    scheduler.set_timesteps(n)
    scheduler.sigmas = torch.tensor(np.concatenate([levels, [0.0]]) if final_zero else levels)
    denoise, calls = torch_denoiser(), []
    x = torch.tensor(y0) / np.sqrt(1.0 + levels[0] ** 2)
    for i, t in enumerate(scheduler.timesteps):
        calls.append(1)
        s = float(levels[i])
        y = x * np.sqrt(1.0 + s * s)
        eps = (y - denoise(y, s)) / s
        extra = {} if noise is None else {"variance_noise": torch.tensor(noise[i])}
        x = scheduler.step(eps, t, x, **extra).prev_sample
    last = 0.0 if final_zero else float(levels[-1])
    return (x * np.sqrt(1.0 + last**2)).numpy(), len(calls)


# diffusers' DPMSolverMultistepScheduler.step casts the sample to float32 (`sample.to(
# torch.float32)`), so there the agreement is float32 round-off; UniPC computes in float64.
@pytest.mark.parametrize(
    "n, final_zero", [(3, True), (8, True), (20, True), (5, False), (20, False)]
)
@pytest.mark.parametrize(
    "solver, options, atol",
    [
        ("dpmpp-2m", dict(solver_order=2, algorithm_type="dpmsolver++"), 2e-6),
        ("dpmpp-3m", dict(solver_order=3, algorithm_type="dpmsolver++"), 2e-6),
        ("unipc", dict(solver_order=2), 1e-12),
    ],
)
def test_multistep_equals_diffusers(solver, options, atol, n, final_zero):
    from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler

    cls = UniPCMultistepScheduler if solver == "unipc" else DPMSolverMultistepScheduler
    final = "zero" if final_zero else "sigma_min"
    with jax.enable_x64(True):
        levels = levels_for(n if final_zero else n + 1, n)
        y0 = np.random.default_rng(4).normal(size=(4, 3)) * levels[0]
        scheduler = cls(
            **SCALED_LINEAR, prediction_type="epsilon", final_sigmas_type=final, **options
        )
        reference, calls = _diffusers_run(scheduler, levels, y0, final_zero)
        out = ours(solver, levels, y0, to_zero=final_zero)
        np.testing.assert_allclose(out, reference, rtol=0, atol=atol * np.abs(reference).max())
        assert calls == ODESampler(n, solver, final="zero" if final_zero else "min").nfe


@pytest.mark.parametrize("n", [3, 8])
def test_dpmpp_2m_sde_equals_diffusers_sde_dpmsolver(n):
    """diffusers' ``sde-dpmsolver++`` (midpoint) is DPM-Solver++(2M) SDE with ``eta = 1``;
    its noise multiplies ``sigma_t = alpha_t s_t``, so in ``y = x / alpha`` it is ours."""
    from diffusers import DPMSolverMultistepScheduler

    with jax.enable_x64(True):
        levels = levels_for(n, n)
        rng = np.random.default_rng(5)
        y0 = rng.normal(size=(4, 3)) * levels[0]
        xi = rng.normal(size=(n, 4, 3))
        xi[-1] = 0.0  # the last step to 0 draws no noise
        scheduler = DPMSolverMultistepScheduler(
            **SCALED_LINEAR,
            prediction_type="epsilon",
            final_sigmas_type="zero",
            solver_order=2,
            algorithm_type="sde-dpmsolver++",
        )
        reference, _ = _diffusers_run(scheduler, levels, y0, True, noise=xi)
        den = GaussianDenoiser(jnp.asarray(C), jnp.asarray(MU))
        out = dpmpp_2m_sde(den, jnp.asarray(levels), jnp.asarray(y0), jnp.asarray(xi[:-1]))
        np.testing.assert_allclose(np.asarray(out), reference, atol=2e-6 * np.abs(reference).max())


ADAMS_BASHFORTH = {1: [1.0], 2: [1.5, -0.5], 3: [23, -16, 5], 4: [55, -59, 37, -9]}
AB_SCALE = {1: 1.0, 2: 1.0, 3: 12.0, 4: 24.0}


@pytest.mark.parametrize("to_zero", [True, False])
@pytest.mark.parametrize("n", [2, 3, 5, 12])
def test_ipndm_equals_the_published_recursion(n, to_zero):
    """GITS' / DMN's ``ipndm_sampler`` (max order 4, warm start, ``denoise_to_zero`` as the
    last step to 0), written here in NumPy."""
    with jax.enable_x64(True):
        levels = levels_for(n, n)
        y = y0 = np.random.default_rng(6).normal(size=(4, 3)) * levels[0]
        history = []
        for i in range(n - 1):
            s, s_next = levels[i], levels[i + 1]
            d = (y - (MU + C / (C + s**2) * (y - MU))) / s
            order = min(4, i + 1)
            terms = [d] + history[::-1][: order - 1]
            slope = sum(w * t for w, t in zip(ADAMS_BASHFORTH[order], terms, strict=True))
            y = y + (s_next - s) * slope / AB_SCALE[order]
            history = (history + [d])[-3:]
        if to_zero:
            y = MU + C / (C + levels[-1] ** 2) * (y - MU)
        np.testing.assert_allclose(ours("ipndm", levels, y0, to_zero), y, rtol=0, atol=1e-11)


def _term(levels, to_zero=True):
    den = GaussianDenoiser(jnp.asarray(C), jnp.asarray(MU))
    return ProbabilityFlowTerm(den, jnp.asarray(levels), len(levels) - 1 + int(to_zero))


@pytest.mark.parametrize("solver", sorted(ODE_SOLVERS))
def test_unrolled_steps_equal_diffeqsolve(solver):
    with jax.enable_x64(True):
        levels = levels_for(9, 3)
        term, y0 = _term(levels), jnp.asarray(np.random.default_rng(7).normal(size=(2, 3)) * 80)
        unrolled = jax.jit(lambda y: unrolled_solve(ode_solver(solver), term, y, 8))(y0)
        ts = jnp.arange(9.0)
        looped = diffrax.diffeqsolve(
            term,
            ode_solver(solver),
            t0=0.0,
            t1=8.0,
            dt0=None,
            y0=y0,
            stepsize_controller=diffrax.StepTo(ts=ts),
            saveat=diffrax.SaveAt(t1=True),
            max_steps=8,
        ).ys[0]
        np.testing.assert_allclose(unrolled, looped, rtol=1e-12, atol=1e-12)


def test_long_grids_run_looped_and_agree_with_short_unrolled_pieces():
    """A 40-level grid (``diffeqsolve``) equals the same steps taken unrolled."""
    with jax.enable_x64(True):
        levels = levels_for(40, 9)
        y0 = jnp.asarray(np.random.default_rng(8).normal(size=(2, 3)) * 80)
        looped = ours("unipc", levels, y0, to_zero=False)
        unrolled = jax.jit(
            lambda y: unrolled_solve(ode_solver("unipc"), _term(levels, False), y, 39)
        )(y0)
        np.testing.assert_allclose(looped, unrolled, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("solver", ["heun", "midpoint", "bosh3", "tsit5"])
def test_unrolled_runge_kutta_is_diffrax_step(solver):
    with jax.enable_x64(True):
        term = _term(levels_for(3, 1))
        y0 = jnp.asarray(np.random.default_rng(9).normal(size=(2, 3)))
        reference = ode_solver(solver)
        ours_solver = UnrolledRungeKutta(reference)
        state = reference.init(term, 0.0, 1.0, y0, None)
        expected = reference.step(term, 0.0, 1.0, y0, None, state, False)[0]
        got = ours_solver.step(
            term, 0.0, 1.0, y0, None, ours_solver.init(term, 0.0, 1.0, y0, None), False
        )[0]
        # the same sums in another order: float64 round-off of up to 7 stages with
        # coefficients up to 12 (Tsit5)
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("solver", ["dpmpp-2m", "dpmpp-3m", "unipc", "ipndm"])
def test_gradients_reach_every_grid_level(solver):
    """d output / d s_k: nonzero for every level and equal to central differences."""
    with jax.enable_x64(True):
        levels = jnp.asarray(levels_for(6, 2))
        y0 = jnp.asarray(np.random.default_rng(10).normal(size=(2, 3)) * 80)
        f = jax.jit(lambda lv: jnp.sum(ours_jax(solver, lv, y0) ** 2))
        grad = jax.grad(f)(levels)
        h = 1e-6 * levels
        fd = [
            (f(levels.at[k].add(h[k])) - f(levels.at[k].add(-h[k]))) / (2 * h[k]) for k in range(6)
        ]
        assert np.all(np.abs(np.asarray(grad)) > 0)
        np.testing.assert_allclose(grad, fd, rtol=1e-5)


def ours_jax(solver, levels, y0):
    return _ours(levels, y0, solver, True)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: DPMSolverPP(order=4), "order=4"),
        (lambda: UniPC(order=0), "order=0"),
        (lambda: IPNDM(max_order=5), "max_order=5"),
        (lambda: DPMSolverPPSDE(eta=-1.0), "eta=-1.0"),
        (lambda: ode_solver(DPMSolverPPSDE()), "solver"),
        (
            lambda: unrolled_solve(
                DPMSolverPP(), diffrax.ODETerm(lambda t, y, a: y), jnp.ones(2), 2
            ),
            "ProbabilityFlowTerm",
        ),
        (
            lambda: dpmpp_2m_sde(
                GaussianDenoiser(jnp.ones(1)),
                jnp.array([2.0, 1.0]),
                jnp.ones((1, 1)),
                jnp.zeros((2, 1, 1)),
            ),
            "xi",
        ),
    ],
)
def test_bad_settings_name_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()
