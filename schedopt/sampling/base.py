"""What every sampler shares: the ``AbstractSampler`` interface, noise draws, initial states.

A sampler maps ``(denoiser, schedule, y0, key)`` to a sample in EDM variables
(``y = x / alpha``, the clean-data scale). Its grid is the schedule's
``num_steps``-step grid (``grid_times``): with ``final="zero"`` the ``N`` schedule points
``t_k = 1 - k / (N - 1)`` are followed by a last step to noise level 0, which returns
the denoiser's output; with ``final="min"`` there are ``N + 1`` points ending at
``sigma_min``.
"""

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, ArrayLike, PRNGKeyArray

from .._checks import check_choice
from ..models.base import AbstractDenoiser
from ..schedules.base import AbstractSchedule
from ..schedules.decoupled import DecoupledTimes, is_decoupled
from ..schedules.processes import VP

NOISES = ("gaussian", "rademacher", "uniform")
INITS = ("exact", "ve", "vp")


def draw_noise(key: PRNGKeyArray, shape: tuple[int, ...], noise: str = "gaussian", dtype=None):
    """I.i.d. coordinates with mean 0 and variance 1 (Choi & Fan's increments ``xi``).

    ``"gaussian"``: ``N(0, 1)``; ``"rademacher"``: ``±1`` with probability 1/2 each;
    ``"uniform"``: uniform on ``[-sqrt(3), sqrt(3)]``.

    >>> x = draw_noise(jax.random.key(0), (100_000,), "uniform")
    >>> round(float(x.var()), 2), float(x.max()) <= 3 ** 0.5
    (1.0, True)
    """
    check_choice("noise", noise, NOISES)
    dtype = jnp.result_type(float) if dtype is None else dtype
    if noise == "gaussian":
        return jax.random.normal(key, shape, dtype)
    if noise == "rademacher":
        return jax.random.rademacher(key, shape, dtype)
    root3 = math.sqrt(3.0)
    return jax.random.uniform(key, shape, dtype, minval=-root3, maxval=root3)


def initial_state(
    key: PRNGKeyArray,
    schedule: AbstractSchedule,
    shape: tuple[int, ...],
    init: str = "ve",
    *,
    x0: ArrayLike | None = None,
) -> Array:
    """The starting state ``y_0`` at the grid's first noise level ``s_0 = s(1)``.

    ``"ve"``: ``N(0, s_0^2)``; ``"vp"``: ``x_T ~ N(0, I)``, ``y_0 = x_T / alpha_0``
    (variance ``1 + s_0^2``); ``"exact"``: the true marginal, ``x0 + s_0 eps`` with clean
    samples ``x0`` of shape ``shape``.

    >>> from schedopt.schedules import EDM
    >>> y0 = initial_state(jax.random.key(0), EDM(), (4, 2), "ve")
    >>> y0.shape
    (4, 2)
    """
    check_choice("init", init, INITS)
    s0 = schedule.noise_level(1.0)
    eps = jax.random.normal(key, shape, jnp.result_type(float))
    if init == "ve":
        return s0 * eps
    if init == "vp":
        return eps / VP().alpha(-2.0 * jnp.log(s0))
    if x0 is None:
        raise ValueError("init='exact' needs clean samples: pass x0 with the batch's shape")
    x0 = jnp.asarray(x0)
    if x0.shape != tuple(shape):
        raise ValueError(f"`x0` must have shape {tuple(shape)}, got x0.shape={x0.shape}")
    return x0 + s0 * eps


class AbstractSampler(eqx.Module):
    """A sampler over a schedule's ``num_steps``-step grid.

    Subclasses set ``name`` and ``stochastic`` and implement ``__call__`` and ``nfe``.
    """

    num_steps: AbstractVar[int]
    final: AbstractVar[str]

    name: ClassVar[str] = "sampler"
    stochastic: ClassVar[bool] = False

    @property
    @abc.abstractmethod
    def nfe(self) -> int:
        """Denoiser evaluations per sample."""

    @abc.abstractmethod
    def __call__(
        self,
        denoiser: AbstractDenoiser,
        schedule: AbstractSchedule,
        y0: ArrayLike,
        key: PRNGKeyArray | None = None,
    ) -> Array:
        """Run from ``y0`` (shape ``(batch, *event)``, at noise level ``s(1)``) to the end
        of the grid; ``key`` drives the noise of stochastic samplers."""

    def sample(
        self,
        denoiser: AbstractDenoiser,
        schedule: AbstractSchedule,
        key: PRNGKeyArray,
        shape: tuple[int, ...],
        init: str = "ve",
        *,
        x0: ArrayLike | None = None,
    ) -> Array:
        """Draw ``y_0`` with :func:`initial_state` and run the sampler.

        >>> from schedopt.sampling import ODESampler
        >>> from schedopt.models import GaussianDenoiser
        >>> from schedopt.schedules import EDM
        >>> x = ODESampler(8, "heun").sample(GaussianDenoiser(jnp.ones(2)), EDM(),
        ...                                   jax.random.key(0), (16, 2))
        >>> x.shape
        (16, 2)
        """
        key_init, key_run = jax.random.split(key)
        y0 = initial_state(key_init, schedule, shape, init, x0=x0)
        return self(denoiser, schedule, y0, key_run)


def _check_state(y0: ArrayLike) -> Array:
    y0 = jnp.asarray(y0)
    if y0.ndim < 1 or not jnp.issubdtype(y0.dtype, jnp.floating):
        raise ValueError(
            f"`y0` must be a float array of shape (batch, *event), got shape {y0.shape} "
            f"and dtype {y0.dtype}"
        )
    return y0


def _require_key(sampler: AbstractSampler, key) -> PRNGKeyArray:
    if key is None:
        raise ValueError(f"the {sampler.name!r} sampler is stochastic: pass `key`")
    return key


class _TimeInputDenoiser(AbstractDenoiser):
    """``D(y, s exp(delta(log s)))``: ``denoiser`` told a :class:`DecoupledTimes`' levels."""

    denoiser: AbstractDenoiser
    schedule: DecoupledTimes

    def __call__(self, y, noise_level):
        return self.denoiser(y, self.schedule.denoiser_level(noise_level))


def time_inputs(denoiser: AbstractDenoiser, schedule: AbstractSchedule) -> AbstractDenoiser:
    """The denoiser a sampler calls on ``schedule``'s grid: ``denoiser`` itself, or for a
    :class:`~schedopt.schedules.DecoupledTimes` the one told its decoupled levels. Every
    sampler's ``__call__`` applies it.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.schedules import EDM, DecoupledTimes
    >>> d = GaussianDenoiser(jnp.ones(2))
    >>> time_inputs(d, EDM()) is d
    True
    >>> shifted = DecoupledTimes(EDM(), jnp.array([0.5, 0.5]), (0.002, 80.0))
    >>> round(float(time_inputs(d, shifted)(jnp.ones((1, 2)), 1.0)[0, 0]), 4)  # 1 / (1 + e)
    0.2689
    """
    return _TimeInputDenoiser(denoiser, schedule) if is_decoupled(schedule) else denoiser
