"""Probability-flow ODE samplers: closed-form Gaussian gains, DDIM / EDM equivalence,
convergence orders of the extra diffrax solvers, NFE counts, gradients vs finite differences."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt import gaussian as G
from schedopt.models import FunctionDenoiser, GaussianDenoiser, GaussianMixtureDenoiser
from schedopt.sampling import (
    ODE_SOLVERS,
    ODESampler,
    make_sampler,
    probability_flow,
    sampler_for_nfe,
)
from schedopt.schedules import EDM, VP, PiecewiseLinear, VPLinear, grid

C = [0.02, 0.5, 3.0]
MU = [0.4, -1.0, 0.25]


def _gaussian():
    return GaussianDenoiser(jnp.array(C), mean=jnp.array(MU)), G.Spectrum(C, mean=MU)


@eqx.filter_jit
def _run(sampler, den, schedule, y0):
    return sampler(den, schedule, y0)


def _affine_map(sampler, den, schedule, d):
    """``out(y) = b + A y``: the sampler on Gaussian data is affine in its start and acts
    on each sample alone, so one batch ``[0, e_1, ..., e_d]`` gives ``b`` and ``A``."""
    out = _run(sampler, den, schedule, jnp.concatenate([jnp.zeros((1, d)), jnp.eye(d)]))
    return out[0], (out[1:] - out[0]).T


@pytest.mark.parametrize(
    "solver, final, schedule",
    [
        ("euler", "zero", EDM()),
        ("euler", "min", EDM()),
        ("heun", "zero", EDM()),
        ("heun", "min", EDM()),
        ("heun", "zero", VPLinear()),
        pytest.param("euler", "zero", VPLinear(), marks=pytest.mark.slow),
        pytest.param("euler", "min", VPLinear(), marks=pytest.mark.slow),
        pytest.param("heun", "min", VPLinear(), marks=pytest.mark.slow),
    ],
)
def test_gaussian_output_moments_match_closed_form(solver, final, schedule):
    with jax.enable_x64(True):
        den, spectrum = _gaussian()
        sampler = ODESampler(7, solver, final=final)
        b, a = _affine_map(sampler, den, schedule, 3)
        np.testing.assert_allclose(a - jnp.diag(jnp.diag(a)), 0.0, atol=1e-14)
        gain = jnp.diag(a)
        s0 = schedule.noise_level(1.0)
        starts = {
            "exact": (spectrum.mean, spectrum.eigenvalues + s0**2),
            "ve": (jnp.zeros(3), jnp.full(3, s0**2)),
            "vp": (jnp.zeros(3), jnp.full(3, 1.0 + s0**2)),
        }
        grid_ = G.step_grid(schedule, 7, final)
        for init, (m0, v0) in starts.items():
            moments = G.output_moments(spectrum, grid_, solver, init)
            np.testing.assert_allclose(
                b + gain * m0 - spectrum.mean, moments.mean_offset, atol=1e-12
            )
            np.testing.assert_allclose(gain**2 * v0, moments.variance(), rtol=1e-10)


def test_rotated_gaussian_gains_in_the_eigenbasis():
    with jax.enable_x64(True):
        q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (3, 3)))
        den = GaussianDenoiser(jnp.array(C), eigenvectors=q)
        _, a = _affine_map(ODESampler(5, "heun"), den, EDM(), 3)
        gains = jnp.prod(G.Heun().coefficients(jnp.array(C), G.step_grid(EDM(), 5)).a, axis=0)
        np.testing.assert_allclose(q.T @ a @ q, jnp.diag(gains), atol=1e-12)


def _mixture():
    means = jnp.array([[-2.0, 0.5], [1.5, 1.0], [0.0, -2.0]])
    covs = jnp.array(
        [[[0.3, 0.1], [0.1, 0.2]], [[0.1, 0.0], [0.0, 0.4]], [[0.2, -0.05], [-0.05, 0.1]]]
    )
    return GaussianMixtureDenoiser(jnp.array([0.3, 0.3, 0.4]), means, covs)


def test_euler_is_ddim_in_vp_variables():
    """DDIM: ``x' = alpha' x0_hat + sigma' eps_hat`` with ``eps_hat = (x - alpha x0_hat)/sigma``."""
    with jax.enable_x64(True):
        den, schedule, n = _mixture(), EDM(sigma_max=20.0), 8
        levels = grid(schedule, n)
        y0 = levels[0] * jax.random.normal(jax.random.key(1), (16, 2))
        vp = VP()
        x = vp.alpha(-2 * jnp.log(levels[0])) * y0
        for s, s_next in zip(levels[:-1], levels[1:], strict=True):
            lam = -2 * jnp.log(s)
            alpha, sigma = vp.alpha(lam), vp.sigma(lam)
            x0_hat = den(x / alpha, s)
            eps_hat = (x - alpha * x0_hat) / sigma
            if s_next == 0:
                x = x0_hat
            else:
                lam_next = -2 * jnp.log(s_next)
                x = vp.alpha(lam_next) * x0_hat + vp.sigma(lam_next) * eps_hat
        out = _run(ODESampler(n, "euler"), den, schedule, y0)
        np.testing.assert_allclose(out, x, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("final", ["zero", pytest.param("min", marks=pytest.mark.slow)])
def test_heun_is_edm_algorithm_1(final):
    with jax.enable_x64(True):
        den, schedule, n = _mixture(), EDM(), 6
        levels = grid(schedule, n, final)
        y = y0 = levels[0] * jax.random.normal(jax.random.key(2), (16, 2))
        for s, s_next in zip(levels[:-1], levels[1:], strict=True):
            d = (y - den(y, s)) / s
            y_next = y + (s_next - s) * d
            if s_next != 0:
                d_next = (y_next - den(y_next, s_next)) / s_next
                y_next = y + (s_next - s) * 0.5 * (d + d_next)
            y = y_next
        out = _run(ODESampler(n, "heun", final=final), den, schedule, y0)
        np.testing.assert_allclose(out, y, rtol=1e-10, atol=1e-10)


ORDERS = {"euler": 1, "heun": 2, "midpoint": 2, "ralston": 2, "bosh3": 3, "tsit5": 4, "dopri5": 4}
# Multistep solvers start with a first-order step (and UniPC ends with one on a final="min"
# grid); one step's local error O(h^2) bounds their global order by 2 whatever their own.
ORDERS.update({"dpmpp-2m": 2, "dpmpp-3m": 2, "unipc": 2, "ipndm": 2})
# DPM-Solver++(3M)'s first- and second-order warm-start errors mix with its third-order
# error, so its observed rate is 1.73, 1.58, 1.83 over 16/32/64/128 steps: the asymptotic
# regime starts later.
STEP_PAIRS = {"dpmpp-3m": (64, 128)}


@pytest.mark.slow
@pytest.mark.parametrize("solver", list(ODE_SOLVERS))
def test_solvers_converge_to_the_exact_flow_at_their_order(solver):
    """Exact Gaussian flow: ``y(s') - mu = sqrt((c + s'^2)/(c + s^2)) (y - mu)``."""
    with jax.enable_x64(True):
        den, _ = _gaussian()
        schedule = EDM(sigma_min=0.05, sigma_max=10.0)
        c, s0, s1 = jnp.array(C), schedule.sigma_max, schedule.sigma_min
        exact = jnp.sqrt((c + s1**2) / (c + s0**2))
        errors = []
        for n in STEP_PAIRS.get(solver, (32, 64)):
            b, a = _affine_map(ODESampler(n, solver, final="min"), den, schedule, 3)
            errors.append(float(jnp.max(jnp.abs(jnp.diag(a) - exact))))
        order = np.log2(errors[0] / errors[1])
        assert order > ORDERS[solver] - 0.25, (errors, order)


@pytest.mark.parametrize(
    "solver, final",
    [("euler", "zero"), ("heun", "zero"), ("tsit5", "zero")]
    + [
        pytest.param(solver, final, marks=pytest.mark.slow)
        for solver in ODE_SOLVERS
        for final in ("zero", "min")
        if (solver, final) not in {("euler", "zero"), ("heun", "zero"), ("tsit5", "zero")}
    ],
)
def test_nfe_counts_denoiser_calls(solver, final):
    calls = []
    oracle = GaussianDenoiser(jnp.ones(2))

    def counted(y, s):
        jax.debug.callback(lambda: calls.append(1))
        return oracle(y, s)

    sampler = ODESampler(4, solver, final=final)
    jax.block_until_ready(_run(sampler, FunctionDenoiser(counted), EDM(), jnp.ones((1, 2))))
    assert len(calls) == sampler.nfe
    if solver == "euler":
        assert sampler.nfe == 4
    if solver == "heun":
        assert sampler.nfe == (7 if final == "zero" else 8)


@pytest.mark.parametrize(
    "solver",
    [
        "heun",
        "dpmpp-2m",
        pytest.param("euler", marks=pytest.mark.slow),
        pytest.param("tsit5", marks=pytest.mark.slow),
        pytest.param("dpmpp-3m", marks=pytest.mark.slow),
        pytest.param("unipc", marks=pytest.mark.slow),
        pytest.param("ipndm", marks=pytest.mark.slow),
    ],
)
def test_gradient_wrt_schedule_matches_finite_differences(solver):
    with jax.enable_x64(True):
        den = _mixture()
        schedule = PiecewiseLinear.from_schedule(EDM(sigma_max=20.0), num_knots=8)
        params, static = eqx.partition(schedule, eqx.is_inexact_array)
        y0 = 20.0 * jax.random.normal(jax.random.key(3), (8, 2))
        target = den.sample(jax.random.key(4), 8)
        sampler = ODESampler(5, solver)

        @jax.jit
        def loss(p):
            out = sampler(den, eqx.combine(p, static), y0)
            return jnp.mean((out - target) ** 2)

        grad = jax.jit(jax.grad(loss))(params).logits
        direction = jax.random.normal(jax.random.key(5), grad.shape)
        h = 1e-6
        plus = eqx.tree_at(lambda p: p.logits, params, params.logits + h * direction)
        minus = eqx.tree_at(lambda p: p.logits, params, params.logits - h * direction)
        fd = (loss(plus) - loss(minus)) / (2 * h)
        assert abs(float(grad @ direction)) > 1e-6  # the check is not vacuous
        np.testing.assert_allclose(grad @ direction, fd, rtol=1e-6)


@pytest.mark.slow
def test_probability_flow_gradient_wrt_noise_levels():
    with jax.enable_x64(True):
        den = GaussianDenoiser(jnp.array([0.5]))
        y0 = jnp.array([[3.0]])
        f = jax.jit(lambda lv: probability_flow(den, lv, y0, solver="heun", to_zero=False)[0, 0])
        levels = jnp.array([4.0, 1.0, 0.3])
        grad = jax.jit(jax.grad(f))(levels)
        h = 1e-6
        fd = [(f(levels.at[i].add(h)) - f(levels.at[i].add(-h))) / (2 * h) for i in range(3)]
        np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_jit_and_single_step():
    den = GaussianDenoiser(jnp.array([1.0, 4.0]))
    sampler = ODESampler(1, "heun")
    assert sampler.nfe == 1
    y0 = jnp.ones((2, 2))
    out = _run(sampler, den, EDM(), y0)
    np.testing.assert_allclose(out, den(y0, 80.0), rtol=1e-6)


def test_make_sampler_and_nfe_budget():
    assert make_sampler("midpoint", 5).nfe == 9
    assert sampler_for_nfe("euler", 7).num_steps == 7
    assert sampler_for_nfe("heun", 9).num_steps == 5
    assert sampler_for_nfe("heun", 10).nfe == 9
    assert sampler_for_nfe("tsit5", 20, final="min").nfe <= 20
    assert sampler_for_nfe("heun", 9, exact=True).num_steps == 5
    assert sampler_for_nfe("heun", 10, final="min", exact=True).num_steps == 5  # 2N
    with pytest.raises(ValueError, match=r"exactly nfe=10 .* are 9 \(5 steps\) and 11 \(6 steps\)"):
        sampler_for_nfe("heun", 10, exact=True)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: ODESampler(0), "num_steps"),
        (lambda: ODESampler(4, "rk4"), "solver"),
        (lambda: ODESampler(4, "euler", final="max"), "final"),
        (lambda: make_sampler("ddim", 4), "sampler"),
        (lambda: sampler_for_nfe("heun", 0), "nfe"),
        (
            lambda: probability_flow(GaussianDenoiser(jnp.ones(1)), jnp.ones(2), jnp.ones(3, int)),
            "y0",
        ),
        (
            lambda: probability_flow(
                GaussianDenoiser(jnp.ones(1)), jnp.ones((2, 2)), jnp.ones((1, 1))
            ),
            "noise_levels",
        ),
        (
            lambda: probability_flow(
                GaussianDenoiser(jnp.ones(1)), jnp.array([1.0, 2.0]), jnp.ones((1, 1))
            ),
            "decreasing",
        ),
        (
            lambda: probability_flow(
                GaussianDenoiser(jnp.ones(1)), jnp.array([1.0, 0.0]), jnp.ones((1, 1))
            ),
            "noise_levels",
        ),
    ],
)
def test_bad_input_names_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()
