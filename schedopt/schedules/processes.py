"""Diffusion processes: how a logSNR ``lam`` becomes the pair ``(alpha, sigma)``.

``x_t = alpha * x0 + sigma * eps`` with ``lam = log(alpha^2 / sigma^2)``. The EDM noise
level ``s = sigma / alpha = exp(-lam / 2)`` is the same for every process; processes
differ only in the scale ``alpha``.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike


class AbstractProcess(eqx.Module):
    """Maps logSNR to ``(alpha, sigma)``; subclasses are VP, VE and flow."""

    name: ClassVar[str]

    @abc.abstractmethod
    def alpha(self, logsnr: ArrayLike) -> Array:
        """Signal scale ``alpha`` at logSNR ``logsnr``."""

    @abc.abstractmethod
    def sigma(self, logsnr: ArrayLike) -> Array:
        """Noise scale ``sigma`` at logSNR ``logsnr``."""

    def logsnr(self, alpha: ArrayLike, sigma: ArrayLike) -> Array:
        """Inverse map: ``lam = 2 (log alpha - log sigma)``.

        >>> float(VP().logsnr(jnp.sqrt(0.5), jnp.sqrt(0.5)))
        0.0
        """
        return 2.0 * (jnp.log(jnp.asarray(alpha)) - jnp.log(jnp.asarray(sigma)))


class VP(AbstractProcess):
    """Variance preserving: ``alpha^2 = sigmoid(lam)``, ``sigma^2 = sigmoid(-lam)``.

    >>> round(float(VP().alpha(0.0) ** 2), 6)
    0.5
    """

    name: ClassVar[str] = "vp"

    def alpha(self, logsnr):
        return jnp.sqrt(jax.nn.sigmoid(jnp.asarray(logsnr)))

    def sigma(self, logsnr):
        return jnp.sqrt(jax.nn.sigmoid(-jnp.asarray(logsnr)))


class VE(AbstractProcess):
    """Variance exploding (EDM): ``alpha = 1``, ``sigma = exp(-lam / 2)``.

    >>> float(VE().sigma(-2 * jnp.log(80.0)))
    80.0
    """

    name: ClassVar[str] = "ve"

    def alpha(self, logsnr):
        return jnp.ones_like(jnp.asarray(logsnr, dtype=float))

    def sigma(self, logsnr):
        return jnp.exp(-0.5 * jnp.asarray(logsnr))


class Flow(AbstractProcess):
    """Rectified flow / linear interpolant: ``alpha + sigma = 1``.

    With ``s = exp(-lam / 2)``: ``alpha = 1 / (1 + s) = sigmoid(lam / 2)``.

    >>> float(Flow().alpha(0.0))
    0.5
    """

    name: ClassVar[str] = "flow"

    def alpha(self, logsnr):
        return jax.nn.sigmoid(0.5 * jnp.asarray(logsnr))

    def sigma(self, logsnr):
        return jax.nn.sigmoid(-0.5 * jnp.asarray(logsnr))


PROCESSES: dict[str, type[AbstractProcess]] = {p.name: p for p in (VP, VE, Flow)}


def process_from_name(name: str) -> AbstractProcess:
    """``"vp" | "ve" | "flow"`` to a process instance.

    >>> process_from_name("ve")
    VE()
    """
    if isinstance(name, AbstractProcess):
        return name
    if name not in PROCESSES:
        raise ValueError(f"`process` must be one of {', '.join(PROCESSES)}; got process={name!r}")
    return PROCESSES[name]()
