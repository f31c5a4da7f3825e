"""Sample-quality metrics: Fréchet distance (digits classifier features), sliced
Wasserstein-2, MMD, closed-form Gaussian KL, and mixture mode coverage, precision/recall
and log-likelihood; rank agreement of two scores."""

from .._deprecated import deprecated_getattr
from .classifier import (
    DigitsClassifier,
    classifier_accuracy,
    classifier_scores,
    digits_features,
    digits_logits,
    load_classifier,
    train_classifier,
)
from .distances import fitted_gaussian_kl as fitted_gaussian_kl  # deprecated: it warns
from .distances import (
    fitted_kl,
    frechet_distance,
    frechet_distance_gaussians,
    kl_divergence_gaussians,
    mean_and_covariance,
    median_bandwidth,
    mmd,
    sliced_wasserstein,
)
from .evaluate import evaluate_samples, format_metrics
from .intervals import mean_interval, t_quantile_975
from .mixtures import mixture_log_likelihood, mode_coverage, precision_recall
from .ranking import average_ranks, spearman

# Renamed: `gaussian_kl` is the sampler KL of schedopt.gaussian, and `format_table` the
# general table of schedopt._table. `fitted_gaussian_kl` (deprecated, it warns) is
# `fitted_kl` with `direction` the other way round.
__getattr__ = deprecated_getattr(
    __name__,
    globals(),
    {"gaussian_kl": "kl_divergence_gaussians", "format_table": "format_metrics"},
)

__all__ = [
    "average_ranks",
    "DigitsClassifier",
    "classifier_accuracy",
    "classifier_scores",
    "digits_features",
    "digits_logits",
    "evaluate_samples",
    "fitted_kl",
    "format_metrics",
    "frechet_distance",
    "frechet_distance_gaussians",
    "kl_divergence_gaussians",
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
