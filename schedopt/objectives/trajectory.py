"""Trajectory matching (teacher/student, as in LD3): the ``N``-step output against a
many-step reference solve of the same probability-flow ODE from the same initial noise.

``loss = E_{y0} dist(Student_N(y0; schedule), Teacher_M(y0))``. The teacher is
``reference_steps`` steps of ``reference_solver`` on ``reference_schedule`` (default: the
schedule being fitted, with its output's gradient stopped; with many steps it is the
exact flow, which depends only on the endpoints, not on the grid).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jaxtyping import Array

from .._checks import check_choice, check_positive_int
from ..models.base import AbstractDenoiser
from ..sampling.base import AbstractSampler
from ..sampling.ode import ODESampler, ode_solver, solver_name
from ..schedules.base import AbstractSchedule
from .sample_based import AbstractSampleObjective, static_field

DISTANCES = ("mse", "l2", "l1")


def trajectory_distance(output: Array, reference: Array, distance: str = "mse") -> Array:
    """Mean over the batch of a per-sample distance: ``"mse"`` (mean squared error per
    coordinate), ``"l2"`` (Euclidean norm) or ``"l1"`` (mean absolute error).

    >>> import jax.numpy as jnp
    >>> float(trajectory_distance(jnp.zeros((2, 4)), jnp.ones((2, 4)), "l2"))
    2.0
    """
    check_choice("distance", distance, DISTANCES)
    if output.shape != reference.shape:
        raise ValueError(
            f"`output` and `reference` must have the same shape, got {output.shape} and "
            f"{reference.shape}"
        )
    diff = (output - reference).reshape(output.shape[0], -1)
    if distance == "mse":
        return jnp.mean(diff**2)
    if distance == "l1":
        return jnp.mean(jnp.abs(diff))
    squared = jnp.sum(diff**2, axis=1)
    safe = jnp.where(squared > 0, squared, 1.0)  # finite gradient at zero distance
    return jnp.mean(jnp.where(squared > 0, jnp.sqrt(safe), 0.0))


class TrajectoryMatching(AbstractSampleObjective):
    """Distance between a deterministic ``sampler``'s output and a many-step teacher's.

    >>> import jax, jax.numpy as jnp
    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.sampling import ODESampler
    >>> from schedopt.schedules import EDM
    >>> obj = TrajectoryMatching(GaussianDenoiser(jnp.ones(2)), ODESampler(4, "euler"),
    ...                          batch_size=8, reference_steps=64)
    >>> float(obj(EDM(), jax.random.key(0))) > 0
    True
    """

    name: ClassVar[str] = "trajectory"

    denoiser: AbstractDenoiser
    sampler: AbstractSampler
    reference_schedule: AbstractSchedule | None
    batch_size: int = static_field()
    event_shape: tuple[int, ...] = static_field()
    init: str = static_field()
    reference_steps: int = static_field()
    reference_solver: str = static_field()
    distance: str = static_field()
    mesh: Mesh | None = static_field()

    def __init__(
        self,
        denoiser: AbstractDenoiser,
        sampler: AbstractSampler,
        *,
        batch_size: int = 256,
        event_shape: tuple[int, ...] | None = None,
        init: str = "ve",
        reference_steps: int = 256,
        reference_solver: str = "heun",
        reference_schedule: AbstractSchedule | None = None,
        distance: str = "mse",
        mesh: Mesh | None = None,
    ):
        self.denoiser = denoiser
        self.sampler = sampler
        self.batch_size = batch_size
        self.event_shape = _event_shape(denoiser, event_shape)
        self.init = init
        self.reference_steps = check_positive_int("reference_steps", reference_steps)
        ode_solver(reference_solver)  # validates the name
        self.reference_solver = reference_solver
        self.reference_schedule = reference_schedule
        self.distance = check_choice("distance", distance, DISTANCES)
        self.mesh = mesh
        self._check_sample_settings()
        if sampler.stochastic:
            raise ValueError(
                f"trajectory matching needs a deterministic sampler, got the stochastic "
                f"{sampler.name!r} sampler; use an ODESampler or a distribution discrepancy"
            )

    def teacher(self) -> ODESampler:
        """The reference sampler (same grid end as the student)."""
        return ODESampler(self.reference_steps, self.reference_solver, final=self.sampler.final)

    def __call__(self, schedule: AbstractSchedule, key) -> Array:
        y0 = self.initial_states(schedule, key)
        reference_schedule = (
            schedule if self.reference_schedule is None else self.reference_schedule
        )
        reference = jax.lax.stop_gradient(self.teacher()(self.denoiser, reference_schedule, y0))
        output = self.sampler(self.denoiser, schedule, y0)
        return trajectory_distance(output, reference, self.distance)

    def describe(self) -> dict:
        return dict(
            super().describe(),
            sampler=_describe_sampler(self.sampler),
            event_shape=list(self.event_shape),
        )


def _event_shape(denoiser, event_shape) -> tuple[int, ...]:
    if event_shape is None:
        if not hasattr(denoiser, "dim"):
            raise ValueError("pass `event_shape`: the denoiser does not say its dimension")
        return (int(denoiser.dim),)
    shape = tuple(int(n) for n in event_shape)
    if not shape or any(n < 1 for n in shape):
        raise ValueError(
            f"`event_shape` must be a non-empty tuple of sizes >= 1, got {event_shape!r}"
        )
    return shape


def _describe_sampler(sampler: AbstractSampler) -> dict:
    out = {"name": sampler.name, "num_steps": sampler.num_steps, "nfe": sampler.nfe}
    out["final"] = sampler.final
    if hasattr(sampler, "solver"):
        out["solver"] = solver_name(sampler.solver)
    for field in ("noise", "process", "eta", "kappa"):
        if hasattr(sampler, field):
            value = getattr(sampler, field)
            out[field] = getattr(value, "name", value)
            if hasattr(out[field], "item"):
                out[field] = float(out[field])
    return out
