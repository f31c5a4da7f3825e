"""Training noise distributions and loss weightings for denoiser training.

A noise distribution draws EDM noise levels ``s`` and reports the density of
``lam = -2 log s`` at each draw (needed by the VDM weighting). Any schedule is one:
``t ~ U(0, 1)``, ``s = schedule.noise_level(t)``, density ``1 / |lam'(t)|``. Named ones:

==================  =============================================================
``"edm"``           ``ln s ~ N(-1.2, 1.2^2)`` (Karras et al. 2022, log-normal)
``"log-uniform"``   ``ln s ~ U(ln s_min, ln s_max)``, ``s`` in ``[0.002, 80]``
``"logit-normal"``  ``t ~ logit-normal(0, 1)`` of rectified flow, ``s = t / (1 - t)``,
                    i.e. ``ln s ~ N(0, 1)`` (Esser et al. 2024)
==================  =============================================================

The loss is ``w(s) ||D(x0 + s eps; s) - x0||^2`` (mean over dimensions), with weighting

==============  ======================================================================
``"edm"``       ``(s^2 + sd^2) / (s sd)^2``: unit-variance target for the raw network
``"snr"``       ``1 / s^2`` = SNR: the epsilon-prediction loss ``||eps_hat - eps||^2``
``"min-snr"``   ``min(1 / s^2, 5)``: min-SNR-5 (Hang et al. 2023)
``"uniform"``   ``1``: the x0-prediction loss
``"vdm"``       ``1 / (2 s^2 p(lam))``: VDM's loss ``-lam'(t) / 2 ||eps_hat - eps||^2``
==============  ======================================================================
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_choice, check_finite_float, check_positive_float, check_sigma_range
from ..schedules.base import AbstractSchedule

WEIGHTINGS = ("edm", "snr", "min-snr", "uniform", "vdm")
NOISE_NAMES = ("edm", "log-normal", "log-uniform", "logit-normal")


class AbstractNoiseDistribution(eqx.Module):
    """Draws training noise levels ``s`` with the density of ``lam = -2 log s`` at each."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def sample(
        self, key: PRNGKeyArray, num_samples: int
    ) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
        """``(noise_level, logsnr_density)``, both of shape ``(num_samples,)``."""

    @abc.abstractmethod
    def logsnr_density(self, noise_level: Float[Array, " n"]) -> Float[Array, " n"]:
        """The density of ``lam = -2 log s`` at ``s = noise_level`` (what :meth:`sample`
        reports at its draws)."""

    def describe(self) -> dict:
        """JSON-able description, recorded in checkpoints and logs."""
        return {"noise": self.name}


def _density_of_z(z, scale):
    # ln s = loc + scale z with lam = -2 ln s, so p(lam) = N(z; 0, 1) / (2 scale)
    return jnp.exp(-0.5 * z**2) / (2.0 * scale * math.sqrt(2.0 * math.pi))


def _lognormal_density(noise_level, loc, scale):
    return _density_of_z((jnp.log(noise_level) - loc) / scale, scale)


def _lognormal(key, num_samples, loc, scale):
    z = jax.random.normal(key, (num_samples,))
    return jnp.exp(loc + scale * z), _density_of_z(z, scale)


class LogNormal(AbstractNoiseDistribution):
    """``ln s ~ N(loc, scale^2)``; EDM's default is ``loc = -1.2, scale = 1.2``.

    >>> import jax
    >>> s, p = LogNormal().sample(jax.random.key(0), 4)
    >>> s.shape, bool((s > 0).all())
    ((4,), True)
    """

    name: ClassVar[str] = "log-normal"
    loc: float = eqx.field(static=True, default=-1.2)
    scale: float = eqx.field(static=True, default=1.2)

    def __check_init__(self):
        check_finite_float("loc", self.loc)
        check_positive_float("scale", self.scale)

    def sample(self, key, num_samples):
        return _lognormal(key, num_samples, self.loc, self.scale)

    def logsnr_density(self, noise_level):
        return _lognormal_density(noise_level, self.loc, self.scale)

    def describe(self):
        return {"noise": self.name, "loc": self.loc, "scale": self.scale}


class LogitNormal(AbstractNoiseDistribution):
    """Rectified flow's ``t ~ logit-normal(loc, scale)`` with ``s = t / (1 - t)``.

    Since ``ln s = logit(t)``, this is ``ln s ~ N(loc, scale^2)`` with defaults ``(0, 1)``.

    >>> import jax
    >>> LogitNormal().sample(jax.random.key(0), 5)[0].shape
    (5,)
    """

    name: ClassVar[str] = "logit-normal"
    loc: float = eqx.field(static=True, default=0.0)
    scale: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        check_finite_float("loc", self.loc)
        check_positive_float("scale", self.scale)

    def sample(self, key, num_samples):
        return _lognormal(key, num_samples, self.loc, self.scale)

    def logsnr_density(self, noise_level):
        return _lognormal_density(noise_level, self.loc, self.scale)

    def describe(self):
        return {"noise": self.name, "loc": self.loc, "scale": self.scale}


class LogUniform(AbstractNoiseDistribution):
    """``ln s ~ U(ln sigma_min, ln sigma_max)``: uniform logSNR, density ``1/(lam_max - lam_min)``.

    >>> import jax
    >>> s, p = LogUniform(sigma_min=0.01, sigma_max=10.0).sample(jax.random.key(0), 1000)
    >>> bool((s >= 0.01).all() and (s <= 10.0).all())
    True
    """

    name: ClassVar[str] = "log-uniform"
    sigma_min: float = eqx.field(static=True, default=0.002)
    sigma_max: float = eqx.field(static=True, default=80.0)

    def __check_init__(self):
        check_sigma_range(self.sigma_min, self.sigma_max)

    def sample(self, key, num_samples):
        lo, hi = math.log(self.sigma_min), math.log(self.sigma_max)
        log_s = jax.random.uniform(key, (num_samples,), minval=lo, maxval=hi)
        return jnp.exp(log_s), jnp.full((num_samples,), 1.0 / (2.0 * (hi - lo)))

    def logsnr_density(self, noise_level):
        s = jnp.asarray(noise_level)
        inside = (s >= self.sigma_min) & (s <= self.sigma_max)
        width = 2.0 * (math.log(self.sigma_max) - math.log(self.sigma_min))
        return jnp.where(inside, 1.0 / width, 0.0)

    def describe(self):
        return {"noise": self.name, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


class FromSchedule(AbstractNoiseDistribution):
    """``t ~ U(0, 1)`` pushed through a schedule: ``s = s(t)``, density ``1 / |lam'(t)|``.

    >>> import jax
    >>> from schedopt.schedules import EDM
    >>> s, p = FromSchedule(EDM()).sample(jax.random.key(0), 3)
    >>> s.shape
    (3,)
    """

    name: ClassVar[str] = "schedule"
    schedule: AbstractSchedule

    def sample(self, key, num_samples):
        t = jax.random.uniform(key, (num_samples,))
        logsnr, dlogsnr = self.schedule.logsnr_and_derivative(t)
        return jnp.exp(-0.5 * logsnr), 1.0 / jnp.abs(dlogsnr)

    def logsnr_density(self, noise_level):
        lam = -2.0 * jnp.log(jnp.asarray(noise_level, dtype=jnp.result_type(float)))
        sched = self.schedule
        inside = (lam <= sched.logsnr_max) & (lam >= sched.logsnr_min)
        clipped = jnp.clip(lam, sched.logsnr_min, sched.logsnr_max)
        return jnp.where(inside, sched.density_in_logsnr(clipped), 0.0)

    def describe(self):
        from ..schedules.registry import schedule_to_config

        return {"noise": self.name, "schedule": schedule_to_config(self.schedule)}


def noise_distribution(
    noise: str | AbstractNoiseDistribution | AbstractSchedule,
) -> AbstractNoiseDistribution:
    """A noise distribution from a name (see module docs), a schedule, or as is.

    >>> noise_distribution("edm").describe()
    {'noise': 'log-normal', 'loc': -1.2, 'scale': 1.2}
    """
    if isinstance(noise, AbstractNoiseDistribution):
        return noise
    if isinstance(noise, AbstractSchedule):
        return FromSchedule(noise)
    if not isinstance(noise, str) or noise not in NOISE_NAMES:
        raise ValueError(
            f"`noise` must be a schedule or one of {', '.join(NOISE_NAMES)}; got noise={noise!r}"
        )
    if noise in ("edm", "log-normal"):
        return LogNormal()
    if noise == "log-uniform":
        return LogUniform()
    return LogitNormal()


def check_weighting(weighting: str) -> str:
    """Raise unless ``weighting`` is one of :data:`WEIGHTINGS`."""
    return check_choice("weighting", weighting, WEIGHTINGS)


def loss_weight(
    weighting: str,
    noise_level: Float[Array, " n"],
    logsnr_density: Float[Array, " n"],
    sigma_data: float = 0.5,
) -> Float[Array, " n"]:
    """Weight ``w(s)`` of the x0-prediction error ``||D - x0||^2`` under ``weighting``.

    >>> float(loss_weight("snr", jnp.array([2.0]), jnp.array([1.0]))[0])
    0.25
    """
    check_weighting(weighting)
    s2 = jnp.asarray(noise_level) ** 2
    if weighting == "edm":
        return (s2 + sigma_data**2) / (s2 * sigma_data**2)
    if weighting == "snr":
        return 1.0 / s2
    if weighting == "min-snr":
        return jnp.minimum(1.0 / s2, 5.0)
    if weighting == "uniform":
        return jnp.ones_like(s2)
    return 0.5 / (s2 * logsnr_density)
