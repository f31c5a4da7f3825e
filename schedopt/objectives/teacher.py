"""Teacher pairs for trajectory matching: fixed initial noises and a teacher's outputs,
computed once per fit and cached (as LD3 does with its 100 pairs).

:func:`teacher_pairs` draws ``num_pairs`` unit-variance noises ``eps``, starts the teacher
at its schedule's largest level ``s_T`` (``"ve"``: ``y_0 = s_T eps``; ``"vp"``:
``y_0 = sqrt(1 + s_T^2) eps``), solves the probability-flow ODE with ``teacher_steps`` steps
of ``teacher_solver`` on ``teacher_schedule`` (default: 64 Heun steps of EDM rho = 7 on the
model's full range, 127 evaluations) and keeps the outputs. A student then starts from the
*same* ``eps`` at its own first level, which may be learned. A share of the pairs is held
out for validation. The pairs are cached in memory and, with ``cache_dir``, on disk as
``.npz`` keyed by a fingerprint of the model's arrays, the teacher's settings and the seed,
so a second fit on the same model reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._checks import check_choice, check_positive_int
from ..models.base import AbstractDenoiser
from ..sampling.base import AbstractSampler
from ..sampling.ode import ODESampler
from ..schedules.base import AbstractSchedule
from ..schedules.fixed import EDM

INITS = ("ve", "vp")


class TeacherPairs(eqx.Module):
    """Initial noises and teacher outputs, split into fitting and validation rows."""

    noise: Array
    targets: Array
    validation_noise: Array
    validation_targets: Array
    init: str = eqx.field(static=True)
    description: tuple = eqx.field(static=True)
    """The settings that made the pairs, as sorted ``(key, value)`` items (JSON-able)."""

    @property
    def num_pairs(self) -> int:
        return int(self.noise.shape[0])

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.noise.shape[1:])

    def describe(self) -> dict:
        return dict(self.description)


def initial_from_noise(noise: Array, noise_level, init: str) -> Array:
    """The sampler's first state from unit noise at level ``s``: ``s eps`` (VE) or
    ``sqrt(1 + s^2) eps`` (VP, ``x_T = eps``).

    >>> round(float(initial_from_noise(jnp.ones(()), 2.0, "vp")) ** 2, 5)
    5.0
    """
    check_choice("init", init, INITS)
    s = jnp.asarray(noise_level, noise.dtype)
    return s * noise if init == "ve" else jnp.sqrt(1.0 + s**2) * noise


def model_fingerprint(denoiser: AbstractDenoiser) -> str:
    """A SHA-256 of a denoiser's arrays and structure (equal for equal models).

    >>> from schedopt.models import GaussianDenoiser
    >>> model_fingerprint(GaussianDenoiser(jnp.ones(2))) == model_fingerprint(
    ...     GaussianDenoiser(jnp.ones(2)))
    True
    """
    arrays, static = eqx.partition(denoiser, eqx.is_array)
    digest = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(arrays):
        leaf = np.asarray(leaf)
        digest.update(f"{leaf.dtype}{leaf.shape}".encode())
        digest.update(np.ascontiguousarray(leaf).tobytes())
    digest.update(repr(jax.tree_util.tree_structure(arrays)).encode())
    digest.update(type(denoiser).__qualname__.encode())
    del static
    return digest.hexdigest()


_MEMORY: dict[str, TeacherPairs] = {}


def default_cache_dir() -> Path:
    """``$SCHEDOPT_CACHE_DIR``, else ``$XDG_CACHE_HOME/schedopt``, else ``~/.cache/schedopt``."""
    if os.environ.get("SCHEDOPT_CACHE_DIR"):
        return Path(os.environ["SCHEDOPT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "schedopt"


def teacher_pairs(
    denoiser: AbstractDenoiser,
    event_shape: tuple[int, ...],
    num_pairs: int = 256,
    *,
    seed: int = 0,
    validation_fraction: float = 0.25,
    init: str = "ve",
    teacher_steps: int = 64,
    teacher_solver: str = "heun",
    teacher_schedule: AbstractSchedule | None = None,
    chunk_size: int = 256,
    cache_dir: str | os.PathLike | None = None,
) -> TeacherPairs:
    """``num_pairs`` (noise, teacher output) pairs, ``validation_fraction`` of them held out.

    Computed once per settings: a second call with the same model, teacher, seed and sizes
    returns the cached pairs (memory; ``cache_dir``: also disk, written atomically).

    >>> from schedopt.models import GaussianDenoiser
    >>> pairs = teacher_pairs(GaussianDenoiser(jnp.ones(2)), (2,), 16, teacher_steps=8)
    >>> pairs.noise.shape, pairs.validation_noise.shape
    ((12, 2), (4, 2))
    """
    num_pairs = check_positive_int("num_pairs", num_pairs)
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"`validation_fraction` must be in [0, 1), got {validation_fraction!r}")
    num_validation = int(round(validation_fraction * num_pairs))
    if num_pairs - num_validation < 1:
        raise ValueError(f"`num_pairs` leaves no pair to fit, got num_pairs={num_pairs}")
    check_choice("init", init, INITS)
    teacher = ODESampler(check_positive_int("teacher_steps", teacher_steps), teacher_solver)
    schedule = EDM() if teacher_schedule is None else teacher_schedule
    shape = tuple(int(n) for n in event_shape)
    dtype = jnp.result_type(float)
    from ..schedules.registry import schedule_to_config

    description = {
        "num_pairs": num_pairs,
        "num_validation": num_validation,
        "seed": int(seed),
        "init": init,
        "event_shape": list(shape),
        "dtype": str(np.dtype(dtype)),
        "teacher_steps": teacher.num_steps,
        "teacher_solver": teacher_solver,
        "teacher_nfe": teacher.nfe,
        "teacher_schedule": schedule_to_config(schedule),
        "model": model_fingerprint(denoiser),
    }
    key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]
    description["fingerprint"] = key
    if key in _MEMORY:
        return _MEMORY[key]
    path = None if cache_dir is None else Path(cache_dir) / f"teacher-pairs-{key}.npz"
    if path is not None and path.is_file():
        with np.load(path) as stored:
            noise, targets = stored["noise"], stored["targets"]
    else:
        noise = np.asarray(jax.random.normal(jax.random.key(seed), (num_pairs, *shape), dtype))
        targets = np.concatenate(
            [
                np.asarray(_solve(teacher, denoiser, schedule, jnp.asarray(chunk), init))
                for chunk in np.array_split(noise, max(1, -(-num_pairs // chunk_size)))
            ]
        )
        if not np.all(np.isfinite(targets)):
            raise ValueError(
                "the teacher's outputs are not finite: check the denoiser and the teacher "
                f"settings ({teacher_solver}, {teacher.num_steps} steps)"
            )
        if path is not None:
            import io

            from ..io.atomic import atomic_write_bytes

            buffer = io.BytesIO()
            np.savez(buffer, noise=noise, targets=targets)
            atomic_write_bytes(path, buffer.getvalue())
    fit = num_pairs - num_validation
    pairs = TeacherPairs(
        jnp.asarray(noise[:fit]),
        jnp.asarray(targets[:fit]),
        jnp.asarray(noise[fit:]),
        jnp.asarray(targets[fit:]),
        init,
        tuple(sorted(description.items(), key=lambda item: item[0])),
    )
    _MEMORY[key] = pairs
    return pairs


@eqx.filter_jit
def _solve(teacher: AbstractSampler, denoiser, schedule, noise, init):
    y0 = initial_from_noise(noise, schedule.noise_level(1.0), init)
    return teacher(denoiser, schedule, y0)
