"""Sample-quality metrics: Fréchet distance (digits classifier features), sliced
Wasserstein-2, MMD, closed-form Gaussian KL, and mixture mode coverage, precision/recall
and log-likelihood; rank agreement of two scores."""

from .classifier import (
    DigitsClassifier,
    classifier_accuracy,
    classifier_scores,
    digits_features,
    digits_logits,
    load_classifier,
    train_classifier,
)
from .distances import (
    fitted_gaussian_kl,
    frechet_distance,
    frechet_distance_gaussians,
    gaussian_kl,
    mean_and_covariance,
    median_bandwidth,
    mmd,
    sliced_wasserstein,
)
from .evaluate import evaluate_samples, format_table
from .intervals import mean_interval, t_quantile_975
from .mixtures import mixture_log_likelihood, mode_coverage, precision_recall
from .ranking import average_ranks, spearman

__all__ = [
    "average_ranks",
    "DigitsClassifier",
    "classifier_accuracy",
    "classifier_scores",
    "digits_features",
    "digits_logits",
    "evaluate_samples",
    "fitted_gaussian_kl",
    "format_table",
    "frechet_distance",
    "frechet_distance_gaussians",
    "gaussian_kl",
    "mean_interval",
    "load_classifier",
    "mean_and_covariance",
    "median_bandwidth",
    "mixture_log_likelihood",
    "mmd",
    "mode_coverage",
    "precision_recall",
    "sliced_wasserstein",
    "spearman",
    "t_quantile_975",
    "train_classifier",
]
