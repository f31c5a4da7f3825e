"""Closed-form Gaussian models in torch, to check an integration without any weights.

For data ``N(mu, diag c)`` the exact denoiser in EDM variables (``y = x / alpha``,
``s = sigma / alpha``) is ``D(y; s) = mu + c / (c + s^2) (y - mu)``. The classes here wrap
it in the signatures diffusers' and k-diffusion's samplers call, record the noise level
every call is made at (recovered, as a network would, from the timestep it is given) and
count the calls:

- :class:`VPModel`: a discrete VP network ``model(x, t) -> eps`` (or ``v``) on an
  ``alphas_cumprod`` table (Stable Diffusion's UNet; k-diffusion's
  ``DiscreteEpsDDPMDenoiser`` inner model), fractional ``t`` read log-linearly;
- :class:`FlowModel`: a flow network ``model(x, t) -> velocity`` with ``t = 1000 sigma``
  (SD3, Flux: ``x = (1 - sigma) x0 + sigma eps``, velocity ``eps - x0``);
- :class:`EDMModel`: an EDM-preconditioned network ``F(c_in x, c_noise)`` with
  ``c_noise = log(s) / 4`` (diffusers' ``EDMEulerScheduler``);
- :class:`Denoiser`: k-diffusion's ``D(x, sigma)`` for VE models.

:func:`euler_reference` is the exact Euler (= DDIM) recursion on the same data: one step
from ``s`` to ``s'`` multiplies ``y - mu`` by ``(c + s s') / (c + s^2)``.

torch is imported when these are used, not when :mod:`schedopt` is.
"""

from __future__ import annotations

import math

import numpy as np


def _torch():
    import torch

    return torch


class GaussianData:
    """``N(mean, diag(variance))`` data and its exact denoiser (float64 tensors).

    >>> data = GaussianData([0.5, -1.0], [0.25, 4.0])
    >>> [round(v, 4) for v in data.denoise(data.mean + 1.0, 1.0).tolist()]
    [0.7, -0.2]
    """

    def __init__(self, mean, variance):
        torch = _torch()
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.variance = torch.as_tensor(variance, dtype=torch.float64)

    def denoise(self, y, s):
        """``mu + c / (c + s^2) (y - mu)``; ``s = inf`` gives ``mu``."""
        torch = _torch()
        s = torch.as_tensor(s, dtype=torch.float64).reshape(-1, *([1] * (y.ndim - 1)))
        gain = torch.where(torch.isinf(s), 0.0, self.variance / (self.variance + s**2))
        return self.mean + gain * (y.to(torch.float64) - self.mean)


class _Recorder:
    """Counts calls and records the noise level of each (one per batch)."""

    def __init__(self, data: GaussianData):
        self.data = data
        self.noise_levels: list[float] = []

    @property
    def calls(self) -> int:
        return len(self.noise_levels)

    def _record(self, s) -> None:
        torch = _torch()
        s = torch.as_tensor(s, dtype=torch.float64).reshape(-1)
        self.noise_levels.append(float(s[0]))


class VPModel(_Recorder):
    """``model(x, t)`` of a discrete VP model: ``eps`` (``prediction="epsilon"``) or ``v``.

    ``x = alpha (x0 + s eps)`` with ``alpha = 1 / sqrt(1 + s^2)``; the noise level of a
    (fractional) timestep ``t`` interpolates the table's ``log s`` linearly, as diffusers'
    ``_sigma_to_t`` and k-diffusion's ``DiscreteSchedule`` assume.
    """

    def __init__(self, data: GaussianData, alphas_cumprod, prediction: str = "epsilon"):
        super().__init__(data)
        abar = np.asarray(alphas_cumprod, dtype=np.float64)
        self.log_sigmas = np.log(np.sqrt((1 - abar) / abar))
        self.prediction = prediction

    def noise_level(self, t) -> float:
        t = float(np.asarray(t, dtype=np.float64).reshape(-1)[0])
        return float(np.exp(np.interp(t, np.arange(self.log_sigmas.size), self.log_sigmas)))

    def __call__(self, x, t, *args, **kwargs):
        torch = _torch()
        s = self.noise_level(t.detach().cpu().numpy() if torch.is_tensor(t) else t)
        self._record(s)
        alpha = 1.0 / math.sqrt(1.0 + s * s)
        y = x.to(torch.float64) / alpha
        x0 = self.data.denoise(y, s)
        eps = (y - x0) / s
        out = eps if self.prediction == "epsilon" else alpha * eps - s * alpha * x0
        return out.to(x.dtype)


class FlowModel(_Recorder):
    """``model(x, t)`` of a flow model: the velocity ``eps - x0`` at ``sigma = t / scale``.

    ``x = (1 - sigma) x0 + sigma eps``, i.e. ``s = sigma / (1 - sigma)``, ``y = x / (1 - sigma)``.
    ``scale`` is 1000 for diffusers' SD3 and FlowMatch schedulers (Flux's pipeline divides
    by 1000 before the transformer: pass ``scale=1``).
    """

    def __init__(self, data: GaussianData, scale: float = 1000.0):
        super().__init__(data)
        self.scale = scale

    def __call__(self, x, t, *args, **kwargs):
        torch = _torch()
        sigma = float(torch.as_tensor(t, dtype=torch.float64).reshape(-1)[0]) / self.scale
        if sigma >= 1.0:  # pure noise: x = eps, x0 = mu
            self._record(math.inf)
            return (x.to(torch.float64) - self.data.mean).to(x.dtype)
        s = sigma / (1.0 - sigma)
        self._record(s)
        y = x.to(torch.float64) / (1.0 - sigma)
        x0 = self.data.denoise(y, s)
        eps = (y - x0) / s if s > 0 else torch.zeros_like(y)
        return (eps - x0).to(x.dtype)


class EDMModel(_Recorder):
    """``F(c_in x, c_noise)`` of an EDM-preconditioned model (Karras et al., "Elucidating the
    Design Space of Diffusion-Based Generative Models"), as diffusers' EDM schedulers call it:
    ``D = c_skip x + c_out F`` with ``c_in = 1 / sqrt(s^2 + sigma_data^2)``,
    ``c_noise = log(s) / 4`` and ``c_out = +- s sigma_data / sqrt(s^2 + sigma_data^2)``
    (``-`` for ``prediction="v_prediction"``)."""

    def __init__(self, data: GaussianData, sigma_data: float = 0.5, prediction: str = "epsilon"):
        super().__init__(data)
        self.sigma_data = sigma_data
        self.sign = 1.0 if prediction == "epsilon" else -1.0

    def __call__(self, x_in, c_noise, *args, **kwargs):
        torch = _torch()
        s = math.exp(4.0 * float(torch.as_tensor(c_noise, dtype=torch.float64).reshape(-1)[0]))
        self._record(s)
        norm = math.sqrt(s * s + self.sigma_data**2)
        x = x_in.to(torch.float64) * norm
        c_skip = self.sigma_data**2 / norm**2
        c_out = self.sign * s * self.sigma_data / norm
        return ((self.data.denoise(x, s) - c_skip * x) / c_out).to(x_in.dtype)


class Denoiser(_Recorder):
    """k-diffusion's ``model(x, sigma) -> D(x; sigma)`` of a VE model (``alpha = 1``)."""

    def __call__(self, x, sigma, *args, **kwargs):
        self._record(sigma)
        return self.data.denoise(x, sigma).to(x.dtype)


def euler_reference(data: GaussianData, y0, noise_levels):
    """Euler (= DDIM) over ``noise_levels`` (ending in 0) from ``y0``, in closed form.

    >>> torch = _torch()
    >>> data = GaussianData([0.0], [1.0])
    >>> euler_reference(data, torch.tensor([[2.0]]), [1.0, 0.0]).item()
    1.0
    """
    torch = _torch()
    e = y0.to(torch.float64) - data.mean
    levels = [float(s) for s in noise_levels]
    for s, s_next in zip(levels[:-1], levels[1:], strict=True):
        e = e * (data.variance + s * s_next) / (data.variance + s * s)
    return data.mean + e


__all__ = [
    "Denoiser",
    "EDMModel",
    "FlowModel",
    "GaussianData",
    "VPModel",
    "euler_reference",
]
