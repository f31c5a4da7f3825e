"""Learned training noise on digits: does learning the noise distribution while the model
trains give better samples than EDM's log-normal?

Arms (each trained with the shared digits model's settings: U-Net (32, 64), 3000 steps of
64 images, Adam 2e-3, EMA 0.999; ``--train-seeds`` seeds per arm):

``edm``          EDM log-normal noise with EDM weighting (the default of ``schedopt train``;
                 seed 0 reuses ``--model`` when its settings are these)
``vdm``          ``--learn-noise vdm``: a learned monotone schedule proposal minimising the
                 variance of the estimator of EDM's objective
``uncertainty``  ``--learn-noise uncertainty``: EDM2's learned log-variance weighting
``adaptive``     ``--learn-noise adaptive``: a logSNR histogram proposal from the losses
``crs``          Okada et al.'s constant-rate training schedule (the Fréchet speed of the
                 digits data, as in ``p1_constant_rate.py``)

Every model is sampled on held-out seeds (``HELD_OUT_SEED + i``, 1000 samples each) with
Heun and EDM rho = 7 at 35 NFE, and with DPM-Solver++(2M) at 5 and 10 NFE on the best grid
of a pool (the fixed baselines, the trailing grid and EDM rho = 7 on a grid of ranges)
chosen by FD on separate search seeds. FD in the packaged classifier's features, to the
digits test set.

    python experiments/noise_learning.py                        # all arms, seeds 0,1,2
    python experiments/noise_learning.py --arms edm,vdm --train-seeds 0
    python experiments/noise_learning.py --summary              # tables from rows.jsonl
    python experiments/noise_learning.py --smoke                # tiny, seconds

Resumable: a trained model (``MODELS/ARM-seedK/DONE``) is not trained again, a training
run continues from its checkpoint, and evaluated (arm, seed) pairs are skipped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from nfe_sweep import Target, _sampling_fn, num_steps_for, read_rows, sample_metrics
from nfe_sweep import trailing_schedule as _trailing

from schedopt.baselines import baseline_schedules
from schedopt.data import load_dataset
from schedopt.gaussian import Spectrum
from schedopt.io import atomic_write_bytes, atomic_write_json
from schedopt.metrics import mean_interval
from schedopt.schedules import EDM

OUT = Path(__file__).parent / "out" / "noise-learning"
ARMS = ("edm", "vdm", "uncertainty", "adaptive", "crs")
HELD_OUT_SEED = 10_000
SEARCH_SEED = 20_000
FEW_STEP = (("dpmpp-2m", 5), ("dpmpp-2m", 10))
FIXED = ("heun", 35)
RANGES_LO = (0.002, 0.02, 0.2, 0.6)
RANGES_HI = (10.0, 40.0, 80.0)
SETTINGS = {
    "network": {
        "architecture": "unet",
        "image_shape": [8, 8, 1],
        "channels": [32, 64],
        "num_blocks": 1,
        "embed_dim": 128,
        "sigma_data": 0.7522,
    },
    "steps": 3000,
    "batch_size": 64,
    "learning_rate": 2e-3,
    "weighting": "edm",
    "ema_decay": 0.999,
}
SMOKE = {  # the same network, small: seconds
    **SETTINGS,
    "network": {**SETTINGS["network"], "channels": [8, 16], "embed_dim": 16},
    "steps": 20,
    "batch_size": 16,
    "ema_decay": 0.9,
}


# ---- training -------------------------------------------------------------------------


def constant_rate_schedule(dataset, smoke: bool):
    """Okada et al.'s constant-rate schedule of the digits data's Fréchet speed."""
    from schedopt.constant_rate import SampleFrechet, tabulate_speed

    bank = 64 if smoke else 500
    speed = tabulate_speed(
        SampleFrechet.from_data(dataset.train, num_samples=bank), num_points=9 if smoke else 65
    )
    return speed.schedule(1.0)


def reuse_shared(model: Path, seed: int) -> bool:
    """Whether the shared model ``model`` is the ``edm`` arm at this seed."""
    path = model / "train.json"
    if seed != 0 or not (model / "DONE").exists() or not path.exists():
        return False
    shared = json.loads(path.read_text())
    same = all(shared.get(k) == v for k, v in SETTINGS.items() if k != "network")
    same &= shared.get("network") == SETTINGS["network"]
    return same and shared.get("noise", {}).get("noise") == "log-normal"


def train_arm(arm: str, seed: int, dataset, folder: Path, smoke: bool):
    """Train (or finish training) one arm; returns ``(denoiser, seconds)``."""
    from schedopt.models import load_denoiser
    from schedopt.models.networks import build_network
    from schedopt.models.nnx_adapter import NNXDenoiser, save_network
    from schedopt.models.training import train_denoiser

    if (folder / "DONE").exists():
        info = json.loads((folder / "train.json").read_text())
        return load_denoiser(folder / "network"), info["train_seconds"]
    settings = SMOKE if smoke else SETTINGS
    noise = constant_rate_schedule(dataset, smoke) if arm == "crs" else "edm"
    learn = arm if arm in ("vdm", "uncertainty", "adaptive") else None
    model = build_network(settings["network"], seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = train_denoiser(
        model,
        dataset.train,
        num_steps=settings["steps"],
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        noise=noise,
        weighting=settings["weighting"],
        learn_noise=learn,
        ema_decay=settings["ema_decay"],
        seed=seed,
        checkpoint_dir=folder / "checkpoints",
        checkpoint_every=500,
        log_path=folder / "log.jsonl",
        progress=False,
    )
    seconds = time.perf_counter() - started
    save_network(folder / "network", result.model, metadata={"arm": arm, "seed": seed})
    info = dict(settings, arm=arm, seed=seed, train_seconds=seconds)
    if result.noise_learner is not None:
        state = result.noise_state
        info["learned_density"] = result.noise_learner.logged_density(
            state["params"], state["stats"]
        )
    atomic_write_json(folder / "train.json", info)
    (folder / "DONE").write_text("")
    return NNXDenoiser.from_module(result.model), seconds


# ---- evaluation -----------------------------------------------------------------------


def pool(n: int) -> dict:
    """The grids a few-step cell chooses from: the fixed baselines, trailing, and EDM rho =
    7 on every range of ``RANGES_LO x RANGES_HI``."""
    out = dict(baseline_schedules())
    out["trailing"] = _trailing(n)
    for lo in RANGES_LO:
        for hi in RANGES_HI:
            out[f"edm[{lo:g},{hi:g}]"] = EDM(rho=7.0, sigma_min=lo, sigma_max=hi)
    return out


def fd_over_seeds(target, sample, schedule, first_seed: int, seeds: int) -> list[float]:
    return [
        sample_metrics(
            target, np.asarray(sample(schedule, jax.random.key(first_seed + i))), jax.random.key(9)
        )["fd"]
        for i in range(seeds)
    ]


def evaluate(target, args) -> list[dict]:
    """Rows for one model: the fixed sampler, then each few-step cell's chosen grid
    (``--smoke``: the first cell, from the first three grids of the pool)."""
    rows = []
    solver, nfe = FIXED
    n = num_steps_for(solver, nfe)
    sample = _sampling_fn(target, solver, n, args.eval_samples)
    fds = fd_over_seeds(target, sample, EDM(rho=7.0), HELD_OUT_SEED, args.seeds)
    rows.append({"solver": solver, "nfe": nfe, "schedule": "edm-rho7", "fd_seeds": fds})
    for solver, nfe in FEW_STEP[:1] if args.smoke else FEW_STEP:
        n = num_steps_for(solver, nfe)
        search = _sampling_fn(target, solver, n, args.search_samples)
        candidates = list(pool(n).items())[: 3 if args.smoke else None]
        scores = {
            name: fd_over_seeds(target, search, sch, SEARCH_SEED, 1)[0] for name, sch in candidates
        }
        best = min(scores, key=lambda k: scores[k] if np.isfinite(scores[k]) else np.inf)
        sample = _sampling_fn(target, solver, n, args.eval_samples)
        fds = fd_over_seeds(target, sample, pool(n)[best], HELD_OUT_SEED, args.seeds)
        rows.append(
            {"solver": solver, "nfe": nfe, "schedule": best, "fd_seeds": fds, "search": scores}
        )
    return rows


def digits_target(denoiser, dataset, smoke: bool) -> Target:
    from schedopt.metrics.classifier import digits_features

    return Target(
        "digits-model",
        denoiser,
        Spectrum.digits("train"),
        dataset.event_shape,
        np.asarray(dataset.train),
        np.asarray(dataset.test),
        features=digits_features,
        clip=1.0,
    )


# ---- summary --------------------------------------------------------------------------


def summarize(rows) -> dict:
    """Per (solver, NFE) and arm: FD over training seeds (each a mean over held-out
    sampling seeds) with a 95% interval, and the paired ratio to ``edm`` per seed."""
    cells = sorted({(r["solver"], r["nfe"]) for r in rows}, key=lambda c: (c[1], c[0]))
    out = []
    for solver, nfe in cells:
        here = [r for r in rows if (r["solver"], r["nfe"]) == (solver, nfe)]
        per = {}
        for r in here:
            per.setdefault(r["arm"], {})[r["train_seed"]] = float(np.mean(r["fd_seeds"]))
        cell = {"solver": solver, "nfe": nfe, "arms": {}}
        for arm in [a for a in ARMS if a in per]:
            seeds = sorted(per[arm])
            entry = {"fd": mean_interval([per[arm][s] for s in seeds]), "seeds": seeds}
            paired = [s for s in seeds if s in per.get("edm", {})]
            if arm != "edm" and paired:
                entry["ratio_to_edm"] = mean_interval([per[arm][s] / per["edm"][s] for s in paired])
            cell["arms"][arm] = entry
        out.append(cell)
    return {"cells": out}


def _fmt(r) -> str:
    if r is None:
        return "–"
    ci = f" ± {r['ci95']:.2g}" if r.get("ci95") is not None else ""
    return f"{r['mean']:.3g}{ci} (n={r['n']})"


def table(summary, seconds: dict) -> str:
    lines = [
        "| solver | NFE | " + " | ".join(ARMS) + " |",
        "|---|---|" + "---|" * len(ARMS),
    ]
    for cell in summary["cells"]:
        fds = [_fmt(cell["arms"].get(a, {}).get("fd")) for a in ARMS]
        lines.append(f"| {cell['solver']} | {cell['nfe']} | " + " | ".join(fds) + " |")
        ratios = [_fmt(cell["arms"].get(a, {}).get("ratio_to_edm")) for a in ARMS]
        lines.append("| | ratio to edm | " + " | ".join(ratios) + " |")
    times = [
        _fmt(mean_interval(seconds[a])) if seconds.get(a) else "–" for a in ARMS
    ]  # fmt: skip
    lines.append("| train | seconds | " + " | ".join(times) + " |")
    return "\n".join(lines) + "\n"


def per_model_table(rows) -> str:
    """Markdown: each trained model's FD over the held-out sampling seeds (mean and 95%
    interval), and its ratio to the ``edm`` model of the same training seed paired by
    sampling seed: the sampling noise alone, not the training seed's."""
    lines = ["| solver | NFE | arm | training seed | FD | ratio to edm, paired |", "|---|" * 6]
    lines[1] = "|---|---|---|---|---|---|"
    edm = {(r["solver"], r["nfe"], r["train_seed"]): r for r in rows if r["arm"] == "edm"}
    for r in sorted(rows, key=lambda r: (r["nfe"], r["solver"], ARMS.index(r["arm"]))):
        ref = edm.get((r["solver"], r["nfe"], r["train_seed"]))
        ratio = "–"
        if ref is not None and r["arm"] != "edm":
            ratio = _fmt(
                mean_interval(np.asarray(r["fd_seeds"]) / np.asarray(ref["fd_seeds"]))
            )  # fmt: skip
        lines.append(
            f"| {r['solver']} | {r['nfe']} | {r['arm']} | {r['train_seed']} | "
            f"{_fmt(mean_interval(r['fd_seeds']))} ({r['schedule']}) | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def write_summary(out: Path) -> dict:
    rows = read_rows([out / "rows.jsonl"])
    summary = summarize(rows)
    seconds = {}
    for r in rows:
        if r.get("train_seconds") is not None and r["solver"] == FIXED[0]:
            seconds.setdefault(r["arm"], []).append(r["train_seconds"])
    atomic_write_json(out / "summary.json", summary)
    text = table(summary, seconds) + "\n" + per_model_table(rows)
    atomic_write_bytes(out / "table.md", text.encode())
    return summary


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--train-seeds", default="0,1,2")
    p.add_argument("--model", default="runs/digits-edm", help="the shared EDM digits model")
    p.add_argument("--models", default="runs/noise-learning", help="where arms are trained")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--seeds", type=int, default=3, help="held-out sampling seeds")
    p.add_argument("--eval-samples", type=int, default=1000)
    p.add_argument("--search-samples", type=int, default=500)
    p.add_argument("--summary", action="store_true", help="only rebuild the tables")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        p.error(f"--arms: unknown {unknown}; choose from {', '.join(ARMS)}")
    seeds = [int(s) for s in args.train_seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.summary:
        print(json.dumps(write_summary(out), indent=1))
        return 0
    if args.smoke:
        args.seeds, args.eval_samples, args.search_samples = 1, 64, 64
    dataset = load_dataset("digits")
    path = out / "rows.jsonl"
    done = {(r["arm"], r["train_seed"]) for r in read_rows([path])} if path.exists() else set()
    for seed in seeds:
        for arm in arms:
            if (arm, seed) in done:
                continue
            folder = Path(args.models) / f"{arm}-seed{seed}"
            started = time.perf_counter()
            if arm == "edm" and not args.smoke and reuse_shared(Path(args.model), seed):
                from schedopt.models import load_denoiser

                denoiser = load_denoiser(Path(args.model) / "network")
                seconds = json.loads((Path(args.model) / "train.json").read_text())[
                    "train_seconds_this_run"
                ]
            else:
                denoiser, seconds = train_arm(arm, seed, dataset, folder, args.smoke)
            print(f"{arm} seed {seed}: trained ({seconds:.0f} s)", flush=True)
            rows = evaluate(digits_target(denoiser, dataset, args.smoke), args)
            with open(path, "a") as f:
                for row in rows:
                    row = dict(row, arm=arm, train_seed=seed, train_seconds=seconds)
                    f.write(json.dumps(row) + "\n")
            print(
                f"{arm} seed {seed}: "
                + ", ".join(f"{r['solver']} {r['nfe']}: {np.mean(r['fd_seeds']):.2f}" for r in rows)
                + f" ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    print(json.dumps(write_summary(out), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
