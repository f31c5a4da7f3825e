"""``schedopt train``: train a Flax NNX denoiser on a bundled or generated data set.

    schedopt train --dataset digits --out runs/digits

Writes ``OUT/network/`` (EMA weights and config; ``schedopt.models.load_denoiser``
reads it), ``OUT/checkpoints/`` (orbax, every ``--checkpoint-every`` steps),
``OUT/log.jsonl``, ``OUT/train.json`` (settings, time, final loss) and ``OUT/samples.png``
(samples at ``--sample-nfe`` NFE with EDM's Heun sampler). Run the same command again
after an interruption: it resumes from the last checkpoint.

``--learn-noise vdm|uncertainty|adaptive`` learns the training noise distribution or
weighting from the model's losses (:mod:`schedopt.models.noise_learning`), with
``--noise`` and ``--weighting`` as its target, and writes it as the card
``OUT/noise_schedule.json`` (``schedopt optimize --init-card`` starts a sampling fit from
it, ``schedopt export`` exports it) and the plot ``OUT/noise_density.png``.

``--online-schedule corrector`` also adapts a sampling grid while the model trains
(Williams et al., Score-Optimal Diffusion Schedules, Algorithm 2,
:class:`schedopt.score_optimal.OnlineEqualCost`) and writes it as the card
``OUT/online_schedule.json``; a resumed run continues the grid from the log.

Defaults: digits, a U-Net (32, 64 channels), 3000 steps of 64 images, Adam 2e-3,
EDM log-normal noise and weighting, EMA 0.999 (about 5-13 minutes on 2 CPU cores); vector
data sets use a residual MLP and 5000 steps of 256.

Options are checked before anything is written (one that does not apply, e.g.
``--width`` for digits' U-Net, is refused); ``OUT`` is locked while the run writes to it.
The final outputs are moved into place when the run ends; a failed run removes what it
added, except checkpoints and the log it can resume from.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

from ._common import (
    MAX_ITERATIONS,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_STEPS,
    float_range,
    int_list,
    int_range,
)
from ._rundir import RunDirectory, check_run_dir

#: What a run writes into OUT.
OUTPUTS = (
    "network",
    "checkpoints",
    "log.jsonl",
    "train.json",
    "samples.png",
    "online_schedule.json",
    "noise_schedule.json",
    "noise_density.png",
)

DEFAULTS = {
    "image": {"steps": 3000, "batch_size": 64, "lr": 2e-3},
    "vector": {"steps": 5000, "batch_size": 256, "lr": 1e-3},
}


def register(subparsers) -> None:
    from ..data import DATASETS
    from ..models.noise import NOISE_NAMES, WEIGHTINGS
    from ..models.noise_learning import LEARNERS
    from ..score_optimal import COSTS

    p = subparsers.add_parser(
        "train",
        help="train a denoiser (default: digits U-Net, about 5-13 minutes on CPU)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", default="digits", choices=DATASETS, help="data set")
    p.add_argument("--out", default="runs/train", help="output directory (default runs/train)")
    steps = int_range(1, MAX_ITERATIONS)
    p.add_argument("--steps", type=steps, help="training steps (digits 3000, vectors 5000)")
    p.add_argument(
        "--batch-size", type=int_range(1, 65536), help="batch size (digits 64, vectors 256)"
    )
    p.add_argument(
        "--lr",
        type=float_range(0, open_lo=True),
        help="Adam learning rate (digits 2e-3, vectors 1e-3)",
    )
    p.add_argument(
        "--noise",
        default="edm",
        help=f"training noise: {', '.join(NOISE_NAMES)}, or schedule:FAMILY (t ~ U(0,1) "
        "pushed through a schedule, e.g. schedule:cosine)",
    )
    p.add_argument("--weighting", default="edm", choices=WEIGHTINGS, help="loss weighting")
    p.add_argument(
        "--ema", type=float_range(0, 1, open_hi=True), default=0.999, help="EMA decay (< 1)"
    )
    seed = int_range(0, MAX_SEED)
    p.add_argument("--seed", type=seed, default=0, help="seed of initialization and batches")
    p.add_argument("--data-seed", type=seed, default=0, help="seed of a generated data set")
    p.add_argument(
        "--devices",
        type=int_range(1, 4096),
        default=None,
        help="train data-parallel on the first N local devices (the batch split across "
        "them, everything else replicated; default: one device, unsharded)",
    )
    p.add_argument(
        "--num-train",
        type=int_range(2, MAX_SAMPLES),
        default=20_000,
        help="size of a generated train set",
    )
    p.add_argument(
        "--channels", type=int_list(1, 1024, 8), help="U-Net channels per level, e.g. 32,64"
    )
    p.add_argument("--num-blocks", type=int_range(1, 16), help="U-Net residual blocks per level")
    p.add_argument("--width", type=int_range(1, 65536), help="MLP width")
    p.add_argument("--depth", type=int_range(1, 64), help="MLP residual blocks")
    p.add_argument("--checkpoint-every", type=steps, default=500, help="steps between checkpoints")
    p.add_argument("--log-every", type=steps, default=50, help="steps between log records")
    p.add_argument(
        "--num-samples",
        type=int_range(1, 100_000),
        default=100,
        help="samples drawn for samples.png",
    )
    p.add_argument(
        "--sample-nfe",
        type=int_range(0, MAX_STEPS),
        default=50,
        help="NFE of the samples (0: none)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    learn = p.add_argument_group(
        "learned training noise",
        "learn the noise distribution or weighting while the model trains, with --noise and "
        "--weighting as the target objective: vdm (a learned monotone schedule minimising "
        "the variance of the loss estimator; Kingma et al., Variational Diffusion Models), "
        "uncertainty (EDM2's learned log-variance u(s), loss / exp(u) + u; Karras et al. "
        "2024), adaptive (a logSNR histogram proposal tracking the per-level loss, with a "
        "floor)",
    )
    learn.add_argument("--learn-noise", choices=LEARNERS, default=None, help="default: off")
    learn.add_argument(
        "--noise-lr",
        type=float_range(0, open_lo=True),
        help="Adam rate of vdm's schedule and uncertainty's u (default: --lr)",
    )
    learn.add_argument(
        "--noise-knots", type=int_range(2, 1024), default=32, help="vdm: knots of the schedule"
    )
    learn.add_argument(
        "--noise-features",
        type=int_range(1, 4096),
        default=128,
        help="uncertainty: Fourier features of u (128, as EDM2)",
    )
    learn.add_argument(
        "--noise-bins", type=int_range(2, 4096), default=32, help="adaptive: histogram bins"
    )
    learn.add_argument(
        "--noise-floor",
        type=float_range(0, 1, open_lo=True),
        default=0.1,
        help="adaptive: share of the uniform density mixed in, in (0, 1]",
    )
    learn.add_argument(
        "--noise-decay",
        type=float_range(0, 1, open_hi=True),
        default=0.99,
        help="adaptive: exponential-average decay of the per-bin loss, in [0, 1)",
    )
    online = p.add_argument_group(
        "online schedule adaptation (Williams et al., Score-Optimal Diffusion Schedules, "
        "Algorithm 2)",
        "adapt a sampling grid to the model while it trains: at every log, the transport "
        "cost of each step of the grid is estimated with the current EMA model and the grid "
        "moves towards the equal-cost grid (t <- gamma t* + (1 - gamma) t); the log records "
        "the grid and the spread of its costs, OUT/online_schedule.json is the final card",
    )
    online.add_argument(
        "--online-schedule",
        choices=COSTS,
        default=None,
        help="adapt a grid with this cost (corrector or predictor; default: off)",
    )
    online.add_argument(
        "--online-points", type=int_range(3, MAX_STEPS), default=16, help="grid points (16)"
    )
    online.add_argument(
        "--online-gamma",
        type=float_range(0, 1, open_lo=True),
        default=0.1,
        help="blend weight in (0, 1] (0.1)",
    )
    online.add_argument(
        "--online-samples",
        type=int_range(1, MAX_SAMPLES),
        default=256,
        help="clean samples the costs average over",
    )
    p.set_defaults(func=run)


def online_hook(args, data):
    """The Algorithm-2 hook of ``--online-schedule`` (``None`` when it is off)."""
    from ..schedules import EDM
    from ..score_optimal import OnlineEqualCost, make_cost

    if args.online_schedule is None:
        return None
    online = OnlineEqualCost(
        make_cost(args.online_schedule),
        EDM(),
        num_points=args.online_points,
        gamma=args.online_gamma,
        num_samples=args.online_samples,
        seed=args.seed,
    )
    return online.hook(data)


def save_online_card(path: Path, hook, args) -> dict:
    """The adapted grid as a schedule card (``schedopt export`` reads it): its
    ``len(levels)``-step grid is the adapted levels followed by the final step to 0."""
    from ..io.card import make_card, save_card

    levels = hook.noise_levels()
    card = make_card(
        hook.schedule(),
        num_steps=len(levels),
        objective={"objective": "online-equal-cost", "cost": args.online_schedule},
        objective_value=hook.history[-1]["cost_spread"] if hook.history else None,
        settings={"gamma": args.online_gamma, "num_samples": args.online_samples},
    )
    save_card(path, card)
    return {"file": path.name, "noise_levels": levels.tolist()}


#: Steps of the grid in the learned noise card (``schedopt export --num-steps`` regrids).
NOISE_CARD_STEPS = 32


def make_noise_learner(args, noise, sigma_data: float):
    """The learner of ``--learn-noise`` with its options (``None`` when it is off)."""
    from ..models import noise_learning as nl

    common = dict(weighting=args.weighting, sigma_data=sigma_data)
    if args.learn_noise is None:
        return None
    if args.learn_noise == "vdm":
        return nl.LearnedSchedule.create(noise, num_knots=args.noise_knots, **common)
    if args.learn_noise == "uncertainty":
        return nl.LearnedWeighting.create(
            noise, num_features=args.noise_features, seed=args.seed, **common
        )
    return nl.AdaptiveHistogram(
        noise, num_bins=args.noise_bins, floor=args.noise_floor, decay=args.noise_decay, **common
    )


def save_noise_outputs(run_dir, result, args) -> dict:
    """The learned training noise as the card ``noise_schedule.json`` and the plot
    ``noise_density.png`` (learned density, the target's ``p`` and normalised ``p w``, and
    EDM's log-normal); returns the summary's record of them."""
    import numpy as np

    from ..io.card import make_card, save_card
    from ..models.noise import LogNormal
    from ..models.noise_learning import FixedNoise, learned_density, logsnr_range
    from ..plot import plot_densities

    learner, state = result.noise_learner, result.noise_state
    schedule = result.noise_schedule
    card = make_card(
        schedule,
        num_steps=NOISE_CARD_STEPS,
        objective={"objective": "learn-noise", **learner.describe()},
        objective_value=result.history[-1]["loss"] if result.history else None,
        settings={"steps": result.step, "seed": args.seed, "noise_lr": args.noise_lr},
    )
    save_card(run_dir.staged("noise_schedule.json"), card)
    lam = logsnr_range(learner.sigma_min, learner.sigma_max, 401)
    target = FixedNoise(learner.target, weighting=learner.weighting, sigma_data=learner.sigma_data)
    pw = np.asarray(target.target_weight(np.exp(-0.5 * lam)), dtype=np.float64)
    curves = {
        f"learned ({learner.name})": np.asarray(
            learner.density(state["params"], state["stats"], lam)
        ),
        f"target p ({learner.target.name})": np.asarray(learned_density(target, {}, {}, lam)),
        f"target p w (w = {learner.weighting}), normalised": pw / np.trapezoid(pw, -lam),
    }
    if learner.target.describe() != LogNormal().describe():
        curves["EDM log-normal"] = np.asarray(learned_density(FixedNoise(LogNormal()), {}, {}, lam))
    plot_densities(
        run_dir.staged("noise_density.png"),
        {name: (lam, np.nan_to_num(d, posinf=0.0)) for name, d in curves.items()},
        highlight=f"learned ({learner.name})",
        title=f"{args.dataset}: learned training noise after {result.step} steps",
    )
    return {
        "card": "noise_schedule.json",
        "plot": "noise_density.png",
        "learner": learner.describe(),
        "density": learner.logged_density(state["params"], state["stats"]),
    }


def parse_noise(text: str):
    """``--noise``: a named density or ``schedule:FAMILY``."""
    from ..models.noise import NOISE_NAMES, noise_distribution
    from ..schedules import FAMILIES, make_schedule

    if text.startswith("schedule:"):
        family = text.split(":", 1)[1]
        if family not in FAMILIES:
            raise ValueError(
                f"--noise schedule:FAMILY needs one of {', '.join(FAMILIES)}, got {text!r}"
            )
        return noise_distribution(make_schedule(family))
    if text not in NOISE_NAMES:
        raise ValueError(
            f"--noise must be one of {', '.join(NOISE_NAMES)} or schedule:FAMILY, got {text!r}"
        )
    return noise_distribution(text)


def network_config(args, dataset, sigma_data: float) -> dict:
    """The default network for the data set, with the command line's overrides."""
    from ..models.networks import default_network_config

    config = default_network_config(dataset.event_shape, sigma_data)
    if dataset.is_image:
        if args.channels:
            config["channels"] = list(args.channels)
        if args.num_blocks is not None:
            config["num_blocks"] = args.num_blocks
    else:
        for name in ("width", "depth"):
            if getattr(args, name) is not None:
                config[name] = getattr(args, name)
    return config


def check_options(args, dataset) -> None:
    """Refuse the options given that this data set, network or run would ignore."""
    given = set(args.given)
    image = dataset.is_image
    rules = {
        "channels": (image, "the U-Net of image data sets (digits)"),
        "num_blocks": (image, "the U-Net of image data sets (digits)"),
        "width": (not image, "the MLP of vector data sets"),
        "depth": (not image, "the MLP of vector data sets"),
        "num_train": (args.dataset != "digits", "generated data sets (digits has a fixed split)"),
        "data_seed": (args.dataset != "digits", "generated data sets (digits has a fixed split)"),
        "num_samples": (args.sample_nfe > 0, "--sample-nfe > 0"),
        "online_points": (args.online_schedule is not None, "--online-schedule"),
        "online_gamma": (args.online_schedule is not None, "--online-schedule"),
        "online_samples": (args.online_schedule is not None, "--online-schedule"),
        "noise_lr": (args.learn_noise in ("vdm", "uncertainty"), "--learn-noise vdm|uncertainty"),
        "noise_knots": (args.learn_noise == "vdm", "--learn-noise vdm"),
        "noise_features": (args.learn_noise == "uncertainty", "--learn-noise uncertainty"),
        "noise_bins": (args.learn_noise == "adaptive", "--learn-noise adaptive"),
        "noise_floor": (args.learn_noise == "adaptive", "--learn-noise adaptive"),
        "noise_decay": (args.learn_noise == "adaptive", "--learn-noise adaptive"),
    }
    problems = [
        f"--{dest.replace('_', '-')} applies to {what} only"
        for dest, (applies, what) in rules.items()
        if dest in given and not applies
    ]
    if problems:
        raise ValueError(
            "; ".join(problems) + f" (here --dataset {args.dataset}; leave these options out)"
        )


def check_devices(devices: int | None, batch_size: int):
    """``--devices`` must name devices that exist and split the batch evenly."""
    if devices is None:
        return
    import jax

    available = jax.local_device_count()
    if devices > available:
        raise ValueError(f"--devices {devices}: this machine has {available} local device(s)")
    if batch_size % devices:
        raise ValueError(
            f"--devices {devices} must divide --batch-size {batch_size} (each device takes "
            "an equal share of the batch)"
        )


def run(args) -> int:
    from ..data import load_dataset
    from ..data.plotting import plot_samples
    from ..io.atomic import atomic_write_json
    from ..models.networks import build_network
    from ..models.nnx_adapter import NNXDenoiser, save_network
    from ..models.training import train_denoiser
    from .evaluate import sample_denoiser

    out = check_run_dir(args.out, "--out", OUTPUTS)
    dataset = load_dataset(args.dataset, seed=args.data_seed, num_train=args.num_train)
    check_options(args, dataset)
    defaults = DEFAULTS["image" if dataset.is_image else "vector"]
    steps = args.steps if args.steps is not None else defaults["steps"]
    batch_size = args.batch_size if args.batch_size is not None else defaults["batch_size"]
    lr = args.lr if args.lr is not None else defaults["lr"]
    check_devices(args.devices, batch_size)
    noise = parse_noise(args.noise)
    sigma_data = round(float(dataset.train.std()), 4)
    config = network_config(args, dataset, sigma_data)
    model = build_network(config, seed=args.seed)
    hook = online_hook(args, dataset.train)
    learner = make_noise_learner(args, noise, float(getattr(model, "sigma_data", sigma_data)))

    t0 = time.perf_counter()
    with RunDirectory(
        out, option="--out", outputs=OUTPUTS, resumable=("checkpoints", "log.jsonl")
    ) as run_dir:
        try:
            result = train_denoiser(
                model,
                dataset.train,
                num_steps=steps,
                batch_size=batch_size,
                learning_rate=lr,
                noise=noise,
                weighting=args.weighting,
                learn_noise=learner,
                noise_learning_rate=args.noise_lr,
                ema_decay=args.ema,
                seed=args.seed,
                checkpoint_dir=run_dir.target("checkpoints"),
                checkpoint_every=args.checkpoint_every,
                log_path=run_dir.target("log.jsonl"),
                log_every=args.log_every,
                progress=not args.no_progress,
                hook=hook,
                devices=args.devices,
            )
        except FloatingPointError as e:
            raise FloatingPointError(f"{e} (now --lr {lr:g})") from None
        seconds = time.perf_counter() - t0
        summary = {
            "dataset": args.dataset,
            "dataset_seed": args.data_seed,
            "num_train": int(dataset.train.shape[0]),
            "network": config,
            "steps": result.step,
            "batch_size": batch_size,
            "learning_rate": lr,
            "noise": noise.describe(),
            "weighting": args.weighting,
            "ema_decay": args.ema,
            "seed": args.seed,
            "final_loss": result.history[-1]["loss"] if result.history else None,
            "train_seconds_this_run": round(seconds, 1),
            "jax_devices": [str(d) for d in jax.devices()],
        }
        meta = {k: summary[k] for k in ("dataset", "dataset_seed", "num_train", "steps")}
        outputs = ["network"]
        save_network(run_dir.staged("network"), result.model, metadata=meta)
        if args.sample_nfe > 0:
            samples, info = sample_denoiser(
                NNXDenoiser.from_module(result.model),
                dataset.event_shape,
                args.num_samples,
                key=jax.random.key(args.seed + 1),
                nfe=args.sample_nfe,
            )
            title = f"{args.dataset}, {result.step} steps, Heun {info['nfe']} NFE (EDM rho=7)"
            plot_samples(
                run_dir.staged("samples.png"), samples, reference=dataset.test, title=title
            )
            summary["samples"] = {"file": "samples.png", **info}
            outputs.append("samples.png")
        if learner is not None:
            summary["learn_noise"] = save_noise_outputs(run_dir, result, args)
            outputs += ["noise_schedule.json", "noise_density.png"]
        if hook is not None:
            summary["online_schedule"] = save_online_card(
                run_dir.staged("online_schedule.json"), hook, args
            )
            outputs.append("online_schedule.json")
        atomic_write_json(run_dir.staged("train.json"), summary)
        run_dir.commit([*outputs, "train.json"])
    print(json.dumps(summary, indent=2))
    return 0
