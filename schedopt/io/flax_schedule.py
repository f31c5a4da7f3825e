"""A Flax NNX module holding a schedopt schedule, frozen or trainable.

:class:`NoiseSchedule` wraps any :class:`~schedopt.schedules.AbstractSchedule` so that it
can sit inside a user's ``nnx.Module``: its floating-point parameters become NNX
variables (``nnx.Param`` when ``trainable=True``, otherwise :class:`ScheduleConstant`,
which ``nnx.grad`` and ``nnx.Optimizer(..., wrt=nnx.Param)`` leave alone), and
everything the schedule computes (logSNR, noise level, ``alpha`` / ``sigma``, sampling
grids, training noise levels) is a method. Load one from an orbax checkpoint
(:meth:`NoiseSchedule.from_checkpoint`) or a schedule card (:meth:`NoiseSchedule.from_card`).

>>> from flax import nnx
>>> from schedopt.schedules import MonotoneCubic, EDM
>>> class Model(nnx.Module):
...     def __init__(self, schedule, rngs):
...         self.schedule = NoiseSchedule(schedule)          # frozen by default
...         self.linear = nnx.Linear(2, 2, rngs=rngs)
>>> model = Model(MonotoneCubic.from_schedule(EDM(), 8), nnx.Rngs(0))
>>> len(jax.tree.leaves(nnx.state(model, nnx.Param)))     # only the Linear's kernel and bias
2
>>> [round(float(s), 3) for s in model.schedule.grid(2)]
[80.0, 0.002, 0.0]

Plain JAX needs none of this: ``card_schedule(load_card(path))`` (or
``load_schedule(checkpoint_dir)``) returns the schedule, an ``equinox`` module that is a
pytree of arrays, so it goes through ``jax.jit`` / ``jax.grad`` as an argument.
"""

from __future__ import annotations

import os

import equinox as eqx
import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike

from .._checks import check_choice
from ..schedules.base import FINALS, AbstractSchedule, grid, grid_times
from ..schedules.processes import AbstractProcess, process_from_name
from .card import card_schedule, load_card
from .checkpoint import load_schedule


class ScheduleConstant(nnx.Variable):
    """A frozen schedule parameter: an NNX variable that is not an ``nnx.Param``."""


class NoiseSchedule(nnx.Module):
    """An NNX module computing a schedopt schedule; ``trainable=False`` freezes it.

    ``process`` (``"vp" | "ve" | "flow"``) is the default for :meth:`alpha` and
    :meth:`sigma`. With ``trainable=True`` the parameters are ``nnx.Param`` and train with
    the rest of the model; the learnable families (``MonotoneCubic``, ``PiecewiseLinear``,
    ``MonotoneMLP``) stay monotone with exact endpoints for every parameter value.
    """

    def __init__(
        self,
        schedule: AbstractSchedule,
        *,
        trainable: bool = False,
        process: str | AbstractProcess = "vp",
    ):
        if not isinstance(schedule, AbstractSchedule):
            raise ValueError(
                f"`schedule` must be an AbstractSchedule, got {type(schedule).__name__}"
            )
        params, static = eqx.partition(schedule, eqx.is_inexact_array)
        leaves, treedef = jax.tree.flatten(params)
        variable = nnx.Param if trainable else ScheduleConstant
        self.parameters = nnx.List([variable(jnp.asarray(leaf)) for leaf in leaves])
        self.trainable = bool(trainable)
        self.process = process_from_name(process).name
        self._treedef = treedef
        self._static = static

    # ---- constructors ----------------------------------------------------------------

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        *,
        like: AbstractSchedule | None = None,
        trainable: bool = False,
        process: str | AbstractProcess = "vp",
    ) -> NoiseSchedule:
        """Load from an orbax schedule (or optimisation) checkpoint; see ``load_schedule``."""
        return cls(load_schedule(path, like), trainable=trainable, process=process)

    @classmethod
    def from_card(cls, card: dict | str | os.PathLike, *, trainable: bool = False) -> NoiseSchedule:
        """Load from a schedule card (a dict, a card file or a run directory).

        The card's process becomes the module's default process.
        """
        card = card if isinstance(card, dict) else load_card(card)
        return cls(card_schedule(card), trainable=trainable, process=card["process"])

    # ---- the schedule ----------------------------------------------------------------

    @property
    def schedule(self) -> AbstractSchedule:
        """The current schedule as an ``equinox`` module (rebuilt from the variables)."""
        leaves = [v[...] for v in self.parameters]
        return eqx.combine(jax.tree.unflatten(self._treedef, leaves), self._static)

    def __call__(self, t: ArrayLike) -> Array:
        """logSNR ``lam(t)``."""
        return self.schedule.logsnr(t)

    def logsnr(self, t: ArrayLike) -> Array:
        """logSNR ``lam(t)``, decreasing from ``lam(0)`` (clean) to ``lam(1)`` (noisy)."""
        return self.schedule.logsnr(t)

    def noise_level(self, t: ArrayLike) -> Array:
        """EDM noise level ``s(t) = exp(-lam(t) / 2)``."""
        return self.schedule.noise_level(t)

    def alpha(self, t: ArrayLike, process: str | AbstractProcess | None = None) -> Array:
        """Signal scale ``alpha(t)`` under ``process`` (default: the module's)."""
        return process_from_name(process or self.process).alpha(self.logsnr(t))

    def sigma(self, t: ArrayLike, process: str | AbstractProcess | None = None) -> Array:
        """Noise scale ``sigma(t)`` under ``process`` (default: the module's)."""
        return process_from_name(process or self.process).sigma(self.logsnr(t))

    def grid(self, num_steps: int, final: str = "zero") -> Array:
        """Noise levels of an ``num_steps``-step sampling grid (see ``schedules.grid``)."""
        return grid(self.schedule, num_steps, final)

    def grid_times(self, num_steps: int, final: str = "zero") -> Array:
        """The ``t`` of the grid's schedule points."""
        check_choice("final", final, FINALS)
        return grid_times(num_steps, final)

    def training_noise_levels(self, key: jax.Array, shape: tuple[int, ...]) -> Array:
        """Noise levels ``s(t)`` with ``t ~ U(0, 1)``: the schedule's training distribution."""
        return self.noise_level(jax.random.uniform(key, shape))
