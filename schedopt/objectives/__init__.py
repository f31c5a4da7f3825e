"""Objectives: scalar losses of a schedule that the optax loop minimises."""

from .base import AbstractObjective
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
from .trajectory import TrajectoryMatching, trajectory_distance

__all__ = [
    "DISCREPANCIES",
    "MMD",
    "AbstractDiscrepancy",
    "AbstractObjective",
    "AbstractSampleObjective",
    "Frechet",
    "GaussianKL",
    "SlicedWasserstein",
    "TrajectoryMatching",
    "discrepancy_objective",
    "trajectory_distance",
]
