"""Input/output: atomic files, schedule cards, checkpoints, conversions and exporters.

The Flax NNX module (``NoiseSchedule``, ``ScheduleConstant``) is imported on first use,
so that importing ``schedopt.io`` does not import flax.
"""

from .atomic import atomic_write_bytes, atomic_write_json
from .card import (
    CARD_VERSION,
    card_process,
    card_schedule,
    load_card,
    make_card,
    regrid_card,
    save_card,
    validate_card,
)
from .checkpoint import OptimizationCheckpointer, RestoredState, load_schedule, save_schedule
from .convert import (
    from_process,
    grid_for_discrete_model,
    grid_from_discrete_model,
    noise_levels_to_timesteps,
    rescale_noise_levels,
    timesteps_to_noise_levels,
    to_process,
)
from .export import (
    FORMATS,
    comfyui_sigmas,
    diffusers_schedule,
    export,
    kdiffusion_sigmas,
    load_source,
    numpy_arrays,
)

_LAZY = {"NoiseSchedule", "ScheduleConstant"}


def __getattr__(name):
    if name in _LAZY:
        from . import flax_schedule

        return getattr(flax_schedule, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CARD_VERSION",
    "FORMATS",
    "NoiseSchedule",
    "OptimizationCheckpointer",
    "RestoredState",
    "ScheduleConstant",
    "atomic_write_bytes",
    "atomic_write_json",
    "card_process",
    "card_schedule",
    "comfyui_sigmas",
    "diffusers_schedule",
    "export",
    "from_process",
    "grid_for_discrete_model",
    "grid_from_discrete_model",
    "kdiffusion_sigmas",
    "load_card",
    "load_schedule",
    "load_source",
    "make_card",
    "noise_levels_to_timesteps",
    "numpy_arrays",
    "regrid_card",
    "rescale_noise_levels",
    "save_card",
    "save_schedule",
    "timesteps_to_noise_levels",
    "to_process",
    "validate_card",
]
