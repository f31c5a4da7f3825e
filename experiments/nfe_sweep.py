"""The NFE sweep of baselines, search methods and learned schedules, and the claim of
Sun, Poor & Zhang (Gaussian KL, Euler–Maclaurin, tangent law; arXiv 2601.13602) that the
Gaussian KL ranks discretisations as sample quality does.

For each target, solver (Euler = DDIM, Heun, Euler-Maruyama) and NFE, every strategy gives
a sampling grid. Targets:

- ``digits-gaussian``: the Gaussian with the digits covariance (exact denoiser);
- ``ring`` (2-D, 8 modes) and ``gmm64`` (64-D, 8 unequal modes): mixtures with exact scores;
- ``digits-model``: the trained digits U-Net (``--model``, default ``runs/digits-edm``).

Strategies:

- baselines: ``baseline_schedules(spectrum)`` (EDM rho=7, logSNR-uniform, uniform-t,
  cosine, tangent-1, tangent-optimal) and ``trailing`` (diffusers' trailing spacing of
  the 1000-step DDPM table);
- search: ``dp-kl`` (DP over 96 log-uniform teacher levels, cost = exact one-step Gaussian
  KL of the solver, Euler's for EM) and ``ays`` (AYS-style bound optimiser);
- schedopt objectives: ``gaussian-kl`` (monotone cubic, Adam on the closed-form KL for the
  solver), ``constant-rate`` (Okada et al., Constant Rate Scheduling: model-free Fréchet
  speed of the training data, built once per target), ``score-work`` (Williams et al.,
  Score-Optimal Diffusion Schedules: equal-cost grid of the corrector cost table from the
  target's denoiser, built once per target), and the sample-based ``trajectory``, ``mmd``,
  ``sliced-w2``, ``frechet`` (Adam on a monotone cubic through the solver; at the NFEs
  of ``--objective-nfe`` only, as they cost one optimisation per cell).

Each grid gets the target spectrum's exact Gaussian KL (Sun, Poor & Zhang's ranking proxy;
the covariance spectrum of a mixture or of the digits) and sample metrics against held-out
data: sliced W2, MMD and, on the digits model, the Fréchet distance of classifier features;
each a mean over ``--seeds`` sampling seeds. Per (target, solver, NFE): Spearman correlation of the
KL ranking with each metric's ranking, and whether the KL-selected strategy wins. Writes
``experiments/out/sweep/`` ``rows.jsonl`` (appended as cells finish), ``summary.json``,
``table.md``, ``metrics.md`` and ``sw2_vs_nfe.png``.

    python experiments/nfe_sweep.py --smoke       # CI size (~1 min)
    python experiments/nfe_sweep.py               # everything (hours on 2 CPU cores)
    python experiments/nfe_sweep.py --targets gmm64 --solvers euler,heun --nfe 5,10,20
"""

from __future__ import annotations

import argparse
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from schedopt.baselines import baseline_schedules
from schedopt.constant_rate import SampleFrechet, tabulate_speed
from schedopt.data import load_dataset
from schedopt.gaussian import Spectrum, gaussian_kl, step_grid
from schedopt.io import atomic_write_bytes, atomic_write_json
from schedopt.metrics import frechet_distance, mmd, sliced_wasserstein, spearman
from schedopt.models import GaussianDenoiser, GaussianMixtureDenoiser
from schedopt.objectives import MMD, Frechet, GaussianKL, SlicedWasserstein, TrajectoryMatching
from schedopt.optimize import OptimizationError, optimize
from schedopt.sampling import SAMPLERS, make_sampler, sampler_for_nfe
from schedopt.schedules import EDM, DecoupledTimes, MonotoneCubic, Tabulated, grid
from schedopt.score_optimal import CorrectorCost, CostTable
from schedopt.search import (
    dp_search,
    gaussian_step_costs,
    optimize_ays,
    schedule_from_sigmas,
    teacher_levels,
)

OUT = Path(__file__).parent / "out" / "sweep"
TARGETS = ("digits-gaussian", "ring", "gmm64", "digits-model")
SOLVERS = ("euler", "heun", "euler-maruyama")  # the default set; --solvers takes any sampler
NFES = (3, 4, 5, 6, 8, 10, 15, 20, 50)
SAMPLE_OBJECTIVES = ("trajectory", "mmd", "sliced-w2", "frechet")
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


# ---- targets ---------------------------------------------------------------------------------


@dataclass
class Target:
    """A denoiser with its data: ``train`` feeds the objectives and tables, ``reference``
    (held out) the metrics; ``features`` (optional) maps samples to the FD's features."""

    name: str
    denoiser: object
    spectrum: Spectrum
    event_shape: tuple[int, ...]
    train: np.ndarray
    reference: np.ndarray
    features: object = None
    clip: float | None = None


def _mixture_spectrum(mixture) -> Spectrum:
    eig, vecs = np.linalg.eigh(np.asarray(mixture.covariance(), np.float64))
    mean = vecs.T @ np.asarray(mixture.mean(), np.float64)
    return Spectrum(np.maximum(eig, 1e-6), mean)


def make_target(name: str, model: Path, num_reference: int) -> Target:
    if name == "digits-gaussian":
        spectrum = Spectrum.digits()
        denoiser = GaussianDenoiser.from_spectrum(spectrum)
        train = np.asarray(denoiser.sample(jax.random.key(10_000), 2000))
        reference = np.asarray(denoiser.sample(jax.random.key(10_001), num_reference))
        return Target(name, denoiser, spectrum, (spectrum.dim,), train, reference)
    if name in ("ring", "gmm64"):
        ds = load_dataset(name, num_train=2000, num_test=num_reference)
        denoiser = GaussianMixtureDenoiser.from_mixture(ds.distribution)
        spectrum = _mixture_spectrum(ds.distribution)
        return Target(name, denoiser, spectrum, ds.event_shape, ds.train, ds.test)
    if name == "digits-model":
        from schedopt.metrics.classifier import digits_features
        from schedopt.models import load_denoiser

        if not (model / "DONE").exists():
            raise SystemExit(
                f"--model {model} has no DONE file: train it first with "
                f"`schedopt train --dataset digits --out {model}`"
            )
        ds = load_dataset("digits")
        spectrum = Spectrum.digits("train")
        train, reference = np.asarray(ds.train), np.asarray(ds.test)
        return Target(
            name,
            load_denoiser(model / "network"),
            spectrum,
            ds.event_shape,
            train,
            reference,
            features=digits_features,
            clip=1.0,
        )
    raise ValueError(f"`--targets` entries must be among {', '.join(TARGETS)}; got {name!r}")


def sample_metrics(target: Target, x: np.ndarray, key, only: str | None = None) -> dict[str, float]:
    """Sliced W2 and MMD (median bandwidth) to the held-out data; FD of features if any
    (``only``: just that one, e.g. to score many candidate grids)."""
    names = ["sw2", "mmd"] + (["fd"] if target.features is not None else [])
    names = names if only is None else [only]
    if not np.all(np.isfinite(x)):
        return dict.fromkeys(names, float("inf"))
    if target.clip is not None:
        x = np.clip(x, -target.clip, target.clip)
    flat, ref = x.reshape(len(x), -1), target.reference.reshape(len(target.reference), -1)
    metrics = {
        "sw2": lambda: float(sliced_wasserstein(flat, ref, key)),
        "mmd": lambda: float(mmd(flat[:1000], ref[:1000])),
        "fd": lambda: float(
            frechet_distance(target.features(x), target.features(target.reference))
        ),
    }
    return {name: metrics[name]() for name in names}


# ---- strategies ------------------------------------------------------------------------------


def num_steps_for(solver: str, nfe: int) -> int:
    """Steps within an NFE budget: Heun ``2N - 1``, Euler, EM and the multistep solvers ``N``
    (0 when the budget buys no step)."""
    try:
        return sampler_for_nfe(solver, nfe).num_steps
    except ValueError:
        return 0


def trailing_schedule(num_steps: int):
    """diffusers' ``timestep_spacing="trailing"`` on the 1000-step DDPM table."""
    table = Tabulated.ddpm_linear()
    k = table.num_timesteps
    steps = np.round(np.arange(k, 0, -k / num_steps)).astype(int) - 1
    levels = np.asarray(table.timestep_noise_levels())[steps]
    return schedule_from_sigmas(np.concatenate([levels, [0.0]]))


def target_schedules(target: Target, cost_samples: int, smoke: bool) -> tuple[dict, dict]:
    """Strategies built once per target (any NFE): constant-rate and score-work."""
    out, seconds = {}, {}
    start = time.perf_counter()
    speed = tabulate_speed(
        SampleFrechet.from_data(target.train.reshape(len(target.train), -1), num_samples=1000),
        num_points=33 if smoke else 129,
    )
    out["constant-rate"], seconds["constant-rate"] = (
        speed.schedule(1.0),
        time.perf_counter() - start,
    )
    start = time.perf_counter()
    table = CostTable.estimate(
        CorrectorCost(),
        target.denoiser,
        jnp.asarray(target.train[:cost_samples]),
        jax.random.key(3),
        num_intervals=16 if smoke else 128,
    )
    out["score-work"], seconds["score-work"] = table.schedule(), time.perf_counter() - start
    return out, seconds


def metric_space(target: Target, name: str):
    """The map a discrepancy objective applies to samples and data, so that it compares
    what the sweep's metrics compare: samples clipped like the metrics clip them, and for
    the Fréchet objective the metric's features (None: the raw samples)."""
    clip = None if target.clip is None else float(target.clip)
    features = target.features if name == "frechet" else None
    if clip is None and features is None:
        return None

    def transform(x):
        x = x if clip is None else jnp.clip(x, -clip, clip)
        return x if features is None else features(x.reshape(len(x), -1))

    return transform


def sample_objective(name: str, target: Target, sampler, batch: int):
    """A sample-based objective of ``sampler``'s output on ``target`` (None if it does not
    apply: trajectory matching needs a deterministic sampler). Discrepancies are measured
    in :func:`metric_space`; trajectory matching compares raw samples with its teacher."""
    common = dict(batch_size=batch)
    data = target.train
    if name == "trajectory":
        if sampler.stochastic:
            return None
        return TrajectoryMatching(
            target.denoiser,
            sampler,
            event_shape=target.event_shape,
            num_pairs=batch,
            validation_fraction=0.0,
            reference_steps=64,
        )
    cls = {"mmd": MMD, "sliced-w2": SlicedWasserstein, "frechet": Frechet}[name]
    return cls(
        target.denoiser,
        sampler,
        data,
        init="ve",
        data_batch_size=min(512, len(data)),
        feature_map=metric_space(target, name),
        **common,
    )


def cell_schedules(target, solver, n, args, teacher, fixed) -> tuple[dict, dict]:
    """name -> schedule for one (target, solver, steps) cell, with the seconds each took."""
    out, seconds = {}, {}
    for name, schedule in baseline_schedules(target.spectrum, SIGMA_MIN, SIGMA_MAX).items():
        out[name], seconds[name] = schedule, 0.0
    if n >= 2:
        out["trailing"], seconds["trailing"] = trailing_schedule(n), 0.0
        # a step's exact KL exists for single-step solvers only; the others (EM, the multistep
        # solvers, whose first step is Euler) search with Euler's costs
        cost_solver = solver if solver in ("euler", "heun") else "euler"
        start = time.perf_counter()
        cost = gaussian_step_costs(target.spectrum, teacher, cost_solver)
        out["dp-kl"] = schedule_from_sigmas(dp_search(teacher, cost, n).sigmas)
        seconds["dp-kl"] = time.perf_counter() - start
        start = time.perf_counter()
        result = optimize_ays(
            target.spectrum, n, SIGMA_MIN, SIGMA_MAX, num_iterations=args.iterations
        )
        out["ays"] = schedule_from_sigmas(result.sigmas)
        seconds["ays"] = time.perf_counter() - start
    init = MonotoneCubic.from_schedule(EDM(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX), 16)

    def fit(name, objective, iterations):
        start = time.perf_counter()
        try:
            result = optimize(init, objective, num_iterations=iterations, progress=False)
        except OptimizationError as e:  # reported and left out of the cell, not fatal
            print(f"  {name} failed ({target.name} {solver} {n} steps): {e}", flush=True)
            return
        out[name], seconds[name] = result.schedule, time.perf_counter() - start

    fit("gaussian-kl", GaussianKL(target.spectrum, num_steps=n, solver=solver), args.iterations)
    for name, schedule in fixed[0].items():
        out[name], seconds[name] = schedule, fixed[1][name]
    sampler = make_sampler(solver, n)
    nfe = sampler.nfe
    if nfe in args.objective_nfe and n >= 2:
        for name in args.objectives:
            objective = sample_objective(name, target, sampler, args.objective_batch)
            if objective is not None:
                fit(name, objective, args.objective_iterations)
    return out, seconds


# ---- the sweep -------------------------------------------------------------------------------


def _sampling_fn(target: Target, solver: str, n: int, batch: int):
    """``(schedule, key) -> samples``, jitted. ODE solvers only see the grid's levels, so every
    schedule goes through one ``Tabulated`` of its grid: one compilation per cell. EM steps in
    the schedule's time (it uses the derivative), and a ``DecoupledTimes`` tells the
    denoiser levels of its own, so those keep the schedule itself."""
    sampler = make_sampler(solver, n)
    shape = (batch, *target.event_shape)
    run = jax.jit(lambda sch, k: sampler.sample(target.denoiser, sch, k, shape, init="ve"))
    if sampler.stochastic:
        return run

    def sample(sch, k):
        if isinstance(sch, DecoupledTimes):
            return run(sch, k)
        return run(schedule_from_sigmas(np.asarray(grid(sch, n))), k)

    return sample


def read_rows(paths) -> list[dict]:
    """The rows of one or more ``rows.jsonl`` files (a line cut by an interruption is skipped)."""
    rows = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def seed_metrics(target: Target, sample, schedule, seeds: int) -> dict:
    """Each sample metric of ``sample(schedule, key)`` for sampling seeds ``0..seeds-1``:
    ``{metric: mean, f"{metric}_seeds": per-seed values}``."""
    per_seed = [
        sample_metrics(target, np.asarray(sample(schedule, jax.random.key(i))), jax.random.key(99))
        for i in range(seeds)
    ]
    out = {}
    for metric in per_seed[0]:
        values = [m[metric] for m in per_seed]
        out[metric], out[f"{metric}_seeds"] = float(np.mean(values)), values
    return out


def merge_cells(sources: list[list[dict]]) -> list[dict]:
    """The rows of several runs with one run per cell: a cell (target, solver, NFE) found in
    a later source replaces that cell's rows from the earlier ones (e.g. a re-run of some
    cells with more strategies)."""

    def cell(r):
        return r["target"], r["solver"], r["nfe"]

    merged = []
    for rows in sources:
        replaced = {cell(r) for r in rows}
        merged = [r for r in merged if cell(r) not in replaced] + rows
    return merged


def run_cell(target: Target, solver: str, nfe: int, args, teacher, fixed, batch) -> list[dict]:
    """The rows of one (target, solver, NFE) cell: every strategy's KL and sample metrics."""
    n = num_steps_for(solver, nfe)
    schedules, seconds = cell_schedules(target, solver, n, args, teacher, fixed)
    sample = _sampling_fn(target, solver, n, batch)
    cell = []
    for strategy, schedule in schedules.items():
        kl = float(gaussian_kl(target.spectrum, step_grid(schedule, n), solver))
        row = dict(
            target=target.name, solver=solver, nfe=nfe, steps=n, strategy=strategy,
            gaussian_kl=kl, build_s=seconds[strategy],
        )  # fmt: skip
        cell.append(row | seed_metrics(target, sample, schedule, args.seeds))
    return cell


def run(args, path: Path, done: list[dict] | None = None) -> list[dict]:
    """Every cell not already in ``done``; a cell's rows are appended to ``path`` when the
    whole cell has finished, so an interrupted run resumes (``--resume``) at a cell boundary."""
    teacher = teacher_levels(SIGMA_MIN, SIGMA_MAX, 96)
    rows = list(done or [])
    finished = {(r["target"], r["solver"], r["nfe"]) for r in rows}
    for name in args.targets:
        todo = [
            (solver, nfe)
            for solver in args.solvers
            for nfe in args.nfe
            if (name, solver, nfe) not in finished and num_steps_for(solver, nfe) >= 1
        ]
        if not todo:
            continue
        target = make_target(name, Path(args.model), args.batch)
        fixed = target_schedules(target, args.cost_samples, args.smoke)
        batch = min(args.batch, 1000) if name == "digits-model" else args.batch
        for solver, nfe in todo:
            started = time.perf_counter()
            cell = run_cell(target, solver, nfe, args, teacher, fixed, batch)
            with path.open("a") as f:
                f.write("".join(json.dumps(row) + "\n" for row in cell))
            rows += cell
            jax.clear_caches()  # every cell compiles anew; a long run otherwise runs out of memory
            print(
                f"{name} {solver} nfe={nfe}: {len(cell)} strategies, "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
    return rows


# ---- summary ---------------------------------------------------------------------------------


def metrics_of(rows) -> list[str]:
    return [m for m in ("sw2", "mmd", "fd") if all(m in r for r in rows)]


def summarise(rows) -> list[dict]:
    cells = {}
    for r in rows:
        cells.setdefault((r["target"], r["solver"], r["nfe"]), []).append(r)
    out = []
    for (target, solver, nfe), group in sorted(cells.items()):
        kls = np.asarray([r["gaussian_kl"] for r in group])
        pick = int(np.argmin(kls))
        cell = dict(
            target=target,
            solver=solver,
            nfe=nfe,
            strategies=len(group),
            kl_selected=group[pick]["strategy"],
        )
        for metric in metrics_of(group):
            values = np.asarray([r[metric] for r in group])
            cell[f"spearman_{metric}"] = spearman(kls, values)
            cell[f"{metric}_best"] = group[int(np.argmin(values))]["strategy"]
            cell[f"kl_selected_{metric}_rank"] = 1 + int(np.sum(values < values[pick]))
        main = "fd" if "fd" in metrics_of(group) else "sw2"  # the headline metric
        cell["metric"] = main
        cell["kl_selected_wins"] = cell[f"kl_selected_{main}_rank"] == 1
        out.append(cell)
    return out


def tightest_budgets(summary) -> list[dict]:
    """Per (target, solver): the cell with the smallest NFE, where the KL-ranking claim is
    sharpest."""
    first = {}
    for cell in summary:
        key = (cell["target"], cell["solver"])
        if key not in first or cell["nfe"] < first[key]["nfe"]:
            first[key] = cell
    return list(first.values())


def table(summary) -> str:
    lines = [
        "| target | solver | NFE | Spearman(KL, SW2) | Spearman(KL, MMD) | Spearman(KL, FD) "
        "| KL-selected | best (headline metric) | KL pick's rank |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        rhos = [s.get(f"spearman_{m}") for m in ("sw2", "mmd", "fd")]
        rho_cells = " | ".join("" if r is None else f"{r:.2f}" for r in rhos)
        main = s["metric"]
        lines.append(
            f"| {s['target']} | {s['solver']} | {s['nfe']} | {rho_cells} | {s['kl_selected']} "
            f"| {s[f'{main}_best']} ({main}) | {s[f'kl_selected_{main}_rank']}/{s['strategies']} |"
        )
    return "\n".join(lines)


def metric_tables(rows, metric: str) -> str:
    """Per (target, solver): strategies x NFE of ``metric`` (best per column in bold)."""
    parts = []
    for target, solver in sorted({(r["target"], r["solver"]) for r in rows if metric in r}):
        sub = [r for r in rows if r["target"] == target and r["solver"] == solver]
        nfes = sorted({r["nfe"] for r in sub})
        names = list(dict.fromkeys(r["strategy"] for r in sub))
        value = {(r["strategy"], r["nfe"]): r[metric] for r in sub}
        best = {n: min(v for (s, m), v in value.items() if m == n) for n in nfes}
        lines = [f"#### {target} / {solver}: {metric}", ""]
        lines += ["| strategy | " + " | ".join(f"NFE {n}" for n in nfes) + " |"]
        lines += ["|---|" + "---|" * len(nfes)]
        for s in names:
            cells = []
            for n in nfes:
                v = value.get((s, n))
                text = "" if v is None else f"{v:.4g}"
                cells.append(f"**{text}**" if v is not None and v == best[n] else text)
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(r["target"], r["solver"]) for r in rows})
    cols = min(len(keys), 3)
    nrows = -(-len(keys) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.5 * nrows), squeeze=False)
    for ax, (target, solver) in zip(axes.flat, keys, strict=False):
        sub = [r for r in rows if r["target"] == target and r["solver"] == solver]
        metric = "fd" if "fd" in sub[0] else "sw2"
        for name in sorted({r["strategy"] for r in sub}):
            pts = sorted((r["nfe"], r[metric]) for r in sub if r["strategy"] == name)
            ax.plot(*zip(*pts, strict=True), marker="o", label=name, lw=1, ms=3)
        ax.set(xscale="log", yscale="log", title=f"{target} / {solver}", xlabel="NFE")
        ax.set_ylabel(metric)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=5, ncol=2)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


# ---- command line ----------------------------------------------------------------------------


def _choices(flag: str, value: str, allowed) -> list[str]:
    items = value.split(",")
    for item in items:
        if item not in allowed:
            raise ValueError(f"`{flag}` must be a subset of {','.join(allowed)}; got {item!r}")
    return items


def _ints(flag: str, value: str) -> list[int]:
    try:
        items = [int(x) for x in value.split(",") if x]
    except ValueError:
        items = []
    if value and (not items or min(items) < 1):
        raise ValueError(f"`{flag}` must be comma-separated positive integers, got {value!r}")
    return items


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="CI size: ring, Euler/Heun, NFE 3, 5")
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--solvers", default=",".join(SOLVERS))
    p.add_argument("--nfe", default=",".join(map(str, NFES)))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--batch", type=int, default=2000, help="samples per seed (digits model: 1000)")
    p.add_argument("--iterations", type=int, default=200, help="Adam steps of gaussian-kl, AYS")
    p.add_argument("--objectives", default=",".join(SAMPLE_OBJECTIVES))
    p.add_argument("--objective-nfe", default="5,10", help="NFEs with sample-based objectives")
    p.add_argument("--objective-iterations", type=int, default=100)
    p.add_argument("--objective-batch", type=int, default=256)
    p.add_argument("--cost-samples", type=int, default=1024, help="score-work cost-table samples")
    p.add_argument("--model", default="runs/digits-edm", help="trained digits model directory")
    p.add_argument("--out", default=str(OUT))
    p.add_argument(
        "--resume", action="store_true", help="keep OUT/rows.jsonl and run only missing cells"
    )
    p.add_argument(
        "--summarize",
        default=None,
        help="comma-separated rows.jsonl files: write OUT's summary, tables and plot from "
        "them (merged; a cell in a later file replaces that cell of earlier ones) and run "
        "nothing",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.targets, args.solvers, args.nfe, args.objective_nfe = "ring", "euler,heun", "3,5", "3"
        args.seeds, args.batch, args.iterations = 1, 256, 20
        args.objective_iterations, args.objective_batch, args.cost_samples = 3, 64, 128
    args.targets = _choices("--targets", args.targets, TARGETS)
    args.solvers = _choices("--solvers", args.solvers, SAMPLERS)
    args.objectives = (
        _choices("--objectives", args.objectives, SAMPLE_OBJECTIVES) if args.objectives else []
    )
    args.nfe = _ints("--nfe", args.nfe)
    args.objective_nfe = _ints("--objective-nfe", args.objective_nfe)
    if not args.nfe:
        raise ValueError("`--nfe` must name at least one budget")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    if args.summarize:
        sources = [Path(f) for f in args.summarize.split(",") if f]
        missing = [str(f) for f in sources if not f.is_file()]
        if missing:
            raise ValueError(f"`--summarize` files not found: {', '.join(missing)}")
        rows = merge_cells([read_rows([f]) for f in sources])
        if not rows:
            raise ValueError(f"`--summarize` files hold no rows: {args.summarize!r}")
    elif args.resume and rows_path.exists():
        rows = run(args, rows_path, read_rows([rows_path]))
    else:
        rows_path.unlink(missing_ok=True)
        rows = run(args, rows_path)
    summary = summarise(rows)
    tight = tightest_budgets(summary)
    atomic_write_json(
        out / "summary.json", {"args": vars(args), "cells": summary, "tightest": tight}
    )
    atomic_write_bytes(out / "table.md", (table(summary) + "\n").encode())
    present = [m for m in ("fd", "sw2", "mmd", "gaussian_kl") if any(m in r for r in rows)]
    metrics = "\n\n".join(metric_tables(rows, m) for m in present)
    atomic_write_bytes(out / "metrics.md", (metrics + "\n").encode())
    plot(rows, out / "sw2_vs_nfe.png")
    print(table(summary))
    return rows, summary


if __name__ == "__main__":
    main()
