"""Train a diffusers UNet2DModel on the digits in PyTorch, fit a 5-NFE DPM-Solver++(2M)
schedule for it with schedopt, and compare FD on held-out seeds with hand-made schedules.

    python examples/torch_digits_schedule.py [--out runs/torch-digits] [--train-minutes 8]
        [--fit-iterations 100] [--eval-seeds 10] [--eval-samples 1000] [--smoke]

1. **Train** (skipped when ``OUT/unet`` exists; ``--retrain`` forces it): a ``UNet2DModel``
   (channels 32/64, attention at 4x4) on scikit-learn's 8x8 digits scaled to [-1, 1]
   (``schedopt.data.digits``, channels first), epsilon prediction on diffusers'
   ``DDPMScheduler()`` (1000 linear betas), AdamW, an EMA of the weights, for
   ``--train-minutes``. The EMA model and the scheduler config are saved together with
   ``save_pretrained`` in ``OUT/unet``, which ``schedopt optimize --torch-model OUT/unet``
   also reads.
2. **Hand-made baselines**, all 5 steps of DPM-Solver++(2M) ending with a step to 0:
   diffusers' own 5-step grids for this scheduler config (``DPMSolverMultistepScheduler``
   with timestep spacing linspace, leading, trailing, and Karras, exponential and Lu
   lambdas sigmas), EDM with rho in {3, 5, 7} and logSNR-uniform, each with the last level
   ``sigma_min`` in {0.01 (the model's smallest), 0.1, 0.3, 0.7, 1.5}, up to the model's
   largest level. Each is scored on *selection* seeds; the best is the baseline to beat.
3. **Fit** (``schedopt.optimize``) a monotone-cubic schedule with the Fréchet objective on
   the digits classifier's features of the clipped samples (what the FD measures) against
   the training images: once on the model's whole range starting from EDM rho = 7, once
   on the best baseline's range starting from it (both keep their ends), and once with
   the range learned too (a ``RangedSchedule`` inside the model's table range, from EDM
   rho = 7 on the whole range).
4. **Evaluate** on ``--eval-seeds`` held-out seeds (never used in selection or fitting):
   FD of ``--eval-samples`` clipped samples against the 360 test images, mean with a 95%
   t-interval over seeds, and the paired per-seed difference to the best baseline.

Writes ``OUT/results.json`` and prints a table; timings of every phase are in it.
``--smoke`` runs a tiny version (seconds of training, 2 fit iterations) for the tests.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from schedopt.data.digits import load_digits
from schedopt.integrations.torch_models import digits_unet, load_torch_denoiser
from schedopt.metrics import frechet_distance, mean_interval
from schedopt.metrics.classifier import digits_features
from schedopt.objectives import Frechet
from schedopt.optimize import optimize
from schedopt.sampling import ODESampler, probability_flow
from schedopt.schedules import EDM, LogSNRLinear, MonotoneCubic, RangedSchedule, grid
from schedopt.search import schedule_from_sigmas

NFE = 5
SOLVER = "dpmpp-2m"
SIGMA_MINS = (0.01, 0.1, 0.3, 0.7, 1.5)
DIFFUSERS_VARIANTS = {
    "diffusers-linspace": {"timestep_spacing": "linspace"},
    "diffusers-leading": {"timestep_spacing": "leading"},
    "diffusers-trailing": {"timestep_spacing": "trailing"},
    "diffusers-karras": {"use_karras_sigmas": True},
    "diffusers-exponential": {"use_exponential_sigmas": True},
    "diffusers-lu-lambdas": {"use_lu_lambdas": True},
}


def channels_first(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))


def metric_features(x):
    """The FD's features of NCHW samples: clipped to [-1, 1], the digits classifier's."""
    return digits_features(jnp.transpose(jnp.clip(x, -1.0, 1.0), (0, 2, 3, 1)))


# ---- 1. training in PyTorch ------------------------------------------------------------------


def train(out: Path, minutes: float, max_steps: int | None, smoke: bool) -> dict:
    import torch
    from diffusers import DDPMScheduler

    torch.manual_seed(0)
    x_train = torch.from_numpy(channels_first(load_digits("train")[0]).copy())
    scheduler = DDPMScheduler()
    channels, attention = ((8, 16), False) if smoke else ((32, 64), True)
    model = digits_unet(channels, attention=attention, norm_num_groups=4 if smoke else 8).train()
    ema = copy.deepcopy(model).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    abar = scheduler.alphas_cumprod
    start, step, losses = time.perf_counter(), 0, []
    while time.perf_counter() - start < 60.0 * minutes and (max_steps is None or step < max_steps):
        rows = torch.randint(0, len(x_train), (128,))
        x0 = x_train[rows]
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),))
        noise = torch.randn_like(x0)
        a = abar[t].sqrt()[:, None, None, None]
        xt = a * x0 + (1 - a**2).sqrt() * noise
        loss = torch.mean((model(xt, t).sample - noise) ** 2)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for group in optimizer.param_groups:  # linear warm-up over 200 steps
            group["lr"] = 2e-3 * min(1.0, (step + 1) / 200)
        optimizer.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
                p_ema.lerp_(p, 1.0 - decay)
        losses.append(float(loss.detach()))
        step += 1
    seconds = time.perf_counter() - start
    unet_dir = out / "unet"
    ema.save_pretrained(unet_dir)
    scheduler.save_pretrained(unet_dir)  # scheduler_config.json next to the weights
    record = {
        "steps": step,
        "seconds": seconds,
        "batch_size": 128,
        "final_loss_mean_100": float(np.mean(losses[-100:])) if losses else None,
        "parameters": sum(p.numel() for p in ema.parameters()),
    }
    (out / "train.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


# ---- 2. hand-made grids ------------------------------------------------------------------


def diffusers_grids(scheduler_config) -> dict[str, np.ndarray]:
    """diffusers' own 5-step DPM-Solver++(2M) noise levels (positive ones) per variant."""
    from diffusers import DPMSolverMultistepScheduler

    out = {}
    for name, options in DIFFUSERS_VARIANTS.items():
        scheduler = DPMSolverMultistepScheduler.from_config(
            scheduler_config, algorithm_type="dpmsolver++", solver_order=2, **options
        )
        scheduler.set_timesteps(NFE)
        sigmas = scheduler.sigmas.numpy().astype(np.float64)
        out[name] = sigmas[sigmas > 0]
    return out


def family_grids(sigma_max: float) -> dict[str, np.ndarray]:
    out = {}
    for s_min in SIGMA_MINS:
        for rho in (3.0, 5.0, 7.0):
            schedule = EDM(rho=rho, sigma_min=s_min, sigma_max=sigma_max)
            out[f"edm-rho{rho:g}-[{s_min:g},{sigma_max:.4g}]"] = positive(grid(schedule, NFE))
        schedule = LogSNRLinear(sigma_min=s_min, sigma_max=sigma_max)
        out[f"logsnr-uniform-[{s_min:g},{sigma_max:.4g}]"] = positive(grid(schedule, NFE))
    return out


def positive(levels) -> np.ndarray:
    levels = np.asarray(levels, dtype=np.float64)
    return levels[levels > 0]


# ---- sampling and the metric -----------------------------------------------------------------


def make_scorer(denoiser, num_samples: int):
    """``(levels, seed) -> FD``: DPM-Solver++(2M) through ``levels`` (then to 0) from
    ``x_T ~ N(0, I)`` (y0 = x_T / alpha_0), against the test images' features."""
    reference = metric_features(jnp.asarray(channels_first(load_digits("test")[0])))

    @jax.jit
    def sample(levels, key):
        eps = jax.random.normal(key, (num_samples, 1, 8, 8))
        y0 = eps * jnp.sqrt(1.0 + levels[0] ** 2)
        return probability_flow(denoiser, levels, y0, solver=SOLVER)

    def score(levels, seed: int) -> float:
        x = sample(jnp.asarray(levels, jnp.float32), jax.random.key(seed))
        return float(frechet_distance(metric_features(x), reference))

    return score


def interval(values) -> dict:
    """Mean and 95% t-interval ``[lo, hi]`` (:func:`schedopt.metrics.mean_interval`)."""
    r = mean_interval(values)
    return {"mean": r["mean"], "ci95": [r["mean"] - r["ci95"], r["mean"] + r["ci95"]]}


# ---- 3. fitting --------------------------------------------------------------------------


def fit(
    denoiser, start, iterations: int, batch: int, seed: int, bounds=None
) -> tuple[object, dict]:
    """A 16-knot monotone cubic from ``start``; with ``bounds``, on a range learned inside
    them (:class:`~schedopt.schedules.RangedSchedule`)."""
    data = channels_first(load_digits("train")[0])
    objective = Frechet(
        denoiser,
        ODESampler(NFE, SOLVER),
        data,
        batch_size=batch,
        init="vp",
        feature_map=metric_features,
    )
    began = time.perf_counter()
    schedule = MonotoneCubic.from_schedule(start, 16)
    if bounds is not None:
        schedule = RangedSchedule.from_schedule(schedule, bounds)
    result = optimize(
        schedule,
        objective,
        num_iterations=iterations,
        learning_rate=1e-2,
        seed=seed,
        progress=False,
        chunk_size=min(iterations, 25),
    )
    info = {
        "iterations": iterations,
        "batch_size": batch,
        "seconds": time.perf_counter() - began,
        "first_losses": [float(v) for v in result.losses[:5]],
        "last_losses": [float(v) for v in result.losses[-5:]],
    }
    return result.schedule, info


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/torch-digits")
    p.add_argument("--train-minutes", type=float, default=8.0)
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--fit-iterations", type=int, default=100)
    p.add_argument("--fit-batch", type=int, default=256)
    p.add_argument("--selection-seeds", type=int, default=2)
    p.add_argument("--eval-seeds", type=int, default=10)
    p.add_argument("--eval-samples", type=int, default=1000)
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1, leaving the cores to JAX)"
    )
    p.add_argument("--smoke", action="store_true", help="tiny run for the tests")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        args.fit_iterations, args.fit_batch = 2, 128
        args.selection_seeds, args.eval_seeds, args.eval_samples = 1, 2, 128
    began = time.perf_counter()
    timings = {}
    if args.retrain or not (out / "unet" / "config.json").is_file():
        record = train(out, args.train_minutes, 20 if args.smoke else None, args.smoke)
        timings["train_s"] = record["seconds"]
    record = json.loads((out / "train.json").read_text())
    loaded = load_torch_denoiser(out / "unet")
    denoiser = loaded.denoiser
    s_lo, s_hi = denoiser.noise_range
    config = json.loads((out / "unet" / "scheduler_config.json").read_text())
    score = make_scorer(denoiser, args.eval_samples)

    # 2. baselines, scored on selection seeds 500, 501, ...
    t0 = time.perf_counter()
    grids = diffusers_grids(config)
    grids.update(
        family_grids(s_hi)
        if not args.smoke
        else {"edm-rho7": positive(grid(EDM(rho=7.0, sigma_min=s_lo, sigma_max=s_hi), NFE))}
    )
    selection_seeds = [500 + i for i in range(args.selection_seeds)]
    selection = {
        n: float(np.mean([score(g, s) for s in selection_seeds])) for n, g in grids.items()
    }
    best = min(selection, key=selection.get)
    best_diffusers = min((n for n in selection if n.startswith("diffusers")), key=selection.get)
    timings["selection_s"] = time.perf_counter() - t0

    # 3. fits
    t0 = time.perf_counter()
    full_start = EDM(rho=7.0, sigma_min=s_lo, sigma_max=s_hi)
    learned_full, fit_full = fit(denoiser, full_start, args.fit_iterations, args.fit_batch, 1)
    best_start = schedule_from_sigmas(np.concatenate([grids[best], [0.0]]))
    learned_best, fit_best = fit(denoiser, best_start, args.fit_iterations, args.fit_batch, 2)
    learned_range, fit_range = fit(
        denoiser, full_start, args.fit_iterations, args.fit_batch, 3, bounds=(s_lo, s_hi)
    )
    timings["fit_s"] = time.perf_counter() - t0

    # 4. held-out evaluation, seeds 1000, 1001, ...
    t0 = time.perf_counter()
    candidates = {
        "diffusers-linspace (default)": grids["diffusers-linspace"],
        f"best diffusers ({best_diffusers})": grids[best_diffusers],
        f"edm-rho7 [{s_lo:.3g}, {s_hi:.4g}]": positive(grid(full_start, NFE)),
        f"best hand-made ({best})": grids[best],
        "learned, model's range (from edm-rho7)": positive(grid(learned_full, NFE)),
        f"learned, range of {best} (from it)": positive(grid(learned_best, NFE)),
        "learned, range learned (from edm-rho7)": positive(grid(learned_range, NFE)),
    }
    eval_seeds = [1000 + i for i in range(args.eval_seeds)]
    per_seed = {n: [score(g, s) for s in eval_seeds] for n, g in candidates.items()}
    timings["evaluation_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - began
    baseline = per_seed[f"best hand-made ({best})"]
    rows = {}
    for name, values in per_seed.items():
        diff = np.asarray(values) - np.asarray(baseline)
        rows[name] = {
            "levels": [float(v) for v in candidates[name]],
            "fd": interval(values),
            "fd_seeds": values,
            "minus_best_hand_made": interval(diff) if np.any(diff) else None,
        }
    result = {
        "command": " ".join(["python examples/torch_digits_schedule.py", *(argv or sys.argv[1:])]),
        "model": {"train": record, **loaded.description},
        "nfe": NFE,
        "solver": SOLVER,
        "selection": {"seeds": selection_seeds, "fd": selection, "best": best},
        "fits": {"model_range": fit_full, "best_range": fit_best, "learned_range": fit_range},
        "evaluation": {"seeds": eval_seeds, "samples": args.eval_samples, "rows": rows},
        "timings_s": timings,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"FD at {NFE} NFE ({SOLVER}), {len(eval_seeds)} held-out seeds x {args.eval_samples}:")
    for name, row in rows.items():
        fd, d = row["fd"], row["minus_best_hand_made"]
        diff = (
            ""
            if d is None
            else f"  vs best: {d['mean']:+.2f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]"
        )
        print(f"  {name:48s} {fd['mean']:8.2f} [{fd['ci95'][0]:.2f}, {fd['ci95'][1]:.2f}]{diff}")
    print(f"timings (s): {json.dumps({k: round(v, 1) for k, v in timings.items()})}")
    return result


if __name__ == "__main__":
    main()
