"""Discrete-time schedules (DDPM, Stable Diffusion): a table of logSNRs at integer timesteps.

A ``Tabulated`` schedule holds ``lam_k`` for timesteps ``k = 0 .. K-1`` (``k = 0`` the
cleanest) and interpolates linearly in logSNR between them (k-diffusion's
``DiscreteSchedule`` interpolates ``log sigma``, which is the same curve). Timestep ``k``
sits at ``t = k / (K - 1)``. Conversions between integer timesteps, continuous ``t`` and
noise levels are methods.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import (
    check_array_finite,
    check_positive_float,
    check_positive_int,
    check_strictly_decreasing,
)
from .base import AbstractSchedule


class Tabulated(AbstractSchedule):
    """A discrete schedule given by its logSNR table ``logsnrs`` (strictly decreasing).

    >>> sd = Tabulated.scaled_linear()
    >>> sd.num_timesteps, round(float(sd.noise_level(1.0)), 2)
    (1000, 14.61)
    """

    family: ClassVar[str] = "tabulated"
    logsnrs: Float[Array, " K"]

    def __check_init__(self):
        check_strictly_decreasing("logsnrs", self.logsnrs)

    def __init__(self, logsnrs: ArrayLike):
        self.logsnrs = jnp.asarray(logsnrs, dtype=jnp.result_type(float))

    @property
    def num_timesteps(self) -> int:
        return int(self.logsnrs.shape[0])

    @property
    def logsnr_max(self):
        return self.logsnrs[0]

    @property
    def logsnr_min(self):
        return self.logsnrs[-1]

    def logsnr(self, t):
        t = jnp.asarray(t, dtype=self.logsnrs.dtype)
        return jnp.interp(self.t_to_timestep(t), jnp.arange(self.num_timesteps), self.logsnrs)

    def t_of_logsnr(self, logsnr: ArrayLike) -> Array:
        """Exact inverse of the piecewise-linear logSNR (no root finding), clipped to
        ``[0, 1]``.

        >>> sd = Tabulated.scaled_linear()
        >>> round(float(sd.t_of_logsnr(sd.logsnr(0.3))), 5)
        0.3
        """
        lam = jnp.asarray(logsnr, dtype=self.logsnrs.dtype)
        steps = jnp.arange(self.num_timesteps, dtype=self.logsnrs.dtype)
        return self.timestep_to_t(jnp.interp(lam, self.logsnrs[::-1], steps[::-1]))

    # ---- conversions ----------------------------------------------------------------

    def timestep_to_t(self, timestep: ArrayLike) -> Array:
        """Integer (or fractional) timestep ``k`` to continuous ``t = k / (K - 1)``."""
        return jnp.asarray(timestep, dtype=self.logsnrs.dtype) / (self.num_timesteps - 1)

    def t_to_timestep(self, t: ArrayLike) -> Array:
        """Continuous ``t`` to a fractional timestep ``t (K - 1)``."""
        return jnp.asarray(t, dtype=self.logsnrs.dtype) * (self.num_timesteps - 1)

    def noise_level_to_timestep(self, noise_level: ArrayLike) -> Array:
        """Fractional timestep whose (interpolated) noise level is ``noise_level``.

        Exact inverse of the piecewise-linear table in ``log sigma`` (as k-diffusion's
        ``sigma_to_t``); values outside the table are clamped to its ends.
        """
        lam = -2.0 * jnp.log(jnp.asarray(noise_level, dtype=self.logsnrs.dtype))
        # interp needs increasing x: flip the (decreasing) table.
        k = jnp.arange(self.num_timesteps, dtype=self.logsnrs.dtype)
        return jnp.interp(lam, self.logsnrs[::-1], k[::-1])

    def timestep_noise_levels(self) -> Array:
        """The EDM noise level of every integer timestep, ``k = 0 .. K-1``."""
        return jnp.exp(-0.5 * self.logsnrs)

    # ---- constructors ---------------------------------------------------------------

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: ArrayLike) -> Tabulated:
        """From diffusers' ``alphas_cumprod`` (``alpha_bar_k``, decreasing in ``k``).

        ``lam_k = log(alpha_bar_k) - log(1 - alpha_bar_k)``.
        """
        abar = np.asarray(alphas_cumprod, dtype=np.float64)
        check_array_finite("alphas_cumprod", abar)
        if abar.ndim != 1 or np.any(abar <= 0) or np.any(abar >= 1):
            raise ValueError(
                "`alphas_cumprod` must be a 1-D array of values in (0, 1), got "
                f"shape {abar.shape}, range [{abar.min()!r}, {abar.max()!r}]"
            )
        return cls(np.log(abar) - np.log1p(-abar))

    @classmethod
    def from_betas(cls, betas: ArrayLike) -> Tabulated:
        """From per-step ``betas``: ``alpha_bar_k = prod_{i <= k} (1 - beta_i)``."""
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or np.any(betas <= 0) or np.any(betas >= 1):
            raise ValueError(
                f"`betas` must be a 1-D array of values in (0, 1), got shape {betas.shape}"
            )
        return cls.from_alphas_cumprod(np.exp(np.cumsum(np.log1p(-betas))))

    @classmethod
    def ddpm_linear(
        cls, num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
    ) -> Tabulated:
        """DDPM's linear betas (Ho et al., 2020): ``beta = linspace(beta_start, beta_end, K)``.

        >>> round(float(Tabulated.ddpm_linear().noise_level(0.0)), 4)
        0.01
        """
        n, lo, hi = _check_beta_args(num_timesteps, beta_start, beta_end)
        return cls.from_betas(np.linspace(lo, hi, n))

    @classmethod
    def scaled_linear(
        cls, num_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012
    ) -> Tabulated:
        """Stable Diffusion's scaled-linear betas: ``linspace(sqrt(b0), sqrt(b1), K)^2``."""
        n, lo, hi = _check_beta_args(num_timesteps, beta_start, beta_end)
        return cls.from_betas(np.linspace(np.sqrt(lo), np.sqrt(hi), n) ** 2)


def _check_beta_args(num_timesteps, beta_start, beta_end):
    n = check_positive_int("num_timesteps", num_timesteps)
    if n < 2:
        raise ValueError(f"`num_timesteps` must be >= 2, got num_timesteps={num_timesteps!r}")
    lo = check_positive_float("beta_start", beta_start)
    hi = check_positive_float("beta_end", beta_end)
    if not lo < hi < 1:
        raise ValueError(
            f"need 0 < beta_start < beta_end < 1, got beta_start={beta_start!r}, "
            f"beta_end={beta_end!r}"
        )
    return n, lo, hi
