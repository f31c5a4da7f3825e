"""``schedopt export``: a run's schedule as sigma lists / timesteps for other libraries."""

from __future__ import annotations

import json
from pathlib import Path

from ..io.export import (
    FORMATS,
    MODELS,
    default_endpoints,
    default_output,
    export,
    load_source,
    resolve_model,
)
from ..schedules.processes import PROCESSES
from ._common import STEPS_HELP, add_steps_option, parse_floats

#: Printed values: the first and last few of a long list.
_SHOWN = 8


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a learned schedule for diffusers, k-diffusion, ComfyUI or NumPy",
        description="Regrid the schedule of RUN_DIR (a run directory with schedule.json, a "
        "schedule card, a sigma file or an orbax schedule checkpoint) to --num-steps steps "
        "and write it in --format. Example: schedopt export runs/default --format diffusers "
        "--num-steps 20 --model scaled-linear. " + STEPS_HELP + ".",
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="run directory, card file, sigma file or checkpoint"
    )
    p.add_argument("--format", required=True, choices=FORMATS)
    add_steps_option(
        p,
        default=None,
        help="number of sampler steps N (the sigma list has N + 1 entries, ending in 0); "
        "default: the steps the card was made for; --nfe is a deprecated spelling (the same "
        "number of steps)",
    )
    model = p.add_mutually_exclusive_group()
    model.add_argument(
        "--model",
        default=None,
        choices=tuple(MODELS),
        help="express the grid for this discrete 1000-step VP model (adds integer timesteps)",
    )
    model.add_argument(
        "--model-range",
        default=None,
        metavar="SIGMA_MIN,SIGMA_MAX",
        help="express the grid for a continuous model with this noise range (e.g. an EDM "
        "VE model: 0.002,80)",
    )
    p.add_argument(
        "--endpoints",
        default=None,
        choices=("rescale", "clip"),
        help="with --model/--model-range: rescale log sigma onto the model's range (keeps "
        "the schedule's shape and every step; default), or clip the noise levels to it "
        "(refused when that would give zero-length steps; the default for a card whose "
        "range was learned, which keeps its levels)",
    )
    p.add_argument(
        "--process",
        default=None,
        choices=tuple(PROCESSES),
        help="the model's process: for a checkpoint or sigma file (default ve); on a card "
        "recorded for another process, re-expresses it (noise levels kept)",
    )
    p.add_argument("--output", "-o", default=None, help="output file (default: RUN_DIR/exports/)")
    p.set_defaults(func=run)


def _model(args):
    if args.model_range is None:
        return args.model
    values = parse_floats("model-range", args.model_range)
    if len(values) != 2:
        raise ValueError(f"--model-range needs SIGMA_MIN,SIGMA_MAX, got {args.model_range!r}")
    return tuple(values)


def _show(values) -> str:
    shown = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in values]
    if len(shown) > 2 * _SHOWN:
        shown = shown[:_SHOWN] + [f"... ({len(values)} values) ..."] + shown[-_SHOWN:]
    return ", ".join(shown)


def run(args) -> int:
    model = _model(args)
    if args.endpoints is not None and model is None:
        raise ValueError(
            f"--endpoints {args.endpoints} needs --model or --model-range: without a model "
            "the card's own noise levels are exported and nothing is rescaled or clipped"
        )
    card = load_source(args.run_dir, process=args.process)
    if model is not None and args.endpoints is None:
        args.endpoints = default_endpoints(card)
    num_steps = args.num_steps if args.num_steps is not None else card["grid"]["num_steps"]
    output = (
        Path(args.output)
        if args.output
        else default_output(
            args.run_dir,
            args.format,
            num_steps,
            model=model,
            endpoints=args.endpoints,
            process=args.process,
        )
    )
    path = export(
        card,
        args.format,
        output,
        num_steps=num_steps,
        model=model,
        endpoints=args.endpoints,
    )
    print(f"wrote {path}")
    if args.process is not None:
        print(f"exported for process {args.process!r} (--process; noise levels s are kept)")
    if model is not None:
        lo, hi = resolve_model(model)[2]
        ends = card["endpoints"]
        card_range = f"[{ends['sigma_min']:.4g}, {ends['sigma_max']:.4g}]"
        if (args.endpoints or "rescale") == "rescale":
            print(
                f"rescaled log sigma from the card's range {card_range} onto the model's "
                f"[{lo:.4g}, {hi:.4g}]"
            )
        else:
            print(
                f"clipped the card's levels (range {card_range}) into the model's "
                f"[{lo:.4g}, {hi:.4g}]"
            )
    if args.format == "numpy":
        return 0
    if args.format == "comfyui":
        print("sigmas:", _show(path.read_text().strip().split(", ")))
        return 0
    data = json.loads(path.read_text())
    if isinstance(data, list):
        print("sigmas:", _show(data))
        return 0
    if args.format == "card":
        print("sigmas:", _show(data["grid"]["noise_levels"]))
        return 0
    print("sigmas:", _show(data["sigmas"]))
    if "timesteps" in data:
        print("timesteps:", _show(data["timesteps"]))
    if "flow_sigmas" in data:
        print("flow_sigmas:", _show(data["flow_sigmas"]))
    return 0
