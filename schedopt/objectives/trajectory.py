"""Trajectory matching (teacher/student, as in LD3): the ``N``-step output against a
high-accuracy teacher solve from the same initial noise, on teacher pairs computed once.

``loss = mean_i dist(phi(Student_N(y_0(eps_i); schedule)), phi(Teacher(eps_i)))`` over a
batch of the fitting pairs of :func:`~schedopt.objectives.teacher.teacher_pairs`: the
student starts from the same unit noise ``eps_i`` at its own first level (``s(1)``, which a
:class:`~schedopt.schedules.RangedSchedule` learns), the teacher's output was computed once
on the model's full range. ``dist`` is ``"mse"``, ``"l2"``, ``"l1"`` or a function of two
``(batch, ...)`` arrays giving one distance per sample; ``phi`` an optional feature map (for
digits the packaged classifier's features play LPIPS's role).

LD3's soft variant (``slack = r > 0``): the student may match the teacher's output from a
nearby noise, ``min_{|delta_i| <= r |eps_i|} dist(Student(eps_i + delta_i), Teacher(eps_i))``.
LD3 keeps a ``delta_i`` per pair across iterations (one projected gradient step each, kept
when it helps); here every call takes one normalised gradient step from ``delta = 0`` to
the ball's surface, ``delta_i = -r |eps_i| g_i / |g_i|``, and evaluates there with
``delta`` held fixed (the envelope theorem makes that the gradient of the minimum, to first
order). It forgives the part of the mismatch that a small change of the noise explains,
which LD3 found keeps a few-step student from chasing exactly what it cannot reach; it
costs one more backward pass through the student per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jaxtyping import Array

from .._checks import check_choice, check_positive_int
from ..models.base import AbstractDenoiser
from ..parallel import batch_mesh, check_batch_size, shard_batch
from ..sampling.base import AbstractSampler
from ..sampling.ode import solver_name
from ..schedules.base import AbstractSchedule
from .base import AbstractObjective
from .sample_based import static_field
from .teacher import TeacherPairs, initial_from_noise, teacher_pairs

DISTANCES = ("mse", "l2", "l1")


def per_sample_distance(output: Array, reference: Array, distance: str = "mse") -> Array:
    """One distance per sample: ``"mse"`` (mean squared error per coordinate), ``"l2"``
    (Euclidean norm, with a finite gradient at 0) or ``"l1"`` (mean absolute error).

    >>> per_sample_distance(jnp.zeros((2, 4)), jnp.ones((2, 4)), "l2").tolist()
    [2.0, 2.0]
    """
    check_choice("distance", distance, DISTANCES)
    if output.shape != reference.shape:
        raise ValueError(
            f"`output` and `reference` must have the same shape, got {output.shape} and "
            f"{reference.shape}"
        )
    diff = (output - reference).reshape(output.shape[0], -1)
    if distance == "mse":
        return jnp.mean(diff**2, axis=1)
    if distance == "l1":
        return jnp.mean(jnp.abs(diff), axis=1)
    squared = jnp.sum(diff**2, axis=1)
    safe = jnp.where(squared > 0, squared, 1.0)  # finite gradient at zero distance
    return jnp.where(squared > 0, jnp.sqrt(safe), 0.0)


def trajectory_distance(output: Array, reference: Array, distance: str = "mse") -> Array:
    """The batch mean of :func:`per_sample_distance`.

    >>> float(trajectory_distance(jnp.zeros((2, 4)), jnp.ones((2, 4)), "l2"))
    2.0
    """
    return jnp.mean(per_sample_distance(output, reference, distance))


class TrajectoryMatching(AbstractObjective):
    """Distance of a deterministic ``sampler``'s outputs to a teacher's, on fixed pairs.

    ``pairs`` default to :func:`teacher_pairs` with ``num_pairs``, ``seed``, ``init`` and
    the teacher settings (``reference_steps`` steps of ``reference_solver`` on
    ``reference_schedule``, default EDM rho = 7 on [0.002, 80]), cached in memory and in
    ``cache_dir``. Each call uses ``batch_size`` fitting pairs drawn from its key (all of
    them when ``None``); :meth:`validation_loss` uses the held-out ones.

    >>> import jax, jax.numpy as jnp
    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.sampling import ODESampler
    >>> from schedopt.schedules import EDM
    >>> obj = TrajectoryMatching(GaussianDenoiser(jnp.ones(2)), ODESampler(4, "euler"),
    ...                          num_pairs=32, reference_steps=16)
    >>> float(obj(EDM(), jax.random.key(0))) > 0, obj.pairs.num_pairs
    (True, 24)
    """

    name: ClassVar[str] = "trajectory"

    denoiser: AbstractDenoiser
    sampler: AbstractSampler
    pairs: TeacherPairs
    distance: str | Callable[[Array, Array], Array]
    feature_map: Callable[[Array], Array] | None
    slack: float = static_field()
    batch_size: int | None = static_field()
    mesh: Mesh | None = static_field()

    def __init__(
        self,
        denoiser: AbstractDenoiser,
        sampler: AbstractSampler,
        pairs: TeacherPairs | None = None,
        *,
        batch_size: int | None = None,
        distance: str | Callable[[Array, Array], Array] = "mse",
        feature_map: Callable[[Array], Array] | None = None,
        slack: float = 0.0,
        mesh: Mesh | None = None,
        event_shape: tuple[int, ...] | None = None,
        num_pairs: int = 256,
        seed: int = 0,
        init: str = "ve",
        validation_fraction: float = 0.25,
        reference_steps: int = 64,
        reference_solver: str = "heun",
        reference_schedule: AbstractSchedule | None = None,
        cache_dir=None,
    ):
        if not isinstance(sampler, AbstractSampler):
            raise ValueError(f"`sampler` must be an AbstractSampler, got sampler={sampler!r}")
        if sampler.stochastic:
            raise ValueError(
                f"trajectory matching needs a deterministic sampler, got the stochastic "
                f"{sampler.name!r} sampler; use an ODESampler or a distribution discrepancy"
            )
        if isinstance(distance, str):
            check_choice("distance", distance, DISTANCES)
        elif not callable(distance):
            raise ValueError(f"`distance` must be one of {DISTANCES} or callable, got {distance!r}")
        if feature_map is not None and not callable(feature_map):
            raise ValueError(f"`feature_map` must be callable or None, got {feature_map!r}")
        if not 0.0 <= float(slack) < 1.0:
            raise ValueError(f"`slack` must be in [0, 1) (a relative radius), got slack={slack!r}")
        if pairs is None:
            pairs = teacher_pairs(
                denoiser,
                _event_shape(denoiser, event_shape),
                num_pairs,
                seed=seed,
                init=init,
                validation_fraction=validation_fraction,
                teacher_steps=reference_steps,
                teacher_solver=reference_solver,
                teacher_schedule=reference_schedule,
                cache_dir=cache_dir,
            )
        if not isinstance(pairs, TeacherPairs):
            raise ValueError(f"`pairs` must be TeacherPairs, got {type(pairs).__name__}")
        if batch_size is not None:
            batch_size = check_positive_int("batch_size", batch_size)
            if batch_size > pairs.num_pairs:
                raise ValueError(
                    f"`batch_size` must be <= the number of fitting pairs ({pairs.num_pairs}), "
                    f"got batch_size={batch_size}"
                )
        check_batch_size("batch_size", batch_size or pairs.num_pairs, mesh)
        self.denoiser = denoiser
        self.sampler = sampler
        self.pairs = pairs
        self.distance = distance
        self.feature_map = feature_map
        self.slack = float(slack)
        self.batch_size = batch_size
        self.mesh = mesh

    @property
    def event_shape(self) -> tuple[int, ...]:
        return self.pairs.event_shape

    def _per_sample(self, output: Array, target: Array) -> Array:
        if self.feature_map is not None:
            output, target = self.feature_map(output), self.feature_map(target)
        if isinstance(self.distance, str):
            return per_sample_distance(output, target, self.distance)
        return self.distance(output, target)

    def _student(self, schedule: AbstractSchedule, noise: Array) -> Array:
        y0 = initial_from_noise(noise, schedule.noise_level(1.0), self.pairs.init)
        return self.sampler(self.denoiser, schedule, y0)

    def _loss(self, schedule, noise, target):
        if self.slack > 0:

            def total(eps):
                return jnp.sum(self._per_sample(self._student(schedule, eps), target))

            grad = jax.grad(total)(jax.lax.stop_gradient(noise))
            axes = tuple(range(1, noise.ndim))
            norm = lambda x: jnp.sqrt(jnp.sum(x**2, axis=axes, keepdims=True))  # noqa: E731
            safe = jnp.maximum(norm(grad), jnp.finfo(noise.dtype).tiny)
            delta = -self.slack * norm(noise) * grad / safe
            noise = noise + jax.lax.stop_gradient(delta)
        return jnp.mean(self._per_sample(self._student(schedule, noise), target))

    def batch(self, key) -> tuple[Array, Array]:
        """One step's (noise, teacher output) pairs, drawn without replacement when
        ``batch_size`` is set, sharded over the batch mesh."""
        noise, target = self.pairs.noise, self.pairs.targets
        if self.batch_size is not None:
            rows = jax.random.choice(key, noise.shape[0], (self.batch_size,), replace=False)
            noise, target = noise[rows], target[rows]
        mesh = batch_mesh() if self.mesh is None else self.mesh
        return shard_batch(noise, mesh), shard_batch(target, mesh)

    def __call__(self, schedule: AbstractSchedule, key) -> Array:
        return self._loss(schedule, *self.batch(key))

    @property
    def host_loop(self) -> bool:
        """True: a step runs the student sampler through the denoiser (see
        :attr:`AbstractObjective.host_loop`)."""
        return True

    @property
    def runs_sampler(self) -> bool:
        return True

    def validation_loss(self, schedule: AbstractSchedule) -> Array:
        """The loss on the held-out pairs (no slack, all of them).

        >>> import jax.numpy as jnp
        >>> from schedopt.models import GaussianDenoiser
        >>> from schedopt.sampling import ODESampler
        >>> from schedopt.schedules import EDM
        >>> obj = TrajectoryMatching(GaussianDenoiser(jnp.ones(2)), ODESampler(4, "euler"),
        ...                          num_pairs=32, reference_steps=16)
        >>> float(obj.validation_loss(EDM())) > 0
        True
        """
        noise, target = self.pairs.validation_noise, self.pairs.validation_targets
        if noise.shape[0] == 0:
            raise ValueError("these pairs hold none out: set `validation_fraction` > 0")
        output = self._student(schedule, noise)
        return jnp.mean(self._per_sample(output, target))

    def describe(self) -> dict:
        return {
            "objective": self.name,
            "sampler": _describe_sampler(self.sampler),
            "pairs": self.pairs.describe(),
            "batch_size": self.batch_size,
            "distance": self.distance if isinstance(self.distance, str) else _name(self.distance),
            "feature_map": None if self.feature_map is None else _name(self.feature_map),
            "slack": self.slack,
            "event_shape": list(self.event_shape),
        }


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


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
