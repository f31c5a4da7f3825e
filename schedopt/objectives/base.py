"""The ``AbstractObjective`` interface: a researcher adds an objective by writing one class.

An objective is an immutable ``eqx.Module`` holding its settings (data, number of steps,
solver, ...) and mapping ``(schedule, key)`` to a scalar loss. It must be jit-able and
differentiable with respect to the schedule's inexact-array leaves. Deterministic
objectives ignore ``key``.

>>> import jax, jax.numpy as jnp
>>> from schedopt.schedules import EDM
>>> class MeanNoise(AbstractObjective):
...     def __call__(self, schedule, key):
...         return jnp.mean(schedule.noise_level(jnp.linspace(0, 1, 5)))
>>> float(MeanNoise()(EDM(), jax.random.key(0))) > 0
True
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

import equinox as eqx
import numpy as np
from jaxtyping import Array, PRNGKeyArray, Scalar

from ..schedules.base import AbstractSchedule


class AbstractObjective(eqx.Module):
    """A scalar loss of a schedule; lower is better."""

    name: ClassVar[str] = "objective"

    @abc.abstractmethod
    def __call__(self, schedule: AbstractSchedule, key: PRNGKeyArray) -> Scalar | Array:
        """The loss of ``schedule`` (``key`` drives any Monte Carlo estimate)."""

    @property
    def host_loop(self) -> bool:
        """Whether :func:`~schedopt.optimize.optimize` should drive this objective's steps
        from Python, one compiled step each, rather than in a compiled loop (true for
        objectives that run a network: XLA's CPU backend differentiates convolutions
        inside loops several times slower)."""
        return False

    @property
    def runs_sampler(self) -> bool:
        """Whether the loss runs a sampler through the denoiser, so that a
        :class:`~schedopt.schedules.DecoupledTimes`' time inputs reach it (objectives of the
        grid alone, e.g. closed forms and bounds, leave its offsets without a gradient, and
        :func:`~schedopt.optimize.optimize` refuses the pair)."""
        return False

    def describe(self) -> dict:
        """JSON-able settings, recorded in schedule cards and logs.

        The default lists the scalar, string and small-array fields; override for more.
        """
        out: dict = {"objective": self.name}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (str, int, float, bool)) or value is None:
                out[f.name] = value
            elif hasattr(value, "describe"):
                out[f.name] = value.describe()
            else:
                arr = np.asarray(value) if _is_arraylike(value) else None
                if arr is not None and arr.size <= 16:
                    out[f.name] = arr.tolist()
        return out


def _is_arraylike(value) -> bool:
    return isinstance(value, (np.ndarray, Array, list, tuple)) and not isinstance(value, str)
