"""The optax optimisation loop.

The package is callable as its loop, ``schedopt.optimize(start, objective, ...)`` being
:func:`schedopt.optimize.optimize`: the package and the function share the name, and
once the package is imported ``schedopt.optimize`` is the package, whichever was asked for.
"""

import inspect
import sys
import types

from .loop import OptimizationError, OptimizeResult, optimize

__all__ = ["OptimizationError", "OptimizeResult", "optimize"]


class _CallablePackage(types.ModuleType):
    """``schedopt.optimize``, whose call is :func:`optimize`."""

    def __call__(self, *args, **kwargs):
        return optimize(*args, **kwargs)


__signature__ = inspect.signature(optimize)  # what inspect.signature(schedopt.optimize) shows
sys.modules[__name__].__class__ = _CallablePackage
