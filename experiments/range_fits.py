"""Learned sampling ranges and sample-based fits against hand-made and searched grids.

For each target (the exact-denoiser oracles ``ring``, ``gmm64``, ``digits-gaussian``, and the
trained digits U-Net ``digits-model``), solver and NFE, every grid below is evaluated on
held-out sampling seeds (``HELD_OUT_SEED + i``, never used by any fit, search or teacher):

- hand-made: ``edm-rho7``, ``logsnr-uniform``, ``cosine`` on [0.002, 80]; ``trailing``
  (diffusers' trailing spacing of the 1000-step DDPM table, [0.0064, 157]); ``constant-rate``;
- searched: ``dp-kl`` (DP over teacher levels, exact one-step Gaussian KL; Euler's costs for
  the multistep solvers) and ``edm-best-range``: EDM rho = 7 on the (s_lo, s_hi) of a grid
  search (``S_LO x S_HI``) scored by the cell's metric on separate search seeds;
- fitted: for each sample-based objective, a 16-knot monotone cubic started from EDM rho = 7,
  on the fixed range [0.002, 80] (``<objective>``) and with the range learned inside
  ``BOUNDS`` (``<objective>+range``, a :class:`~schedopt.schedules.RangedSchedule`);
  with ``--from-best``, also the range-learned fit started from the hand-made or searched
  grid that the search seeds rank best (``<objective>+range@best``: a search, then a fit
  that refines it; ``--resume --from-best`` adds these to finished cells);
  with ``--time-inputs K``, also each objective's fit from that best grid with the
  denoiser's time inputs learned too (``<objective>+range+time@best``, a
  :class:`~schedopt.schedules.DecoupledTimes` of K offsets; ``--resume`` adds these too);
  with ``--kl``, also ``gaussian-kl`` and ``gaussian-kl+range``: the same cubic fitted by Adam
  to the target spectrum's closed-form Gaussian KL (Sun, Poor & Zhang) on the fixed range and
  with the range learned, the sampler's initial noise ``N(0, s_hi^2 I)`` included (``init="ve"``).

Every row also records its grid (``sigmas``) and that closed-form KL (``gaussian_kl``, the
same ``init="ve"``), so a cell shows where the KL and the sample metric disagree on the range.

Objectives: ``trajectory`` (teacher pairs computed once: 64 Heun steps on [0.002, 80]),
``sliced-w2`` and ``mmd`` against training samples on the oracles; on the digits model
``trajectory`` and ``frechet`` in the classifier's feature space (the FD's own) and
``sliced-w2`` on clipped pixels. Metric: sliced W2 to held-out data (oracles, 2000 samples)
or the FD of classifier features to the test images (digits, 1000 samples), each a mean
over ``--seeds`` seeds with a 95% t-interval. Rows go to ``OUT/rows.jsonl`` cell by cell
(``--resume`` skips finished cells); ``--summarize`` writes ``table.md`` and ``summary.json``.

    python experiments/range_fits.py --smoke
    python experiments/range_fits.py --targets ring,gmm64,digits-gaussian \\
        --solvers euler,heun,dpmpp-2m --nfe 3,5,10 --out experiments/out/range-oracles --resume
    python experiments/range_fits.py --targets digits-model --solvers euler,heun,dpmpp-2m \\
        --nfe 5,10 --out experiments/out/range-digits --resume
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from nfe_sweep import (
    SIGMA_MAX,
    SIGMA_MIN,
    _choices,
    _ints,
    _sampling_fn,
    make_target,
    num_steps_for,
    read_rows,
    sample_metrics,
    target_schedules,
    trailing_schedule,
)

from schedopt.baselines import baseline_schedules
from schedopt.gaussian import gaussian_kl, step_grid
from schedopt.io import atomic_write_bytes, atomic_write_json
from schedopt.metrics import mean_interval
from schedopt.objectives import (
    GaussianKL,
    SlicedWasserstein,
    TrajectoryMatching,
    discrepancy_objective,
)
from schedopt.optimize import OptimizationError, optimize
from schedopt.sampling import SAMPLERS, make_sampler
from schedopt.schedules import EDM, DecoupledTimes, MonotoneCubic, RangedSchedule, grid
from schedopt.schedules.decoupled import is_decoupled
from schedopt.search import dp_search, gaussian_step_costs, schedule_from_sigmas, teacher_levels

OUT = Path(__file__).parent / "out" / "range"
TARGETS = ("ring", "gmm64", "digits-gaussian", "digits-model")
BOUNDS = (0.002, 160.0)
S_LO = (0.002, 0.006, 0.02, 0.06, 0.2, 0.6, 1.5, 3.0)
S_HI = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
SEARCH_SAMPLES = 1000  # per candidate range of the grid search (one search seed)
HELD_OUT_SEED = 10_000  # evaluation: HELD_OUT_SEED + i; range search: SEARCH_SEED + i
SEARCH_SEED = 20_000
VALIDATION_SEED = 30_000  # a fit's validation samples (with --validation-batch)
#: Smallest batch of the Fréchet objective (twice the classifier's 64 features).
FRECHET_MIN_BATCH = 128
#: The hand-made and searched grids (every other strategy is a fit).
BASELINES = (
    "edm-rho7", "logsnr-uniform", "cosine", "trailing", "constant-rate", "dp-kl", "edm-best-range"
)  # fmt: skip


def objectives_for_name(name: str) -> tuple[str, ...]:
    if name == "digits-model":
        return ("trajectory", "frechet", "sliced-w2")
    return ("trajectory", "sliced-w2", "mmd")


def objectives_for(target) -> tuple[str, ...]:
    return objectives_for_name(target.name)


def chosen_objectives(target, args) -> list[str]:
    """The target's objectives, restricted to ``--objectives`` if given."""
    return [o for o in objectives_for(target) if not args.objectives or o in args.objectives]


def headline_metric(target) -> str:
    return "fd" if target.features is not None else "sw2"


def feature_space(target):
    """The map the digits objectives compare in: clipped to [-1, 1], then the classifier's
    features (the FD's own space); None on the oracles."""
    if target.features is None:
        return None
    clip, features = float(target.clip), target.features

    def transform(x):
        x = jnp.clip(x, -clip, clip)
        return features(x.reshape(len(x), -1))

    return transform


def build_objective(name, target, sampler, batch, seed):
    features = feature_space(target)
    if name == "trajectory":
        return TrajectoryMatching(
            target.denoiser,
            sampler,
            event_shape=target.event_shape,
            num_pairs=batch + batch // 3,
            validation_fraction=0.25,
            seed=seed,
            reference_steps=64,
            feature_map=features,
        )
    data = target.train
    if name == "frechet":  # a covariance of the features needs more samples than dimensions
        batch = max(batch, FRECHET_MIN_BATCH)
    options = dict(batch_size=batch, init="ve", data_batch_size=min(512, len(data)))
    if name == "sliced-w2" and target.clip is not None:
        clip = float(target.clip)
        return SlicedWasserstein(
            target.denoiser, sampler, data, feature_map=lambda x: jnp.clip(x, -clip, clip),
            **options,
        )  # fmt: skip
    return discrepancy_objective(
        name, target.denoiser, sampler, data, feature_map=features, **options
    )


def start_schedules():
    base = MonotoneCubic.from_schedule(EDM(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX), 16)
    ranged = RangedSchedule.from_schedule(base, BOUNDS, (SIGMA_MIN, SIGMA_MAX))
    return base, ranged


def baseline_pool(target, solver, n, fixed, search_metric, best_range=None):
    """The hand-made and searched grids of a cell (``best_range``: the (s_lo, s_hi) of an
    earlier grid search, which is then not run again)."""
    out, seconds = {}, {}
    for name in ("edm-rho7", "logsnr-uniform", "cosine"):
        out[name] = baseline_schedules(None, SIGMA_MIN, SIGMA_MAX)[name]
        seconds[name] = 0.0
    out["trailing"], seconds["trailing"] = trailing_schedule(n), 0.0
    out["constant-rate"], seconds["constant-rate"] = (
        fixed[0]["constant-rate"],
        fixed[1]["constant-rate"],
    )
    started = time.perf_counter()
    levels = teacher_levels(SIGMA_MIN, SIGMA_MAX, 96)
    cost = gaussian_step_costs(
        target.spectrum, levels, solver if solver in ("euler", "heun") else "euler"
    )
    out["dp-kl"] = schedule_from_sigmas(dp_search(levels, cost, n).sigmas)
    seconds["dp-kl"] = time.perf_counter() - started
    started = time.perf_counter()
    if best_range is None:
        out["edm-best-range"], search = best_edm_range(search_metric)
    else:
        lo, hi = best_range
        out["edm-best-range"], search = EDM(sigma_min=lo, sigma_max=hi), None
    seconds["edm-best-range"] = time.perf_counter() - started
    return out, seconds, search


def cell_schedules(target, solver, n, args, fixed, search_metric):
    out, seconds, search = baseline_pool(target, solver, n, fixed, search_metric)
    base, ranged = start_schedules()
    starts = {}
    for name in chosen_objectives(target, args):
        starts[name] = (name, base)
        starts[f"{name}+range"] = (name, ranged)
    fitted, fit_seconds, info = fit_all(target, solver, n, args, starts)
    out.update(fitted)
    seconds.update(fit_seconds)
    return out, seconds, search, info


KL_FITS = ("gaussian-kl", "gaussian-kl+range")


def closed_form_kl(target, schedule, solver, n) -> float:
    """The closed-form Gaussian KL of the sampler's output on the target spectrum, its
    initial noise ``N(0, s_hi^2 I)`` included (what the held-out samples are drawn with)."""
    return float(gaussian_kl(target.spectrum, step_grid(schedule, n), solver, "ve"))


def kl_schedules(target, solver, n, args) -> tuple[dict, dict]:
    """``gaussian-kl`` and ``gaussian-kl+range``: the 16-knot cubic from EDM rho = 7 fitted by
    Adam (``args.kl_iterations`` steps) to the closed-form Gaussian KL of the sampler's output,
    its initial noise ``N(0, s_hi^2 I)`` included, on [0.002, 80] and with the range learned."""
    base, ranged = start_schedules()
    objective = GaussianKL(target.spectrum, num_steps=n, solver=solver, init="ve")
    out, seconds = {}, {}
    for label, start in zip(KL_FITS, (base, ranged), strict=True):
        started = time.perf_counter()
        try:
            result = optimize(
                start, objective, num_iterations=args.kl_iterations, learning_rate=args.lr,
                seed=args.seed, progress=False,
            )  # fmt: skip
        except OptimizationError as e:  # the cell keeps its other rows; this one is absent
            print(f"  {label} failed ({target.name} {solver} {n} steps): {e}", flush=True)
            continue
        out[label], seconds[label] = result.schedule, time.perf_counter() - started
        print(f"  {label}: {seconds[label]:.0f} s", flush=True)
    return out, seconds


def from_best_schedules(target, solver, n, args, pool, search_metric, plain=True, knots=0):
    """Fits started from the grid of ``pool`` the search seeds rank best (a search, then a
    fit that refines it): each objective's range-learned fit ``<objective>+range@best``
    (``plain``) and, with ``knots`` (> 0), the same fit with the denoiser's time inputs learned
    too (``<objective>+range+time@best``, a :class:`~schedopt.schedules.DecoupledTimes` of
    ``knots`` offsets around that start)."""
    started = time.perf_counter()
    chosen, start = best_start(pool, search_metric)
    pick = time.perf_counter() - started
    starts = {}
    for name in chosen_objectives(target, args):
        if plain:
            starts[f"{name}+range@best"] = (name, start)
        if knots:
            timed = DecoupledTimes.from_schedule(start, knots, BOUNDS)
            starts[f"{name}+range+time@best"] = (name, timed)
    out, seconds, info = fit_all(target, solver, n, args, starts)
    return out, {k: v + pick for k, v in seconds.items()}, chosen, info


def missing_from_best(args, strategies) -> tuple[bool, int]:
    """Which fits from the best grid a cell with ``strategies`` still lacks: the plain
    range-learned ones (``--from-best``) and the number of time-input knots (``--time-inputs``;
    0 when none are asked for or they are there)."""
    plain = args.from_best and not any(k.endswith("+range@best") for k in strategies)
    timed = args.time_inputs and not any(k.endswith("+time@best") for k in strategies)
    return bool(plain), args.time_inputs if timed else 0


def best_start(schedules: dict, score) -> tuple[str, object]:
    """The hand-made or searched grid with the lowest ``score`` (search seeds, never the
    held-out ones), as a ranged monotone cubic on its own range (a fit's start)."""
    scores = {k: score(v) for k, v in schedules.items()}
    name = min(scores, key=scores.get)
    return name, as_start(schedules[name])


def as_start(schedule) -> RangedSchedule:
    """A grid as a fit's start: a 16-knot monotone cubic of its spacing on its own range,
    the range learnable within :data:`BOUNDS`."""
    shape = MonotoneCubic.from_schedule(schedule, 16)
    sigma_range = (float(schedule.sigma_min), float(schedule.sigma_max))
    return RangedSchedule.from_schedule(shape, BOUNDS, sigma_range)


def fit_all(target, solver, n, args, starts: dict) -> tuple[dict, dict, dict]:
    """``label -> (objective name, start)``: each fitted by Adam through the solver;
    ``(schedules, seconds, info)``.

    With ``args.validation_batch`` (> 0), the objective on that many fresh samples of
    ``VALIDATION_SEED`` (never a search or held-out seed) validates the start and every
    ``args.validation_every`` steps, and the best validated iterate is kept (``optimize``'s
    ``validation``): a fit that does not beat its start on fresh samples returns the start.
    ``info[label]`` records the fit's settings (Adam steps, batch, rate) and then also the
    kept step and the validation history.
    """
    out, seconds, info = {}, {}, {}
    sampler = make_sampler(solver, n)
    validation_batch = getattr(args, "validation_batch", 0)
    for label, (name, start) in starts.items():
        started = time.perf_counter()
        objective = build_objective(name, target, sampler, args.objective_batch, args.seed)
        options = {}
        if validation_batch:
            check = build_objective(name, target, sampler, validation_batch, args.seed + 1)
            options = dict(
                validation=lambda s, check=check: check(s, jax.random.key(VALIDATION_SEED)),
                chunk_size=args.validation_every,
            )
        try:
            result = optimize(
                start,
                objective,
                num_iterations=args.iterations,
                learning_rate=args.lr,
                seed=args.seed,
                progress=False,
                **options,
            )
        except OptimizationError as e:
            print(f"  {label} failed ({target.name} {solver} {n} steps): {e}", flush=True)
            continue
        out[label], seconds[label] = result.schedule, time.perf_counter() - started
        info[label] = {
            "iterations": args.iterations,
            "objective_batch": args.objective_batch,
            "lr": args.lr,
        }
        if validation_batch:
            info[label] |= {
                "kept_step": result.best_step,
                "validation": [[s, v] for s, v in result.validation],
            }
        kept = f", kept step {result.best_step}" if validation_batch else ""
        print(f"  {label}: {seconds[label]:.0f} s{kept}", flush=True)
    return out, seconds, info


def best_edm_range(score):
    """EDM rho = 7 on the (s_lo, s_hi) of ``S_LO x S_HI`` with the lowest ``score``."""
    scores = {}
    for lo in S_LO:
        for hi in S_HI:
            if lo < hi:
                scores[(lo, hi)] = score(EDM(sigma_min=lo, sigma_max=hi))
    lo, hi = min(scores, key=scores.get)
    return EDM(sigma_min=lo, sigma_max=hi), {"best": [lo, hi], "score": scores[(lo, hi)]}


def interval(values) -> dict:
    """Mean, 95% half-width and the per-seed values; a grid whose samples diverged on any
    seed has mean ``inf`` and no interval."""
    if not np.all(np.isfinite(values)):
        return {"mean": float("inf"), "ci95": None, "seeds": [float(v) for v in values]}
    r = mean_interval(values)
    return {"mean": r["mean"], "ci95": r["ci95"], "seeds": r["values"]}


def held_out_metrics(target, sample, schedule, seeds: int) -> dict:
    """``{metric: interval}`` of ``sample(schedule, key)`` on held-out seeds
    ``HELD_OUT_SEED + i``, ``i < seeds`` (never used by a fit, a search or a teacher)."""
    per_seed = [
        sample_metrics(
            target,
            np.asarray(sample(schedule, jax.random.key(HELD_OUT_SEED + i))),
            jax.random.key(HELD_OUT_SEED + 1000 + i),
        )
        for i in range(seeds)
    ]
    return {m: interval([p[m] for p in per_seed]) for m in per_seed[0]}


def run_cell(target, solver, nfe, args, fixed, existing=()) -> list[dict]:
    """The rows of a cell; with ``existing`` rows (a finished cell), only the strategies
    those lack (``+range@best`` with ``--from-best``)."""
    n = num_steps_for(solver, nfe)
    batch = args.eval_samples
    sample = _sampling_fn(target, solver, n, batch)
    metric = headline_metric(target)

    search_sample = _sampling_fn(target, solver, n, min(batch, SEARCH_SAMPLES))

    def score(schedule, seed=SEARCH_SEED):
        x = np.asarray(search_sample(schedule, jax.random.key(seed)))
        return sample_metrics(target, x, jax.random.key(seed + 1), only=metric)[metric]

    done = {r["strategy"]: r for r in existing}
    if not done:
        schedules, seconds, search, info = cell_schedules(target, solver, n, args, fixed, score)
    else:
        schedules, seconds, search, info = {}, {}, None, {}
    chosen = None
    if args.kl and not any(k in done for k in KL_FITS):
        fitted, fit_seconds = kl_schedules(target, solver, n, args)
        schedules.update(fitted)
        seconds.update(fit_seconds)
    plain, knots = missing_from_best(args, done)
    if plain or knots:
        if done:
            best_range = done["edm-best-range"]["search"]["best"]
            pool, _, _ = baseline_pool(target, solver, n, fixed, score, best_range)
        else:
            pool = {k: v for k, v in schedules.items() if k in BASELINES}
        fitted, fit_seconds, chosen, fit_info = from_best_schedules(
            target, solver, n, args, pool, score, plain, knots
        )
        schedules.update(fitted)
        info.update(fit_info)
        seconds.update(fit_seconds)
    rows = []
    for strategy, schedule in schedules.items():
        row = dict(
            target=target.name,
            solver=solver,
            nfe=nfe,
            steps=n,
            strategy=strategy,
            build_s=seconds[strategy],
            sigma_range=[float(schedule.sigma_min), float(schedule.sigma_max)],
            iterations=args.iterations if strategy not in BASELINES else None,
            sigmas=[float(v) for v in np.asarray(grid(schedule, n))],
        )
        if is_decoupled(schedule):  # the closed forms see only the grid: no KL
            row["time_offsets"] = np.asarray(schedule.offsets).tolist()
        else:
            row["gaussian_kl"] = closed_form_kl(target, schedule, solver, n)
        row.update(held_out_metrics(target, sample, schedule, args.seeds))
        if strategy == "edm-best-range":
            row["search"] = search
        if strategy.endswith("@best"):
            row["start"] = chosen
        row.update(info.get(strategy, {}))  # validated fits: the kept step and the history
        rows.append(row)
    return rows


# ---- summary ---------------------------------------------------------------------------------


def paired_ratio(row, baseline, metric) -> dict | None:
    """Mean and 95% t-interval over the held-out seeds of ``row``'s metric over
    ``baseline``'s on the same seed (None when either diverged or the baseline is 0)."""
    pairs = list(zip(row[metric]["seeds"], baseline[metric]["seeds"], strict=True))
    if not all(np.isfinite(x) and np.isfinite(y) and y > 0 for x, y in pairs):
        return None
    r = mean_interval([x / y for x, y in pairs])
    return {"mean": r["mean"], "ci95": r["ci95"]}


def check_time_inputs(knots: int) -> int:
    """``--time-inputs``: 0 (no time-input fit) or a ``DecoupledTimes``' number of knots."""
    if knots < 0 or knots == 1:
        raise ValueError(f"`--time-inputs` must be 0 or >= 2, got {knots}")
    return knots


def add_validation_options(parser, default_batch: int):
    """``--validation-batch`` and ``--validation-every``, read by :func:`fit_all`."""
    parser.add_argument(
        "--validation-batch",
        type=int,
        default=default_batch,
        help="fresh samples validating each sample-based fit's start and iterates; the best "
        "validated iterate is kept (0: keep the last iterate)",
    )
    parser.add_argument(
        "--validation-every", type=int, default=25, help="steps between validations"
    )


def check_validation_options(args):
    """Refuses a negative ``--validation-batch`` or a ``--validation-every`` below 1."""
    if args.validation_batch < 0:
        raise ValueError(f"`--validation-batch` must be >= 0, got {args.validation_batch}")
    if args.validation_every < 1:
        raise ValueError(f"`--validation-every` must be >= 1, got {args.validation_every}")


def summarize(rows) -> dict:
    """Per cell: the best hand-made or searched grid, the best fit and their ratio (the
    sample-objective goal is at most 0.8), and per objective whether a range-learned fit
    (from EDM rho = 7 or from the best grid) beats the same fit on [0.002, 80], the
    trailing grid and EDM on the best range found by the grid search (``range_wins`` of
    ``range_cells`` counts the sample-based objectives; ``gaussian-kl`` is reported beside
    them)."""
    cells = {}
    for r in rows:
        cells.setdefault((r["target"], r["solver"], r["nfe"]), {})[r["strategy"]] = r
    out = {"cells": [], "range_wins": 0, "range_cells": 0, "goal_cells": 0, "goal_met": 0}
    for (target, solver, nfe), cell in sorted(cells.items()):
        metric = "fd" if target == "digits-model" else "sw2"
        value = {k: v[metric]["mean"] for k, v in cell.items()}
        best_base = min((k for k in BASELINES if k in value), key=value.get)
        entry = dict(target=target, solver=solver, nfe=nfe, metric=metric, best_baseline=best_base)
        entry["best_baseline_value"] = value[best_base]
        per_objective = {}
        for name in dict.fromkeys(k.split("+")[0] for k in value if k not in BASELINES):
            ranged = {k: value[k] for k in (f"{name}+range", f"{name}+range@best") if k in value}
            if not ranged:
                continue
            rivals = {k: value[k] for k in (name, "trailing", "edm-best-range") if k in value}
            fit = min(ranged, key=ranged.get)
            wins = ranged[fit] < min(rivals.values())
            per_objective[name] = dict(
                range=value.get(f"{name}+range"),
                range_from_best=value.get(f"{name}+range@best"),
                start=cell.get(f"{name}+range@best", {}).get("start"),
                fixed=value.get(name),
                trailing=value.get("trailing"),
                edm_best_range=value.get("edm-best-range"),
                learned_range=cell[fit]["sigma_range"],
                best=bool(wins),
            )
            if name != KL_FITS[0]:  # the goal counts the sample-based objectives only
                out["range_cells"] += 1
                out["range_wins"] += int(wins)
        entry["objectives"] = per_objective
        kls = {k: v["gaussian_kl"] for k, v in cell.items() if v.get("gaussian_kl") is not None}
        if kls:  # where the closed-form KL and the sample metric disagree on the grid
            by_kl, by_metric = min(kls, key=kls.get), min(kls, key=value.get)
            entry["kl"] = {
                "kl_best": by_kl,
                "metric_best": by_metric,
                "kl_best_range": cell[by_kl]["sigma_range"],
                "metric_best_range": cell[by_metric]["sigma_range"],
                "kl": [kls[by_kl], kls[by_metric]],
                metric: [value[by_kl], value[by_metric]],
            }
        fits = [k for k in value if k not in BASELINES]
        if fits:
            best_fit = min(fits, key=value.get)
            entry["best_fit"], entry["best_fit_value"] = best_fit, value[best_fit]
            entry["best_fit_s"] = cell[best_fit]["build_s"]
            entry["ratio_to_best_baseline"] = value[best_fit] / value[best_base]
            entry["paired_ratio"] = paired_ratio(cell[best_fit], cell[best_base], metric)
            out["goal_cells"] += 1
            out["goal_met"] += int(entry["ratio_to_best_baseline"] <= 0.8)
        out["cells"].append(entry)
    return out


def table(rows) -> str:
    cells = {}
    for r in rows:
        cells.setdefault((r["target"], r["solver"], r["nfe"]), {})[r["strategy"]] = r
    names = list(dict.fromkeys(r["strategy"] for r in rows))
    lines = ["| target | solver | NFE | metric | " + " | ".join(names) + " |"]
    lines.append("|" + "---|" * (4 + len(names)))
    for (target, solver, nfe), cell in sorted(cells.items()):
        metric = "fd" if target == "digits-model" else "sw2"
        best = min(cell, key=lambda k: cell[k][metric]["mean"])
        values = []
        for name in names:
            if name not in cell:
                values.append("")
                continue
            m = cell[name][metric]
            text = f"{m['mean']:.3g} ± {m['ci95']:.2g}"
            values.append(f"**{text}**" if name == best else text)
        lines.append(f"| {target} | {solver} | {nfe} | {metric} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def cell_table(summary: dict) -> str:
    """Per cell: the best hand-made or searched grid, the best fit, their paired ratio and
    how many sample-based objectives' range-learned fits are best."""
    lines = [
        "| target | solver | NFE | best grid | value | best fit | value | paired ratio "
        "| range-learned best |",
        "|" + "---|" * 9,
    ]
    for c in summary["cells"]:
        if "best_fit" not in c:
            continue
        pr = c["paired_ratio"]
        ratio = "" if pr is None else f"{pr['mean']:.3f} ± {pr['ci95']:.3f}"
        counted = [o["best"] for n, o in c["objectives"].items() if n != KL_FITS[0]]
        lines.append(
            f"| {c['target']} | {c['solver']} | {c['nfe']} | {c['best_baseline']}"
            f" | {c['best_baseline_value']:.3g} | {c['best_fit']} | {c['best_fit_value']:.3g}"
            f" | {ratio} | {sum(counted)} of {len(counted)} |"
        )
    return "\n".join(lines)


def range_table(summary: dict) -> str:
    """Per cell and objective: the fit on [0.002, 80], with the range learned from EDM
    rho = 7 and from the best grid, against the trailing grid and EDM on the searched range
    (the metric's means; the range of the better range-learned fit; whether it is best)."""
    lines = [
        "| target | solver | NFE | objective | fixed | range | range@best | trailing "
        "| EDM, searched range | learned range | best? |",
        "|" + "---|" * 11,
    ]

    def fmt(v):
        return "" if v is None else f"{v:.3g}"

    for c in summary["cells"]:
        for name, o in c["objectives"].items():
            lo, hi = o["learned_range"]
            values = (o["fixed"], o["range"], o["range_from_best"], o["trailing"])
            lines.append(
                f"| {c['target']} | {c['solver']} | {c['nfe']} | {name} | "
                + " | ".join(fmt(v) for v in values)
                + f" | {fmt(o['edm_best_range'])} | [{lo:.3g}, {hi:.3g}] | "
                + ("yes" if o["best"] else "**no**")
                + " |"
            )
    return "\n".join(lines)


def kl_table(summary: dict) -> str:
    """Per cell: the grid the closed-form KL ranks best against the one the sample metric
    ranks best (among the rows with a KL), with their ranges, KLs and metrics."""
    lines = [
        "| target | solver | NFE | KL-best grid | its range | KL | metric "
        "| metric-best grid | its range | KL | metric |",
        "|" + "---|" * 11,
    ]
    for c in summary["cells"]:
        k = c.get("kl")
        if k is None:
            continue
        (lo1, hi1), (lo2, hi2) = k["kl_best_range"], k["metric_best_range"]
        m = k[c["metric"]]
        lines.append(
            f"| {c['target']} | {c['solver']} | {c['nfe']} | {k['kl_best']}"
            f" | [{lo1:.3g}, {hi1:.3g}] | {k['kl'][0]:.3g} | {m[0]:.3g} | {k['metric_best']}"
            f" | [{lo2:.3g}, {hi2:.3g}]"
            f" | {k['kl'][1]:.3g} | {m[1]:.3g} |"
        )
    return "\n".join(lines)


def write_summary(rows, out: Path) -> dict:
    summary = summarize(rows)
    atomic_write_json(out / "summary.json", summary)
    text = "\n\n".join((table(rows), cell_table(summary), range_table(summary))) + "\n"
    if any("kl" in c for c in summary["cells"]):
        text += "\n" + kl_table(summary) + "\n"
    atomic_write_bytes(out / "table.md", text.encode())
    return summary


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default=",".join(TARGETS[:3]))
    p.add_argument("--solvers", default="euler,heun,dpmpp-2m")
    p.add_argument("--nfe", default="3,5,10")
    p.add_argument("--seeds", type=int, default=3, help="held-out sampling seeds")
    p.add_argument("--eval-samples", type=int, default=2000)
    p.add_argument("--iterations", type=int, default=300, help="Adam steps per fit")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--objective-batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="fits' seed (and the teacher pairs')")
    p.add_argument("--model", default="runs/digits-edm")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--resume", action="store_true")
    p.add_argument("--summarize", default=None, help="comma-separated rows.jsonl files to merge")
    p.add_argument(
        "--from-best",
        action="store_true",
        help="also fit each objective with the range learned from the best hand-made or "
        "searched grid on the search seeds (<objective>+range@best); adds these to "
        "finished cells with --resume",
    )
    p.add_argument(
        "--objectives",
        default=None,
        help="comma-separated subset of the target's objectives to fit (default all)",
    )
    p.add_argument(
        "--kl",
        action="store_true",
        help="also fit the closed-form Gaussian KL on the fixed and a learned range "
        "(gaussian-kl, gaussian-kl+range); adds these to finished cells with --resume",
    )
    p.add_argument(
        "--time-inputs",
        type=int,
        default=0,
        help="knots of a DecoupledTimes: also fit each objective from the best grid with the "
        "denoiser's time inputs learned (<objective>+range+time@best); 0: no such fit",
    )
    p.add_argument("--kl-iterations", type=int, default=1000, help="Adam steps of the KL fits")
    add_validation_options(p, default_batch=0)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.summarize:
        rows = read_rows(args.summarize.split(","))
        print(json.dumps(write_summary(rows, out), indent=1)[:2000])
        return
    args.targets = _choices("--targets", args.targets, TARGETS)
    args.solvers = _choices("--solvers", args.solvers, SAMPLERS)
    args.nfe = _ints("--nfe", args.nfe)
    check_time_inputs(args.time_inputs)
    check_validation_options(args)
    if args.objectives is not None:
        known = sorted({o for t in ("ring", "digits-model") for o in objectives_for_name(t)})
        args.objectives = _choices("--objectives", args.objectives, known)
    if args.smoke:
        args.seeds, args.eval_samples, args.iterations, args.objective_batch = 2, 256, 5, 64
        args.kl_iterations = 5
    path = out / "rows.jsonl"
    rows = read_rows([path]) if args.resume and path.exists() else []
    if not args.resume and path.exists():
        path.unlink()
    by_cell = {}
    for r in rows:
        by_cell.setdefault((r["target"], r["solver"], r["nfe"]), []).append(r)

    def pending(cell) -> bool:
        have = by_cell.get(cell)
        if not have:
            return True
        strategies = {r["strategy"] for r in have}
        return any(missing_from_best(args, strategies)) or bool(
            args.kl and not strategies & set(KL_FITS)
        )

    for name in args.targets:
        todo = [(s, n) for s in args.solvers for n in args.nfe if pending((name, s, n))]
        if not todo:
            continue
        target = make_target(name, Path(args.model), 2000 if name != "digits-model" else 360)
        fixed = target_schedules(target, 128 if args.smoke else 512, args.smoke)
        if name == "digits-model":
            args.eval_samples = min(args.eval_samples, 1000)
        for solver, nfe in todo:
            started = time.perf_counter()
            cell = run_cell(target, solver, nfe, args, fixed, by_cell.get((name, solver, nfe), ()))
            with path.open("a") as f:
                f.write("".join(json.dumps(r) + "\n" for r in cell))
            rows += cell
            jax.clear_caches()
            print(f"{name} {solver} nfe={nfe}: {time.perf_counter() - started:.0f} s", flush=True)
    summary = write_summary(rows, out)
    print(
        f"learned range best in {summary['range_wins']}/{summary['range_cells']} (objective, cell)"
    )


if __name__ == "__main__":
    main()
