"""Distribution discrepancies between a sampler's output and data, as objectives.

``loss = Disc(phi(Sampler_N(y0; schedule)), phi(data))`` with an optional feature map
``phi``: MMD with a multi-scale RBF kernel (:class:`MMD`), sliced Wasserstein-2
(:class:`SlicedWasserstein`) and the Fréchet distance of Gaussians fitted to the
features (:class:`Frechet`). The distances are pure, jit-able and
differentiable ``jnp`` functions of two sample sets ``(n, *event)``, defined here; the
classes add sampling, sharding and data batching. Any sampler works, stochastic ones
included (their noise is drawn from the call's key).
"""

import abc
from collections.abc import Callable
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractVar
from jax.sharding import Mesh
from jaxtyping import Array, ArrayLike, PRNGKeyArray

from .._checks import check_array_finite, check_positive_int, is_concrete
from ..models.base import AbstractDenoiser
from ..parallel import shard_batch
from ..sampling.base import AbstractSampler
from .sample_based import AbstractSampleObjective, static_field
from .trajectory import _describe_sampler

#: Multiples of the median pairwise distance used as RBF bandwidths by default.
MMD_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)

# ---- distances between two sample sets ------------------------------------------------


def _flat(name: str, x: ArrayLike, min_samples: int = 1) -> Array:
    x = jnp.asarray(x)
    if x.ndim < 2 or x.shape[0] < min_samples:
        raise ValueError(
            f"`{name}` must have shape (n >= {min_samples}, *event), got {name}.shape={x.shape}"
        )
    return x.reshape(x.shape[0], -1).astype(jnp.result_type(x.dtype, float))


def _pair(x: ArrayLike, y: ArrayLike, min_samples: int = 1) -> tuple[Array, Array]:
    x, y = _flat("x", x, min_samples), _flat("y", y, min_samples)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"`x` and `y` must have the same event size, got {x.shape} and {y.shape}")
    return x, y


def squared_distances(a: Array, b: Array) -> Array:
    """``||a_i - b_j||^2`` for rows of ``a (n, d)`` and ``b (m, d)``, clipped at 0."""
    d2 = jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2.0 * a @ b.T
    return jnp.maximum(d2, 0.0)


def median_distance(x: ArrayLike, y: ArrayLike, max_samples: int = 1000) -> Array:
    """Median pairwise distance of the pooled first ``max_samples`` rows of ``x`` and ``y``.

    >>> float(median_distance(jnp.array([[0.0], [1.0]]), jnp.array([[3.0]])))
    2.0
    """
    x, y = _pair(x, y)
    z = jnp.concatenate([x[:max_samples], y[:max_samples]])
    upper = jnp.triu_indices(z.shape[0], 1)
    return jnp.sqrt(jnp.median(squared_distances(z, z)[upper]))


def mmd(x: ArrayLike, y: ArrayLike, bandwidths: ArrayLike, *, unbiased: bool = True) -> Array:
    """Squared MMD with the multi-scale kernel ``k = sum_h exp(-||a - b||^2 / (2 h^2))``.

    ``unbiased=True``: the U-statistic (diagonals dropped; may dip below 0); ``False``: the
    V-statistic (``>= 0``).

    >>> x = jnp.array([[0.0], [1.0]])
    >>> float(mmd(x, x, [1.0], unbiased=False))
    0.0
    """
    x, y = _pair(x, y, min_samples=2)
    if is_concrete(bandwidths):
        arr = np.asarray(bandwidths)
        if arr.ndim > 1 or arr.size == 0 or not np.all(arr > 0):
            raise ValueError(
                f"`bandwidths` must be positive numbers, got bandwidths={bandwidths!r}"
            )
    h = jnp.atleast_1d(jnp.asarray(bandwidths, x.dtype))

    def kernel_sum(a, b, drop_diagonal):
        k = jnp.sum(jnp.exp(-squared_distances(a, b)[..., None] / (2.0 * h**2)), axis=-1)
        if drop_diagonal:
            n = a.shape[0]
            return (jnp.sum(k) - jnp.trace(k)) / (n * (n - 1))
        return jnp.mean(k)

    return kernel_sum(x, x, unbiased) + kernel_sum(y, y, unbiased) - 2.0 * kernel_sum(x, y, False)


def sliced_wasserstein(
    x: ArrayLike, y: ArrayLike, key: PRNGKeyArray, num_projections: int = 128
) -> Array:
    """Sliced Wasserstein-2: ``sqrt(mean_theta W2^2(theta.x, theta.y))``, random unit ``theta``.

    Each 1-D ``W2^2`` compares the sorted projections (for unequal sample sizes, the two
    empirical quantile functions, exactly).

    >>> x = jnp.arange(5.0)[:, None]
    >>> float(sliced_wasserstein(x, x + 3.0, jax.random.key(0), 4))
    3.0
    """
    x, y = _pair(x, y)
    k = check_positive_int("num_projections", num_projections)
    theta = jax.random.normal(key, (x.shape[1], k), x.dtype)
    theta = theta / jnp.linalg.norm(theta, axis=0, keepdims=True)
    px, py = jnp.sort(x @ theta, axis=0), jnp.sort(y @ theta, axis=0)
    if x.shape[0] == y.shape[0]:
        return jnp.sqrt(jnp.mean((px - py) ** 2))
    # Unequal sizes: both empirical quantile functions are steps, constant between the
    # merged breakpoints i/n and j/m, so integrating over those pieces is exact.
    n, m = x.shape[0], y.shape[0]
    edges = np.unique(np.concatenate([np.arange(n + 1) / n, np.arange(m + 1) / m]))
    mids, widths = 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)
    ix, iy = np.floor(mids * n).astype(int), np.floor(mids * m).astype(int)
    sq = jnp.sum(jnp.asarray(widths, x.dtype)[:, None] * (px[ix] - py[iy]) ** 2, axis=0)
    return jnp.sqrt(jnp.mean(sq))


def _sqrtm_psd(c: Array) -> Array:
    values, vectors = jnp.linalg.eigh(0.5 * (c + c.T))
    return (vectors * jnp.sqrt(jnp.maximum(values, 0.0))) @ vectors.T


def frechet_distance(x: ArrayLike, y: ArrayLike) -> Array:
    """Fréchet distance of Gaussians fitted to ``x`` and ``y`` (FID without Inception):
    ``||m_x - m_y||^2 + tr(C_x + C_y - 2 (C_y^1/2 C_x C_y^1/2)^1/2)``.

    Differentiable in ``x`` (through the eigenvalues of ``C_y^1/2 C_x C_y^1/2``).

    >>> x = jax.random.normal(jax.random.key(0), (100, 2))
    >>> round(float(frechet_distance(x, x + 1.0)), 4)  # ||(1, 1)||^2
    2.0
    """
    x, y = _pair(x, y, min_samples=2)
    mx, my = jnp.mean(x, 0), jnp.mean(y, 0)
    cx = (x - mx).T @ (x - mx) / (x.shape[0] - 1)
    cy = (y - my).T @ (y - my) / (y.shape[0] - 1)
    root_y = _sqrtm_psd(cy)
    cross = jnp.linalg.eigvalsh(root_y @ cx @ root_y)
    tiny = jnp.finfo(x.dtype).tiny
    trace_sqrt = jnp.sum(jnp.sqrt(jnp.maximum(cross, tiny)))
    return jnp.sum((mx - my) ** 2) + jnp.trace(cx) + jnp.trace(cy) - 2.0 * trace_sqrt


# ---- objectives -----------------------------------------------------------------------


class AbstractDiscrepancy(AbstractSampleObjective):
    """Samples against ``data`` (``(n, *event_shape)``), optionally through ``feature_map``.

    ``data_batch_size=None`` compares with all of ``data`` each call; otherwise a random
    subset of that many rows (drawn from the call's key).
    """

    data: AbstractVar[Array]
    data_batch_size: AbstractVar[int | None]
    feature_map: AbstractVar[Callable[[Array], Array] | None]

    @abc.abstractmethod
    def discrepancy(self, samples: Array, data: Array, key: PRNGKeyArray) -> Array:
        """The distance between two (feature) sample sets."""

    def data_batch(self, key: PRNGKeyArray) -> Array:
        if self.data_batch_size is None:
            return self.data
        n = self.data.shape[0]
        rows = jax.random.choice(key, n, (self.data_batch_size,), replace=False)
        return self.data[rows]

    def features(self, x: Array) -> Array:
        return x if self.feature_map is None else self.feature_map(x)

    def __call__(self, schedule, key):
        key_samples, key_data, key_metric = jax.random.split(key, 3)
        samples = self.samples(schedule, key_samples)
        data = shard_batch(self.data_batch(key_data), self._mesh())
        return self.discrepancy(self.features(samples), self.features(data), key_metric)

    def describe(self) -> dict:
        return dict(
            super().describe(),
            sampler=_describe_sampler(self.sampler),
            event_shape=list(self.event_shape),
            num_data=int(self.data.shape[0]),
        )


def _init_common(
    obj, denoiser, sampler, data, batch_size, init, data_batch_size, feature_map, mesh
):
    data = jnp.asarray(data, dtype=jnp.result_type(float))
    if data.ndim < 2 or data.shape[0] < 2:
        raise ValueError(f"`data` must have shape (n >= 2, *event_shape), got {data.shape}")
    if _addressable(data):  # a global multi-process array cannot be read here
        check_array_finite("data", data)
    obj.denoiser = denoiser
    obj.sampler = sampler
    obj.data = data
    obj.event_shape = tuple(int(n) for n in data.shape[1:])
    obj.batch_size = batch_size
    obj.init = init
    obj.mesh = mesh
    if data_batch_size is not None:
        data_batch_size = check_positive_int("data_batch_size", data_batch_size)
        if data_batch_size > data.shape[0]:
            raise ValueError(
                f"`data_batch_size` must be <= the number of data rows ({data.shape[0]}), "
                f"got data_batch_size={data_batch_size}"
            )
    obj.data_batch_size = data_batch_size
    if feature_map is not None and not callable(feature_map):
        raise ValueError(f"`feature_map` must be callable or None, got {feature_map!r}")
    obj.feature_map = feature_map
    obj._check_sample_settings()
    if data_batch_size is not None and mesh is not None and data_batch_size % mesh.size:
        raise ValueError(
            f"`data_batch_size` must be a multiple of the number of devices ({mesh.size}), "
            f"got data_batch_size={data_batch_size}"
        )


def _addressable(x) -> bool:
    return bool(getattr(x, "is_fully_addressable", True))


class MMD(AbstractDiscrepancy):
    """Squared MMD (unbiased U-statistic) with a sum of RBF kernels ``exp(-r^2 / (2 h^2))``.

    ``bandwidths`` default to :data:`MMD_SCALES` times the median pairwise distance of the
    data features, fixed at construction.

    >>> import jax, jax.numpy as jnp
    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.sampling import ODESampler
    >>> from schedopt.schedules import EDM
    >>> den = GaussianDenoiser(jnp.ones(2))
    >>> obj = MMD(den, ODESampler(4, "euler"), den.sample(jax.random.key(1), 64), batch_size=64)
    >>> obj.bandwidths.shape
    (5,)
    """

    name: ClassVar[str] = "mmd"

    denoiser: AbstractDenoiser
    sampler: AbstractSampler
    data: Array
    bandwidths: Array
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
        *,
        batch_size: int = 512,
        init: str = "vp",
        bandwidths: ArrayLike | None = None,
        data_batch_size: int | None = None,
        feature_map: Callable[[Array], Array] | None = None,
        mesh: Mesh | None = None,
    ):
        _init_common(
            self, denoiser, sampler, data, batch_size, init, data_batch_size, feature_map, mesh
        )
        if bandwidths is None:
            if not _addressable(self.data):
                raise ValueError(
                    "`data` spans several processes: pass `bandwidths` explicitly (the median "
                    "heuristic needs the data on this process)"
                )
            feats = self.features(self.data[:1000])
            median = median_distance(feats, feats)
            bandwidths = float(median) * np.asarray(MMD_SCALES)
        self.bandwidths = jnp.atleast_1d(jnp.asarray(bandwidths, dtype=self.data.dtype))
        if self.bandwidths.ndim != 1 or not bool(jnp.all(self.bandwidths > 0)):
            raise ValueError(
                f"`bandwidths` must be positive numbers, got bandwidths={bandwidths!r}"
            )

    def discrepancy(self, samples, data, key):
        del key
        return mmd(samples, data, self.bandwidths, unbiased=True)


class SlicedWasserstein(AbstractDiscrepancy):
    """Sliced Wasserstein-2 over ``num_projections`` random directions, fresh every call.

    >>> import jax, jax.numpy as jnp
    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.sampling import ODESampler
    >>> from schedopt.schedules import EDM
    >>> den = GaussianDenoiser(jnp.ones(2))
    >>> obj = SlicedWasserstein(den, ODESampler(4, "euler"), den.sample(jax.random.key(1), 64),
    ...                         batch_size=64)
    >>> float(obj(EDM(), jax.random.key(0))) > 0
    True
    """

    name: ClassVar[str] = "sliced-w2"

    denoiser: AbstractDenoiser
    sampler: AbstractSampler
    data: Array
    feature_map: Callable[[Array], Array] | None
    batch_size: int = static_field()
    event_shape: tuple[int, ...] = static_field()
    init: str = static_field()
    data_batch_size: int | None = static_field()
    num_projections: int = static_field()
    mesh: Mesh | None = static_field()

    def __init__(
        self,
        denoiser: AbstractDenoiser,
        sampler: AbstractSampler,
        data: ArrayLike,
        *,
        batch_size: int = 512,
        init: str = "vp",
        num_projections: int = 128,
        data_batch_size: int | None = None,
        feature_map: Callable[[Array], Array] | None = None,
        mesh: Mesh | None = None,
    ):
        _init_common(
            self, denoiser, sampler, data, batch_size, init, data_batch_size, feature_map, mesh
        )
        self.num_projections = check_positive_int("num_projections", num_projections)

    def discrepancy(self, samples, data, key):
        return sliced_wasserstein(samples, data, key, self.num_projections)


class Frechet(AbstractDiscrepancy):
    """Fréchet distance between Gaussians fitted to ``feature_map`` features (identity if
    ``None``): FID without Inception. Needs more samples than feature dimensions.

    >>> import jax, jax.numpy as jnp
    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.sampling import ODESampler
    >>> from schedopt.schedules import EDM
    >>> den = GaussianDenoiser(jnp.ones(2))
    >>> obj = Frechet(den, ODESampler(4, "euler"), den.sample(jax.random.key(1), 64),
    ...               batch_size=64)
    >>> float(obj(EDM(), jax.random.key(0))) > 0
    True
    """

    name: ClassVar[str] = "frechet"

    denoiser: AbstractDenoiser
    sampler: AbstractSampler
    data: Array
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
        *,
        batch_size: int = 512,
        init: str = "vp",
        data_batch_size: int | None = None,
        feature_map: Callable[[Array], Array] | None = None,
        mesh: Mesh | None = None,
    ):
        _init_common(
            self, denoiser, sampler, data, batch_size, init, data_batch_size, feature_map, mesh
        )
        probe = jax.ShapeDtypeStruct((2, *self.event_shape), self.data.dtype)
        dim = int(np.prod(jax.eval_shape(self.features, probe).shape[1:]))
        if self.batch_size <= dim:
            raise ValueError(
                f"`batch_size` must exceed the feature dimension ({dim}) to fit a covariance, "
                f"got batch_size={self.batch_size}"
            )

    def discrepancy(self, samples, data, key):
        del key
        return frechet_distance(samples, data)


#: Discrepancy objectives by name.
DISCREPANCIES: dict[str, type[AbstractDiscrepancy]] = {
    cls.name: cls for cls in (MMD, SlicedWasserstein, Frechet)
}


def discrepancy_objective(
    name: str, denoiser: AbstractDenoiser, sampler: AbstractSampler, data: ArrayLike, **options
) -> AbstractDiscrepancy:
    """``"mmd" | "sliced-w2" | "frechet"`` to an objective.

    >>> import jax.numpy as jnp
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
