"""The named baseline schedules that schedopt compares a learned schedule against.

All share the noise range ``[sigma_min, sigma_max]`` so that only the spacing differs.
``tangent-optimal`` needs the data spectrum (the eigenvalue-determined coefficient of
Sun, Poor & Zhang's tangent law).
"""

from __future__ import annotations

from .gaussian.asymptotics import optimal_tangent_gamma
from .gaussian.spectrum import Spectrum
from .schedules import EDM, Cosine, LogSNRLinear, Tangent, VPLinear
from .schedules.base import AbstractSchedule

#: Human-readable description of each baseline name.
BASELINES: dict[str, str] = {
    "edm-rho7": "EDM / Karras, rho = 7",
    "logsnr-uniform": "logSNR-uniform (= exponential / log-uniform sigma)",
    "uniform-t": "uniform t on DDPM's linear-beta VP schedule",
    "cosine": "cosine (logSNR = -2 log tan)",
    "tangent-1": "tangent law, gamma = 1",
    "tangent-optimal": "tangent law, gamma* = (sum c / sum 1/c)^(1/4)",
}


def baseline_schedules(
    spectrum: Spectrum | None = None, sigma_min: float = 0.002, sigma_max: float = 80.0
) -> dict[str, AbstractSchedule]:
    """Every baseline as a schedule; ``tangent-optimal`` only when ``spectrum`` is given.

    >>> sorted(baseline_schedules())[:2]
    ['cosine', 'edm-rho7']
    """
    ends = dict(sigma_min=sigma_min, sigma_max=sigma_max)
    out: dict[str, AbstractSchedule] = {
        "edm-rho7": EDM(rho=7.0, **ends),
        "logsnr-uniform": LogSNRLinear(**ends),
        "uniform-t": VPLinear(**ends),
        "cosine": Cosine(**ends),
        "tangent-1": Tangent(gamma=1.0, **ends),
    }
    if spectrum is not None:
        out["tangent-optimal"] = Tangent(gamma=optimal_tangent_gamma(spectrum), **ends)
    return out
