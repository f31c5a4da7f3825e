"""Schedule families by name, and schedules to and from plain (JSON-able) configs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from .base import AbstractSchedule
from .decoupled import DecoupledTimes
from .fixed import EDM, Cosine, Laplace, LogSNRLinear, Polyexponential, Tangent, VPLinear
from .learnable import MonotoneCubic, MonotoneMLP, PiecewiseLinear
from .ranged import RangedSchedule
from .tabulated import Tabulated

_CLASSES: tuple[type[AbstractSchedule], ...] = (
    EDM,
    LogSNRLinear,
    Polyexponential,
    Tangent,
    Cosine,
    Laplace,
    VPLinear,
    Tabulated,
    PiecewiseLinear,
    MonotoneCubic,
    MonotoneMLP,
    RangedSchedule,
    DecoupledTimes,
)
CLASSES: dict[str, type[AbstractSchedule]] = {c.family: c for c in _CLASSES}

#: Every family name the command line and ``make_schedule`` accept, with its constructor.
FAMILIES: dict[str, Callable[..., AbstractSchedule]] = {
    "edm": EDM,
    "karras": EDM,
    "logsnr-linear": LogSNRLinear,
    "exponential": LogSNRLinear,
    "polyexponential": Polyexponential,
    "tangent": Tangent,
    "cosine": Cosine,
    "shifted-cosine": Cosine,
    "laplace": Laplace,
    "vp-linear": VPLinear,
    "ddpm-linear": Tabulated.ddpm_linear,
    "scaled-linear": Tabulated.scaled_linear,
    "tabulated": Tabulated,
    "piecewise-linear": PiecewiseLinear.uniform,
    "monotone-cubic": MonotoneCubic.uniform,
}


def make_schedule(name: str, **params) -> AbstractSchedule:
    """Build a schedule family by name, e.g. ``make_schedule("edm", rho=5.0)``.

    >>> make_schedule("tangent", gamma=2.0).family
    'tangent'
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown schedule family {name!r}; known: {', '.join(FAMILIES)}")
    try:
        return FAMILIES[name](**params)
    except TypeError as e:
        raise ValueError(f"bad parameters {params!r} for schedule family {name!r}: {e}") from None


def schedule_to_config(schedule: AbstractSchedule) -> dict:
    """A JSON-able dict ``{"family": ..., "params": {...}}`` that rebuilds ``schedule``.

    >>> schedule_to_config(EDM(rho=7.0))
    {'family': 'edm', 'params': {'sigma_min': 0.002, 'sigma_max': 80.0, 'rho': 7.0}}
    """
    params = {}
    for f in dataclasses.fields(schedule):
        value = getattr(schedule, f.name)
        if value is None:
            params[f.name] = None
            continue
        if isinstance(value, AbstractSchedule):
            params[f.name] = schedule_to_config(value)
            continue
        arr = np.asarray(value)
        params[f.name] = arr.item() if arr.ndim == 0 else arr.tolist()
    return {"family": type(schedule).family, "params": params}


def schedule_from_config(config: dict) -> AbstractSchedule:
    """Inverse of :func:`schedule_to_config`; errors name the bad family or parameter."""
    if not isinstance(config, dict) or "family" not in config:
        raise ValueError(f"a schedule config needs a 'family' key, got {config!r:.200}")
    family = config["family"]
    if family not in CLASSES:
        raise ValueError(f"unknown schedule family {family!r}; known: {', '.join(CLASSES)}")
    cls = CLASSES[family]
    params = dict(config.get("params", {}))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(params) - set(fields)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)} for schedule family {family!r}")
    kwargs = {}
    for name, value in params.items():
        if isinstance(value, dict) and "family" in value:
            kwargs[name] = schedule_from_config(value)
        elif value is None:
            kwargs[name] = None
        elif fields[name].metadata.get("static", False):
            if value is None or isinstance(value, (list, tuple)):
                kwargs[name] = None if value is None else tuple(float(v) for v in value)
            else:
                kwargs[name] = float(value)
        else:
            kwargs[name] = jnp.asarray(value, dtype=jnp.result_type(float))
    return cls(**kwargs)
