"""Data sets: bundled digits, Gaussian mixtures with exact densities, 2-D toy sets."""

from .._deprecated import deprecated_getattr
from .digits import IMAGE_SHAPE, load_digits, to_pixels
from .mixtures import GaussianMixture, gaussian_with_spectrum, grid_mixture, ring, unequal_mixture
from .plotting import plot_samples
from .registry import DATASETS, Dataset, load_dataset
from .toy import moons, swiss_roll

# Renamed: `grid` is the sampling grid of schedopt.schedules.
__getattr__ = deprecated_getattr(__name__, globals(), {"grid": "grid_mixture"})

__all__ = [
    "DATASETS",
    "Dataset",
    "GaussianMixture",
    "IMAGE_SHAPE",
    "gaussian_with_spectrum",
    "grid_mixture",
    "load_dataset",
    "load_digits",
    "moons",
    "plot_samples",
    "ring",
    "swiss_roll",
    "to_pixels",
    "unequal_mixture",
]
