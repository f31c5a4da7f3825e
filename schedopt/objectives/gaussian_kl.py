"""The closed-form KL between Gaussian data and the sampler output, as an objective (Sun,
Poor & Zhang: Gaussian KL, Euler–Maclaurin, tangent law; arXiv 2601.13602)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx

from .._checks import check_choice, check_positive_int
from ..gaussian.moments import DIRECTIONS, INITS, gaussian_kl
from ..gaussian.registry import solver_from_name
from ..gaussian.solvers import AbstractGaussianSolver, Euler, step_grid
from ..gaussian.spectrum import Spectrum
from ..schedules.base import FINALS
from .base import AbstractObjective


class GaussianKL(AbstractObjective):
    """``sum_i w_i KL_i`` of ``solver`` with ``num_steps`` steps on the schedule's grid.

    Deterministic (ignores ``key``); exact for Gaussian data with the exact denoiser.

    >>> import jax
    >>> from schedopt.schedules import EDM
    >>> objective = GaussianKL(Spectrum([0.5, 1.0, 2.0]), num_steps=10)
    >>> float(objective(EDM(), jax.random.key(0))) > 0
    True
    """

    name: ClassVar[str] = "gaussian-kl"
    spectrum: Spectrum
    num_steps: int = eqx.field(static=True, default=10)
    solver: AbstractGaussianSolver = eqx.field(default=Euler(), converter=solver_from_name)
    init: str = eqx.field(static=True, default="exact")
    direction: str = eqx.field(static=True, default="forward")
    final: str = eqx.field(static=True, default="zero")

    def __check_init__(self):
        check_positive_int("num_steps", self.num_steps)
        check_choice("init", self.init, INITS)
        check_choice("direction", self.direction, DIRECTIONS)
        check_choice("final", self.final, FINALS)

    def __call__(self, schedule, key=None):
        grid = step_grid(schedule, self.num_steps, self.final, derivative=self.solver.steps_in_time)
        return gaussian_kl(self.spectrum, grid, self.solver, self.init, self.direction)

    def describe(self) -> dict:
        return {
            "objective": self.name,
            "num_steps": self.num_steps,
            "solver": self.solver.name,
            "init": self.init,
            "direction": self.direction,
            "final": self.final,
            "spectrum_dim": self.spectrum.dim,
            "spectrum_fingerprint": self.spectrum.fingerprint(),
        }
