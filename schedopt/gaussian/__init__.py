"""Closed-form theory for Gaussian data (Sun, Poor & Zhang: Gaussian KL, Euler–Maclaurin,
tangent law; arXiv 2601.13602): sampler gains, output moments, KL, asymptotics, for the
single-step solvers and the multistep ones (DPM-Solver++, UniPC, iPNDM)."""

from .._deprecated import deprecated_getattr
from .asymptotics import (
    asymptotically_optimal_schedule,
    euler_maclaurin_constant,
    optimal_tangent_gamma,
    path_lengths,
    tangent_law,
)
from .moments import DIRECTIONS, INITS, OutputMoments, gaussian_kl, kl_per_direction, output_moments
from .multistep import (
    AbstractGaussianMultistep,
    GaussianDPMSolverPP,
    GaussianDPMSolverPPSDE,
    GaussianIPNDM,
    GaussianUniPC,
)
from .registry import SOLVERS, solver_from_name
from .solvers import (
    AbstractGaussianSolver,
    Euler,
    GaussianAncestral,
    GaussianEulerMaruyama,
    Heun,
    StepCoefficients,
    StepGrid,
    ancestral_split,
    sigma_grid,
    step_grid,
)
from .spectrum import Spectrum

# Renamed (they shared their names with the samplers of schedopt.sampling).
__getattr__ = deprecated_getattr(
    __name__,
    globals(),
    {"Ancestral": "GaussianAncestral", "EulerMaruyama": "GaussianEulerMaruyama"},
)

__all__ = [
    "DIRECTIONS",
    "INITS",
    "SOLVERS",
    "AbstractGaussianMultistep",
    "AbstractGaussianSolver",
    "Euler",
    "GaussianAncestral",
    "GaussianDPMSolverPP",
    "GaussianDPMSolverPPSDE",
    "GaussianEulerMaruyama",
    "GaussianIPNDM",
    "GaussianUniPC",
    "Heun",
    "OutputMoments",
    "Spectrum",
    "StepCoefficients",
    "StepGrid",
    "ancestral_split",
    "asymptotically_optimal_schedule",
    "euler_maclaurin_constant",
    "gaussian_kl",
    "kl_per_direction",
    "optimal_tangent_gamma",
    "output_moments",
    "path_lengths",
    "sigma_grid",
    "solver_from_name",
    "step_grid",
    "tangent_law",
]
