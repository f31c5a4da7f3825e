"""Objectives: scalar losses of a schedule that the optax loop minimises."""

from .base import AbstractObjective
from .constant_rate import ConstantRate
from .discrepancy import (
    DISCREPANCIES,
    MMD,
    AbstractDiscrepancy,
    Frechet,
    SlicedWasserstein,
    discrepancy_objective,
)
from .gaussian_kl import GaussianKL
from .sample_based import AbstractSampleObjective
from .score_work import ScoreWork
from .trajectory import TrajectoryMatching, trajectory_distance

__all__ = [
    "DISCREPANCIES",
    "MMD",
    "AbstractDiscrepancy",
    "AbstractObjective",
    "AbstractSampleObjective",
    "ConstantRate",
    "Frechet",
    "GaussianKL",
    "ScoreWork",
    "SlicedWasserstein",
    "TrajectoryMatching",
    "discrepancy_objective",
    "trajectory_distance",
]
