"""Input/output: atomic files, schedule cards, checkpoints, conversions and exporters.

Every name is imported from its submodule on first use, so that importing ``schedopt.io``
(or one of its light submodules, such as :mod:`schedopt.io.atomic`) imports neither orbax
nor flax.
"""

from .._lazy import lazy_getattr

#: public name -> the submodule that defines it (imported on first use)
_SOURCES = {
    **dict.fromkeys(("atomic_write_bytes", "atomic_write_json"), "atomic"),
    **dict.fromkeys(
        (
            "CARD_VERSION",
            "card_process",
            "card_schedule",
            "load_card",
            "make_card",
            "regrid_card",
            "save_card",
            "validate_card",
        ),
        "card",
    ),
    **dict.fromkeys(
        ("OptimizationCheckpointer", "RestoredState", "load_schedule", "save_schedule"),
        "checkpoint",
    ),
    **dict.fromkeys(
        (
            "check_final_zero_grid",
            "fit_noise_levels",
            "from_process",
            "grid_for_discrete_model",
            "grid_from_discrete_model",
            "noise_levels_to_timesteps",
            "rescale_noise_levels",
            "timesteps_to_noise_levels",
            "to_process",
        ),
        "convert",
    ),
    **dict.fromkeys(
        (
            "FORMATS",
            "as_card",
            "card_from_sigmas",
            "comfyui_sigmas",
            "diffusers_schedule",
            "export",
            "kdiffusion_sigmas",
            "load_source",
            "model_grid",
            "numpy_arrays",
            "read_sigmas",
        ),
        "export",
    ),
    **dict.fromkeys(("NoiseSchedule", "ScheduleConstant"), "flax_schedule"),
}


__getattr__ = lazy_getattr(__name__, globals(), _SOURCES)


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
