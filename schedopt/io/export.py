"""Exporters: a schedule card as the sigma lists and timesteps other libraries take.

Every exporter starts from a card (:mod:`schedopt.io.card`) and a number of steps ``N``
(default: the card's own grid), regrids the continuous schedule with ``final="zero"``
and writes:

==============  =================================================================  =========
format          content                                                            file
==============  =================================================================  =========
``k-diffusion`` ``N + 1`` sigmas (EDM noise levels), noisy first, ending in 0      ``.json``
``comfyui``     the same list, as the JSON array a SIGMAS input is built from     ``.json``
``diffusers``   ``sigmas`` (``N + 1``, ending 0), and for a discrete model         ``.json``
                ``timesteps`` (``N`` distinct decreasing integers) with notes
``numpy``       ``noise_levels``, ``t``, ``logsnr``, ``alpha``, ``sigma`` (and      ``.npz``
                ``timesteps``) arrays
``card``        the card regridded to ``N`` steps                                  ``.json``
==============  =================================================================  =========

``model`` names the discrete 1000-step model the export is for (``"scaled-linear"``:
Stable Diffusion 1.x/2.x/XL; ``"ddpm-linear"``: DDPM) or is a
:class:`~schedopt.schedules.Tabulated`; the sigmas are then expressed in that model's
range and integer timesteps are added. ``endpoints="rescale"`` (default) maps ``log s``
affinely from the card's range onto the model's, keeping the schedule's shape and all
``N`` steps; ``endpoints="clip"`` keeps the noise levels and clips them to the model's
range, so levels beyond it repeat the model's end (see :mod:`schedopt.io.convert`).
Without ``model`` the sigmas are the card's own noise levels.

>>> from schedopt.schedules import EDM
>>> from schedopt.io.card import make_card
>>> card = make_card(EDM(), num_steps=10)
>>> [round(s, 3) for s in kdiffusion_sigmas(card, 3)]
[80.0, 2.515, 0.002, 0.0]
>>> diffusers_schedule(card, 3, model="scaled-linear")["timesteps"]
[999, 550, 0]
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from .._checks import check_choice
from ..schedules.tabulated import Tabulated
from .atomic import atomic_write_bytes, atomic_write_json
from .card import load_card, regrid_card, schedopt_version, validate_card
from .convert import ENDPOINTS, grid_for_discrete_model, to_process

FORMATS = ("diffusers", "k-diffusion", "comfyui", "numpy", "card")
EXTENSIONS = {"numpy": ".npz"}

#: Discrete-time models by name: their ``alpha_bar`` tables.
MODELS = {
    "scaled-linear": Tabulated.scaled_linear,
    "ddpm-linear": Tabulated.ddpm_linear,
}

#: What diffusers documents about custom schedules (see the README section for sources).
DIFFUSERS_NOTES = {
    "sigmas": (
        "EulerDiscreteScheduler.set_timesteps(sigmas=...) takes this list as is, including "
        "the final 0 (it runs len(sigmas) - 1 steps and derives fractional timesteps from "
        "log sigma); pipelines whose __call__ has a `sigmas` argument pass it through."
    ),
    "timesteps": (
        "set_timesteps(timesteps=...) takes these integers (descending, distinct) on "
        "EulerDiscreteScheduler, DPMSolverMultistepScheduler, DPMSolverSinglestepScheduler, "
        "HeunDiscreteScheduler and DDPMScheduler; the scheduler appends its own final sigma "
        "(final_sigmas_type). Check other schedulers with "
        "inspect.signature(scheduler.set_timesteps)."
    ),
}


def _model_table(model: str | Tabulated | None) -> Tabulated | None:
    if model is None or isinstance(model, Tabulated):
        return model
    check_choice("model", model, tuple(MODELS))
    return MODELS[model]()


def _regridded(card: dict, num_steps: int | None) -> dict:
    validate_card(card)
    steps = card["grid"]["num_steps"] if num_steps is None else num_steps
    return regrid_card(card, steps, final="zero")


def _levels_for(card: dict, model, endpoints: str) -> tuple[list[float], dict | None]:
    """The grid's noise levels, expressed for ``model`` when one is given."""
    check_choice("endpoints", endpoints, ENDPOINTS)
    levels = card["grid"]["noise_levels"]
    table = _model_table(model)
    if table is None:
        return levels, None
    ends = card["endpoints"]
    discrete = grid_for_discrete_model(
        levels,
        table,
        endpoints=endpoints,
        source_range=(ends["sigma_min"], ends["sigma_max"]),
    )
    return discrete["target_noise_levels"], discrete


def kdiffusion_sigmas(
    card: dict, num_steps: int | None = None, *, model=None, endpoints: str = "rescale"
) -> list[float]:
    """``N + 1`` noise levels ending in 0, for k-diffusion's samplers (``sample_euler``...).

    Use them as ``sigmas = torch.tensor(values)``; for a discrete model wrapped by
    k-diffusion's ``CompVisDenoiser``/``DiscreteEpsDDPMDenoiser`` pass ``model`` so that
    the levels lie in the model's range.
    """
    return _levels_for(_regridded(card, num_steps), model, endpoints)[0]


def comfyui_sigmas(
    card: dict, num_steps: int | None = None, *, model=None, endpoints: str = "rescale"
) -> str:
    """The k-diffusion list as JSON text: ComfyUI's SIGMAS is this 1-D list as a tensor.

    >>> from schedopt.schedules import LogSNRLinear
    >>> from schedopt.io.card import make_card
    >>> comfyui_sigmas(make_card(LogSNRLinear(sigma_min=1.0, sigma_max=4.0), num_steps=2))
    '[4.0, 1.0, 0.0]'
    """
    return json.dumps(kdiffusion_sigmas(card, num_steps, model=model, endpoints=endpoints))


def diffusers_schedule(
    card: dict, num_steps: int | None = None, *, model=None, endpoints: str = "rescale"
) -> dict:
    """``sigmas`` (and, with ``model``, integer ``timesteps``) for diffusers' schedulers.

    The returned dict also records the model, the endpoint handling, the sigmas the
    model sees at the integer timesteps (``timestep_sigmas``), the process's
    ``flow_sigmas = s / (1 + s)`` when the card is for a flow model, and ``notes`` on which
    schedulers accept ``sigmas=`` or ``timesteps=``.
    """
    card = _regridded(card, num_steps)
    sigmas, discrete = _levels_for(card, model, endpoints)
    out = {
        "format": "diffusers",
        "num_steps": card["grid"]["num_steps"],
        "model": model if isinstance(model, str) or model is None else "tabulated",
        "endpoints": endpoints if discrete is not None else None,
        "sigmas": sigmas,
    }
    if discrete is not None:
        out["timesteps"] = discrete["timesteps"]
        out["timestep_sigmas"] = discrete["sigmas"]
    if card["process"] == "flow":
        _, flow_sigma = to_process(sigmas, "flow")
        out["flow_sigmas"] = flow_sigma.tolist()
    out["notes"] = dict(DIFFUSERS_NOTES)
    out["schedopt_version"] = schedopt_version()
    return out


def numpy_arrays(
    card: dict, num_steps: int | None = None, *, model=None, endpoints: str = "rescale"
) -> dict[str, np.ndarray]:
    """The grid as float64 arrays (``noise_levels`` has the final 0; the others do not).

    With ``model``: ``noise_levels`` are expressed in the model's range and integer
    ``timesteps`` are added.
    """
    card = _regridded(card, num_steps)
    levels, discrete = _levels_for(card, model, endpoints)
    grid = card["grid"]
    out = {name: np.asarray(grid[name], dtype=np.float64) for name in ("t", "logsnr")}
    out["noise_levels"] = np.asarray(levels, dtype=np.float64)
    alpha, sigma = to_process(out["noise_levels"][:-1], card["process"])
    out["alpha"], out["sigma"] = alpha, sigma
    if discrete is not None:
        out["timesteps"] = np.asarray(discrete["timesteps"], dtype=np.int64)
    return out


def load_source(path: str | os.PathLike, *, process: str = "ve") -> dict:
    """A card from a run directory, a card file, or an orbax schedule checkpoint.

    A checkpoint records neither process nor NFE: the card gets ``process`` and a
    10-step grid (exporters regrid it to the NFE asked for).
    """
    path = Path(path)
    if path.is_dir() and not (path / "schedule.json").exists():
        from .card import make_card
        from .checkpoint import load_schedule

        return make_card(load_schedule(path), num_steps=10, process=process)
    return load_card(path)


def export(
    card: dict,
    format: str,
    output: str | os.PathLike,
    *,
    num_steps: int | None = None,
    model=None,
    endpoints: str = "rescale",
) -> Path:
    """Write ``card`` in ``format`` (one of :data:`FORMATS`) to ``output``, atomically.

    >>> import tempfile, pathlib
    >>> from schedopt.schedules import EDM
    >>> from schedopt.io.card import make_card
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "sigmas.json"
    >>> path = export(make_card(EDM(), num_steps=5), "k-diffusion", out, num_steps=2)
    >>> json.loads(path.read_text())
    [80.0, 0.0019999999, 0.0]
    """
    check_choice("format", format, FORMATS)
    kwargs = dict(model=model, endpoints=endpoints)
    if format == "k-diffusion":
        return atomic_write_json(output, kdiffusion_sigmas(card, num_steps, **kwargs))
    if format == "comfyui":
        return atomic_write_bytes(
            output, (comfyui_sigmas(card, num_steps, **kwargs) + "\n").encode()
        )
    if format == "diffusers":
        return atomic_write_json(output, diffusers_schedule(card, num_steps, **kwargs))
    if format == "numpy":
        buffer = io.BytesIO()
        np.savez(buffer, **numpy_arrays(card, num_steps, **kwargs))
        return atomic_write_bytes(output, buffer.getvalue())
    if model is not None:
        raise ValueError("format='card' takes no `model`: a card stays in its own process")
    return atomic_write_json(output, _regridded(card, num_steps))


def default_output(run_dir: str | os.PathLike, format: str, num_steps: int) -> Path:
    """``RUN_DIR/exports/<format>-nfe<N>.<ext>`` (the card file's folder if given a file)."""
    run_dir = Path(run_dir)
    folder = run_dir if run_dir.is_dir() else run_dir.parent
    name = format.replace("-", "")
    return folder / "exports" / f"{name}-nfe{num_steps}{EXTENSIONS.get(format, '.json')}"


__all__ = [
    "FORMATS",
    "MODELS",
    "comfyui_sigmas",
    "default_output",
    "diffusers_schedule",
    "export",
    "kdiffusion_sigmas",
    "load_source",
    "numpy_arrays",
]
