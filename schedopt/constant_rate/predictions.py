"""The model-based measures of Okada et al. (Constant Rate Scheduling): how much a denoiser's
prediction changes between two levels.

``D(a, b) = E ||f(x, a) - f(x, b)||^2`` at the same noisy input ``x`` (drawn at the
midpoint level), with ``f`` the data prediction ``x0_hat`` (:class:`DataPrediction`,
their measure 2) or the noise prediction ``eps_hat`` (:class:`NoisePrediction`, measure 3).
For Gaussian data and the exact denoiser, ``x0_hat = c alpha / V x`` and
``eps_hat = sigma / V x`` per eigendirection (``V = 1 + alpha^2 (c - 1)``).
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array

from .._checks import check_choice, check_positive_int
from ..models.base import AbstractDenoiser
from .measures import INPUTS, AbstractSampleMeasure, sample_bank, vp_scales


class AbstractPredictionMeasure(AbstractSampleMeasure):
    """``E ||f(x, a) - f(x, b)||^2`` of a prediction ``f`` at the same noisy input.

    The input is drawn at the midpoint level ``m = (a + b) / 2`` (symmetric in ``a, b``).
    ``input="vp"`` (Okada et al.): the same VP state ``x``, read at level ``a`` as
    ``y = x / alpha_a``; ``input="edm"``: the same EDM state ``y = x0 + s_m eps`` at both.
    The squared norm is summed over the event dimensions and averaged over samples.
    """

    denoiser: AbstractVar[AbstractDenoiser]
    input: AbstractVar[str]
    batch_size: AbstractVar[int | None]

    @abc.abstractmethod
    def prediction(self, y: Array, noise_level: Array, alpha: Array) -> Array:
        """The prediction from EDM state ``y`` at noise level ``s`` (VP scale ``alpha``)."""

    def __call__(self, logsnr_a, logsnr_b):
        la, lb = jnp.asarray(logsnr_a), jnp.asarray(logsnr_b)
        lm = 0.5 * (la + lb)
        alpha_m, _ = vp_scales(lm)
        x = self.diffuse(lm)

        def one(xb):
            if self.input == "vp":
                ya, yb = xb / vp_scales(la)[0], xb / vp_scales(lb)[0]
            else:
                ya = yb = xb / alpha_m
            pa = self.prediction(ya, jnp.exp(-0.5 * la), vp_scales(la)[0])
            pb = self.prediction(yb, jnp.exp(-0.5 * lb), vp_scales(lb)[0])
            return jnp.sum((pa - pb).reshape(xb.shape[0], -1) ** 2, axis=-1)

        if self.batch_size is None or self.batch_size >= x.shape[0]:
            return jnp.mean(one(x))
        n, b = x.shape[0], self.batch_size
        if n % b:
            raise ValueError(f"`batch_size` must divide the number of samples {n}, got {b}")
        per = jax.lax.map(one, x.reshape((n // b, b) + x.shape[1:]))
        return jnp.mean(per)

    def describe(self):
        return dict(super().describe(), input=self.input)


def _init_prediction(obj, denoiser, data, noise, input, batch_size):
    if not isinstance(denoiser, AbstractDenoiser):
        raise ValueError(f"`denoiser` must be an AbstractDenoiser, got {type(denoiser).__name__}")
    obj.denoiser = denoiser
    obj.data = jnp.asarray(data, dtype=jnp.result_type(float))
    obj.noise = jnp.asarray(noise, dtype=obj.data.dtype)
    if obj.data.shape != obj.noise.shape:
        raise ValueError(
            f"`data` and `noise` must have the same shape, got {obj.data.shape} and "
            f"{obj.noise.shape}"
        )
    obj.input = check_choice("input", input, INPUTS)
    obj.batch_size = None if batch_size is None else check_positive_int("batch_size", batch_size)


class DataPrediction(AbstractPredictionMeasure):
    """Okada et al.'s measure 2: change of the denoiser's ``x0`` prediction between two levels.

    ``D = E ||x0_hat(x, a) - x0_hat(x, b)||^2`` with ``x0_hat`` = ``D(y; s)``.

    >>> from schedopt.models import GaussianDenoiser
    >>> den = GaussianDenoiser(jnp.array([2.0]))
    >>> m = DataPrediction.from_data(den, den.sample(jax.random.key(0), 512))
    >>> bool(m(1.0, 0.5) > 0)
    True
    """

    name: ClassVar[str] = "x0"
    denoiser: AbstractDenoiser
    data: Array
    noise: Array
    input: str = eqx.field(static=True)
    batch_size: int | None = eqx.field(static=True)

    def __init__(self, denoiser, data, noise, *, input="vp", batch_size=None):
        _init_prediction(self, denoiser, data, noise, input, batch_size)

    @classmethod
    def from_data(cls, denoiser, data, *, num_samples=None, seed=0, input="vp", batch_size=None):
        """A bank of ``num_samples`` rows of ``data`` (all by default) with fresh noises."""
        x0, eps = sample_bank(data, num_samples, seed)
        return cls(denoiser, x0, eps, input=input, batch_size=batch_size)

    def prediction(self, y, noise_level, alpha):
        return self.denoiser(y, noise_level)


class NoisePrediction(AbstractPredictionMeasure):
    """Okada et al.'s measure 3: change of the noise prediction ``eps_hat = (y - D(y; s)) / s``.

    (The VP form ``(x - alpha x0_hat) / sigma`` is the same quantity.)

    >>> from schedopt.models import GaussianDenoiser
    >>> den = GaussianDenoiser(jnp.array([2.0]))
    >>> m = NoisePrediction.from_data(den, den.sample(jax.random.key(0), 512))
    >>> bool(m(1.0, 0.5) > 0)
    True
    """

    name: ClassVar[str] = "eps"
    denoiser: AbstractDenoiser
    data: Array
    noise: Array
    input: str = eqx.field(static=True)
    batch_size: int | None = eqx.field(static=True)

    def __init__(self, denoiser, data, noise, *, input="vp", batch_size=None):
        _init_prediction(self, denoiser, data, noise, input, batch_size)

    @classmethod
    def from_data(cls, denoiser, data, *, num_samples=None, seed=0, input="vp", batch_size=None):
        """A bank of ``num_samples`` rows of ``data`` (all by default) with fresh noises."""
        x0, eps = sample_bank(data, num_samples, seed)
        return cls(denoiser, x0, eps, input=input, batch_size=batch_size)

    def prediction(self, y, noise_level, alpha):
        return (y - self.denoiser(y, noise_level)) / noise_level
