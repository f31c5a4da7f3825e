"""The Gaussian step maps by name: the single-step solvers of :mod:`.solvers` and the
multistep ones of :mod:`.multistep` (the names :mod:`schedopt.sampling` uses too)."""

from __future__ import annotations

from collections.abc import Callable

from .multistep import GAUSSIAN_MULTISTEP
from .solvers import (
    AbstractGaussianSolver,
    Euler,
    GaussianAncestral,
    GaussianEulerMaruyama,
    Heun,
)

#: Exact Gaussian forms by solver name.
SOLVERS: dict[str, Callable[..., AbstractGaussianSolver]] = {
    **{cls.name: cls for cls in (Euler, Heun, GaussianAncestral, GaussianEulerMaruyama)},
    **GAUSSIAN_MULTISTEP,
}


def solver_from_name(name: str | AbstractGaussianSolver, **options) -> AbstractGaussianSolver:
    """A solver name (see :data:`SOLVERS`) to its exact Gaussian form; instances pass through.

    >>> solver_from_name("heun")
    Heun()
    >>> solver_from_name("dpmpp-3m").name
    'dpmpp-3m'
    """
    if isinstance(name, AbstractGaussianSolver):
        return name
    if name not in SOLVERS:
        raise ValueError(f"`solver` must be one of {', '.join(SOLVERS)}; got solver={name!r}")
    return SOLVERS[name](**options)
