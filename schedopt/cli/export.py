"""``schedopt export``: a run's schedule as sigma lists / timesteps for other libraries."""

from __future__ import annotations

import json
from pathlib import Path

from ..io.export import FORMATS, MODELS, default_output, export, load_source
from ..schedules.processes import PROCESSES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a learned schedule for diffusers, k-diffusion, ComfyUI or NumPy",
        description="Regrid the schedule of RUN_DIR (a run directory with schedule.json, a "
        "schedule card, or an orbax schedule checkpoint) to --nfe steps and write it in "
        "--format. Example: schedopt export runs/default --format diffusers --nfe 20 "
        "--model scaled-linear",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory, card file or checkpoint")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument(
        "--nfe",
        "--num-steps",
        dest="num_steps",
        type=int,
        default=None,
        help="number of sampling steps N (the sigma list has N + 1 entries, ending in 0); "
        "default: the NFE the card was made for",
    )
    p.add_argument(
        "--model",
        default=None,
        choices=tuple(MODELS),
        help="express the grid for this discrete 1000-step VP model (adds integer timesteps)",
    )
    p.add_argument(
        "--endpoints",
        default="rescale",
        choices=("rescale", "clip"),
        help="with --model: rescale log sigma onto the model's range (keeps the schedule's "
        "shape; default), or clip the noise levels to it (levels beyond it repeat its end)",
    )
    p.add_argument(
        "--process",
        default="ve",
        choices=tuple(PROCESSES),
        help="process for a checkpoint without a card (cards record their own)",
    )
    p.add_argument("--output", "-o", default=None, help="output file (default: RUN_DIR/exports/)")
    p.set_defaults(func=run)


def run(args) -> int:
    card = load_source(args.run_dir, process=args.process)
    num_steps = args.num_steps if args.num_steps is not None else card["grid"]["num_steps"]
    if num_steps < 1:
        raise ValueError(f"--nfe must be >= 1, got --nfe {num_steps}")
    output = (
        Path(args.output) if args.output else default_output(args.run_dir, args.format, num_steps)
    )
    path = export(
        card,
        args.format,
        output,
        num_steps=num_steps,
        model=args.model,
        endpoints=args.endpoints,
    )
    print(f"wrote {path}")
    if args.format in ("k-diffusion", "comfyui", "diffusers", "card"):
        data = json.loads(path.read_text())
        if isinstance(data, list):
            sigmas = data
        else:
            sigmas = data["sigmas"] if "sigmas" in data else data["grid"]["noise_levels"]
        print("sigmas:", ", ".join(f"{s:.4g}" for s in sigmas))
        repeated = sum(a == b for a, b in zip(sigmas, sigmas[1:], strict=False))
        if repeated:
            print(
                f"warning: {repeated} step(s) have zero length: noise levels beyond the "
                "model's range were clipped to its end; --endpoints rescale keeps all steps"
            )
        if isinstance(data, dict) and "timesteps" in data:
            print("timesteps:", ", ".join(str(t) for t in data["timesteps"]))
    return 0
