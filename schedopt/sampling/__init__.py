"""Samplers over a schedule: probability-flow ODE solvers on diffrax (Euler = DDIM, Heun and
the other explicit Runge–Kutta methods, DPM-Solver++(2M/3M), UniPC, iPNDM), reverse-SDE
Euler–Maruyama with Gaussian or discrete noise, DDPM ancestral sampling and
DPM-Solver++(2M) SDE."""

from __future__ import annotations

from .._checks import check_positive_int
from .._deprecated import deprecated_getattr
from .base import INITS, NOISES, AbstractSampler, draw_noise, initial_state, time_inputs
from .multistep import (
    IPNDM,
    MULTISTEP_SOLVERS,
    UNROLL_MAX_STEPS,
    AbstractMultistepSolver,
    DPMSolverPP,
    DPMSolverPPSDE,
    ProbabilityFlowTerm,
    UniPC,
    UnrolledRungeKutta,
    unrolled_solve,
)
from .ode import ODE_SOLVERS, ODESampler, ode_solver, probability_flow, solver_name, solver_nfe
from .sde import (
    Ancestral,
    DPMSolverPP2MSDE,
    EulerMaruyama,
    ReparameterisedNoisePath,
    ancestral,
    dpmpp_2m_sde,
    euler_maruyama,
)

# One implementation, shared with the samplers' exact Gaussian forms.
__getattr__ = deprecated_getattr(
    __name__, globals(), {"ancestral_split": "schedopt.gaussian.ancestral_split"}
)

#: The stochastic samplers by name.
SDE_SAMPLERS: dict[str, type[AbstractSampler]] = {
    "ancestral": Ancestral,
    "euler-maruyama": EulerMaruyama,
    "dpmpp-2m-sde": DPMSolverPP2MSDE,
}

#: Every sampler name :func:`make_sampler` accepts.
SAMPLERS: tuple[str, ...] = (*ODE_SOLVERS, *SDE_SAMPLERS)


def make_sampler(name: str, num_steps: int, **options) -> AbstractSampler:
    """A sampler by name: an ODE solver name or a stochastic sampler's
    (``"ancestral"``, ``"euler-maruyama"``, ``"dpmpp-2m-sde"``).

    ``options`` go to the sampler (``final``, ``eta``, ``noise``, ``kappa``, ``process``).

    >>> make_sampler("euler", 10).nfe, make_sampler("heun", 10).nfe, make_sampler("unipc", 10).nfe
    (10, 19, 10)
    """
    if name in ODE_SOLVERS:
        return ODESampler(num_steps, name, **options)
    if name in SDE_SAMPLERS:
        return SDE_SAMPLERS[name](num_steps, **options)
    raise ValueError(f"`sampler` must be one of {', '.join(SAMPLERS)}; got sampler={name!r}")


def registry_name(sampler: AbstractSampler) -> str:
    """The :data:`SAMPLERS` name of a sampler instance (the inverse of :func:`make_sampler`).

    >>> registry_name(make_sampler("dpmpp-3m", 4)), registry_name(make_sampler("ancestral", 4))
    ('dpmpp-3m', 'ancestral')
    """
    from .ode import solver_name

    return solver_name(sampler.solver) if isinstance(sampler, ODESampler) else sampler.name


def sampler_for_nfe(name: str, nfe: int, *, exact: bool = False, **options) -> AbstractSampler:
    """The sampler ``name`` with the most steps whose NFE does not exceed ``nfe``.

    The one conversion from an evaluation budget to sampler steps (Heun with
    ``final="zero"`` makes ``2N - 1`` evaluations in ``N`` steps). With ``exact`` a budget
    the sampler cannot meet exactly is refused, naming the nearest budgets it meets.

    >>> sampler_for_nfe("heun", 10).num_steps  # 2 * 5 - 1 = 9 <= 10
    5
    >>> sampler_for_nfe("heun", 10, exact=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the 'heun' sampler cannot make exactly nfe=10 evaluations: ... 11 (6 steps)
    """
    budget = check_positive_int("nfe", nfe)
    if make_sampler(name, 1, **options).nfe > budget:
        raise ValueError(f"`nfe` is too small for the {name!r} sampler: got nfe={nfe}")
    lo, hi = 1, budget  # every sampler costs >= 1 NFE per step
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if make_sampler(name, mid, **options).nfe <= budget:
            lo = mid
        else:
            hi = mid - 1
    sampler = make_sampler(name, lo, **options)
    if exact and sampler.nfe != budget:
        above = make_sampler(name, lo + 1, **options).nfe
        raise ValueError(
            f"the {name!r} sampler cannot make exactly nfe={nfe} evaluations: the nearest "
            f"are {sampler.nfe} ({lo} steps) and {above} ({lo + 1} steps)"
        )
    return sampler


__all__ = [
    "INITS",
    "IPNDM",
    "MULTISTEP_SOLVERS",
    "NOISES",
    "ODE_SOLVERS",
    "SAMPLERS",
    "SDE_SAMPLERS",
    "UNROLL_MAX_STEPS",
    "AbstractMultistepSolver",
    "AbstractSampler",
    "Ancestral",
    "DPMSolverPP",
    "DPMSolverPP2MSDE",
    "DPMSolverPPSDE",
    "EulerMaruyama",
    "ODESampler",
    "ProbabilityFlowTerm",
    "ReparameterisedNoisePath",
    "UniPC",
    "UnrolledRungeKutta",
    "ancestral",
    "dpmpp_2m_sde",
    "draw_noise",
    "euler_maruyama",
    "initial_state",
    "make_sampler",
    "ode_solver",
    "probability_flow",
    "registry_name",
    "sampler_for_nfe",
    "solver_name",
    "solver_nfe",
    "time_inputs",
    "unrolled_solve",
]
