"""The Schedule interface, checked over a table of every family."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.schedules import (
    EDM,
    VE,
    VP,
    Cosine,
    DecoupledTimes,
    Flow,
    Laplace,
    LogSNRLinear,
    MonotoneCubic,
    MonotoneMLP,
    PiecewiseLinear,
    Polyexponential,
    RangedSchedule,
    Tabulated,
    Tangent,
    VPLinear,
    grid,
    grid_times,
    process_from_name,
)

ALL = {
    "edm": EDM(rho=7.0),
    "edm-rho3": EDM(rho=3.0, sigma_min=0.01, sigma_max=20.0),
    "logsnr-linear": LogSNRLinear(),
    "polyexponential": Polyexponential(rho=2.0),
    "tangent": Tangent(gamma=0.3),
    "cosine": Cosine(shift=2.0),
    "laplace": Laplace(mu=1.0, b=0.7),
    "vp-linear": VPLinear(),
    "ddpm-linear": Tabulated.ddpm_linear(),
    "scaled-linear": Tabulated.scaled_linear(),
    "piecewise-linear": PiecewiseLinear.from_schedule(EDM(), 16),
    "monotone-cubic": MonotoneCubic.from_schedule(Cosine(), 16),
    "monotone-mlp": MonotoneMLP.init(jax.random.key(3), 8),
    "ranged-cubic": RangedSchedule.from_schedule(
        MonotoneCubic.from_schedule(EDM(), 16), bounds=(0.002, 160.0), sigma_range=(0.3, 120.0)
    ),
    "ranged-table": RangedSchedule.from_schedule(
        Tabulated.scaled_linear(), bounds=(0.0292, 14.61), sigma_range=(0.1, 10.0)
    ),
    "decoupled-cubic": DecoupledTimes(
        MonotoneCubic.from_schedule(EDM(), 16), jnp.array([0.1, -0.2, 0.0, 0.3]), (0.002, 80.0)
    ),
}
T = jnp.linspace(0.0, 1.0, 2001)


@pytest.fixture(params=sorted(ALL), ids=sorted(ALL))
def schedule(request):
    return ALL[request.param]


def test_endpoints_are_exact(schedule):
    ends = schedule.logsnr(jnp.array([0.0, 1.0]))
    # Exact in the working precision: the endpoints rounded to the array's dtype.
    assert ends[0] == jnp.asarray(schedule.logsnr_max, ends.dtype)
    assert ends[1] == jnp.asarray(schedule.logsnr_min, ends.dtype)


def test_strictly_decreasing(schedule):
    assert bool(jnp.all(jnp.diff(schedule.logsnr(T)) < 0))


def smooth_points(schedule):
    """Test times and a finite-difference step that stay inside one linear piece of the
    piecewise-linear families (their derivative jumps at the knots)."""
    t = np.array([0.13, 0.37, 0.61, 0.88])
    if isinstance(schedule, RangedSchedule):
        return smooth_points(schedule.base)
    if isinstance(schedule, PiecewiseLinear):
        knots = np.asarray(schedule.knot_times())
    elif isinstance(schedule, Tabulated):
        knots = np.linspace(0.0, 1.0, schedule.num_timesteps)
    else:
        return jnp.asarray(t), 1e-3
    i = np.clip(np.searchsorted(knots, t) - 1, 0, len(knots) - 2)
    return jnp.asarray(0.5 * (knots[i] + knots[i + 1])), float(np.min(np.diff(knots)[i])) / 4


def test_derivative_matches_finite_differences(schedule):
    t, h = smooth_points(schedule)
    _, dlam = schedule.logsnr_and_derivative(t)
    fd = (schedule.logsnr(t + h) - schedule.logsnr(t - h)) / (2 * h)
    np.testing.assert_allclose(dlam, fd, rtol=2e-2, atol=2e-2)
    assert bool(jnp.all(dlam < 0))


def test_derivative_at_the_ends_and_knots_is_the_curves_own(schedule):
    # lam'(t) at t = 0 and t = 1 (where the ends are pinned exactly) and at knots (where
    # clips tie) is the curve's one-sided slope next to it, extrapolated linearly from
    # t +- h and t +- 2h: not zero, nor half of it.
    if isinstance(schedule, Laplace):
        pytest.skip("lam' is unbounded at both ends")
    at, side = jnp.array([0.0, 1.0]), jnp.array([1.0, -1.0])
    if isinstance(schedule, (PiecewiseLinear, MonotoneCubic)):
        knots = schedule.knot_times()[1:-1]
        at, side = jnp.concatenate([at, knots]), jnp.concatenate([side, jnp.ones_like(knots)])
    h = 1e-6
    near = 2 * schedule.dlogsnr_dt(at + side * h) - schedule.dlogsnr_dt(at + 2 * side * h)
    np.testing.assert_allclose(schedule.dlogsnr_dt(at), near, rtol=5e-3, atol=1e-3)


def test_inverse_round_trips_and_differentiates(schedule):
    t = jnp.array([0.05, 0.3, 0.5, 0.77, 0.95])
    back = schedule.t_of_logsnr(schedule.logsnr(t))
    np.testing.assert_allclose(back, t, atol=5e-5)
    lam0 = schedule.logsnr(0.4)
    grad = jax.grad(lambda lam: schedule.t_of_logsnr(lam))(lam0)
    np.testing.assert_allclose(grad, 1.0 / schedule.dlogsnr_dt(0.4), rtol=2e-2)


def test_training_density_matches_the_time_it_covers(schedule):
    # P(lam(t) in [lam(b), lam(a)]) = b - a for t ~ U(0, 1); interior, away from any
    # integrable singularity of the density at the ends.
    a, b = 0.1, 0.9
    lam = jnp.linspace(schedule.logsnr(b), schedule.logsnr(a), 4001)
    mass = jnp.trapezoid(schedule.density_in_logsnr(lam), lam)
    np.testing.assert_allclose(mass, b - a, rtol=1e-2)


@pytest.mark.parametrize("process", [VP(), VE(), Flow()])
def test_processes_share_the_noise_level(schedule, process):
    t = jnp.linspace(0.05, 0.95, 7)
    ratio = schedule.sigma(t, process) / schedule.alpha(t, process)
    np.testing.assert_allclose(ratio, schedule.noise_level(t), rtol=1e-4)
    np.testing.assert_allclose(
        process.logsnr(schedule.alpha(t, process), schedule.sigma(t, process)),
        schedule.logsnr(t),
        rtol=1e-4,
        atol=1e-4,
    )


def test_process_identities():
    lam = jnp.linspace(-8, 8, 9)
    np.testing.assert_allclose(VP().alpha(lam) ** 2 + VP().sigma(lam) ** 2, 1.0, rtol=1e-6)
    np.testing.assert_allclose(Flow().alpha(lam) + Flow().sigma(lam), 1.0, rtol=1e-6)
    np.testing.assert_allclose(VE().alpha(lam), 1.0)
    with pytest.raises(ValueError, match="process='edm'"):
        process_from_name("edm")


def test_grid_conventions():
    s = EDM()
    np.testing.assert_allclose(grid_times(5), [1.0, 0.75, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(grid_times(4, "min"), [1.0, 0.75, 0.5, 0.25, 0.0])
    zero = grid(s, 5)
    assert zero.shape == (6,) and float(zero[-1]) == 0.0
    np.testing.assert_allclose(zero[0], 80.0, rtol=1e-6)
    np.testing.assert_allclose(zero[-2], 0.002, rtol=1e-5)
    assert grid(s, 4, "min").shape == (5,)
    np.testing.assert_allclose(grid(s, 1), [80.0, 0.0], rtol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: grid(EDM(), 0), "num_steps=0"),
        (lambda: grid(EDM(), 2.5), "num_steps=2.5"),
        (lambda: grid(EDM(), 3, final="last"), "final='last'"),
    ],
)
def test_grid_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_schedules_are_jittable():
    f = jax.jit(lambda s, t: s.logsnr(t))
    for s in ALL.values():
        np.testing.assert_allclose(f(s, 0.3), s.logsnr(0.3), rtol=1e-6)


@pytest.mark.parametrize("name", ["edm", "edm-rho3", "scaled-linear"])
def test_closed_form_inverses_match_bisection(name):
    from schedopt.schedules.base import AbstractSchedule

    schedule = ALL[name]
    lam = schedule.logsnr(jnp.linspace(0.0, 1.0, 23))
    lam = jnp.concatenate([lam, jnp.array([lam[0] + 1.0, lam[-1] - 1.0])])  # beyond the ends
    closed = schedule.t_of_logsnr(lam)
    bisection = AbstractSchedule.t_of_logsnr(schedule, lam)
    np.testing.assert_allclose(closed, bisection, atol=2e-6)
    assert float(closed[-2]) == 0.0 and float(closed[-1]) == 1.0
