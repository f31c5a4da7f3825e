"""Okada et al. (Constant Rate Scheduling): sampling schedules over NFE, and a CRS-trained
model.

Three parts, each writing ``experiments/out/p1/<part>.json`` and ``<part>.md``, plus plots:

``gmm``      Sampling schedules on an exact Gaussian-mixture oracle (``gmm64``: 64-D, 8
             unequal components): constant-rate schedules from the model-free Fréchet
             measure (``crs-fd``) and the oracle's data / noise predictions (``crs-x0``,
             ``crs-eps``) against EDM rho=7, cosine and logSNR-uniform, with Euler (DDIM)
             and Heun over NFE 5..250. Metrics: RMSE to the exact ODE solution from the same
             initial noise (a 1000-step Heun solve), sliced W2 and Gaussian KL to the data.
``digits``   The same on the shared digits denoiser (EDM log-normal training,
             ``runs/digits-edm``): ``crs-fd`` (identity features), ``crs-fd-clf`` (digits
             classifier features, the paper's Inception analogue), ``crs-x0``, ``crs-eps`` from
             the model; metric: Fréchet distance of classifier features to the test split.
``training`` A digits denoiser trained with the constant-rate training distribution
             (``t ~ U(0, 1)`` through the ``crs-fd`` schedule, i.e. density ∝ v) under the
             shared model's exact settings (read from its ``train.json``), against the
             shared model, each sampled with EDM rho=7 and with ``crs-fd``.

    python experiments/p1_constant_rate.py --part gmm         # ~5 min on 2 cores
    python experiments/p1_constant_rate.py --part digits      # NFE 5-50, ~15 min
    python experiments/p1_constant_rate.py --part digits --nfe 5,10,20,50,100,250
    python experiments/p1_constant_rate.py --part training    # trains one model, ~15 min
    python experiments/p1_constant_rate.py --smoke            # every part, tiny, seconds
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from schedopt.constant_rate import (  # noqa: E402
    DataPrediction,
    NoisePrediction,
    SampleFrechet,
    digits_feature_map,
    tabulate_speed,
)
from schedopt.data import load_dataset  # noqa: E402
from schedopt.io import atomic_write_bytes, atomic_write_json  # noqa: E402
from schedopt.metrics import evaluate_samples, sliced_wasserstein  # noqa: E402
from schedopt.models import GaussianMixtureDenoiser  # noqa: E402
from schedopt.sampling import probability_flow, sampler_for_nfe  # noqa: E402
from schedopt.schedules import EDM, Cosine, LogSNRLinear  # noqa: E402

OUT = Path(__file__).parent / "out" / "p1"
BASELINES = {"edm-rho7": EDM(rho=7.0), "cosine": Cosine(), "logsnr-uniform": LogSNRLinear()}


# ---- schedules -------------------------------------------------------------------------------


def crs_schedules(measures: dict, num_points: int, xi: float) -> tuple[dict, dict]:
    """Tabulate every measure's speed; return ``(schedules, speeds)`` keyed ``crs-<name>``."""
    schedules, speeds = {}, {}
    for name, measure in measures.items():
        started = time.perf_counter()
        speed = tabulate_speed(measure, num_points=num_points)
        speeds[f"crs-{name}"] = speed
        schedules[f"crs-{name}"] = speed.schedule(xi)
        print(f"  speed of {name}: {time.perf_counter() - started:.1f} s", flush=True)
    return schedules, speeds


@eqx.filter_jit
def _solve(denoiser, levels, y0, solver):
    return probability_flow(denoiser, levels, y0, solver=solver)


def sample(denoiser, schedule, sampler, nfe, y0, batch_size=500):
    """Run the ``nfe``-budget ODE sampler from the initial states ``y0`` (at level 80).

    The grid's noise levels are computed outside ``jit`` and passed as an array, so one
    compilation per (solver, steps) serves every schedule.
    """
    solver = sampler_for_nfe(sampler, nfe)
    levels = solver.noise_levels(schedule)
    out = [
        np.asarray(_solve(denoiser, levels, y0[i : i + batch_size], solver.solver))
        for i in range(0, len(y0), batch_size)
    ]
    return np.concatenate(out), solver


def sweep(denoiser, schedules, samplers, nfes, y0, metric_fn):
    rows = []
    for sampler in samplers:
        for nfe in nfes:
            for name, schedule in schedules.items():
                started = time.perf_counter()
                x, solver = sample(denoiser, schedule, sampler, nfe, y0)
                row = {"sampler": sampler, "nfe": solver.nfe, "steps": solver.num_steps}
                row.update(schedule=name, **metric_fn(x), seconds=time.perf_counter() - started)
                rows.append(row)
                print(f"  {sampler} nfe={solver.nfe:3d} {name:15s} " + _fmt(row), flush=True)
    return rows


def _fmt(row):
    keys = [k for k in ("rmse", "sw2", "gaussian_kl", "fd") if k in row]
    return " ".join(f"{k}={row[k]:.4g}" for k in keys)


# ---- part 1: Gaussian mixture oracle ---------------------------------------------------------


def run_gmm(args):
    dim = 4 if args.smoke else 64
    dataset = load_dataset(
        "gmm64", dim=dim, num_train=2000, num_test=2000 if not args.smoke else 400
    )
    oracle = GaussianMixtureDenoiser.from_mixture(dataset.distribution)
    n_bank = 64 if args.smoke else 1000
    measures = {
        "fd": SampleFrechet.from_data(dataset.train, num_samples=n_bank),
        "x0": DataPrediction.from_data(oracle, dataset.train, num_samples=n_bank),
        "eps": NoisePrediction.from_data(oracle, dataset.train, num_samples=n_bank),
    }
    crs, speeds = crs_schedules(measures, args.speed_points, args.xi)
    for xi in args.xi_variants:  # the paper's exponent: d alpha / dt ∝ v^-xi
        for name in ("fd", "x0"):
            crs[f"crs-{name}-xi{xi:g}"] = speeds[f"crs-{name}"].schedule(xi)
    schedules = {**crs, **BASELINES}
    n = args.samples or (64 if args.smoke else 1000)
    y0 = 80.0 * jax.random.normal(jax.random.key(args.seed), (n, dim))
    ref_levels = EDM().noise_level(jnp.linspace(1.0, 0.0, 20 if args.smoke else 1000))
    reference = np.asarray(jax.jit(lambda y: probability_flow(oracle, ref_levels, y))(y0))
    key = jax.random.key(args.seed + 1)

    def metrics(x):
        m = evaluate_samples(x, dataset, key=key, max_reference=2000, max_mmd=500)
        rmse = float(np.sqrt(np.mean(np.sum((x - reference) ** 2, axis=1))))
        return {"rmse": rmse, "sw2": m["sw2"], "gaussian_kl": m["gaussian_kl"]}

    floor = {"sw2": float(sliced_wasserstein(reference, dataset.test[:2000], key))}
    rows = sweep(oracle, schedules, args.samplers, args.nfe_list, y0, metrics)
    return {"rows": rows, "floor_reference_solve": floor, "speeds": speeds, "schedules": schedules}


# ---- part 2: digits sampling schedules -------------------------------------------------------


def digits_metrics(dataset, key):
    def metrics(x):
        x = np.clip(x, -1.0, 1.0)
        m = evaluate_samples(x, dataset, key=key)
        return {"fd": m["fd"], "sw2": m["sw2"], "recall": m.get("recall", float("nan"))}

    return metrics


@functools.cache
def _smoke_model():
    return train_digits(None, EDM_NOISE, None, smoke=True)[0]


def load_digits_model(path: Path, smoke: bool):
    """The shared digits model (``path/network``), or in smoke mode a tiny one trained here."""
    from schedopt.models.nnx_adapter import load_denoiser

    if smoke:
        return _smoke_model()
    if not (path / "DONE").exists():
        raise SystemExit(f"{path} has no DONE file yet: the shared digits model is not finished")
    return load_denoiser(path / "network")


def run_digits(args):
    dataset = load_dataset("digits")
    denoiser = load_digits_model(Path(args.model), args.smoke)
    n_bank = 64 if args.smoke else 500
    batch = None if args.smoke else 250
    measures = {
        "fd": SampleFrechet.from_data(dataset.train, num_samples=n_bank),
        "fd-clf": SampleFrechet.from_data(
            dataset.train, num_samples=n_bank, feature_map=digits_feature_map()
        ),
        "x0": DataPrediction.from_data(
            denoiser, dataset.train, num_samples=n_bank, batch_size=batch
        ),
        "eps": NoisePrediction.from_data(
            denoiser, dataset.train, num_samples=n_bank, batch_size=batch
        ),
    }
    crs, speeds = crs_schedules(measures, args.speed_points, args.xi)
    schedules = {**crs, **BASELINES}
    n = args.samples or (64 if args.smoke else 1000)
    y0 = 80.0 * jax.random.normal(jax.random.key(args.seed), (n, 8, 8, 1))
    metrics = digits_metrics(dataset, jax.random.key(args.seed + 1))
    floor = {"fd_train_vs_test": float(evaluate_samples(dataset.train[:n], dataset)["fd"])}
    rows = sweep(denoiser, schedules, args.samplers, args.nfe_list, y0, metrics)
    return {"rows": rows, "floor": floor, "speeds": speeds, "schedules": schedules}


# ---- part 3: constant-rate training schedule ------------------------------------------------

EDM_NOISE = "edm"


def train_digits(settings: dict | None, noise, out: Path | None, smoke: bool = False):
    """Train a digits denoiser with the shared model's ``settings`` and ``noise``."""
    from flax import nnx  # noqa: F401

    from schedopt.models.networks import build_network
    from schedopt.models.nnx_adapter import NNXDenoiser, save_network
    from schedopt.models.training import train_denoiser

    dataset = load_dataset("digits")
    if settings is None or smoke:
        settings = {
            "network": {
                "architecture": "unet",
                "image_shape": [8, 8, 1],
                "channels": [8, 16],
                "num_blocks": 1,
                "embed_dim": 16,
                "sigma_data": 0.5,
            },
            "steps": 20,
            "batch_size": 16,
            "learning_rate": 2e-3,
            "weighting": "edm",
            "ema_decay": 0.9,
            "seed": 0,
        }
    model = build_network(settings["network"], seed=settings["seed"])
    started = time.perf_counter()
    result = train_denoiser(
        model,
        dataset.train,
        num_steps=settings["steps"],
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        noise=noise,
        weighting=settings["weighting"],
        ema_decay=settings["ema_decay"],
        seed=settings["seed"],
        checkpoint_dir=None if smoke else out / "checkpoints",
        log_path=None if smoke else out / "log.jsonl",
        progress=not smoke,
    )
    seconds = time.perf_counter() - started
    if not smoke:
        save_network(out / "network", result.model, metadata={"p1_noise": str(noise)[:200]})
        atomic_write_json(out / "train.json", dict(settings, train_seconds=seconds))
    return NNXDenoiser.from_module(result.model), seconds


def shared_settings(model_dir: Path) -> dict:
    """The shared EDM model's training settings (``train.json``), checked to be log-normal."""
    if not (model_dir / "DONE").exists():
        raise SystemExit(f"{model_dir} has no DONE file yet")
    shared = json.loads((model_dir / "train.json").read_text())
    if shared["noise"].get("noise") != "log-normal":
        raise SystemExit(
            f"expected the shared model to use EDM log-normal noise: {shared['noise']}"
        )
    keys = ("network", "steps", "batch_size", "learning_rate", "weighting", "ema_decay", "seed")
    return {k: shared[k] for k in keys}


def run_training(args):
    from schedopt.models.nnx_adapter import load_denoiser

    dataset = load_dataset("digits")
    model_dir = Path(args.model)
    settings = None if args.smoke else shared_settings(model_dir)
    n_bank = 64 if args.smoke else 500
    speed = tabulate_speed(
        SampleFrechet.from_data(dataset.train, num_samples=n_bank), num_points=args.speed_points
    )
    crs = speed.schedule(args.xi)
    n = args.samples or (64 if args.smoke else 1000)
    y0 = 80.0 * jax.random.normal(jax.random.key(args.seed), (n, 8, 8, 1))
    metrics = digits_metrics(dataset, jax.random.key(args.seed + 1))
    rows, seconds = [], {}
    for train_seed in [0] if args.smoke else args.train_seeds:
        # seed of the shared model: use it; other seeds: train the EDM arm here as well
        arms = {}
        if args.smoke:
            arms["edm-lognormal"] = _smoke_model()
        elif train_seed == settings["seed"]:
            arms["edm-lognormal"] = load_denoiser(model_dir / "network")
        else:
            out = Path(f"{args.crs_model_dir}-edm-seed{train_seed}")
            seeded = dict(settings, seed=train_seed)
            arms["edm-lognormal"], seconds[f"edm-seed{train_seed}"] = train_digits(
                seeded, EDM_NOISE, out
            )
        suffix = "" if args.smoke or train_seed == settings["seed"] else f"-seed{train_seed}"
        seeded = None if args.smoke else dict(settings, seed=train_seed)
        arms["crs-fd"], seconds[f"crs-seed{train_seed}"] = train_digits(
            seeded, crs, Path(args.crs_model_dir + suffix), smoke=args.smoke
        )
        for trained, denoiser in arms.items():
            print(f" model trained with {trained}, seed {train_seed}", flush=True)
            sampling = {"edm-rho7": BASELINES["edm-rho7"], "crs-fd": crs}
            for row in sweep(denoiser, sampling, args.samplers, args.nfe_list, y0, metrics):
                label = f"{trained} (seed {train_seed})"
                arm = f"train {label}, sample {row['schedule']}"
                rows.append(dict(row, trained=label, train_seed=train_seed, arm=arm))
    return {
        "rows": rows,
        "train_seconds": seconds,
        "settings": settings,
        "speeds": {"crs-fd": speed},
        "schedules": {"crs-fd": crs},
    }


def summarize_training(out: Path) -> str:
    """Markdown: FD of every training run (``training*.json``) per (sampler, NFE, sampling
    schedule) and arm, one column per seed, with the mean and the paired difference."""
    rows = []
    for path in sorted(out.glob("training*.json")):
        rows += json.loads(path.read_text())["rows"]
    if not rows:
        raise SystemExit(f"no training*.json in {out}")
    seeds = sorted({r["train_seed"] for r in rows})
    keys = list(dict.fromkeys((r["sampler"], r["nfe"], r["schedule"]) for r in rows))
    head = "| sampler | nfe | sampling | trained | " + " | ".join(f"seed {s}" for s in seeds)
    lines = [head + " | mean |", "|" + "---|" * (5 + len(seeds))]
    for key in keys:
        per = {}
        for arm in ("edm-lognormal", "crs-fd"):
            vals = {
                r["train_seed"]: r["fd"]
                for r in rows
                if (r["sampler"], r["nfe"], r["schedule"]) == key and r["trained"].startswith(arm)
            }
            per[arm] = vals
            cells = [f"{vals[s]:.3g}" if s in vals else "" for s in seeds]
            mean = np.mean(list(vals.values()))
            lines.append(
                f"| {key[0]} | {key[1]} | {key[2]} | {arm} | "
                + " | ".join(cells)
                + f" | {mean:.3g} |"
            )
        both = [s for s in seeds if s in per["crs-fd"] and s in per["edm-lognormal"]]
        wins = sum(per["crs-fd"][s] < per["edm-lognormal"][s] for s in both)
        lines.append(
            f"| | | | crs wins | {wins} of {len(both)} seeds | " + " | " * (len(seeds) - 1) + " |"
        )
    return "\n".join(lines)


# ---- output ----------------------------------------------------------------------------------


def table(rows, metric, group=("sampler", "nfe"), column="schedule"):
    """Markdown: one line per ``group``, one column per ``column`` value, best in bold."""
    cols = list(dict.fromkeys(r[column] for r in rows))
    keys = list(dict.fromkeys(tuple(r[g] for g in group) for r in rows))
    lines = [
        "| " + " | ".join(group) + " | " + " | ".join(cols) + " |",
        "|" + "---|" * (len(group) + len(cols)),
    ]
    for key in keys:
        vals = {r[column]: r[metric] for r in rows if tuple(r[g] for g in group) == key}
        best = min(vals.values())
        cells = [
            f"**{vals[c]:.4g}**" if vals.get(c) == best else f"{vals.get(c, float('nan')):.4g}"
            for c in cols
        ]
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_part(name, result, metric, out: Path, column="schedule"):
    rows = result["rows"]
    samplers = list(dict.fromkeys(r["sampler"] for r in rows))
    fig, axes = plt.subplots(1, len(samplers) + 2, figsize=(5 * (len(samplers) + 2), 4))
    for ax, sampler in zip(axes, samplers, strict=False):
        for label in dict.fromkeys(r[column] for r in rows):
            pts = [
                (r["nfe"], r[metric])
                for r in rows
                if r["sampler"] == sampler and r[column] == label
            ]
            style = "o-" if "crs" in label else "s--"
            ax.loglog(*zip(*pts, strict=True), style, label=label, ms=3)
        ax.set(xlabel="NFE", ylabel=metric, title=f"{name}: {sampler}")
        ax.legend(fontsize=7)
    ax = axes[-2]
    for label, speed in result["speeds"].items():
        lam = np.asarray(speed.midpoints)
        ax.plot(lam, np.asarray(speed.logsnr_density(lam)), label=label)
    ax.set(xlabel="logSNR", ylabel="density (xi = 1)", title="constant-rate training densities")
    ax.legend(fontsize=7)
    ax = axes[-1]
    t = jnp.linspace(0, 1, 201)
    for label, schedule in {**result["schedules"], **BASELINES}.items():
        ax.semilogy(t, np.asarray(schedule.noise_level(t)), label=label)
    ax.set(xlabel="t", ylabel="noise level s", title="schedules")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / f"{name}.png"
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def save(
    name, result, metrics, out, args, column="schedule", group=("sampler", "nfe"), plot_by=None
):
    rows = result["rows"]
    record = {k: v for k, v in result.items() if k not in ("speeds", "schedules")}
    record["command"] = "python experiments/p1_constant_rate.py " + " ".join(args.argv)
    record["speeds"] = {
        k: {
            "logsnrs": np.asarray(s.logsnrs).tolist(),
            "discrepancies": np.asarray(s.discrepancies).tolist(),
        }
        for k, s in result["speeds"].items()
    }
    atomic_write_json(out / f"{name}.json", record)
    md = [f"<!-- {record['command']} -->"]
    for metric in metrics:
        md += [f"\n### {name}: {metric} (lower is better)\n", table(rows, metric, group, column)]
    atomic_write_bytes(out / f"{name}.md", ("\n".join(md) + "\n").encode())
    plot_part(name, result, metrics[0], out, plot_by or column)


def main(argv=None):
    import sys

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--part", default="gmm", choices=("gmm", "digits", "training", "all", "summary"))
    p.add_argument("--smoke", action="store_true", help="every part, tiny sizes, seconds")
    p.add_argument("--nfe", default=None, help="comma-separated NFE budgets")
    p.add_argument("--samplers", default="euler,heun")
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--points", type=int, default=None, help="levels of the speed tables")
    p.add_argument("--xi", type=float, default=1.0)
    p.add_argument(
        "--xi-variants", default="0.5,1.5", help="gmm part: extra xi for crs-fd and crs-x0"
    )
    p.add_argument("--tag", default="", help="suffix of the output files, e.g. -long")
    p.add_argument(
        "--train-seeds",
        default="0",
        help="training part: seeds of the two arms (the shared model is seed 0; other seeds "
        "train both arms here)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="runs/digits-edm", help="the shared EDM-trained digits model")
    p.add_argument("--crs-model-dir", default="runs/p1-digits-crs")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.samplers = ["euler"] if args.smoke else args.samplers.split(",")
    args.xi_variants = [float(v) for v in args.xi_variants.split(",") if v.strip()]
    args.train_seeds = [int(v) for v in args.train_seeds.split(",")]
    out = Path(args.out) / ("smoke" if args.smoke else "")
    out.mkdir(parents=True, exist_ok=True)
    if args.part == "summary":  # the training runs of every seed, in one table
        text = summarize_training(out)
        atomic_write_bytes(out / "training-summary.md", (text + "\n").encode())
        print(text)
        return
    points = args.points
    parts = ("gmm", "digits", "training") if args.smoke or args.part == "all" else (args.part,)
    for part in parts:
        default_nfe = {"gmm": "5,10,20,50,100,250", "digits": "5,10,20,50", "training": "10,20,50"}
        nfe = "5" if args.smoke else (args.nfe or default_nfe[part])
        args.nfe_list = [int(v) for v in nfe.split(",")]
        args.speed_points = points or (9 if args.smoke else (129 if part == "gmm" else 65))
        print(f"== {part}", flush=True)
        started = time.perf_counter()
        if part == "gmm":
            save("gmm" + args.tag, run_gmm(args), ["rmse", "sw2", "gaussian_kl"], out, args)
        elif part == "digits":
            save("digits" + args.tag, run_digits(args), ["fd", "sw2"], out, args)
        else:
            result = run_training(args)
            for r in result["rows"]:
                r["sampling"] = r["schedule"]
            save(
                "training" + args.tag,
                result,
                ["fd", "sw2"],
                out,
                args,
                column="trained",
                group=("sampler", "nfe", "sampling"),
                plot_by="arm",
            )
        print(f"== {part} done in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
