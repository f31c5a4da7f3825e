"""Adapters: any function or eps-, v- or x0-prediction model as an ``AbstractDenoiser``.

Samplers speak one language, the posterior mean ``D(y; s)`` in EDM variables. A model
trained under a process ``(alpha, sigma)`` sees ``x = alpha y`` and predicts one of

- ``"x0"``:  ``x0`` itself, so ``D = pred``;
- ``"eps"``: the noise, ``D = y - s * pred``;
- ``"v"``:   VP and VE: Salimans & Ho's ``v = a eps - b x0`` on the variance-normalised
  state (``a = alpha / r``, ``b = sigma / r``, ``r = sqrt(alpha^2 + sigma^2)``; plain
  ``alpha eps - sigma x0`` for VP), so ``D = a x / r - b v``; flow: the velocity
  ``v = eps - x0`` of ``x = (1 - t) x0 + t eps``, so ``D = x - sigma v``.

The model's noise input is set by ``conditioning``: ``"logsnr"``, ``"noise_level"``
(EDM's sigma ``s``), ``"sigma"`` (the process's sigma, flow's ``t``), ``"edm"``
(``log(s) / 4``, EDM's ``c_noise``) or any function of ``s``.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from .._checks import check_choice
from ..schedules.processes import VP, AbstractProcess, Flow, process_from_name
from .base import AbstractDenoiser, _broadcast_level

PREDICTIONS = ("eps", "v", "x0")
CONDITIONINGS = ("logsnr", "noise_level", "sigma", "edm")


class FunctionDenoiser(AbstractDenoiser):
    """A plain function ``fn(y, noise_level) -> D`` as a denoiser.

    ``fn`` may be any callable, including an ``eqx.Module`` whose arrays are trainable.

    >>> den = FunctionDenoiser(lambda y, s: y / (1.0 + s**2))
    >>> den(jnp.ones((1, 2)), 1.0).tolist()
    [[0.5, 0.5]]
    """

    fn: Callable[[Array, Array], Array]

    def __check_init__(self):
        if not callable(self.fn):
            raise ValueError(f"`fn` must be callable, got fn={self.fn!r}")

    def __call__(self, y, noise_level):
        return self.fn(y, noise_level)


class PredictionDenoiser(AbstractDenoiser):
    """Wrap ``model(x, conditioning) -> prediction`` trained under ``process``.

    ``x = alpha(s) y`` has shape ``(batch, *event)`` and ``conditioning`` shape
    ``(batch,)``; ``prediction`` is ``"eps"``, ``"v"`` or ``"x0"`` (see the module doc).

    >>> import jax.numpy as jnp
    >>> eps_model = lambda x, lam: jnp.zeros_like(x)  # predicts no noise at all
    >>> den = PredictionDenoiser(eps_model, "eps", "vp")
    >>> den(jnp.ones((1, 2)), 0.5).tolist()  # D = y - s * 0
    [[1.0, 1.0]]
    """

    model: Callable[[Array, Array], Array]
    prediction: str = eqx.field(static=True)
    process: AbstractProcess = VP()
    conditioning: str | Callable[[Array], Array] = "logsnr"

    def __init__(
        self,
        model: Callable[[Array, Array], Array],
        prediction: str = "eps",
        process: AbstractProcess | str = "vp",
        conditioning: str | Callable[[Array], Array] = "logsnr",
    ):
        if not callable(model):
            raise ValueError(f"`model` must be callable, got model={model!r}")
        self.model = model
        self.prediction = check_choice("prediction", prediction, PREDICTIONS)
        self.process = process_from_name(process)
        if not callable(conditioning):
            check_choice("conditioning", conditioning, CONDITIONINGS)
        self.conditioning = conditioning

    def model_conditioning(self, noise_level: Array) -> Array:
        """The model's noise input for EDM noise levels ``noise_level`` (shape ``(batch,)``)."""
        s = noise_level
        if callable(self.conditioning):
            return self.conditioning(s)
        if self.conditioning == "noise_level":
            return s
        if self.conditioning == "edm":
            return 0.25 * jnp.log(s)
        logsnr = -2.0 * jnp.log(s)
        if self.conditioning == "logsnr":
            return logsnr
        return self.process.sigma(logsnr)

    def __call__(self, y, noise_level):
        batch = y.shape[0]
        s_batch = jnp.broadcast_to(jnp.asarray(noise_level, y.dtype), (batch,))
        s = _broadcast_level(s_batch, y)
        logsnr = -2.0 * jnp.log(s)
        alpha = self.process.alpha(logsnr)
        sigma = self.process.sigma(logsnr)
        x = alpha * y
        pred = self.model(x, self.model_conditioning(s_batch))
        if self.prediction == "x0":
            return pred
        if self.prediction == "eps":
            return y - s * pred
        if isinstance(self.process, Flow):
            return x - sigma * pred
        r2 = alpha**2 + sigma**2
        return alpha * x / r2 - sigma / jnp.sqrt(r2) * pred
