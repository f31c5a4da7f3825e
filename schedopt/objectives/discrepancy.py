"""Sample-versus-data objectives: one class, :class:`SampleDiscrepancy`, and a distance.

``loss = distance(phi(Sampler_N(y0; schedule)), phi(data), key)`` with an optional feature
map ``phi``. A distance is any callable ``(samples, data, key) -> scalar`` that is
jit-able and differentiable in ``samples``: a researcher's new loss is a function (an
energy distance, say), not a subclass. The built-in ones are small modules over the one
implementation of each distance in :mod:`schedopt.metrics.distances` (the metrics call the
same functions, so an objective's value is the metric on its samples):

- :class:`MMDDistance`: squared MMD (unbiased), a sum of RBF kernels with fixed bandwidths;
- :class:`SlicedW2Distance`: sliced Wasserstein-2 over fresh random directions each call;
- :class:`FrechetDistance`: the Fréchet distance of Gaussians fitted to the two sets.

:func:`MMD`, :func:`SlicedWasserstein` and :func:`Frechet` build the objective with each
(MMD's bandwidths default to :data:`MMD_SCALES` times the median pairwise distance of the
data features). Any sampler works, stochastic ones included (their noise is drawn from
the call's key).

>>> import jax, jax.numpy as jnp
>>> from schedopt.models import GaussianDenoiser
>>> from schedopt.sampling import ODESampler
>>> from schedopt.schedules import EDM
>>> def energy(x, y, key):  # 2 E|x - y| - E|x - x'| - E|y - y'|, smoothed at 0
...     d = lambda a, b: jnp.mean(jnp.sqrt(jnp.sum((a[:, None] - b[None]) ** 2, -1) + 1e-12))
...     return 2 * d(x, y) - d(x, x) - d(y, y)
>>> den = GaussianDenoiser(jnp.ones(2))
>>> obj = SampleDiscrepancy(den, ODESampler(4, "euler"), den.sample(jax.random.key(1), 64),
...                         energy, batch_size=64)
>>> obj.name, float(obj(EDM(), jax.random.key(0))) > 0
('energy', True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jaxtyping import Array, ArrayLike, PRNGKeyArray

from .._checks import check_array_finite, check_positive_int, is_concrete
from ..metrics.distances import frechet_distance, median_bandwidth, mmd, sliced_wasserstein
from ..models.base import AbstractDenoiser
from ..parallel import shard_batch
from ..sampling.base import AbstractSampler
from .sample_based import AbstractSampleObjective, static_field

#: Multiples of the median pairwise distance used as RBF bandwidths by default.
MMD_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)

#: Sliced Wasserstein-2's default number of random directions (the metric's too).
NUM_PROJECTIONS = 256


# ---- distances ------------------------------------------------------------------------


class MMDDistance(eqx.Module):
    """Squared MMD (unbiased U-statistic) with ``sum_h exp(-r^2 / (2 h^2))``.

    >>> x = jnp.array([[0.0], [1.0], [2.0]])
    >>> float(MMDDistance(jnp.array([1.0]))(x, x + 10.0, None)) > 0.5
    True
    """

    bandwidths: Array
    name: ClassVar[str] = "mmd"

    def __check_init__(self):
        h = np.asarray(self.bandwidths) if is_concrete(self.bandwidths) else None
        if h is not None and (h.ndim != 1 or h.size == 0 or not np.all(h > 0)):
            raise ValueError(
                f"`bandwidths` must be positive numbers, got bandwidths={self.bandwidths!r}"
            )

    def __call__(self, samples, data, key):
        del key
        return mmd(samples, data, self.bandwidths, unbiased=True)

    def describe(self) -> dict:
        return {"distance": self.name, "bandwidths": np.asarray(self.bandwidths).tolist()}


class SlicedW2Distance(eqx.Module):
    """Sliced Wasserstein-2 over ``num_projections`` random directions drawn from ``key``.

    >>> x = jnp.arange(5.0)[:, None]
    >>> float(SlicedW2Distance(4)(x, x + 3.0, jax.random.key(0)))
    3.0
    """

    num_projections: int = eqx.field(static=True, default=NUM_PROJECTIONS)
    name: ClassVar[str] = "sliced-w2"

    def __check_init__(self):
        check_positive_int("num_projections", self.num_projections)

    def __call__(self, samples, data, key):
        return sliced_wasserstein(samples, data, key, self.num_projections)

    def describe(self) -> dict:
        return {"distance": self.name, "num_projections": self.num_projections}


class FrechetDistance(eqx.Module):
    """Fréchet distance of Gaussians fitted to the two sets (FID without Inception).

    >>> x = jax.random.normal(jax.random.key(0), (100, 2))
    >>> round(float(jax.jit(FrechetDistance())(x, x + 1.0, None)), 4)  # ||(1, 1)||^2
    2.0
    """

    name: ClassVar[str] = "frechet"

    def __call__(self, samples, data, key):
        del key
        return frechet_distance(samples, data)

    def describe(self) -> dict:
        return {"distance": self.name}


def distance_name(distance: Callable) -> str:
    """A distance's ``name`` (or its function name)."""
    return getattr(distance, "name", None) or getattr(distance, "__name__", "discrepancy")


# ---- the objective --------------------------------------------------------------------


class SampleDiscrepancy(AbstractSampleObjective):
    """``distance(phi(samples), phi(data), key)`` with samples of ``sampler`` over the schedule.

    ``data``: ``(n, *event_shape)``; ``data_batch_size=None`` compares with all of it each
    call, otherwise with a random subset of that many rows (drawn from the call's key).
    ``feature_map`` ``phi`` (default identity) maps both sets, e.g. a classifier's features.
    """

    denoiser: AbstractDenoiser
    sampler: AbstractSampler
    data: Array
    distance: Callable[[Array, Array, PRNGKeyArray], Array]
    feature_map: Callable[[Array], Array] | None
    batch_size: int = static_field()
    event_shape: tuple[int, ...] = static_field()
    init: str = static_field()
    data_batch_size: int | None = static_field()
    mesh: Mesh | None = static_field()

    def __init__(
        self,
        denoiser: AbstractDenoiser,
        sampler: AbstractSampler,
        data: ArrayLike,
        distance: Callable[[Array, Array, PRNGKeyArray], Array],
        *,
        batch_size: int = 256,
        init: str = "ve",
        data_batch_size: int | None = None,
        feature_map: Callable[[Array], Array] | None = None,
        mesh: Mesh | None = None,
    ):
        data = jnp.asarray(data, dtype=jnp.result_type(float))
        if data.ndim < 2 or data.shape[0] < 2:
            raise ValueError(f"`data` must have shape (n >= 2, *event_shape), got {data.shape}")
        if _addressable(data):  # a global multi-process array cannot be read here
            check_array_finite("data", data)
        if not callable(distance):
            raise ValueError(f"`distance` must be callable (samples, data, key), got {distance!r}")
        if feature_map is not None and not callable(feature_map):
            raise ValueError(f"`feature_map` must be callable or None, got {feature_map!r}")
        self.denoiser = denoiser
        self.sampler = sampler
        self.data = data
        self.distance = distance
        self.feature_map = feature_map
        self.event_shape = tuple(int(n) for n in data.shape[1:])
        self.batch_size = batch_size
        self.init = init
        self.mesh = mesh
        if data_batch_size is not None:
            data_batch_size = check_positive_int("data_batch_size", data_batch_size)
            if data_batch_size > data.shape[0]:
                raise ValueError(
                    f"`data_batch_size` must be <= the number of data rows ({data.shape[0]}), "
                    f"got data_batch_size={data_batch_size}"
                )
            if mesh is not None and data_batch_size % mesh.size:
                raise ValueError(
                    f"`data_batch_size` must be a multiple of the number of devices "
                    f"({mesh.size}), got data_batch_size={data_batch_size}"
                )
        self.data_batch_size = data_batch_size
        self._check_sample_settings()

    @property
    def name(self) -> str:
        return distance_name(self.distance)

    def features(self, x: Array) -> Array:
        """``phi(x)`` (``x`` itself without a feature map)."""
        return x if self.feature_map is None else self.feature_map(x)

    def data_batch(self, key: PRNGKeyArray) -> Array:
        if self.data_batch_size is None:
            return self.data
        rows = jax.random.choice(key, self.data.shape[0], (self.data_batch_size,), replace=False)
        return self.data[rows]

    def __call__(self, schedule, key):
        key_samples, key_data, key_distance = jax.random.split(key, 3)
        samples = self.samples(schedule, key_samples)
        data = shard_batch(self.data_batch(key_data), self._mesh())
        return self.distance(self.features(samples), self.features(data), key_distance)

    def describe(self) -> dict:
        from .trajectory import _describe_sampler

        distance = getattr(self.distance, "describe", None)
        return {
            "objective": self.name,
            "distance": distance() if distance else {"distance": self.name},
            "sampler": _describe_sampler(self.sampler),
            "batch_size": self.batch_size,
            "init": self.init,
            "event_shape": list(self.event_shape),
            "num_data": int(self.data.shape[0]),
            "data_batch_size": self.data_batch_size,
            "feature_map": None if self.feature_map is None else _callable_name(self.feature_map),
        }


def _callable_name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _addressable(x) -> bool:
    return bool(getattr(x, "is_fully_addressable", True))


# ---- the built-in objectives ----------------------------------------------------------


def MMD(
    denoiser: AbstractDenoiser,
    sampler: AbstractSampler,
    data: ArrayLike,
    *,
    bandwidths: ArrayLike | None = None,
    feature_map: Callable[[Array], Array] | None = None,
    **options,
) -> SampleDiscrepancy:
    """Squared MMD to ``data``; ``bandwidths`` default to :data:`MMD_SCALES` times the
    median pairwise distance of (the first 1000 rows of) the data features.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.sampling import ODESampler
    >>> den = GaussianDenoiser(jnp.ones(2))
    >>> obj = MMD(den, ODESampler(4, "euler"), den.sample(jax.random.key(1), 64), batch_size=64)
    >>> obj.distance.bandwidths.shape, obj.name
    ((5,), 'mmd')
    """
    data = jnp.asarray(data, dtype=jnp.result_type(float))
    if feature_map is not None and not callable(feature_map):
        raise ValueError(f"`feature_map` must be callable or None, got {feature_map!r}")
    if bandwidths is None:
        if not _addressable(data):
            raise ValueError(
                "`data` spans several processes: pass `bandwidths` explicitly (the median "
                "heuristic needs the data on this process)"
            )
        if data.ndim < 2 or data.shape[0] < 2:
            raise ValueError(f"`data` must have shape (n >= 2, *event_shape), got {data.shape}")
        features = data[:1000] if feature_map is None else feature_map(data[:1000])
        median = float(median_bandwidth(features, features))
        bandwidths = median * np.asarray(MMD_SCALES)
    h = jnp.atleast_1d(jnp.asarray(bandwidths, dtype=data.dtype))
    return SampleDiscrepancy(
        denoiser, sampler, data, MMDDistance(h), feature_map=feature_map, **options
    )


def SlicedWasserstein(
    denoiser: AbstractDenoiser,
    sampler: AbstractSampler,
    data: ArrayLike,
    *,
    num_projections: int = NUM_PROJECTIONS,
    **options,
) -> SampleDiscrepancy:
    """Sliced Wasserstein-2 to ``data`` over ``num_projections`` fresh directions per call.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.sampling import ODESampler
    >>> from schedopt.schedules import EDM
    >>> den = GaussianDenoiser(jnp.ones(2))
    >>> obj = SlicedWasserstein(den, ODESampler(4, "euler"), den.sample(jax.random.key(1), 64),
    ...                         batch_size=64)
    >>> float(obj(EDM(), jax.random.key(0))) > 0
    True
    """
    return SampleDiscrepancy(denoiser, sampler, data, SlicedW2Distance(num_projections), **options)


def Frechet(
    denoiser: AbstractDenoiser, sampler: AbstractSampler, data: ArrayLike, **options
) -> SampleDiscrepancy:
    """Fréchet distance to ``data`` of ``feature_map`` features (identity if ``None``): FID
    without Inception. Needs more samples than feature dimensions.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.sampling import ODESampler
    >>> from schedopt.schedules import EDM
    >>> den = GaussianDenoiser(jnp.ones(2))
    >>> obj = Frechet(den, ODESampler(4, "euler"), den.sample(jax.random.key(1), 64),
    ...               batch_size=64)
    >>> float(obj(EDM(), jax.random.key(0))) > 0
    True
    """
    objective = SampleDiscrepancy(denoiser, sampler, data, FrechetDistance(), **options)
    probe = jax.ShapeDtypeStruct((2, *objective.event_shape), objective.data.dtype)
    dim = int(np.prod(jax.eval_shape(objective.features, probe).shape[1:]))
    if objective.batch_size <= dim:
        raise ValueError(
            f"`batch_size` must exceed the feature dimension ({dim}) to fit a covariance, "
            f"got batch_size={objective.batch_size}"
        )
    return objective


#: Sample-versus-data objectives by name.
DISCREPANCIES: dict[str, Callable[..., SampleDiscrepancy]] = {
    "mmd": MMD,
    "sliced-w2": SlicedWasserstein,
    "frechet": Frechet,
}


def discrepancy_objective(
    name: str, denoiser: AbstractDenoiser, sampler: AbstractSampler, data: ArrayLike, **options
) -> SampleDiscrepancy:
    """``"mmd" | "sliced-w2" | "frechet"`` to an objective.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.sampling import ODESampler
    >>> discrepancy_objective("frechet", GaussianDenoiser(jnp.ones(1)), ODESampler(2),
    ...                       jnp.linspace(-1, 1, 8)[:, None], batch_size=4).name
    'frechet'
    """
    if name not in DISCREPANCIES:
        raise ValueError(
            f"`discrepancy` must be one of {', '.join(DISCREPANCIES)}; got discrepancy={name!r}"
        )
    return DISCREPANCIES[name](denoiser, sampler, data, **options)
