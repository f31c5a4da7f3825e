"""Samplers over a schedule: probability-flow ODE solvers (diffrax), reverse-SDE
Euler–Maruyama with Gaussian or discrete noise (P2), and DDPM ancestral sampling."""

from __future__ import annotations

from .._checks import check_positive_int
from .base import INITS, NOISES, AbstractSampler, draw_noise, initial_state
from .ode import ODE_SOLVERS, ODESampler, ode_solver, probability_flow, solver_nfe
from .sde import (
    Ancestral,
    EulerMaruyama,
    ReparameterisedNoisePath,
    ancestral,
    ancestral_split,
    euler_maruyama,
)

#: Every sampler name :func:`make_sampler` accepts.
SAMPLERS: tuple[str, ...] = (*ODE_SOLVERS, "ancestral", "euler-maruyama")


def make_sampler(name: str, num_steps: int, **options) -> AbstractSampler:
    """A sampler by name: an ODE solver name, ``"ancestral"`` or ``"euler-maruyama"``.

    ``options`` go to the sampler (``final``, ``eta``, ``noise``, ``kappa``, ``process``).

    >>> make_sampler("euler", 10).nfe, make_sampler("heun", 10).nfe
    (10, 19)
    """
    if name in ODE_SOLVERS:
        return ODESampler(num_steps, name, **options)
    if name == "ancestral":
        return Ancestral(num_steps, **options)
    if name == "euler-maruyama":
        return EulerMaruyama(num_steps, **options)
    raise ValueError(f"`sampler` must be one of {', '.join(SAMPLERS)}; got sampler={name!r}")


def sampler_for_nfe(name: str, nfe: int, **options) -> AbstractSampler:
    """The sampler ``name`` with the most steps whose NFE does not exceed ``nfe``.

    >>> sampler_for_nfe("heun", 10).num_steps  # 2 * 5 - 1 = 9 <= 10
    5
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
    return make_sampler(name, lo, **options)


__all__ = [
    "INITS",
    "NOISES",
    "ODE_SOLVERS",
    "SAMPLERS",
    "AbstractSampler",
    "Ancestral",
    "EulerMaruyama",
    "ODESampler",
    "ReparameterisedNoisePath",
    "ancestral",
    "ancestral_split",
    "draw_noise",
    "euler_maruyama",
    "initial_state",
    "make_sampler",
    "ode_solver",
    "probability_flow",
    "sampler_for_nfe",
    "solver_nfe",
]
