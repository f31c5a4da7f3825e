"""Denoisers: the ``AbstractDenoiser`` interface, exact oracles and Flax networks."""

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
    "TrainResult": "training",
    "train_denoiser": "training",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
