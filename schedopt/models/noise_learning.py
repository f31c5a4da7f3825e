"""Training noise distributions and weightings learned while the model trains.

Training minimises ``J = ∫ p(lam) w(s) l(lam) dlam`` over the logSNR ``lam = -2 log s``,
where ``l(lam) = E ||D(x0 + s eps; s) - x0||^2`` is the x0 error at that level, ``p`` the
noise distribution and ``w`` the weighting (:mod:`schedopt.models.noise`); the product
``p w`` is the *target*. Three learners change how ``J`` is estimated or weighted, each
from the model's own losses, jit-compiled into the training step:

``"vdm"`` (:class:`LearnedSchedule`)
    Kingma et al. (Variational Diffusion Models): levels come from a learnable monotone
    schedule, ``t ~ U(0, 1)`` (low-discrepancy), ``lam = lam(t)``, proposal density
    ``q = 1 / |lam'(t)|``, and each sample's loss is ``L = p w l / q``: an unbiased
    estimate of ``J`` for every schedule with the same endpoints. The schedule follows
    the gradient of ``E[L^2]``, i.e. it minimises the variance of the loss estimator
    (its optimum is ``q ∝ p w sqrt(E[l^2 | lam])``). With ``weighting="vdm"`` the target
    is VDM's continuous-time ELBO, ``p w = 1 / (2 s^2)``, and this is VDM exactly. The
    endpoints stay fixed: VDM learns them through the ELBO's prior and reconstruction
    terms, which a denoiser of continuous data trained on ``J`` does not have.
``"uncertainty"`` (:class:`LearnedWeighting`)
    Karras et al. (Analyzing and Improving the Training Dynamics of Diffusion Models,
    EDM2): a log-variance ``u(s)``, a linear layer on fixed Fourier features of
    ``ln(s) / 4``, trained jointly with the loss ``L / exp(u(s)) + u(s)``. At its optimum
    ``exp(u) = E[L | s]``, so every level contributes equally; the learned effective
    density of the weight on the x0 error is ``∝ p w exp(-u)``.
``"adaptive"`` (:class:`AdaptiveHistogram`)
    An adaptive timestep sampler in the manner of Nichol & Dhariwal (Improved Denoising
    Diffusion Probabilistic Models): a histogram of ``lam`` whose bin probabilities
    follow an exponential average of ``(p w l)^2`` per bin, ``q_k ∝ sqrt(E[(p w l)^2])``
    (the variance-optimal proposal, as above), mixed with a uniform floor so that no level
    starves; the loss ``L = p w l / q`` keeps ``J`` unbiased.

Every learner keeps its state as ``{"params": ..., "stats": ...}`` (plain dicts of
arrays, checkpointed with the network) and gives the density of what it learned and that
density as a schedule (``t ~ U(0, 1)`` pushed through it has that density).
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_choice, check_positive_int, check_sigma_range
from ..schedules.base import AbstractSchedule
from ..schedules.learnable import MonotoneCubic
from .noise import AbstractNoiseDistribution, check_weighting, loss_weight, noise_distribution

#: Names of the learners (``schedopt train --learn-noise``).
LEARNERS = ("vdm", "uncertainty", "adaptive")

#: Noise levels at which the training log records the learned density.
LOG_LEVELS = (0.005, 0.02, 0.05, 0.2, 0.5, 1.0, 2.0, 5.0, 20.0, 50.0)

# Share of a uniform density mixed into a density before it is turned into a schedule,
# so that its cumulative distribution is strictly increasing.
_SCHEDULE_FLOOR = 1e-4


def logsnr_range(sigma_min: float, sigma_max: float, num_points: int) -> np.ndarray:
    """``num_points`` logSNRs uniform from the clean end ``-2 ln sigma_min`` to the noisy
    end ``-2 ln sigma_max`` (float64)."""
    return np.linspace(-2.0 * math.log(sigma_min), -2.0 * math.log(sigma_max), num_points)


def schedule_from_density(
    logsnrs: Float[np.ndarray, " m"],
    density: Float[np.ndarray, " m"],
    num_knots: int = 32,
    *,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
) -> MonotoneCubic:
    """The schedule whose uniform-``t`` pushforward has logSNR density ``density``.

    ``logsnrs`` decrease (clean first); the density, tabulated there and mixed with a
    ``1e-4`` share of the uniform density, is integrated by the trapezoid rule from the
    clean end, ``t(lam) = ∫_lam^lam_max q``, and the knots ``t_j = j / K`` are placed at
    its quantiles: ``lam(t_j) = t^-1(t_j)``, joined by a monotone cubic. ``sigma_min`` and
    ``sigma_max``, when given, are the ends exactly as given (``logsnrs`` spans them).

    >>> lam = logsnr_range(0.002, 80.0, 257)
    >>> s = schedule_from_density(lam, np.ones_like(lam))  # uniform in logSNR
    >>> round(float(s.logsnr(0.5)), 3), round(float(lam.mean()), 3)
    (1.833, 1.833)
    """
    lam = np.asarray(logsnrs, dtype=np.float64)
    q = np.asarray(density, dtype=np.float64)
    if lam.ndim != 1 or q.shape != lam.shape or lam.shape[0] < 2:
        raise ValueError(
            f"`logsnrs` and `density` must be 1-D of one length >= 2, got shapes "
            f"{lam.shape} and {q.shape}"
        )
    if not (np.all(np.isfinite(q)) and np.all(q >= 0) and np.any(q > 0)):
        raise ValueError("`density` must be finite, >= 0 and somewhere positive")
    width = abs(lam[0] - lam[-1])
    q = (1.0 - _SCHEDULE_FLOOR) * q / np.trapezoid(q, -lam) + _SCHEDULE_FLOOR / width
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (q[1:] + q[:-1]) * np.abs(np.diff(lam)))])
    cdf /= cdf[-1]
    k = check_positive_int("num_knots", num_knots)
    knots = np.interp(np.linspace(0.0, 1.0, k + 1), cdf, lam)
    knots[0], knots[-1] = lam[0], lam[-1]
    fitted = MonotoneCubic.from_logsnr_values(knots)
    if sigma_min is None:
        return fitted
    return MonotoneCubic(fitted.logits, sigma_min=sigma_min, sigma_max=sigma_max)


class AbstractNoiseLearner(eqx.Module):
    """A training noise distribution or weighting learned from the model's losses.

    ``target`` and ``weighting`` define the objective ``J`` (module docs); the learner
    lives on ``[sigma_min, sigma_max]``. The training step calls :meth:`draw`, computes
    each sample's x0 error ``l``, and differentiates :meth:`network_loss` with respect to
    the network and :meth:`learner_loss` with respect to ``params`` (both functions of the
    per-sample losses ``L = weight * l``, which depend on ``params`` through the draw);
    :meth:`update_stats` then updates the non-trained statistics.
    """

    name: ClassVar[str] = ""
    target: AbstractNoiseDistribution
    weighting: str = eqx.field(static=True, default="edm", kw_only=True)
    sigma_data: float = eqx.field(static=True, default=0.5, kw_only=True)
    sigma_min: float = eqx.field(static=True, default=0.002, kw_only=True)
    sigma_max: float = eqx.field(static=True, default=80.0, kw_only=True)

    def __check_init__(self):
        check_weighting(self.weighting)
        check_sigma_range(self.sigma_min, self.sigma_max)

    @property
    def trainable(self) -> bool:
        """Whether the learner has parameters trained by gradient (an optimiser)."""
        return bool(jax.tree.leaves(self.init_state()["params"]))

    @abc.abstractmethod
    def init_state(self) -> dict:
        """``{"params": ..., "stats": ...}``, dicts of arrays, at the start of training."""

    @abc.abstractmethod
    def draw(
        self, params: dict, stats: dict, key: PRNGKeyArray, num_samples: int
    ) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
        """``(noise_level, weight)``: levels and the factor ``L / l`` of each sample."""

    @abc.abstractmethod
    def density(self, params: dict, stats: dict, logsnr: Float[Array, " m"]) -> Array:
        """The learned density in logSNR (what :meth:`schedule` pushes forward)."""

    def network_loss(self, params, stats, losses, noise_level) -> Array:
        """What the network minimises: the mean of the per-sample losses by default."""
        return jnp.mean(losses)

    def learner_loss(self, params, stats, losses, noise_level) -> Array:
        """What ``params`` minimise (none by default)."""
        return jnp.zeros((), losses.dtype)

    def update_stats(self, stats: dict, errors: Array, noise_level: Array) -> dict:
        """Statistics after a step with x0 errors ``errors`` at ``noise_level``."""
        return stats

    def draw_target(self, key: PRNGKeyArray, num_samples: int):
        """``(noise_level, weight)`` drawn from the target noise distribution itself,
        weighted by ``w(s)``: the training of a fixed noise distribution."""
        s, p = self.target.sample(key, num_samples)
        return s, loss_weight(self.weighting, s, p, self.sigma_data)

    def target_weight(self, noise_level: Array) -> Array:
        """``p(lam) w(s)``, the target density of the weight on the x0 error.

        >>> from schedopt.models.noise import LogUniform
        >>> learner = AdaptiveHistogram(LogUniform(), weighting="uniform")
        >>> round(float(learner.target_weight(jnp.array(1.0))), 5)  # 1 / (2 ln(80 / 0.002))
        0.04718
        """
        s = jnp.asarray(noise_level)
        if self.weighting == "vdm":  # w = 1 / (2 s^2 p): the target does not depend on p
            return 0.5 / s**2
        p = self.target.logsnr_density(s)
        return loss_weight(self.weighting, s, p, self.sigma_data) * p

    def schedule(self, params: dict, stats: dict, num_knots: int = 32) -> AbstractSchedule:
        """The learned density as a schedule (see :func:`schedule_from_density`)."""
        lam = logsnr_range(self.sigma_min, self.sigma_max, 1025)
        dens = np.asarray(learned_density(self, params, stats, jnp.asarray(lam)), dtype=np.float64)
        ends = dict(sigma_min=self.sigma_min, sigma_max=self.sigma_max)
        return schedule_from_density(lam, np.nan_to_num(dens, posinf=0.0), num_knots, **ends)

    def logged_density(self, params: dict, stats: dict) -> dict:
        """The learned density at :data:`LOG_LEVELS` noise levels, for the training log."""
        levels = np.asarray(LOG_LEVELS)
        inside = levels[(levels >= self.sigma_min) & (levels <= self.sigma_max)]
        dens = learned_density(self, params, stats, jnp.asarray(-2.0 * np.log(inside)))
        return {f"{s:g}": float(d) for s, d in zip(inside, np.asarray(dens), strict=True)}

    def describe(self) -> dict:
        """JSON-able description, recorded in checkpoints, logs and the card."""
        return {
            "learner": self.name,
            "target": self.target.describe(),
            "weighting": self.weighting,
            "sigma_min": self.sigma_min,
            "sigma_max": self.sigma_max,
        }


@eqx.filter_jit
def learned_density(learner, params, stats, logsnr):
    """``learner.density(params, stats, logsnr)``, jit-compiled."""
    return learner.density(params, stats, logsnr)


class FixedNoise(AbstractNoiseLearner):
    """Nothing learned: levels from the target noise distribution, weighted by ``w(s)``.

    >>> from schedopt.models.noise import LogNormal
    >>> FixedNoise(LogNormal()).trainable
    False
    """

    name: ClassVar[str] = "none"

    def init_state(self):
        return {"params": {}, "stats": {}}

    def draw(self, params, stats, key, num_samples):
        return self.draw_target(key, num_samples)

    def density(self, params, stats, logsnr):
        return self.target.logsnr_density(jnp.exp(-0.5 * jnp.asarray(logsnr)))


class LearnedSchedule(AbstractNoiseLearner):
    """VDM's learned schedule: a :class:`~schedopt.schedules.MonotoneCubic` proposal that
    minimises the variance of the loss estimator (module docs), endpoints fixed.

    It starts as the target noise distribution's own schedule.

    >>> from schedopt.models.noise import LogNormal
    >>> learner = LearnedSchedule.create(LogNormal(), num_knots=8)
    >>> state = learner.init_state()
    >>> s, w = learner.draw(state["params"], state["stats"], jax.random.key(0), 4)
    >>> s.shape, bool((s >= 0.002).all() and (s <= 80.0).all())
    ((4,), True)
    """

    name: ClassVar[str] = "vdm"
    start: MonotoneCubic = eqx.field(kw_only=True)

    def __check_init__(self):
        ends = (float(self.start.sigma_min), float(self.start.sigma_max))
        if not np.allclose(ends, (self.sigma_min, self.sigma_max), rtol=1e-5):
            raise ValueError(
                f"`start` must span [sigma_min, sigma_max] = [{self.sigma_min}, "
                f"{self.sigma_max}], got [{ends[0]:.6g}, {ends[1]:.6g}]"
            )

    @classmethod
    def create(
        cls, target, *, num_knots: int = 32, sigma_min: float = 0.002, sigma_max=80.0, **kw
    ) -> LearnedSchedule:
        """Start as the target noise distribution on ``[sigma_min, sigma_max]``."""
        target = noise_distribution(target)
        lam = logsnr_range(sigma_min, sigma_max, 1025)
        dens = np.asarray(target.logsnr_density(jnp.exp(-0.5 * jnp.asarray(lam))))
        ends = dict(sigma_min=sigma_min, sigma_max=sigma_max)
        start = schedule_from_density(lam, dens, num_knots, **ends)
        return cls(target, start=start, sigma_min=sigma_min, sigma_max=sigma_max, **kw)

    def learned(self, params: dict) -> MonotoneCubic:
        """The schedule with the learned ``params``."""
        return eqx.tree_at(lambda s: s.logits, self.start, params["logits"])

    def init_state(self):
        return {"params": {"logits": self.start.logits}, "stats": {}}

    def draw(self, params, stats, key, num_samples):
        # VDM's low-discrepancy times: one uniform shift of an evenly spaced set
        t = jnp.mod(jax.random.uniform(key) + jnp.arange(num_samples) / num_samples, 1.0)
        logsnr, dlogsnr = self.learned(params).logsnr_and_derivative(t)
        s = jnp.exp(-0.5 * logsnr)
        return s, self.target_weight(s) * jnp.abs(dlogsnr)

    def learner_loss(self, params, stats, losses, noise_level):
        return jnp.mean(losses**2)

    def density(self, params, stats, logsnr):
        return self.learned(params).density_in_logsnr(logsnr)

    def schedule(self, params, stats, num_knots=32):
        return self.learned(params)

    def describe(self):
        return {**super().describe(), "num_knots": self.start.num_knots}


class LearnedWeighting(AbstractNoiseLearner):
    """EDM2's learned log-variance ``u(s) = b + sum_k a_k sqrt(2) cos(2 pi (f_k c + phi_k))``,
    ``c = ln(s) / 4``, with fixed random ``f_k ~ N(0, 1)`` and ``phi_k ~ U(0, 1)``.

    >>> from schedopt.models.noise import LogNormal
    >>> learner = LearnedWeighting.create(LogNormal(), num_features=8)
    >>> state = learner.init_state()
    >>> float(learner.log_variance(state["params"], jnp.array([1.0]))[0])
    0.0
    """

    name: ClassVar[str] = "uncertainty"
    frequencies: Float[Array, " k"] = eqx.field(kw_only=True)
    phases: Float[Array, " k"] = eqx.field(kw_only=True)

    @classmethod
    def create(cls, target, *, num_features: int = 128, seed: int = 0, **kw) -> LearnedWeighting:
        """Random Fourier features from ``seed`` (EDM2 uses 128)."""
        k = check_positive_int("num_features", num_features)
        rng = np.random.default_rng(seed)
        freq = jnp.asarray(rng.normal(size=k), dtype=jnp.result_type(float))
        phase = jnp.asarray(rng.uniform(size=k), dtype=jnp.result_type(float))
        return cls(noise_distribution(target), frequencies=freq, phases=phase, **kw)

    def init_state(self):
        k = self.frequencies.shape[0]
        dtype = self.frequencies.dtype
        params = {"weights": jnp.zeros((k,), dtype), "bias": jnp.zeros((), dtype)}
        return {"params": params, "stats": {}}

    def log_variance(self, params, noise_level):
        """``u(s)``, the learned log of the expected loss at ``s``."""
        c = jnp.log(noise_level)[..., None] / 4.0
        features = math.sqrt(2.0) * jnp.cos(2.0 * jnp.pi * (self.frequencies * c + self.phases))
        return features @ params["weights"] + params["bias"]

    def draw(self, params, stats, key, num_samples):
        return self.draw_target(key, num_samples)

    def _loss(self, params, losses, noise_level):
        u = self.log_variance(params, noise_level)
        return jnp.mean(losses * jnp.exp(-u) + u)

    def network_loss(self, params, stats, losses, noise_level):
        return self._loss(jax.lax.stop_gradient(params), losses, noise_level)

    def learner_loss(self, params, stats, losses, noise_level):
        return self._loss(params, jax.lax.stop_gradient(losses), noise_level)

    def density(self, params, stats, logsnr):
        lam = jnp.asarray(logsnr)
        grid = jnp.asarray(logsnr_range(self.sigma_min, self.sigma_max, 1025), lam.dtype)

        def unnormalised(x):
            s = jnp.exp(-0.5 * x)
            return self.target_weight(s) * jnp.exp(-self.log_variance(params, s))

        return unnormalised(lam) / jnp.trapezoid(unnormalised(grid), -grid)

    def describe(self):
        return {**super().describe(), "num_features": int(self.frequencies.shape[0])}


class AdaptiveHistogram(AbstractNoiseLearner):
    """A ``num_bins``-bin histogram proposal in logSNR, ``q_k ∝ sqrt(E[(p w l)^2])``
    (exponential average with ``decay``), mixed with a uniform ``floor``.

    Until every bin has been visited it proposes the target's own histogram.

    >>> from schedopt.models.noise import LogNormal
    >>> learner = AdaptiveHistogram(LogNormal(), num_bins=4)
    >>> state = learner.init_state()
    >>> [round(float(p), 3) for p in learner.probabilities(state["stats"])]
    [0.032, 0.584, 0.357, 0.027]
    """

    name: ClassVar[str] = "adaptive"
    num_bins: int = eqx.field(static=True, default=32, kw_only=True)
    floor: float = eqx.field(static=True, default=0.1, kw_only=True)
    decay: float = eqx.field(static=True, default=0.99, kw_only=True)

    def __check_init__(self):
        check_positive_int("num_bins", self.num_bins)
        if not 0.0 < self.floor <= 1.0:
            raise ValueError(f"`floor` must be in (0, 1], got floor={self.floor!r}")
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"`decay` must be in [0, 1), got decay={self.decay!r}")

    def edges(self) -> Float[Array, " K+1"]:
        """Bin edges in logSNR, clean end first."""
        return jnp.asarray(logsnr_range(self.sigma_min, self.sigma_max, self.num_bins + 1))

    @property
    def bin_width(self) -> float:
        """Width of a bin in logSNR."""
        return 2.0 * math.log(self.sigma_max / self.sigma_min) / self.num_bins

    def _bin(self, logsnr):
        top = self.edges()[0]
        return jnp.clip(jnp.floor((top - logsnr) / self.bin_width), 0, self.num_bins - 1).astype(
            int
        )

    def init_state(self):
        zeros = jnp.zeros((self.num_bins,), jnp.result_type(float))
        return {"params": {}, "stats": {"second_moment": zeros, "count": zeros}}

    def probabilities(self, stats) -> Float[Array, " K"]:
        """The bin probabilities ``q_k`` (floor included)."""
        edges = self.edges()
        middle = jnp.exp(-0.25 * (edges[1:] + edges[:-1]))
        reference = self.target.logsnr_density(middle)
        reference = reference / jnp.sum(reference)
        count = stats["count"]
        unbiased = stats["second_moment"] / (1.0 - self.decay ** jnp.maximum(count, 1.0))
        learned = jnp.sqrt(jnp.maximum(unbiased, 0.0))
        ready = jnp.all(count > 0) & (jnp.sum(learned) > 0)
        learned = jnp.where(ready, learned / jnp.where(ready, jnp.sum(learned), 1.0), reference)
        return (1.0 - self.floor) * learned + self.floor / self.num_bins

    def draw(self, params, stats, key, num_samples):
        key_bin, key_in = jax.random.split(key)
        probs = self.probabilities(stats)
        k = jax.random.categorical(key_bin, jnp.log(probs), shape=(num_samples,))
        width = self.bin_width
        logsnr = self.edges()[k] - width * jax.random.uniform(key_in, (num_samples,))
        s = jnp.exp(-0.5 * logsnr)
        return s, self.target_weight(s) * width / probs[k]

    def update_stats(self, stats, errors, noise_level):
        k = self._bin(-2.0 * jnp.log(noise_level))
        a2 = (self.target_weight(noise_level) * errors) ** 2
        dtype = stats["second_moment"].dtype
        n = jax.ops.segment_sum(jnp.ones_like(a2), k, self.num_bins).astype(dtype)
        mean = jax.ops.segment_sum(a2, k, self.num_bins).astype(dtype) / jnp.maximum(n, 1.0)
        seen = n > 0
        m2 = stats["second_moment"]
        m2 = jnp.where(seen, self.decay * m2 + (1.0 - self.decay) * mean, m2)
        return {"second_moment": m2, "count": stats["count"] + seen}

    def density(self, params, stats, logsnr):
        edges = self.edges()
        lam = jnp.asarray(logsnr)
        inside = (lam <= edges[0]) & (lam >= edges[-1])
        return jnp.where(inside, self.probabilities(stats)[self._bin(lam)] / self.bin_width, 0.0)

    def describe(self):
        return {
            **super().describe(),
            "num_bins": self.num_bins,
            "floor": self.floor,
            "decay": self.decay,
        }


def noise_learner(
    name: str | AbstractNoiseLearner,
    noise="edm",
    *,
    weighting: str = "edm",
    sigma_data: float = 0.5,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    seed: int = 0,
) -> AbstractNoiseLearner:
    """A learner by name (``"vdm"``, ``"uncertainty"``, ``"adaptive"``), or as is.

    >>> noise_learner("adaptive").describe()["learner"]
    'adaptive'
    """
    if isinstance(name, AbstractNoiseLearner):
        return name
    check_choice("learn_noise", name, LEARNERS)
    common = dict(
        weighting=weighting, sigma_data=sigma_data, sigma_min=sigma_min, sigma_max=sigma_max
    )
    target = noise_distribution(noise)
    if name == "vdm":
        return LearnedSchedule.create(target, **common)
    if name == "uncertainty":
        return LearnedWeighting.create(target, seed=seed, **common)
    return AdaptiveHistogram(target, **common)
