"""Denoisers: the ``AbstractDenoiser`` interface, exact oracles and Flax networks."""

from .._lazy import lazy_getattr
from .adapters import CONDITIONINGS, PREDICTIONS, FunctionDenoiser, PredictionDenoiser
from .base import AbstractDenoiser
from .oracles import GaussianDenoiser, GaussianMixtureDenoiser

# Flax networks and their training, imported on first use (importing schedopt.models
# for the oracles does not import flax)
_LAZY = {
    "MLPDenoiser": "networks",
    "UNetDenoiser": "networks",
    "build_network": "networks",
    "edm_preconditioning": "networks",
    "NNXDenoiser": "nnx_adapter",
    "load_denoiser": "nnx_adapter",
    "load_network": "nnx_adapter",
    "save_network": "nnx_adapter",
    "noise_distribution": "noise",
    "noise_learner": "noise_learning",
    "TrainResult": "training",
    "train_denoiser": "training",
}


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


__all__ = [
    *_LAZY,
    "CONDITIONINGS",
    "PREDICTIONS",
    "AbstractDenoiser",
    "FunctionDenoiser",
    "GaussianDenoiser",
    "GaussianMixtureDenoiser",
    "PredictionDenoiser",
]
