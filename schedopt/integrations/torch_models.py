"""Loading PyTorch denoisers for schedopt: diffusers ``UNet2DModel`` directories, pipeline
directories and ``module:factory`` specs, and a small ``UNet2DModel`` for the 8x8 digits.

:func:`load_torch_denoiser` takes

- a directory written by ``UNet2DModel.save_pretrained`` (``config.json`` with
  ``"_class_name": "UNet2DModel"`` and its weights). The noise schedule it was trained
  with comes from a ``scheduler_config.json`` in the same directory
  (``scheduler.save_pretrained(path)``) or in ``../scheduler`` (a pipeline's layout); with
  none, diffusers' ``DDPMScheduler()`` defaults (1000 linear betas from 1e-4 to 0.02,
  epsilon prediction) are assumed and the description says so;
- a pipeline directory (``unet/`` and ``scheduler/`` inside, ``DDPMPipeline.save_pretrained``);
- ``module:factory``: an importable module and a function of no arguments returning a
  :class:`~schedopt.integrations.torch.TorchDenoiser` (used as it is) or a torch module
  (read as a UNet directory without a scheduler config would be).

torch and diffusers are imported when these functions run.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

from .torch import TorchDenoiser, prediction_name

#: The model class a ``--torch-model`` directory must hold.
UNET_CLASS = "UNet2DModel"


@dataclasses.dataclass(frozen=True)
class LoadedTorchModel:
    """What :func:`load_torch_denoiser` found: the denoiser, the event shape of its input
    (``(channels, height, width)`` of a UNet; ``None`` when a factory does not say), and a
    JSON-able description for a card's fingerprint."""

    denoiser: TorchDenoiser
    event_shape: tuple[int, ...] | None
    description: dict


def _unet_event_shape(config: dict) -> tuple[int, ...]:
    size = config.get("sample_size")
    if isinstance(size, int):
        size = (size, size)
    return (int(config.get("in_channels", 3)), *(int(n) for n in size))


def _read_config(spec: str, directory: Path) -> dict:
    path = directory / "config.json"
    if not path.is_file():
        raise ValueError(
            f"torch_model={spec!r} is not a diffusers {UNET_CLASS} directory: {path} is missing "
            "(write one with UNet2DModel.save_pretrained(path))"
        )
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"torch_model={spec!r}: {path} is not valid JSON ({e})") from None
    name = config.get("_class_name") if isinstance(config, dict) else None
    if name != UNET_CLASS:
        raise ValueError(
            f"torch_model={spec!r} is not a diffusers {UNET_CLASS} directory: {path} has "
            f"_class_name={name!r}"
        )
    return config


def _scheduler(directories: list[Path]):
    """The scheduler saved in the first directory holding ``scheduler_config.json``."""
    import diffusers

    for directory in directories:
        path = directory / "scheduler_config.json"
        if path.is_file():
            name = json.loads(path.read_text()).get("_class_name", "DDPMScheduler")
            cls = getattr(diffusers, name, None)
            if cls is None:
                raise ValueError(f"{path}: diffusers has no scheduler class {name!r}")
            return cls.from_pretrained(directory), str(path)
    return diffusers.DDPMScheduler(), "DDPMScheduler() defaults (no scheduler_config.json found)"


def load_torch_denoiser(
    spec: str, *, prediction: str | None = None, device: str | None = None
) -> LoadedTorchModel:
    """The :class:`~schedopt.integrations.torch.TorchDenoiser` of a diffusers UNet directory,
    a pipeline directory or ``module:factory`` (see the module docstring).

    ``prediction`` overrides the scheduler config's ``prediction_type``; ``device`` moves a
    loaded UNet (e.g. ``"cuda"``). A path that is not such a directory raises a
    ``ValueError`` naming it.
    """
    spec = str(spec)
    if prediction is not None:
        prediction = prediction_name(prediction)
    path = Path(spec)
    if path.exists():
        if not path.is_dir():
            raise ValueError(
                f"torch_model={spec!r} is a file; pass the directory that "
                f"{UNET_CLASS}.save_pretrained wrote (or a pipeline directory)"
            )
        unet_dir = path / "unet" if (path / "unet" / "config.json").is_file() else path
        config = _read_config(spec, unet_dir)
        from diffusers import UNet2DModel

        module = UNet2DModel.from_pretrained(unet_dir, low_cpu_mem_usage=False).eval()
        if device is not None:
            module = module.to(device)
        places = [unet_dir, path / "scheduler", unet_dir.parent / "scheduler"]
        scheduler, source = _scheduler(places)
        denoiser = TorchDenoiser.from_scheduler(module, scheduler, prediction=prediction)
        return LoadedTorchModel(
            denoiser, _unet_event_shape(config), _describe(spec, denoiser, type(scheduler), source)
        )
    if ":" not in spec:
        raise ValueError(
            f"torch_model={spec!r}: no such directory, and not a module:factory spec "
            "(e.g. my_models:make_denoiser)"
        )
    return _from_factory(spec, prediction)


def _from_factory(spec: str, prediction: str | None) -> LoadedTorchModel:
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(
            f"torch_model={spec!r}: cannot import {attr!r} from {module_name!r} ({e})"
        ) from None
    if not callable(factory):
        raise ValueError(f"torch_model={spec!r}: {attr!r} is not callable")
    made = factory()
    if isinstance(made, TorchDenoiser):
        if prediction is not None and prediction != made.prediction:
            raise ValueError(
                f"prediction={prediction!r} conflicts with the factory's denoiser "
                f"(prediction={made.prediction!r}); set it in the factory"
            )
        return LoadedTorchModel(made, None, _describe(spec, made, None, "the factory"))
    import diffusers

    scheduler = diffusers.DDPMScheduler()
    denoiser = TorchDenoiser.from_scheduler(made, scheduler, prediction=prediction)
    source = "DDPMScheduler() defaults (the factory returned a module)"
    return LoadedTorchModel(denoiser, None, _describe(spec, denoiser, type(scheduler), source))


def _describe(spec: str, denoiser: TorchDenoiser, scheduler_cls, source: str) -> dict:
    out = {
        "torch_model": spec,
        "prediction": denoiser.prediction,
        "time_input": denoiser.time_input,
        "schedule_from": source,
        "evaluations_per_call": denoiser.evaluations_per_call,
    }
    if scheduler_cls is not None:
        out["scheduler"] = scheduler_cls.__name__
    if denoiser.noise_range is not None:
        out["noise_range"] = list(denoiser.noise_range)
    return out


def digits_unet(
    block_out_channels: tuple[int, ...] = (32, 64),
    *,
    attention: bool = True,
    layers_per_block: int = 1,
    norm_num_groups: int = 8,
    seed: int = 0,
    dtype=None,
):
    """A diffusers ``UNet2DModel`` for ``(1, 8, 8)`` digits (channels first), in eval mode.

    ``attention`` puts self-attention in the last down block and the first up block.
    """
    import torch
    from diffusers import UNet2DModel

    levels = len(block_out_channels)
    down = ["DownBlock2D"] * levels
    up = ["UpBlock2D"] * levels
    if attention:
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    torch.manual_seed(seed)
    model = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=tuple(block_out_channels),
        down_block_types=tuple(down),
        up_block_types=tuple(up),
        layers_per_block=layers_per_block,
        norm_num_groups=norm_num_groups,
    ).eval()
    return model if dtype is None else model.to(dtype)


__all__ = ["UNET_CLASS", "LoadedTorchModel", "digits_unet", "load_torch_denoiser"]
