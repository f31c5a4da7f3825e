"""Closed-form theory for Gaussian data (P0): sampler gains, output moments, KL, asymptotics,
for the single-step solvers and the multistep ones (DPM-Solver++, UniPC, iPNDM)."""

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
    Ancestral,
    Euler,
    EulerMaruyama,
    Heun,
    StepCoefficients,
    StepGrid,
    ancestral_split,
    sigma_grid,
    step_grid,
)
from .spectrum import Spectrum

__all__ = [
    "DIRECTIONS",
    "INITS",
    "SOLVERS",
    "AbstractGaussianMultistep",
    "AbstractGaussianSolver",
    "Ancestral",
    "Euler",
    "EulerMaruyama",
    "GaussianDPMSolverPP",
    "GaussianDPMSolverPPSDE",
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
