"""The headline benchmark: learned schedules against every hand-made and searched grid, per
solver, at 3-20 NFE, on held-out seeds, with the time each strategy takes to build its grid.

Targets: the trained digits U-Net (``digits-model``, ``--model``) and a less-trained
checkpoint of it (``digits-early``, ``--early-model``: a tenth of the training steps), and
the exact-denoiser oracles ``ring``, ``gmm64`` and ``digits-gaussian``. Solvers: Euler,
Heun, DPM-Solver++(2M), iPNDM, UniPC and Euler-Maruyama. A budget of N evaluations gets the
most steps that fit in it (Heun: ``2 * steps - 1``; a budget that buys no more steps than
the one below it reuses that cell's rows, with ``nfe_used`` saying so).

Baselines (hand-made, and the published searches written here from their descriptions):

- ``edm-rho7``, ``logsnr-uniform``, ``cosine``, ``uniform-t`` on [0.002, 80]; ``trailing``
  (diffusers' trailing spacing of the 1000-step DDPM table);
- ``edm-best-range``: EDM rho = 7 on the (s_lo, s_hi) a grid search ranks best on separate
  search seeds (the strongest hand-made baseline);
- ``ays``: the AYS-style bound optimiser on the target's covariance spectrum;
- ``dmn``: DMN's analytic bound on the multistep solver's global error, minimised over the
  interior levels (DPM-Solver++(2M) and UniPC; DMN defines no bound for the others);
- ``gits``: GITS' dynamic programme over 64 teacher levels with the model's own one-step
  trajectory errors (Euler's or Heun's step; Euler's for the other solvers).

schedopt:

- ``dp-kl`` (DP with exact one-step Gaussian KL costs), ``gaussian-kl`` (Adam on the
  closed-form KL of the solver), ``constant-rate`` (Okada et al.) and ``score-work``
  (Williams et al.), each built without sampling the model;
- ``<objective>+range@best``: the sample-based objective (default: the Fréchet distance of
  classifier features on the digits models, sliced W2 on the oracles), fitted through the
  solver with the grid's range learned, started from the grid above that the search seeds
  rank best (so it refines the strongest start it has);
- ``all-nfe``: one fit of the same objective for every budget of the solver (a shared
  spacing with a learned range per budget, ``SumOverBudgets`` of log losses), with
  ``--all-nfe``.

Every grid is scored by the cell's metric (FD of classifier features on the digits models,
1000 samples; sliced W2 on the oracles, 2000) on held-out seeds ``10000 + i``; the headline
compares the best schedopt grid with the best baseline by their ratio paired by seed, with a
95% t-interval. Rows go to ``OUT/rows.jsonl`` cell by cell (``--resume`` skips finished
cells); the summary step writes ``headline.md``, one PNG per target and ``summary.json``,
and with ``--readme README.md`` replaces the README's headline block.

    python experiments/headline.py --smoke
    python experiments/headline.py --targets ring,gmm64,digits-gaussian --resume
    python experiments/headline.py --targets digits-model --resume --fit-nfe 5
    python experiments/headline.py --summarize experiments/out/headline/rows.jsonl \\
        --readme README.md
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import re
import time
from pathlib import Path

import jax
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
from range_fits import (
    BOUNDS,
    SEARCH_SAMPLES,
    SEARCH_SEED,
    add_validation_options,
    as_start,
    baseline_pool,
    best_start,
    build_objective,
    check_time_inputs,
    check_validation_options,
    fit_all,
    headline_metric,
    held_out_metrics,
    paired_ratio,
    start_schedules,
)

from schedopt.baselines import baseline_schedules
from schedopt.io import atomic_write_bytes, atomic_write_json
from schedopt.objectives import GaussianKL
from schedopt.objectives.budgets import BudgetRanges, SumOverBudgets
from schedopt.optimize import OptimizationError, optimize
from schedopt.sampling import make_sampler
from schedopt.schedules import EDM, DecoupledTimes, MonotoneCubic
from schedopt.search import (
    dp_search,
    optimize_ays,
    optimize_dmn,
    schedule_from_sigmas,
    teacher_levels,
    trajectory_step_costs,
)
from schedopt.search.dmn import SOLVERS as DMN_SOLVERS

OUT = Path(__file__).parent / "out" / "headline"
TARGETS = ("digits-model", "digits-early", "ring", "gmm64", "digits-gaussian")
SOLVERS = ("euler", "heun", "dpmpp-2m", "ipndm", "unipc", "euler-maruyama")
NFES = (3, 4, 5, 6, 8, 10, 20)
HAND_MADE = ("edm-rho7", "logsnr-uniform", "cosine", "uniform-t", "trailing")
BASELINES = (*HAND_MADE, "edm-best-range", "ays", "dmn", "gits")
MODEL_FREE = ("dp-kl", "gaussian-kl", "constant-rate", "score-work")
#: Teacher levels of the GITS search and the batch its trajectory costs average over.
GITS_LEVELS, GITS_BATCH = 64, 256
#: Budgets where the goal is a 20% lower metric than the best baseline; above them, the
#: goal is not to be worse than the best baseline by more than the interval.
LOW_NFE = (3, 4, 5, 6)
README_START, README_END = "<!-- headline:start -->", "<!-- headline:end -->"


def default_objective(target_name: str) -> str:
    return (
        "frechet"
        if target_name.startswith("digits-") and target_name != "digits-gaussian"
        else "sliced-w2"
    )


def load_target(name: str, args):
    """A target of ``nfe_sweep.make_target``; ``digits-early`` is the digits model at
    ``--early-model``."""
    if name == "digits-early":
        target = make_target("digits-model", Path(args.early_model), 360)
        target.name = name
        return target
    return make_target(name, Path(args.model), 360 if name == "digits-model" else 2000)


# ---- strategies ------------------------------------------------------------------------------


class Strategies:
    """The grids of every cell of one target, with what is shared across cells (the
    model-free schedules, GITS' cost tables) built once."""

    def __init__(self, target, args):
        self.target, self.args = target, args
        #: samples per held-out seed: the digits models' FD uses 1000 (the test set is 360)
        self.eval_samples = min(args.eval_samples, 1000) if target.features else args.eval_samples
        self._gits = {}

    @functools.cached_property
    def fixed(self) -> tuple[dict, dict]:
        """The model-free schedules (constant-rate, score-work) and their build times."""
        return target_schedules(self.target, 128 if self.args.smoke else 512, self.args.smoke)

    def gits_costs(self, cost_solver: str):
        if cost_solver not in self._gits:
            started = time.perf_counter()
            levels = teacher_levels(SIGMA_MIN, SIGMA_MAX, 16 if self.args.smoke else GITS_LEVELS)
            batch = 32 if self.args.smoke else GITS_BATCH
            noise = jax.random.normal(
                jax.random.key(SEARCH_SEED + 7), (batch, *self.target.event_shape)
            )
            cost = trajectory_step_costs(
                self.target.denoiser, levels, levels[0] * noise, cost_solver
            )
            self._gits[cost_solver] = (levels, cost, time.perf_counter() - started)
        return self._gits[cost_solver]

    def grids(self, solver: str, n: int, score) -> tuple[dict, dict, dict]:
        """``(schedules, seconds, extra)`` of every baseline and model-free schedopt grid
        of a cell; ``extra`` holds the range search's record."""
        target, args = self.target, self.args
        out, seconds, search = baseline_pool(target, solver, n, self.fixed, score)
        extra = {"edm-best-range": {"search": search}}
        out["uniform-t"] = baseline_schedules(None, SIGMA_MIN, SIGMA_MAX)["uniform-t"]
        seconds["uniform-t"] = 0.0
        out["score-work"] = self.fixed[0]["score-work"]
        seconds["score-work"] = self.fixed[1]["score-work"]

        def timed(name, build):
            started = time.perf_counter()
            try:
                out[name] = build()
            except OptimizationError as e:
                print(f"  {name} failed ({target.name} {solver} {n} steps): {e}", flush=True)
                return
            seconds[name] = time.perf_counter() - started

        timed(
            "ays",
            lambda: schedule_from_sigmas(
                optimize_ays(
                    target.spectrum, n, SIGMA_MIN, SIGMA_MAX, num_iterations=args.search_iterations
                ).sigmas
            ),
        )
        if solver in DMN_SOLVERS:
            timed(
                "dmn",
                lambda: schedule_from_sigmas(
                    optimize_dmn(
                        n, solver, SIGMA_MIN, SIGMA_MAX, num_iterations=args.search_iterations
                    ).sigmas
                ),
            )
        levels, cost, cost_s = self.gits_costs(solver if solver in ("euler", "heun") else "euler")
        timed("gits", lambda: schedule_from_sigmas(dp_search(levels, cost, n).sigmas))
        seconds["gits"] = seconds.get("gits", 0.0) + cost_s
        init = MonotoneCubic.from_schedule(EDM(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX), 16)
        timed(
            "gaussian-kl",
            lambda: (
                optimize(
                    init,
                    GaussianKL(target.spectrum, num_steps=n, solver=solver),
                    num_iterations=args.search_iterations,
                    progress=False,
                ).schedule
            ),
        )
        return out, seconds, extra

    def fits(self, solver: str, n: int, pool: dict, score) -> tuple[dict, dict, dict]:
        """The sample-based fits with the range learned, started from the best of ``pool``."""
        started = time.perf_counter()
        chosen, start = best_start(pool, score)
        pick = time.perf_counter() - started
        objective = self.args.objective or default_objective(self.target.name)
        label = f"{objective}+range@best"
        starts = {label: (objective, start)}
        if self.args.time_inputs:  # the same fit, the denoiser's time inputs learned too
            timed = DecoupledTimes.from_schedule(start, self.args.time_inputs, BOUNDS)
            starts[f"{objective}+range+time@best"] = (objective, timed)
        out, seconds, info = fit_all(self.target, solver, n, self.args, starts)
        extra = {k: {"start": chosen, **info.get(k, {})} for k in starts}
        return out, {k: v + pick for k, v in seconds.items()}, extra

    def all_nfe(self, solver: str, steps: list[int]) -> tuple[BudgetRanges | None, float]:
        """One fit of the objective summed over every budget's step count."""
        args = self.args
        name = args.objective or default_objective(self.target.name)
        base, _ = start_schedules()
        schedule = BudgetRanges.from_schedule(base, steps, BOUNDS, (SIGMA_MIN, SIGMA_MAX))
        objective = SumOverBudgets(
            tuple(
                build_objective(
                    name, self.target, make_sampler(solver, n), args.objective_batch, args.seed
                )
                for n in schedule.num_steps
            )
        )
        started = time.perf_counter()
        try:
            result = optimize(
                schedule,
                objective,
                num_iterations=args.iterations,
                learning_rate=args.lr,
                seed=args.seed,
                progress=False,
            )
        except OptimizationError as e:
            print(f"  all-nfe failed ({self.target.name} {solver}): {e}", flush=True)
            return None, 0.0
        return result.schedule, time.perf_counter() - started


# ---- cells -----------------------------------------------------------------------------------


def cell_rows(strategies: Strategies, solver: str, nfe: int, fit: bool) -> list[dict]:
    """Every strategy's held-out metrics in one (solver, budget) cell."""
    target, args = strategies.target, strategies.args
    n = num_steps_for(solver, nfe)
    metric = headline_metric(target)
    search_sample = _sampling_fn(target, solver, n, min(strategies.eval_samples, SEARCH_SAMPLES))

    def score(schedule, seed=SEARCH_SEED):
        x = np.asarray(search_sample(schedule, jax.random.key(seed)))
        return sample_metrics(target, x, jax.random.key(seed + 1), only=metric)[metric]

    schedules, seconds, extra = strategies.grids(solver, n, score)
    if fit:
        fitted, fit_seconds, fit_extra = strategies.fits(solver, n, dict(schedules), score)
        schedules.update(fitted)
        seconds.update(fit_seconds)
        extra.update(fit_extra)
    sample = _sampling_fn(target, solver, n, strategies.eval_samples)
    return [
        evaluated(target, solver, nfe, n, name, schedule, seconds[name], sample, args)
        | extra.get(name, {})
        for name, schedule in schedules.items()
    ]


def evaluated(target, solver, nfe, n, name, schedule, build_s, sample, args) -> dict:
    row = dict(
        target=target.name,
        solver=solver,
        nfe=nfe,
        nfe_used=make_sampler(solver, n).nfe,
        steps=n,
        strategy=name,
        kind=kind_of(name),
        build_s=build_s,
        sigma_range=[float(schedule.sigma_min), float(schedule.sigma_max)],
    )
    return row | held_out_metrics(target, sample, schedule, args.seeds)


def kind_of(strategy: str) -> str:
    return "baseline" if strategy in BASELINES else "schedopt"


def all_nfe_rows(strategies: Strategies, solver: str, budgets: list[int]) -> list[dict]:
    steps = sorted({num_steps_for(solver, b) for b in budgets if num_steps_for(solver, b) >= 2})
    fitted, seconds = strategies.all_nfe(solver, steps)
    if fitted is None:
        return []
    rows = []
    for nfe in budgets:
        n = num_steps_for(solver, nfe)
        if n < 2:
            continue
        sample = _sampling_fn(strategies.target, solver, n, strategies.eval_samples)
        schedule = fitted.for_steps(n)
        rows.append(
            evaluated(
                strategies.target,
                solver,
                nfe,
                n,
                "all-nfe",
                schedule,
                seconds,
                sample,
                strategies.args,
            )
            | {"budgets": steps}
        )
    return rows


def recorded_start(cell: dict, name: str, n: int):
    """The grid a cell's ``+range@best`` fit started from, rebuilt from the cell's rows: a
    hand-made grid, or EDM rho = 7 on the range the cell's search recorded. (The published
    searches and the model-free grids are not rebuilt: their cells are run again whole.)"""
    if name == "edm-best-range":
        lo, hi = cell[name]["search"]["best"]
        return EDM(sigma_min=lo, sigma_max=hi)
    if name == "trailing":
        return trailing_schedule(n)
    families = baseline_schedules(None, SIGMA_MIN, SIGMA_MAX)
    if name in HAND_MADE and name in families:
        return families[name]
    raise ValueError(
        f"the start {name!r} of a finished cell cannot be rebuilt from its rows; run the "
        "cell again (remove its rows) to add the time-input fit"
    )


def missing_time_fit(cell: dict, args) -> str | None:
    """The ``+range@best`` strategy of a finished cell whose ``+range+time@best`` twin is
    still missing with ``--time-inputs`` (``None``: nothing to add)."""
    if not args.time_inputs or any(k.endswith("+range+time@best") for k in cell):
        return None
    plain = [k for k in cell if k.endswith("+range@best") and "start" in cell[k]]
    return plain[0] if plain else None


def time_fit_rows(strategies: Strategies, cell: dict, plain: str, solver: str, nfe: int):
    """The ``+range+time@best`` row of a finished cell: the same validated fit as its
    ``plain`` row, from the same start, with the denoiser's time inputs learned too. Its
    ``build_s`` is the fit's time alone (the start's pick was timed with ``plain``)."""
    target, args = strategies.target, strategies.args
    n = num_steps_for(solver, nfe)
    chosen = cell[plain]["start"]
    objective = plain.removesuffix("+range@best")
    label = f"{objective}+range+time@best"
    timed = DecoupledTimes.from_schedule(
        as_start(recorded_start(cell, chosen, n)), args.time_inputs, BOUNDS
    )
    out, seconds, info = fit_all(target, solver, n, args, {label: (objective, timed)})
    if label not in out:
        return []
    sample = _sampling_fn(target, solver, n, strategies.eval_samples)
    row = evaluated(target, solver, nfe, n, label, out[label], seconds[label], sample, args)
    return [row | {"start": chosen, "added_to_finished_cell": True, **info.get(label, {})}]


def reused(rows: list[dict], nfe: int) -> list[dict]:
    """A cell's rows under another budget that buys the same steps."""
    return [r | {"nfe": nfe} for r in rows]


def run(args, path: Path, rows: list[dict]) -> list[dict]:
    """Every cell of ``args`` not in ``rows``, appended to ``path`` cell by cell."""
    for name in args.targets:
        rows = run_target(name, args, path, rows)
    return rows


def add_time_fits(name, args, path: Path, rows: list[dict], have, cell_strategies) -> list[dict]:
    """Finished cells of ``have`` with a ``+range@best`` fit but not its ``+range+time@best``
    twin (``--time-inputs``, ``--fit-nfe``) get the twin, appended to ``path``; a budget
    that buys the same steps as one done reuses its row."""
    for solver, nfe in [
        (s, b) for s in args.solvers for b in args.nfe if (name, s, b) in have and b in args.fit_nfe
    ]:
        cell = {
            r["strategy"]: r
            for r in rows
            if (r["target"], r["solver"], r["nfe"]) == (name, solver, nfe)
        }
        plain = missing_time_fit(cell, args)
        if plain is None:
            continue
        started = time.perf_counter()
        n = num_steps_for(solver, nfe)
        twin = [
            r
            for r in rows
            if r["target"] == name
            and r["solver"] == solver
            and r["steps"] == n
            and r["strategy"].endswith("+range+time@best")
        ]
        if twin:
            added = reused(twin[:1], nfe)
        else:
            added = time_fit_rows(cell_strategies(), cell, plain, solver, nfe)
        append(path, added)
        rows = rows + added
        jax.clear_caches()
        print(f"{name} {solver} nfe={nfe} +time: {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def run_target(name: str, args, path: Path, rows: list[dict]) -> list[dict]:
    have = {(r["target"], r["solver"], r["nfe"]) for r in rows}
    have_all = {(r["target"], r["solver"]) for r in rows if r["strategy"] == "all-nfe"}
    todo = [
        (s, b)
        for s in args.solvers
        for b in args.nfe
        if (name, s, b) not in have and num_steps_for(s, b) >= 2
    ]
    todo_all = [s for s in args.solvers if args.all_nfe and (name, s) not in have_all]
    strategies = None  # the target is loaded only when a cell needs it (a reused one does not)

    def cell_strategies():
        nonlocal strategies
        strategies = strategies or Strategies(load_target(name, args), args)
        return strategies

    rows = add_time_fits(name, args, path, rows, have, cell_strategies)
    for solver, nfe in todo:
        started = time.perf_counter()
        n = num_steps_for(solver, nfe)
        same = [
            r for r in rows if r["target"] == name and r["solver"] == solver and r["steps"] == n
        ]
        donor = sorted({r["nfe"] for r in same})
        fit = nfe in args.fit_nfe
        if donor and (not fit or any("@best" in r["strategy"] for r in same)):
            cell = reused([r for r in same if r["nfe"] == donor[0]], nfe)
        else:
            cell = cell_rows(cell_strategies(), solver, nfe, fit)
        append(path, cell)
        rows = rows + cell
        jax.clear_caches()  # every cell compiles anew; a long run otherwise runs out of memory
        print(f"{name} {solver} nfe={nfe}: {time.perf_counter() - started:.0f} s", flush=True)
    for solver in todo_all:
        started = time.perf_counter()
        cell = all_nfe_rows(cell_strategies(), solver, list(args.nfe))
        append(path, cell)
        rows = rows + cell
        jax.clear_caches()
        print(f"{name} {solver} all-nfe: {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def append(path: Path, rows: list[dict]):
    with path.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))


# ---- summary ---------------------------------------------------------------------------------


def _metric(target: str) -> str:
    return "fd" if target in ("digits-model", "digits-early") else "sw2"


def _best(cell: dict, metric: str, kind: str) -> str | None:
    """The strategy of ``kind`` with the lowest held-out mean in ``cell``."""
    names = [k for k, r in cell.items() if r["kind"] == kind]
    return min(names, key=lambda k: cell[k][metric]["mean"]) if names else None


def summarize(rows: list[dict]) -> list[dict]:
    """Per (target, solver, budget): the best baseline and the best schedopt grid (by the
    held-out mean), their ratio paired by seed with a 95% interval, and whether the goal
    holds (ratio <= 0.8 at NFE 3-6; the interval's lower end <= 1 above)."""
    cells = {}
    for r in rows:
        cells.setdefault((r["target"], r["solver"], r["nfe"]), {})[r["strategy"]] = r
    out = []
    for (target, solver, nfe), cell in sorted(cells.items()):
        metric = _metric(target)
        base, ours = (_best(cell, metric, kind) for kind in ("baseline", "schedopt"))
        if base is None or ours is None:
            continue
        b, s = cell[base][metric], cell[ours][metric]
        entry = dict(
            target=target, solver=solver, nfe=nfe, nfe_used=cell[ours]["nfe_used"], metric=metric,
            best_baseline=base, baseline=b["mean"], baseline_ci=b["ci95"],
            baseline_s=cell[base]["build_s"], best_schedopt=ours, schedopt=s["mean"],
            schedopt_ci=s["ci95"], schedopt_s=cell[ours]["build_s"],
            strategies=len(cell),
        )  # fmt: skip
        ratio = paired_ratio(cell[ours], cell[base], metric)
        if ratio is not None:
            entry["ratio"], entry["ratio_ci"] = ratio["mean"], ratio["ci95"]
            half = ratio["ci95"] or 0.0
            entry["goal"] = ratio["mean"] <= 0.8 if nfe in LOW_NFE else ratio["mean"] - half <= 1.0
        out.append(entry)
    return out


def _num(value, ci=None) -> str:
    if value is None or not np.isfinite(value):
        return "diverged"
    text = f"{value:.3g}"
    return text if ci is None else f"{text} ± {ci:.2g}"


def _seconds(s: float) -> str:
    return f"{s:.2g} s" if s < 100 else f"{s / 60:.0f} min"


def headline_table(summary: list[dict], target: str) -> str:
    """One target's rows: per solver and budget, the best baseline and best schedopt grid."""
    sub = [c for c in summary if c["target"] == target]
    if not sub:
        return ""
    metric = sub[0]["metric"].upper().replace("SW2", "sliced W2")
    lines = [
        f"| solver | NFE | best baseline | {metric} | best schedopt | {metric} | ratio (95% CI) "
        "| time to grid |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in sorted(
        sub, key=lambda c: (SOLVERS.index(c["solver"]) if c["solver"] in SOLVERS else 99, c["nfe"])
    ):
        used = "" if c["nfe_used"] == c["nfe"] else f" ({c['nfe_used']})"
        ratio = _num(c.get("ratio"), c.get("ratio_ci"))
        if c.get("goal") is False:
            ratio += " ✗"
        lines.append(
            f"| {c['solver']} | {c['nfe']}{used} | {c['best_baseline']} "
            f"| {_num(c['baseline'], c['baseline_ci'])} | {c['best_schedopt']} "
            f"| {_num(c['schedopt'], c['schedopt_ci'])} | {ratio} | {_seconds(c['schedopt_s'])} |"
        )
    met = [c for c in sub if "goal" in c]
    lines.append("")
    lines.append(
        f"Goal met in {sum(c['goal'] for c in met)} of {len(met)} cells (ratio <= 0.8 at NFE "
        "3-6; not worse than the best baseline beyond the interval above). ✗: not met."
    )
    return "\n".join(lines)


def plot(summary: list[dict], target: str, path: Path):
    """The best baseline and best schedopt metric against NFE, one panel per solver."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    sub = [c for c in summary if c["target"] == target]
    solvers = [s for s in SOLVERS if any(c["solver"] == s for c in sub)]
    cols = min(len(solvers), 3)
    nrows = -(-len(solvers) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3.2 * nrows), squeeze=False)
    for ax, solver in zip(axes.flat, solvers, strict=False):
        cells = sorted((c for c in sub if c["solver"] == solver), key=lambda c: c["nfe"])
        nfe = [c["nfe"] for c in cells]
        for key, label in (("baseline", "best baseline"), ("schedopt", "best schedopt")):
            value = np.asarray([c[key] for c in cells], float)
            ci = np.asarray([c[f"{key}_ci"] or 0.0 for c in cells], float)
            ax.errorbar(nfe, value, yerr=ci, marker="o", ms=3, lw=1, capsize=2, label=label)
        ax.set(xscale="log", yscale="log", title=solver, xlabel="NFE")
        ax.set_xticks(nfe, [str(n) for n in nfe])  # the budgets, not log-scale minor labels
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_ylabel(cells[0]["metric"] if cells else "")
    for ax in list(axes.flat)[len(solvers) :]:
        ax.axis("off")
    if solvers:
        axes.flat[0].legend(fontsize=7)
    fig.suptitle(target)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def write_summary(rows: list[dict], out: Path, readme: Path | None = None) -> list[dict]:
    summary = summarize(rows)
    targets = [t for t in TARGETS if any(c["target"] == t for c in summary)]
    parts = []
    for target in targets:
        plot(summary, target, out / f"{target}.png")
        parts.append(
            f"### {target}\n\n![{target}]({target}.png)\n\n" + headline_table(summary, target)
        )
    atomic_write_json(out / "summary.json", {"cells": summary})
    atomic_write_bytes(out / "headline.md", ("\n\n".join(parts) + "\n").encode())
    if readme is not None:
        update_readme(readme, summary, out)
    return summary


def update_readme(readme: Path, summary: list[dict], out: Path):
    """Replace the README's block between the headline markers with the digits model's
    table and figure (the first target present of ``TARGETS``)."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"`--readme` {readme} has no {README_START} ... {README_END} block")
    target = next(t for t in TARGETS if any(c["target"] == t for c in summary))
    figure = Path(out / f"{target}.png").resolve().relative_to(readme.resolve().parent)
    block = (
        f"{README_START}\n<!-- generated by experiments/headline.py --summarize; do not edit -->\n"
        f"Target: `{target}`. ![headline]({figure.as_posix()})\n\n"
        f"{headline_table(summary, target)}\n{README_END}"
    )
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    atomic_write_bytes(readme, pattern.sub(lambda _: block, text, count=1).encode())


# ---- command line ----------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--solvers", default=",".join(SOLVERS))
    p.add_argument("--nfe", default=",".join(map(str, NFES)))
    p.add_argument("--fit-nfe", default=None, help="budgets with sample-based fits (default all)")
    p.add_argument("--all-nfe", action="store_true", help="also the one-fit-for-every-NFE variant")
    p.add_argument("--objective", default=None, help="frechet | sliced-w2 | mmd | trajectory")
    p.add_argument("--seeds", type=int, default=3, help="held-out sampling seeds")
    p.add_argument("--eval-samples", type=int, default=2000, help="per seed (digits: 1000)")
    p.add_argument("--iterations", type=int, default=200, help="Adam steps per sample fit")
    p.add_argument(
        "--search-iterations", type=int, default=500, help="Adam steps of ays, dmn, gaussian-kl"
    )
    add_validation_options(p, default_batch=512)
    p.add_argument(
        "--time-inputs",
        type=int,
        default=6,
        help="knots of the +range+time@best fit's learned denoiser time inputs (0: no such fit)",
    )
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--objective-batch", type=int, default=128)
    p.add_argument("--seed", type=int, default=0, help="the fits' seed")
    p.add_argument("--model", default="runs/digits-edm")
    p.add_argument("--early-model", default="runs/digits-edm-early")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--resume", action="store_true")
    p.add_argument("--summarize", default=None, help="comma-separated rows.jsonl files")
    p.add_argument("--readme", default=None, help="README whose headline block to replace")
    p.add_argument(
        "--smoke", action="store_true", help="CI size: ring, Heun and DPM-Solver++(2M), NFE 3, 4"
    )
    args = p.parse_args(argv)
    out = Path(args.out)
    readme = Path(args.readme) if args.readme else None
    if args.summarize:
        out.mkdir(parents=True, exist_ok=True)
        rows = read_rows(args.summarize.split(","))
        if not rows:
            raise ValueError(f"`--summarize` files hold no rows: {args.summarize!r}")
        write_summary(rows, out, readme)
        print((out / "headline.md").read_text())
        return
    if args.smoke:
        args.targets = "ring"
        args.nfe = "3" if args.nfe == ",".join(map(str, NFES)) else args.nfe
        args.solvers = "heun,dpmpp-2m" if args.solvers == ",".join(SOLVERS) else args.solvers
        args.seeds, args.eval_samples, args.iterations, args.objective_batch = 2, 256, 5, 64
        args.search_iterations = 20
        args.validation_batch = min(args.validation_batch, 128)
        args.fit_nfe = args.fit_nfe or "3"
    check_validation_options(args)
    check_time_inputs(args.time_inputs)
    args.targets = _choices("--targets", args.targets, TARGETS)
    args.solvers = _choices("--solvers", args.solvers, SOLVERS)
    args.nfe = _ints("--nfe", args.nfe)
    args.fit_nfe = args.nfe if args.fit_nfe is None else _ints("--fit-nfe", args.fit_nfe)
    if args.objective is not None:
        _choices("--objective", args.objective, ("frechet", "sliced-w2", "mmd", "trajectory"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "rows.jsonl"
    if not args.resume:
        path.unlink(missing_ok=True)
    rows = run(args, path, read_rows([path]) if path.exists() else [])
    write_summary(rows, out, readme)
    print((out / "headline.md").read_text())


if __name__ == "__main__":
    main()
