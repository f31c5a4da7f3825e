"""schedopt: learn diffusion-model noise schedules and sampling discretisations by
gradient descent (JAX).

The names a user starts with, from the subpackages that define them (each is imported on
first use, so ``import schedopt`` imports neither JAX nor the samplers):

- schedules (:mod:`schedopt.schedules`): :class:`AbstractSchedule`, :class:`EDM`,
  :class:`MonotoneCubic`, :func:`make_schedule`, :func:`grid`;
- Gaussian data (:mod:`schedopt.gaussian`): :class:`Spectrum`;
- objectives (:mod:`schedopt.objectives`): :class:`AbstractObjective`,
  :class:`GaussianKL`, :class:`TrajectoryMatching`, :class:`SampleDiscrepancy`;
- samplers (:mod:`schedopt.sampling`): :func:`make_sampler`;
- the optax loop: :func:`optimize` (the subpackage :mod:`schedopt.optimize`, callable as
  its function :func:`schedopt.optimize.optimize`);
- schedule cards (:mod:`schedopt.io`): :func:`make_card`, :func:`save_card`,
  :func:`load_card`, :func:`card_schedule`.

>>> import schedopt
>>> objective = schedopt.GaussianKL(schedopt.Spectrum([0.5, 2.0]), num_steps=4)
>>> result = schedopt.optimize(schedopt.MonotoneCubic.from_schedule(schedopt.EDM(), 8),
...                            objective, num_iterations=20, progress=False)
>>> bool(result.final_loss < objective(schedopt.EDM(), None))
True
"""

import importlib

#: public name -> the subpackage that defines it
_SOURCES = {
    "AbstractSchedule": "schedules",
    "EDM": "schedules",
    "MonotoneCubic": "schedules",
    "grid": "schedules",
    "make_schedule": "schedules",
    "Spectrum": "gaussian",
    "AbstractObjective": "objectives",
    "GaussianKL": "objectives",
    "SampleDiscrepancy": "objectives",
    "TrajectoryMatching": "objectives",
    "make_sampler": "sampling",
    "optimize": "optimize",
    "card_schedule": "io",
    "load_card": "io",
    "make_card": "io",
    "save_card": "io",
}


def __getattr__(name):
    if name in _SOURCES:
        module = importlib.import_module(f".{_SOURCES[name]}", __name__)
        if name == "optimize":  # the subpackage, callable as its loop (schedopt/optimize)
            return module
        value = globals()[name] = getattr(module, name)
        return value
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version(__name__)
        except metadata.PackageNotFoundError:  # a source tree, not installed
            return "unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*__all__, "__version__"])


__all__ = sorted(_SOURCES)
