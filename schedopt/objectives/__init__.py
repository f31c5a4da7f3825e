"""Objectives: scalar losses of a schedule that the optax loop minimises."""

from .base import AbstractObjective
from .gaussian_kl import GaussianKL
from .sample_based import AbstractSampleObjective
from .trajectory import TrajectoryMatching, trajectory_distance

__all__ = [
    "AbstractObjective",
    "AbstractSampleObjective",
    "GaussianKL",
    "TrajectoryMatching",
    "trajectory_distance",
]
