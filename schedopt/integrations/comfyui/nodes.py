"""The ComfyUI node :class:`ScheduleSigmas` and the function behind it, :func:`node_sigmas`.

ComfyUI's SIGMAS are a 1-D float tensor of ``N + 1`` levels ending in 0, in the model's
own variable: EDM noise levels ``s`` for eps / v models (Stable Diffusion, EDM), flow
sigmas ``t = s / (1 + s)`` for flow (``CONST``) models (SD3, Flux, Wan). Written against
ComfyUI's classic node interface (``INPUT_TYPES``, ``RETURN_TYPES``, ``FUNCTION``), so the
class is tested directly, without ComfyUI.
"""

from __future__ import annotations

import json
from pathlib import Path

ENDPOINTS = ["rescale", "clip"]


def _is_flow(model_sampling) -> bool:
    """ComfyUI composes model sampling from a prediction class; flow models use ``CONST``."""
    return any(c.__name__ == "CONST" for c in type(model_sampling).__mro__)


def _is_card(path: Path) -> bool:
    if path.is_dir():
        return True
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "card_version" in data


def node_sigmas(path, steps: int = 0, endpoints: str = "rescale", model_sampling=None) -> list:
    """The SIGMAS values for a card or sigma file at ``steps`` steps (0: its own).

    A card (run directory or ``schedule.json``) is regridded from its continuous schedule;
    a sigma file (a k-diffusion / ComfyUI / diffusers export) is returned as written at its
    own step count and interpolated in ``log s`` otherwise. With ``model_sampling`` (the
    MODEL's ``model_sampling`` object) the levels are fitted into an eps / v model's
    ``[sigma_min, sigma_max]`` (``endpoints``: ``"rescale"`` or ``"clip"``, refused when it
    would repeat a level); a flow model gets a card as flow sigmas. Without a model a card
    is given in its own process's variable.
    """
    from schedopt.io.export import card_from_sigmas, load_source, model_grid, read_sigmas

    if endpoints not in ENDPOINTS:
        raise ValueError(f"`endpoints` must be one of {ENDPOINTS}; got endpoints={endpoints!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(
            f"`steps` must be an integer >= 0 (0: the file's own), got steps={steps!r}"
        )
    path = Path(str(path).strip()).expanduser()
    flow_model = model_sampling is not None and _is_flow(model_sampling)
    target = None
    if model_sampling is not None and not flow_model:
        target = (float(model_sampling.sigma_min), float(model_sampling.sigma_max))
    fit = {"model": target, "endpoints": endpoints if target else None}
    if _is_card(path):
        card = load_source(path)
        levels = model_grid(card, steps or None, **fit)["noise_levels"]
        if flow_model or (model_sampling is None and card["process"] == "flow"):
            return [s / (1.0 + s) for s in levels]
        return list(levels)
    values = read_sigmas(path)
    if steps in (0, values.size - 1) and target is None:
        return values.tolist()
    return list(model_grid(card_from_sigmas(values), steps or None, **fit)["noise_levels"])


class ScheduleSigmas:
    """ComfyUI node: SIGMAS from a schedopt card or sigma file, for any number of steps."""

    CATEGORY = "sampling/custom_sampling/schedulers"
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"
    DESCRIPTION = (
        "Loads a schedopt schedule card (run directory or schedule.json) or a sigma file "
        "(k-diffusion .json, ComfyUI .txt, diffusers .json) and outputs SIGMAS for `steps` "
        "steps (0: the file's own). With a MODEL the levels fit its noise range (eps/v "
        "models: rescale or clip) or become flow sigmas (flow models)."
    )

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802 - ComfyUI's name
        return {
            "required": {
                "path": ("STRING", {"default": "runs/demo/schedule.json", "multiline": False}),
                "steps": ("INT", {"default": 0, "min": 0, "max": 10000}),
                "endpoints": (ENDPOINTS, {"default": "rescale"}),
            },
            "optional": {"model": ("MODEL",)},
        }

    def get_sigmas(self, path, steps, endpoints, model=None):
        import torch

        sampling = None if model is None else model.get_model_object("model_sampling")
        values = node_sigmas(path, steps, endpoints, sampling)
        return (torch.tensor(values, dtype=torch.float32),)


NODE_CLASS_MAPPINGS = {"SchedoptScheduleSigmas": ScheduleSigmas}
NODE_DISPLAY_NAME_MAPPINGS = {"SchedoptScheduleSigmas": "schedopt schedule (SIGMAS)"}
