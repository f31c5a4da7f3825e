"""Fixed schedule families, each written in its published form.

All take the noise-level range ``sigma_min=0.002, sigma_max=80`` (EDM's defaults) so that
families are compared at equal endpoints; shape parameters (``rho``, ``gamma``, ...) are
arrays, so gradients with respect to them flow. Families defined on an open interval
(cosine, Laplace, VP linear-beta) are truncated to the range: their native time is
mapped affinely onto ``t in [0, 1]``.

=====================  ==============================================================
family                 native form (``t = 1`` noisy)
=====================  ==============================================================
``EDM``                ``s = (s_min^(1/rho) + t (s_max^(1/rho) - s_min^(1/rho)))^rho``
``LogSNRLinear``       ``lam`` linear in ``t`` (= exponential / log-uniform sigma)
``Polyexponential``    ``log s = log s_min + t^rho (log s_max - log s_min)``
``Tangent``            ``s = gamma tan(phi_min + t (phi_max - phi_min))``, ``phi = atan(s/gamma)``
``Cosine``             ``lam = -2 log tan(pi tau / 2) + 2 log shift`` (= ``Tangent(1/shift)``)
``Laplace``            ``lam = mu - b sign(1/2 - tau) log(1 - 2 |tau - 1/2|)``
``VPLinear``           ``alpha^2 = exp(-(beta_min tau + (beta_max - beta_min) tau^2 / 2))``
=====================  ==============================================================
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._checks import check_positive_float, is_concrete
from .base import AbstractRescaledSchedule


def _as_float(value) -> Array:
    return jnp.asarray(value, dtype=jnp.result_type(float))


def _param(default: float):
    """A differentiable shape parameter stored as a float array."""
    return eqx.field(default=default, converter=_as_float)


def _check_param_positive(module, *names):
    for name in names:
        value = getattr(module, name)
        if is_concrete(value):
            check_positive_float(name, np.asarray(value).item())


class EDM(AbstractRescaledSchedule):
    """Karras et al. (2022) polynomial schedule with exponent ``rho`` (default 7).

    >>> s = EDM(rho=7.0)
    >>> round(float(s.noise_level(1.0)), 3), round(float(s.noise_level(0.0)), 4)
    (80.0, 0.002)
    """

    family: ClassVar[str] = "edm"
    rho: Array = _param(7.0)

    def __check_init__(self):
        _check_param_positive(self, "rho")

    def _shape(self, t):
        lo = self.sigma_min ** (1.0 / self.rho)
        hi = self.sigma_max ** (1.0 / self.rho)
        return -2.0 * self.rho * jnp.log(lo + t * (hi - lo))

    def t_of_logsnr(self, logsnr):
        """Closed-form inverse ``t = (s^(1/rho) - s_min^(1/rho)) / (s_max^(1/rho) -
        s_min^(1/rho))`` with ``s = exp(-lam / 2)``, clipped to ``[0, 1]``.

        >>> s = EDM()
        >>> round(float(s.t_of_logsnr(s.logsnr(0.3))), 5)
        0.3
        """
        lam = jnp.asarray(logsnr, dtype=jnp.result_type(float))
        lo = self.sigma_min ** (1.0 / self.rho)
        hi = self.sigma_max ** (1.0 / self.rho)
        return jnp.clip((jnp.exp(-lam / (2.0 * self.rho)) - lo) / (hi - lo), 0.0, 1.0)


class LogSNRLinear(AbstractRescaledSchedule):
    """logSNR linear in ``t``; the same curve as k-diffusion's "exponential" (log-uniform sigma).

    >>> s = LogSNRLinear()
    >>> bool(abs(s.logsnr(0.5) - 0.5 * (s.logsnr_max + s.logsnr_min)) < 1e-5)
    True
    """

    family: ClassVar[str] = "logsnr-linear"

    def _shape(self, t):
        return -t


class Polyexponential(AbstractRescaledSchedule):
    """k-diffusion's polyexponential: ``log s`` moves as ``t^rho`` (``rho = 1``: log-uniform).

    >>> round(float(Polyexponential(rho=2.0).noise_level(1.0)), 3)
    80.0
    """

    family: ClassVar[str] = "polyexponential"
    rho: Array = _param(1.0)

    def __check_init__(self):
        _check_param_positive(self, "rho")

    def _shape(self, t):
        return -(t**self.rho)


def _tangent_shape(t, gamma, sigma_min, sigma_max):
    phi_min = jnp.arctan(sigma_min / gamma)
    phi_max = jnp.arctan(sigma_max / gamma)
    return -2.0 * jnp.log(gamma * jnp.tan(phi_min + t * (phi_max - phi_min)))


class Tangent(AbstractRescaledSchedule):
    """The tangent law of Sun, Poor & Zhang: ``s = gamma tan(phi_min + t (phi_max - phi_min))``.

    With ``gamma = sqrt(c)`` it is the KL-optimal schedule for one eigenvalue ``c``; with
    ``gamma = 1`` it is the "KL optimal" scheduler of image-generation UIs.

    >>> round(float(Tangent(gamma=1.0).noise_level(1.0)), 3)
    80.0
    """

    family: ClassVar[str] = "tangent"
    gamma: Array = _param(1.0)

    def __check_init__(self):
        _check_param_positive(self, "gamma")

    def _shape(self, t):
        return _tangent_shape(t, self.gamma, self.sigma_min, self.sigma_max)


class Cosine(AbstractRescaledSchedule):
    """The continuous logSNR cosine schedule (Nichol & Dhariwal; Hoogeboom et al.'s shift).

    ``lam = -2 log tan(pi tau / 2) + 2 log shift`` truncated to the noise range; this is
    exactly ``Tangent(gamma=1 / shift)`` (both are tested to agree).

    >>> round(float(Cosine(shift=0.5).noise_level(1.0)), 3)
    80.0
    """

    family: ClassVar[str] = "cosine"
    shift: Array = _param(1.0)

    def __check_init__(self):
        _check_param_positive(self, "shift")

    def _shape(self, t):
        return _tangent_shape(t, 1.0 / self.shift, self.sigma_min, self.sigma_max)


class Laplace(AbstractRescaledSchedule):
    """Laplace logSNR schedule (Hang et al., 2024): logSNR density is Laplace(``mu``, ``b``).

    >>> s = Laplace(mu=0.0, b=0.5)
    >>> bool(abs(s.logsnr(s.t_of_logsnr(0.0))) < 1e-4)
    True
    """

    family: ClassVar[str] = "laplace"
    mu: Array = _param(0.0)
    b: Array = _param(0.5)

    def __check_init__(self):
        _check_param_positive(self, "b")

    def _tails(self, lam):
        # (tau, 1 - tau) of the native Laplace time at logSNR ``lam``, each from its own
        # closed form so that neither loses precision next to 0 or 1.
        upper = 0.5 * jnp.exp(-jnp.abs(lam - self.mu) / self.b)
        above = lam >= self.mu
        return jnp.where(above, upper, 1.0 - upper), jnp.where(above, 1.0 - upper, upper)

    def _shape(self, t):
        tau0, rest0 = self._tails(self.logsnr_max)
        tau1, rest1 = self._tails(self.logsnr_min)
        tau = (1.0 - t) * tau0 + t * tau1
        rest = (1.0 - t) * rest0 + t * rest1
        clean = self.mu - self.b * jnp.log(2.0 * jnp.maximum(tau, 1e-30))
        noisy = self.mu + self.b * jnp.log(2.0 * jnp.maximum(rest, 1e-30))
        return jnp.where(tau < 0.5, clean, noisy)


class VPLinear(AbstractRescaledSchedule):
    """Continuous DDPM linear-beta (Song et al.'s VP-SDE; k-diffusion's ``vp``).

    ``beta(tau) = beta_min + tau (beta_max - beta_min)``, ``alpha^2 = exp(-int beta)``,
    truncated to the noise range (``tau`` is mapped onto ``t``).

    >>> round(float(VPLinear().noise_level(0.0)), 4)
    0.002
    """

    family: ClassVar[str] = "vp-linear"
    beta_min: Array = _param(0.1)
    beta_max: Array = _param(20.0)

    def __check_init__(self):
        _check_param_positive(self, "beta_min", "beta_max")
        if is_concrete(self.beta_min) and is_concrete(self.beta_max):
            if float(self.beta_max) <= float(self.beta_min):
                raise ValueError(
                    "`beta_max` must exceed `beta_min`, got "
                    f"beta_min={float(self.beta_min)!r}, beta_max={float(self.beta_max)!r}"
                )

    def _native_inverse(self, lam):
        # int_0^tau beta = log(1 + exp(-lam)); solve the quadratic for tau.
        q = jnp.logaddexp(0.0, -jnp.asarray(lam, dtype=jnp.result_type(float)))
        d = self.beta_max - self.beta_min
        return 2.0 * q / (self.beta_min + jnp.sqrt(self.beta_min**2 + 2.0 * d * q))

    def _shape(self, t):
        tau0 = self._native_inverse(self.logsnr_max)
        tau1 = self._native_inverse(self.logsnr_min)
        tau = tau0 + t * (tau1 - tau0)
        integral = self.beta_min * tau + 0.5 * (self.beta_max - self.beta_min) * tau**2
        return -jnp.log(jnp.expm1(integral))
