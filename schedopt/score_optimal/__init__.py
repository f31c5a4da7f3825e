"""Score-optimal schedules (Williams et al., Score-Optimal Diffusion Schedules): transport-work
costs from denoiser evaluations, equal-cost grids (Algorithm 1), online adaptation during
training (Algorithm 2) and the path energy.

The optax objective is :class:`schedopt.objectives.ScoreWork`; the command line is
``schedopt optimize --objective score-work``.
"""

from .costs import (
    COSTS,
    TRACES,
    VELOCITIES,
    AbstractScoreCost,
    CorrectorCost,
    PredictorCost,
    make_cost,
    velocity,
)
from .equal_cost import (
    EqualCostResult,
    RhoFit,
    blend,
    coarsen_costs,
    cost_spread,
    cumulative_root_cost,
    edm_grid,
    equal_cost_noise_levels,
    equal_cost_update,
    fit_edm_rho,
    refined_update,
    schedule_from_noise_levels,
    subdivide,
)
from .gaussian import gaussian_corrector_length, gaussian_interval_cost, gaussian_local_cost
from .online import OnlineEqualCost, OnlineHook
from .table import CostTable, local_speed

__all__ = [
    "COSTS",
    "TRACES",
    "VELOCITIES",
    "AbstractScoreCost",
    "CorrectorCost",
    "CostTable",
    "EqualCostResult",
    "OnlineEqualCost",
    "OnlineHook",
    "PredictorCost",
    "RhoFit",
    "blend",
    "coarsen_costs",
    "cost_spread",
    "cumulative_root_cost",
    "edm_grid",
    "equal_cost_noise_levels",
    "equal_cost_update",
    "fit_edm_rho",
    "gaussian_corrector_length",
    "gaussian_interval_cost",
    "gaussian_local_cost",
    "local_speed",
    "make_cost",
    "refined_update",
    "schedule_from_noise_levels",
    "subdivide",
    "velocity",
]
