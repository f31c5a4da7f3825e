"""Which diffusers schedulers take a schedopt export, found by running them.

For every scheduler of :data:`ROWS`, built from a config written here (Stable Diffusion
1.5's scaled-linear VP table, EDM's VE defaults, SD3's and Flux's flow configs, a
Wan-style flow-mode multistep config; no downloads), :func:`probe` passes the export
unchanged as ``sigmas=`` and as ``timesteps=``, and then the schedule through
:func:`~schedopt.integrations.diffusers.apply_schedule`, and runs a full denoising loop
on the closed-form Gaussian model of :mod:`schedopt.integrations.testing`. It checks the
noise levels the model is evaluated at (recovered from the timesteps it is given) against
the card's, the number of model calls against
:func:`~schedopt.integrations.diffusers.model_calls`, the output for NaN and, for Euler
schedulers, the output against the closed-form Euler recursion.

:func:`support_table` writes the results as the Markdown table of
``docs/diffusers_support.md`` (the README quotes it); the test suite regenerates it and
fails when the committed copies differ. Regenerate with
``python -m schedopt.integrations.diffusers_support --write``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from ..io.card import make_card
from ..io.export import diffusers_schedule
from ..schedules.fixed import EDM
from ..schedules.tabulated import Tabulated
from .diffusers import apply_schedule, model_calls, scheduler_kind
from .testing import EDMModel, FlowModel, GaussianData, VPModel, euler_reference

NUM_STEPS = 6
#: Relative tolerance on noise levels (diffusers computes in float32).
RTOL = 1e-4

SD15 = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "clip_sample": False,
    "prediction_type": "epsilon",
}
EDM_VE = {"sigma_min": 0.002, "sigma_max": 80.0, "sigma_data": 0.5, "rho": 7.0}
EDM_EXP = dict(EDM_VE, sigma_schedule="exponential")  # CosXL's
SD3 = {"num_train_timesteps": 1000, "shift": 3.0}
FLUX = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}
FLUX_MU = 1.15  # diffusers' calculate_shift at 4096 image tokens (1024 x 1024)
WAN = {
    "num_train_timesteps": 1000,
    "use_flow_sigmas": True,
    "flow_shift": 3.0,
    "prediction_type": "flow_prediction",
}
CONFIGS = {
    "SD1.5 VP": SD15,
    "EDM VE": EDM_VE,
    "EDM VE exponential": EDM_EXP,
    "SD3 flow": SD3,
    "Flux flow": FLUX,
    "Wan flow": WAN,
}

ROWS = [
    ("SD1.5 VP", name)
    for name in (
        "EulerDiscreteScheduler",
        "HeunDiscreteScheduler",
        "DPMSolverMultistepScheduler",
        "DPMSolverSinglestepScheduler",
        "DDPMScheduler",
        "LCMScheduler",
        "TCDScheduler",
        "PNDMScheduler",
        "DDIMScheduler",
        "EulerAncestralDiscreteScheduler",
        "LMSDiscreteScheduler",
        "KDPM2DiscreteScheduler",
        "KDPM2AncestralDiscreteScheduler",
        "DEISMultistepScheduler",
        "UniPCMultistepScheduler",
        "DPMSolverSDEScheduler",
        "SASolverScheduler",
    )
] + [
    ("EDM VE", "EDMEulerScheduler"),
    ("EDM VE exponential", "EDMEulerScheduler"),
    ("EDM VE", "EDMDPMSolverMultistepScheduler"),
    ("SD3 flow", "FlowMatchEulerDiscreteScheduler"),
    ("SD3 flow", "FlowMatchHeunDiscreteScheduler"),
    ("Flux flow", "FlowMatchEulerDiscreteScheduler"),
    ("Wan flow", "UniPCMultistepScheduler"),
    ("Wan flow", "DPMSolverMultistepScheduler"),
]
ARGUMENTS = ("sigmas", "timesteps", "apply_schedule")
EULER = ("EulerDiscreteScheduler", "EDMEulerScheduler", "FlowMatchEulerDiscreteScheduler")


@dataclasses.dataclass(frozen=True)
class Result:
    """One cell: ``ok`` when the loop ran at the expected levels and call count."""

    ok: bool
    text: str


def make_scheduler(config_name: str, class_name: str):
    """``diffusers.<class_name>`` built from :data:`CONFIGS` ``[config_name]`` (no download)."""
    import diffusers

    cls = getattr(diffusers, class_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls.from_config(CONFIGS[config_name])


def test_card(process: str, num_steps: int = NUM_STEPS) -> dict:
    """The card every probe exports: EDM's rho = 7 schedule on ``[0.002, 80]``."""
    return make_card(EDM(), num_steps=num_steps, process=process)


def _model(scheduler, data):
    kind = scheduler_kind(scheduler)
    cfg = scheduler.config
    if kind == "vp":
        return VPModel(data, scheduler.alphas_cumprod, prediction=cfg.prediction_type)
    if kind == "ve":
        return EDMModel(data, sigma_data=cfg.sigma_data, prediction=cfg.prediction_type)
    return FlowModel(data)


def denoising_loop(scheduler, model, noise, seed: int = 0):
    """diffusers' pipeline loop: ``scale_model_input``, model, ``step`` for each timestep."""
    import inspect

    import torch

    generator = torch.Generator().manual_seed(seed)
    extra = (
        {"generator": generator}
        if "generator" in inspect.signature(scheduler.step).parameters
        else {}
    )
    latents = noise * getattr(scheduler, "init_noise_sigma", 1.0)
    y0 = latents.clone()
    for t in scheduler.timesteps:
        scale = getattr(scheduler, "scale_model_input", None)
        inp = latents if scale is None else scale(latents, t)
        out = model(inp, t)
        latents = scheduler.step(out, t, latents, **extra).prev_sample
    return y0, latents


def _distinct(levels: list[float]) -> list[float]:
    out: list[float] = []
    for s in levels:
        if not out or not math.isclose(s, out[-1], rel_tol=1e-9):
            out.append(s)
    return out


def run_and_check(scheduler, expected_levels, expected_calls: int, data=None) -> Result:
    """Run the loop and compare levels, calls, finiteness (and Euler's output) with the card."""
    import torch

    data = data or GaussianData([0.3, -0.2, 0.1], [0.5, 0.05, 2.0])
    model = _model(scheduler, data)
    noise = torch.randn(2, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    y0, out = denoising_loop(scheduler, model, noise)
    expected = np.asarray(expected_levels, dtype=np.float64)
    seen = np.asarray(_distinct(model.noise_levels))
    if not torch.all(torch.isfinite(out)):
        return Result(False, f"runs {model.calls} calls, returns NaN")
    if seen.size != expected.size or not np.allclose(seen, expected, rtol=RTOL, atol=0):
        if seen.size == expected.size:
            err = float(np.max(np.abs(seen / expected - 1)))
            return Result(False, f"runs at other levels (up to {err:.0%} off the card's)")
        return Result(False, f"runs {seen.size} levels, not the card's {expected.size}")
    if model.calls != expected_calls:
        return Result(False, f"{model.calls} model calls, not {expected_calls}")
    name = type(scheduler).__name__
    if name in EULER:
        sigmas = scheduler.sigmas.double().numpy()
        levels = sigmas / (1 - sigmas) if name.startswith("FlowMatch") else sigmas
        if name.startswith("FlowMatch"):
            reference = euler_reference(data, y0 / (1 - sigmas[0]), levels)
        else:
            reference = euler_reference(data, y0, levels)
        if not torch.allclose(out.double(), reference, rtol=1e-4, atol=1e-5):
            return Result(False, "runs, but not the Euler steps of its sigmas")
    return Result(True, f"{model.calls} calls at the card's levels")


def _failure(e: Exception) -> Result:
    message = str(e).strip().splitlines()[0] if str(e).strip() else ""
    message = re.sub(r"<class '([\w.]+)'>", r"\1", message).split(". ")[0]
    return Result(False, f"{type(e).__name__}: {message[:100]}")


def probe(config_name: str, class_name: str, argument: str, num_steps: int = NUM_STEPS) -> Result:
    """Run one cell of the table (see the module docstring)."""
    import inspect

    scheduler = make_scheduler(config_name, class_name)
    kind = scheduler_kind(scheduler)
    card = test_card("flow" if kind == "flow" else "vp" if kind == "vp" else "ve", num_steps)
    mu = FLUX_MU if scheduler.config.get("use_dynamic_shifting", False) else None
    if argument == "apply_schedule":
        try:
            applied = apply_schedule(scheduler, card, mu=mu)
            result = run_and_check(
                applied.scheduler, applied.noise_levels[:-1], applied.model_calls
            )
        except Exception as e:  # noqa: BLE001 - a failure is a table cell
            return _failure(e)
        swapped = type(applied.scheduler).__name__ != class_name
        how = next((n for n in applied.notes if n.startswith(("sigmas=", "timesteps="))), "")
        how = how.split(":")[0]
        prefix = f"swapped for {type(applied.scheduler).__name__}, " if swapped else ""
        return Result(result.ok, f"{prefix}{how}: {result.text}" if result.ok else result.text)
    table = (
        Tabulated.from_alphas_cumprod(np.asarray(scheduler.alphas_cumprod))
        if kind == "vp"
        else None
    )
    export = diffusers_schedule(card, model=table)
    if argument == "timesteps" and "timesteps" not in export:
        return Result(False, "-")
    value = export["flow_sigmas"] if kind == "flow" else export[argument]
    expected = export["sigmas"][:-1]
    if argument not in inspect.signature(scheduler.set_timesteps).parameters:
        return Result(False, f"no {argument}= argument")
    extra = {"mu": mu} if mu is not None else {}
    try:
        scheduler.set_timesteps(**{argument: value}, **extra)
        return run_and_check(scheduler, expected, model_calls(class_name, num_steps))
    except Exception as e:  # noqa: BLE001 - any failure inside diffusers is a table cell
        first = _failure(e)
    if argument != "sigmas":
        return first
    import torch  # a list failed: the same values as a tensor, as its signature also allows

    try:
        scheduler.set_timesteps(sigmas=torch.tensor(value, dtype=torch.float64), **extra)
        second = run_and_check(scheduler, expected, model_calls(class_name, num_steps))
    except Exception as e:  # noqa: BLE001
        second = _failure(e)
    return Result(second.ok, f"list: {first.text}; as a tensor: {second.text}")


def support_rows(num_steps: int = NUM_STEPS) -> list[tuple[str, str, dict[str, Result]]]:
    """Every probe of :data:`ROWS` x :data:`ARGUMENTS`."""
    return [
        (config, name, {arg: probe(config, name, arg, num_steps) for arg in ARGUMENTS})
        for config, name in ROWS
    ]


def support_table(rows=None) -> str:
    """The Markdown table of :func:`support_rows` (what ``docs/diffusers_support.md`` holds)."""
    import diffusers

    rows = support_rows() if rows is None else rows
    head = (
        f"diffusers {diffusers.__version__}, {NUM_STEPS} steps of an EDM rho = 7 card on a "
        "closed-form Gaussian model (`schedopt.integrations.diffusers_support`). "
        "`sigmas=` / `timesteps=`: the `schedopt export --format diffusers` file passed "
        "unchanged (flow configs: its `flow_sigmas`); `apply_schedule`: "
        "`schedopt.integrations.diffusers.apply_schedule(scheduler, card)`. "
        "**works** = the model was called at the card's noise levels, as many times as the "
        "scheduler's method needs (N, or 2N - 1 for Heun), with a finite result (and, for "
        "Euler schedulers, the closed-form Euler output)."
    )
    lines = [head, "", "| config | scheduler | `sigmas=` | `timesteps=` | `apply_schedule` |"]
    lines.append("|---|---|---|---|---|")
    for config, name, cells in rows:
        shown = [("**works**: " if r.ok else "") + r.text for r in cells.values()]
        lines.append(f"| {config} | {name} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


BEGIN = "<!-- diffusers-support: generated by schedopt.integrations.diffusers_support -->"
END = "<!-- /diffusers-support -->"


def readme_block(table: str) -> str:
    """The README's copy of the table, between the :data:`BEGIN` and :data:`END` markers."""
    return f"{BEGIN}\n{table}{END}"


def write(root: Path, table: str) -> None:
    """Write ``docs/diffusers_support.md`` and replace the README's block under ``root``."""
    from ..io.atomic import atomic_write_bytes

    docs = root / "docs" / "diffusers_support.md"
    atomic_write_bytes(docs, ("# diffusers support\n\n" + table).encode())
    readme = root / "README.md"
    text = readme.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    atomic_write_bytes(readme, (text[:start] + readme_block(table) + text[end:]).encode())


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    table = support_table()
    if "--write" in sys.argv:
        write(Path(__file__).resolve().parents[2], table)
    print(table)
