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
    check_final_zero_grid,
    fit_noise_levels,
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
    as_card,
    card_from_sigmas,
    comfyui_sigmas,
    diffusers_schedule,
    export,
    kdiffusion_sigmas,
    load_source,
    model_grid,
    numpy_arrays,
    read_sigmas,
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
    "as_card",
    "atomic_write_bytes",
    "atomic_write_json",
    "card_from_sigmas",
    "card_process",
    "card_schedule",
    "check_final_zero_grid",
    "comfyui_sigmas",
    "diffusers_schedule",
    "export",
    "fit_noise_levels",
    "from_process",
    "grid_for_discrete_model",
    "grid_from_discrete_model",
    "kdiffusion_sigmas",
    "load_card",
    "load_schedule",
    "load_source",
    "make_card",
    "model_grid",
    "noise_levels_to_timesteps",
    "numpy_arrays",
    "read_sigmas",
    "regrid_card",
    "rescale_noise_levels",
    "save_card",
    "save_schedule",
    "timesteps_to_noise_levels",
    "to_process",
    "validate_card",
]
