"""Schedules: the ``AbstractSchedule`` interface, fixed and learnable families, processes."""

from .base import (
    AbstractEndpointSchedule,
    AbstractRescaledSchedule,
    AbstractSchedule,
    grid,
    grid_times,
)
from .decoupled import DecoupledTimes
from .fixed import EDM, Cosine, Laplace, LogSNRLinear, Polyexponential, Tangent, VPLinear
from .learnable import AbstractKnotSchedule, MonotoneCubic, MonotoneMLP, PiecewiseLinear
from .processes import VE, VP, AbstractProcess, Flow, process_from_name
from .ranged import RangedSchedule
from .registry import (
    FAMILIES,
    make_schedule,
    schedule_from_config,
    schedule_to_config,
)
from .tabulated import Tabulated

__all__ = [
    "AbstractEndpointSchedule",
    "AbstractKnotSchedule",
    "AbstractProcess",
    "AbstractRescaledSchedule",
    "AbstractSchedule",
    "Cosine",
    "DecoupledTimes",
    "EDM",
    "FAMILIES",
    "Flow",
    "Laplace",
    "LogSNRLinear",
    "MonotoneCubic",
    "MonotoneMLP",
    "PiecewiseLinear",
    "Polyexponential",
    "RangedSchedule",
    "Tabulated",
    "Tangent",
    "VE",
    "VP",
    "VPLinear",
    "grid",
    "grid_times",
    "make_schedule",
    "process_from_name",
    "schedule_from_config",
    "schedule_to_config",
]
