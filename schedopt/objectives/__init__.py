"""Objectives: scalar losses of a schedule that the optax loop minimises.

Each objective's module is imported on first use, so that ``from schedopt.objectives
import GaussianKL`` does not import the samplers, metrics and networks that the
sample-based objectives need.
"""

from .._lazy import lazy_getattr

#: public name -> the submodule that defines it
_SOURCES = {
    "AbstractObjective": "base",
    "BudgetRanges": "budgets",
    "SumOverBudgets": "budgets",
    "ConstantRate": "constant_rate",
    "DISCREPANCIES": "discrepancy",
    "MMD": "discrepancy",
    "MMD_SCALES": "discrepancy",
    "Frechet": "discrepancy",
    "FrechetDistance": "discrepancy",
    "MMDDistance": "discrepancy",
    "SampleDiscrepancy": "discrepancy",
    "SlicedW2Distance": "discrepancy",
    "SlicedWasserstein": "discrepancy",
    "discrepancy_objective": "discrepancy",
    "GaussianKL": "gaussian_kl",
    "AbstractSampleObjective": "sample_based",
    "ScoreWork": "score_work",
    "TeacherPairs": "teacher",
    "model_fingerprint": "teacher",
    "teacher_pairs": "teacher",
    "TrajectoryMatching": "trajectory",
    "per_sample_distance": "trajectory",
    "trajectory_distance": "trajectory",
}


__getattr__ = lazy_getattr(__name__, globals(), _SOURCES)


def __dir__():
    return sorted(__all__)


__all__ = sorted(_SOURCES)
