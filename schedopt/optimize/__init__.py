"""The optax optimisation loop."""

from .loop import OptimizationError, OptimizeResult, optimize

__all__ = ["OptimizationError", "OptimizeResult", "optimize"]
