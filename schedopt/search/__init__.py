"""Search-based sampling grids: DP over a teacher grid (GITS / OSS) and an AYS-style
optimisation of a KL upper bound (and a DMN-style bound for the multistep solvers), fitted
with :func:`schedopt.optimize.optimize` as the objectives :class:`AYSBound` and
:class:`DMNBound`. Both return a :class:`SearchResult` whose ``sigmas``
:func:`schedule_from_sigmas` turns into a schedule usable everywhere."""

from .ays import AYSBound, ays_bound, ays_single_eigenvalue_optimum, optimize_ays
from .costs import (
    ays_interval_bound,
    ays_step_costs,
    gaussian_range_costs,
    gaussian_step_costs,
    initial_mismatch,
    teacher_trajectory,
    trajectory_step_costs,
)
from .dmn import DMNBound, dmn_bound, model_error, optimize_dmn
from .dp import SearchResult, dp_search, dp_select, schedule_from_sigmas, teacher_levels

__all__ = [
    "AYSBound",
    "DMNBound",
    "SearchResult",
    "ays_bound",
    "ays_interval_bound",
    "ays_single_eigenvalue_optimum",
    "ays_step_costs",
    "dmn_bound",
    "dp_search",
    "dp_select",
    "gaussian_range_costs",
    "gaussian_step_costs",
    "initial_mismatch",
    "model_error",
    "optimize_dmn",
    "optimize_ays",
    "schedule_from_sigmas",
    "teacher_levels",
    "teacher_trajectory",
    "trajectory_step_costs",
]
