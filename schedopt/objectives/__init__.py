"""Objectives: scalar losses of a schedule that the optax loop minimises."""

from .base import AbstractObjective
from .budgets import BudgetRanges, SumOverBudgets
from .constant_rate import ConstantRate
from .discrepancy import (
    DISCREPANCIES,
    MMD,
    MMD_SCALES,
    Frechet,
    FrechetDistance,
    MMDDistance,
    SampleDiscrepancy,
    SlicedW2Distance,
    SlicedWasserstein,
    discrepancy_objective,
)
from .gaussian_kl import GaussianKL
from .sample_based import AbstractSampleObjective
from .score_work import ScoreWork
from .teacher import TeacherPairs, model_fingerprint, teacher_pairs
from .trajectory import TrajectoryMatching, per_sample_distance, trajectory_distance

__all__ = [
    "DISCREPANCIES",
    "MMD",
    "MMD_SCALES",
    "AbstractObjective",
    "AbstractSampleObjective",
    "BudgetRanges",
    "ConstantRate",
    "Frechet",
    "FrechetDistance",
    "GaussianKL",
    "MMDDistance",
    "SampleDiscrepancy",
    "ScoreWork",
    "SlicedW2Distance",
    "SlicedWasserstein",
    "SumOverBudgets",
    "TeacherPairs",
    "TrajectoryMatching",
    "discrepancy_objective",
    "model_fingerprint",
    "per_sample_distance",
    "teacher_pairs",
    "trajectory_distance",
]
