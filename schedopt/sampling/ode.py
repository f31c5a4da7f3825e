"""Probability-flow ODE samplers on diffrax: Euler (= DDIM), EDM's Heun, the other explicit
Runge–Kutta solvers and the multistep solvers (DPM-Solver++(2M/3M), UniPC, iPNDM).

The ODE ``dy/ds = (y - D(y; s)) / s`` is solved on the grid ``s_0 > ... > s_{M-1}`` as the
term :class:`~schedopt.sampling.multistep.ProbabilityFlowTerm`, ``dy = f(s(u), y) ds(u)``,
where ``s(u)`` is the piecewise-linear path through the grid points at
``u = 0, 1, ..., M - 1``, and diffrax steps ``StepTo(ts=0, 1, ..., M - 1)``. One Euler step
is then exactly ``y' = y + (s' - s)(y - D)/s`` (DDIM), Heun is EDM's Algorithm 1, every
stage of every RK solver sees the noise level its state is at, and the multistep solvers
read the levels and the denoiser from the term. The levels travel inside the term, so
gradients with respect to the schedule's parameters flow (``RecursiveCheckpointAdjoint``
in ``diffeqsolve``). Grids of at most ``UNROLL_MAX_STEPS`` solver steps are stepped
unrolled in Python over the solver's ``step`` (fast backward passes on CPU), longer ones
with ``diffeqsolve``. With ``final="zero"`` the last step to ``s = 0`` is first order for
every solver: it returns ``D(y; s_{M-1})``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax
import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._checks import (
    check_array_positive,
    check_choice,
    check_positive_int,
    check_strictly_decreasing,
)
from ..models.base import AbstractDenoiser
from ..schedules.base import FINALS, AbstractSchedule, grid_times
from .base import AbstractSampler, _check_state, time_inputs
from .multistep import (
    MULTISTEP_SOLVERS,
    AbstractMultistepSolver,
    DPMSolverPPSDE,
    ProbabilityFlowTerm,
    solve_grid,
)

#: diffrax solvers by name: Euler, explicit Runge–Kutta methods, multistep solvers.
ODE_SOLVERS: dict[str, Callable[[], diffrax.AbstractSolver]] = {
    "euler": diffrax.Euler,
    "heun": diffrax.Heun,
    "midpoint": diffrax.Midpoint,
    "ralston": diffrax.Ralston,
    "bosh3": diffrax.Bosh3,
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    **MULTISTEP_SOLVERS,
}


def ode_solver(solver: str | diffrax.AbstractSolver) -> diffrax.AbstractSolver:
    """A solver name (see ``ODE_SOLVERS``) or a diffrax ``Euler``, explicit RK or
    deterministic multistep solver instance.

    >>> ode_solver("heun")
    Heun()
    >>> ode_solver("dpmpp-2m").name
    'dpmpp-2m'
    """
    if isinstance(solver, str):
        if solver not in ODE_SOLVERS:
            raise ValueError(
                f"`solver` must be one of {', '.join(ODE_SOLVERS)} or a diffrax solver; "
                f"got solver={solver!r}"
            )
        return ODE_SOLVERS[solver]()
    if isinstance(solver, diffrax.Euler):
        return solver
    if isinstance(solver, AbstractMultistepSolver) and not isinstance(solver, DPMSolverPPSDE):
        return solver
    if isinstance(solver, diffrax.AbstractRungeKutta) and not _tableau(solver).implicit:
        return solver
    raise ValueError(
        "`solver` must be diffrax.Euler, an explicit diffrax Runge-Kutta solver or a "
        f"deterministic multistep solver, got solver={solver!r}"
    )


def solver_name(solver: diffrax.AbstractSolver) -> str:
    """The registry name of an ODE solver instance (``"heun"``, ``"dpmpp-3m"``, ...).

    >>> solver_name(ode_solver("dpmpp-3m")), solver_name(diffrax.Tsit5())
    ('dpmpp-3m', 'tsit5')
    """
    if isinstance(solver, AbstractMultistepSolver):
        return solver.name
    return type(solver).__name__.lower()


def _tableau(solver):
    tableau = solver.tableau
    if isinstance(tableau, diffrax.MultiButcherTableau):
        raise ValueError(f"multi-tableau solvers are not supported, got solver={solver!r}")
    return tableau


def solver_nfe(solver: diffrax.AbstractSolver, num_solver_steps: int) -> int:
    """Vector-field evaluations of ``num_solver_steps`` diffrax steps (FSAL counted once).

    >>> solver_nfe(ode_solver("tsit5"), 3)  # 7 stages, first same as last: 1 + 3 * 6
    19
    """
    if num_solver_steps == 0:
        return 0
    if isinstance(solver, (diffrax.Euler, AbstractMultistepSolver)):
        return num_solver_steps
    tableau = _tableau(solver)
    if tableau.fsal:
        return 1 + num_solver_steps * (tableau.num_stages - 1)
    return num_solver_steps * tableau.num_stages


def probability_flow(
    denoiser: AbstractDenoiser,
    noise_levels: Float[ArrayLike, " m"],
    y0: ArrayLike,
    *,
    solver: str | diffrax.AbstractSolver = "heun",
    to_zero: bool = True,
) -> Array:
    """Solve the probability-flow ODE through ``noise_levels`` (``s_0 > ... > s_{m-1} > 0``).

    One solver step per interval (unrolled for at most ``UNROLL_MAX_STEPS`` intervals,
    else ``diffeqsolve``); with ``to_zero`` a last first-order step to ``s = 0`` returns
    ``D(y; s_{m-1})``. Differentiable with respect to ``noise_levels``.

    >>> from schedopt.models import GaussianDenoiser
    >>> y = probability_flow(GaussianDenoiser(jnp.ones(1)), jnp.array([2.0]), jnp.ones((1, 1)),
    ...                      solver="euler")
    >>> round(float(y[0, 0]), 6)  # c / (c + s^2)
    0.2
    """
    y0 = _check_state(y0)
    solver = ode_solver(solver)
    levels = jnp.asarray(noise_levels, dtype=y0.dtype)
    if levels.ndim != 1 or levels.shape[0] < 1:
        raise ValueError(f"`noise_levels` must be 1-D and non-empty, got shape {levels.shape}")
    check_array_positive("noise_levels", levels)
    if levels.shape[0] > 1:
        check_strictly_decreasing("noise_levels", levels)
    m = levels.shape[0]
    y = y0
    term = ProbabilityFlowTerm(denoiser, levels, total_steps=m - 1 + int(to_zero))
    if m > 1:
        y = solve_grid(solver, term, y0, m - 1)
    if to_zero:
        y = denoiser(y, levels[-1])
    return y


class ODESampler(AbstractSampler):
    """Probability-flow ODE sampler: ``num_steps`` steps of ``solver`` over the schedule's grid.

    ``"euler"`` equals DDIM (``N`` NFE); ``"heun"`` is EDM's second-order sampler with a
    plain Euler last step to 0 (``2N - 1`` NFE); ``"midpoint"``, ``"ralston"``, ``"bosh3"``,
    ``"tsit5"``, ``"dopri5"`` or any explicit diffrax RK solver also work, and the
    multistep ``"dpmpp-2m"``, ``"dpmpp-3m"``, ``"unipc"``, ``"ipndm"`` (``N`` NFE each).

    >>> import jax
    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.schedules import EDM
    >>> sampler = ODESampler(10, "heun")
    >>> sampler.nfe
    19
    >>> sampler(GaussianDenoiser(jnp.ones(2)), EDM(), jnp.ones((3, 2))).shape
    (3, 2)
    """

    num_steps: int = eqx.field(static=True)
    solver: diffrax.AbstractSolver
    final: str = eqx.field(static=True)

    name: ClassVar[str] = "ode"

    def __init__(
        self,
        num_steps: int,
        solver: str | diffrax.AbstractSolver = "heun",
        final: str = "zero",
    ):
        self.num_steps = check_positive_int("num_steps", num_steps)
        self.solver = ode_solver(solver)
        self.final = check_choice("final", final, FINALS)

    @property
    def nfe(self) -> int:
        if self.final == "zero":
            return solver_nfe(self.solver, self.num_steps - 1) + 1
        return solver_nfe(self.solver, self.num_steps)

    def noise_levels(self, schedule: AbstractSchedule) -> Float[Array, " m"]:
        """The positive grid points ``s(t_k)`` (the final zero excluded)."""
        return schedule.noise_level(grid_times(self.num_steps, self.final))

    def __call__(self, denoiser, schedule, y0, key=None):
        denoiser = time_inputs(denoiser, schedule)
        del key
        return probability_flow(
            denoiser,
            self.noise_levels(schedule),
            y0,
            solver=self.solver,
            to_zero=self.final == "zero",
        )
