"""Denoisers: the ``AbstractDenoiser`` interface, exact oracles and Flax networks."""

from .adapters import CONDITIONINGS, PREDICTIONS, FunctionDenoiser, PredictionDenoiser
from .base import AbstractDenoiser
from .oracles import GaussianDenoiser, GaussianMixtureDenoiser

__all__ = [
    "CONDITIONINGS",
    "PREDICTIONS",
    "AbstractDenoiser",
    "FunctionDenoiser",
    "GaussianDenoiser",
    "GaussianMixtureDenoiser",
    "PredictionDenoiser",
]
