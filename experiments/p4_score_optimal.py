"""Williams et al. (Score-Optimal Diffusion Schedules): equal-cost sampling grids from the
score transport cost.

Every learned grid below is Algorithm 1 applied to a cost table (``CostTable``: the cost on
128 geometric intervals of [0.002, 80], symmetric, from denoiser evaluations on training
samples), resampled at the sampler's number of steps; the path-energy objective learns
the same schedule (tests/objectives/test_score_work.py). Parts, each writing
``experiments/out/p4/<part>.json``, ``<part>.md`` and ``<part>.png``:

``toy``     1-D targets with exact oracles: a mollified Cantor-like measure (32 Gaussians
            at the level-5 Cantor intervals of [-1, 1], std 0.002) and a bimodal mixture
            (+-1, std 0.02); corrector- and predictor-optimised grids against EDM rho 3, 7,
            100, linear-in-s (EDM rho = 1) and logSNR-uniform, Euler and Heun at NFE 10, 20.
            Metrics: W2 to exact samples, modes covered, mode-weight TV.
``gmm``     The 64-D Gaussian-mixture oracle (``gmm64``) at NFE 10, 20, 50 (Euler, Heun):
            RMSE to a 512-step Heun solve from the same noise, sliced W2 and Gaussian KL to
            the data, mode-weight TV; fitted EDM rho of every learned grid.
``online``  Algorithm 2: a 1-D MLP denoiser trained on the bimodal target while its
            16-point grid adapts (gamma = 0.1 per log, every 25 steps); the logged cost
            spread, the final grid against the oracle's equal-cost grid, and samples.
``digits``  The shared digits denoiser (``runs/digits-edm``) at NFE 10, 20, 50: Fréchet
            distance of classifier features (FD) and sliced W2 to the test split, of
            samples clipped to the data range [-1, 1].

    python experiments/p4_score_optimal.py                 # toy, gmm, online: ~6 min, 2 cores
    python experiments/p4_score_optimal.py --part digits   # needs runs/digits-edm/DONE
    python experiments/p4_score_optimal.py --smoke         # every part, tiny, seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from schedopt.data import GaussianMixture, load_dataset  # noqa: E402
from schedopt.io import atomic_write_bytes, atomic_write_json  # noqa: E402
from schedopt.metrics import (  # noqa: E402
    evaluate_samples,
    mode_coverage,
    sliced_wasserstein,
)
from schedopt.models import GaussianMixtureDenoiser  # noqa: E402
from schedopt.sampling import probability_flow, sampler_for_nfe  # noqa: E402
from schedopt.schedules import EDM, LogSNRLinear  # noqa: E402
from schedopt.score_optimal import (  # noqa: E402
    CorrectorCost,
    CostTable,
    OnlineEqualCost,
    PredictorCost,
    fit_edm_rho,
    local_speed,
    schedule_from_noise_levels,
)

OUT = Path(__file__).parent / "out" / "p4"
EDM_BASELINES = {f"edm-rho{r:g}": EDM(rho=float(r)) for r in (3, 7, 100)}


# ---- targets ---------------------------------------------------------------------------------


def cantor_mixture(depth: int = 5, std: float = 0.002) -> GaussianMixture:
    """Equal Gaussians at the centres of the ``2^depth`` level-``depth`` Cantor intervals of
    [-1, 1]: the Cantor measure mollified at scale ``std`` (gaps 2/3, 2/9, ..., 2/3^depth)."""
    lo, width = np.array([0.0]), 1.0
    for _ in range(depth):  # keep the outer thirds of every interval
        width /= 3.0
        lo = np.concatenate([lo, lo + 2.0 * width])
    centres = 2.0 * (np.sort(lo) + width / 2) - 1.0
    k = centres.size
    return GaussianMixture(np.full(k, 1.0 / k), centres[:, None], np.full((k, 1, 1), std**2))


def bimodal(std: float = 0.02) -> GaussianMixture:
    return GaussianMixture(
        np.array([0.5, 0.5]), np.array([[-1.0], [1.0]]), np.full((2, 1, 1), std**2)
    )


# ---- schedules and sampling ------------------------------------------------------------------


def cost_tables(denoiser, x0, args, costs=("corrector", "predictor")) -> dict[str, CostTable]:
    tables = {}
    for name in costs:
        started = time.perf_counter()
        corrector = name == "corrector"
        cost = CorrectorCost() if corrector else PredictorCost()
        n = x0.shape[0] if corrector else min(x0.shape[0], args.predictor_samples)
        intervals = args.intervals if corrector else args.predictor_intervals
        tables[name] = CostTable.estimate(
            cost, denoiser, x0[:n], jax.random.key(args.seed), num_intervals=intervals
        )
        print(f"  {name} cost table: {time.perf_counter() - started:.1f} s", flush=True)
    return tables


def schedules_for(tables, num_points, baselines):
    learned = {
        f"equal-{name}": schedule_from_noise_levels(np.asarray(t.noise_levels(num_points)))
        for name, t in tables.items()
    }
    return {**learned, **baselines}


@eqx.filter_jit
def _run(solver, denoiser, schedule, y):
    return solver(denoiser, schedule, y)


def run_sampler(denoiser, schedule, solver, y0, batch=1000):
    return np.concatenate(
        [
            np.asarray(_run(solver, denoiser, schedule, y0[i : i + batch]))
            for i in range(0, len(y0), batch)
        ]
    )


def sweep(denoiser, tables, baselines, samplers, nfes, y0, metric_fn):
    rows = []
    for sampler in samplers:
        for nfe in nfes:
            solver = sampler_for_nfe(sampler, nfe)
            for name, schedule in schedules_for(tables, solver.num_steps, baselines).items():
                x = run_sampler(denoiser, schedule, solver, y0)
                row = {"sampler": sampler, "nfe": solver.nfe, "steps": solver.num_steps}
                row.update(schedule=name, **metric_fn(x))
                rows.append(row)
                shown = " ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float))
                print(f"  {sampler} nfe={solver.nfe:3d} {name:16s} {shown}", flush=True)
    return rows


def rho_fits(tables, nfes) -> dict:
    out = {}
    for name, table in tables.items():
        for n in (*nfes, 129):
            fit = fit_edm_rho(np.asarray(table.noise_levels(n), np.float64))
            out[f"{name}/{n}"] = {"rho": fit.rho, "rms_log_error": fit.rms_log_error}
    return out


def reference_solve(denoiser, y0, smoke):
    """A 512-step Heun solve of the probability-flow ODE (EDM rho = 7 grid) from ``y0``."""
    levels = EDM().noise_level(jnp.linspace(1.0, 0.0, 32 if smoke else 512))
    return np.asarray(jax.jit(lambda y: probability_flow(denoiser, levels, y, solver="heun"))(y0))


def mixture_metrics(mixture, reference, key, solved=None):
    """W2 to exact samples, modes covered, mode-weight TV and (given the reference ODE
    solution ``solved`` from the same initial noise) the RMSE to it."""

    def metrics(x):
        cov = mode_coverage(x, mixture)
        w2 = float(sliced_wasserstein(x, reference, key, num_projections=64))
        out = {"w2": w2, "modes_covered": float(cov["modes_covered"])}
        out["mode_weight_tv"] = cov["mode_weight_tv"]
        if solved is not None:
            out["rmse"] = float(np.sqrt(np.mean(np.sum((x - solved) ** 2, axis=1))))
        return out

    return metrics


# ---- parts -----------------------------------------------------------------------------------


def run_toy(args):
    targets = {"cantor": cantor_mixture(3 if args.smoke else 5), "bimodal": bimodal()}
    baselines = {**EDM_BASELINES, "linear-s": EDM(rho=1.0), "logsnr-uniform": LogSNRLinear()}
    result = {"rows": [], "rho": {}, "tables": {}}
    n = 400 if args.smoke else 4000
    for target, mixture in targets.items():
        print(f" target {target} ({mixture.num_components} modes)", flush=True)
        oracle = GaussianMixtureDenoiser.from_mixture(mixture)
        x0 = mixture.sample(jax.random.key(args.seed), args.cost_samples)
        tables = cost_tables(oracle, x0, args)
        reference = np.asarray(mixture.sample(jax.random.key(args.seed + 7), n))
        key = jax.random.key(args.seed + 1)
        y0 = 80.0 * jax.random.normal(jax.random.key(args.seed + 2), (n, 1))
        metric = mixture_metrics(mixture, reference, key, reference_solve(oracle, y0, args.smoke))
        exact = np.asarray(mixture.sample(jax.random.key(args.seed + 3), n))
        result["floor"] = result.get("floor", {})
        result["floor"][target] = {k: v for k, v in metric(exact).items() if k != "rmse"}
        rows = sweep(oracle, tables, baselines, args.samplers, args.nfe_list, y0, metric)
        for r in rows:
            r["target"] = target
        result["rows"] += rows
        result["rho"][target] = rho_fits(tables, args.nfe_list)
        result["tables"][target] = tables
    return result


def run_gmm(args):
    dim = 8 if args.smoke else 64
    dataset = load_dataset("gmm64", dim=dim, num_train=2000, num_test=400 if args.smoke else 2000)
    oracle = GaussianMixtureDenoiser.from_mixture(dataset.distribution)
    tables = cost_tables(oracle, jnp.asarray(dataset.train[: args.cost_samples]), args)
    n = 200 if args.smoke else 2000
    y0 = 80.0 * jax.random.normal(jax.random.key(args.seed), (n, dim))
    reference = reference_solve(oracle, y0, args.smoke)
    key = jax.random.key(args.seed + 1)

    def metrics(x):
        m = evaluate_samples(x, dataset, key=key, max_reference=2000, max_mmd=500)
        rmse = float(np.sqrt(np.mean(np.sum((x - reference) ** 2, axis=1))))
        keys = ("sw2", "gaussian_kl", "mode_weight_tv")
        return {"rmse": rmse, **{k: float(m[k]) for k in keys if k in m}}

    rows = sweep(oracle, tables, EDM_BASELINES, args.samplers, args.nfe_list, y0, metrics)
    floor = {"sw2_reference_solve": float(sliced_wasserstein(reference, dataset.test, key))}
    return {"rows": rows, "floor": floor, "rho": rho_fits(tables, args.nfe_list), "tables": tables}


def run_online(args):
    from flax import nnx

    from schedopt.models.networks import MLPDenoiser
    from schedopt.models.training import train_denoiser

    mixture = bimodal()
    data = np.asarray(mixture.sample(jax.random.key(args.seed), 4000))
    net = MLPDenoiser(1, width=64, depth=2, sigma_data=1.0, rngs=nnx.Rngs(args.seed))
    points = 8 if args.smoke else 16
    online = OnlineEqualCost(CorrectorCost(), EDM(), num_points=points, gamma=0.1)
    hook = online.hook(data)
    steps = 60 if args.smoke else 1500
    started = time.perf_counter()
    trained = train_denoiser(
        net,
        data,
        num_steps=steps,
        batch_size=128,
        log_every=25 if not args.smoke else 10,
        progress=False,
        hook=hook,
        seed=args.seed,
    )
    seconds = time.perf_counter() - started
    # the oracle's equal-cost grid, by the same (t-coordinate) iteration run to convergence
    oracle = GaussianMixtureDenoiser.from_mixture(mixture)
    exact_hook = OnlineEqualCost(CorrectorCost(), EDM(), num_points=points, gamma=1.0).hook(data)
    for step in range(12):
        exact_hook(step, oracle)
    online_levels, oracle_levels = hook.noise_levels(), exact_hook.noise_levels()
    n = 400 if args.smoke else 4000
    reference = np.asarray(mixture.sample(jax.random.key(args.seed + 7), n))
    metric = mixture_metrics(mixture, reference, jax.random.key(args.seed + 1))
    y0 = 80.0 * jax.random.normal(jax.random.key(args.seed + 2), (n, 1))
    solver = sampler_for_nfe("euler", points)
    grids = {
        "online (Alg. 2)": schedule_from_noise_levels(online_levels),
        "oracle equal-cost": schedule_from_noise_levels(oracle_levels),
        "edm-rho7": EDM(),
    }
    rows = []
    for name, schedule in grids.items():
        for label, den in (("trained model", trained.denoiser), ("oracle", oracle)):
            row = {"schedule": name, "denoiser": label, "sampler": "euler", "nfe": solver.nfe}
            row.update(metric(run_sampler(den, schedule, solver, y0)))
            rows.append(row)
            print(f"  {name:18s} {label:13s} w2={row['w2']:.4g}", flush=True)
    history = [
        {"step": r["step"], "loss": r["loss"], "cost_spread": r["cost_spread"]}
        for r in trained.history
    ]
    return {
        "rows": rows,
        "history": history,
        "online_levels": online_levels.tolist(),
        "oracle_levels": oracle_levels.tolist(),
        "max_log_gap": float(np.max(np.abs(np.log(online_levels / oracle_levels)))),
        "train_seconds": seconds,
    }


def run_digits(args):
    from schedopt.models.nnx_adapter import load_denoiser

    model = Path(args.model)
    if args.smoke:
        from flax import nnx

        from schedopt.models.networks import UNetDenoiser
        from schedopt.models.nnx_adapter import NNXDenoiser

        # an untrained network: the smoke run only exercises the code path
        net = UNetDenoiser(channels=(8, 8), num_blocks=1, rngs=nnx.Rngs(0))
        denoiser = NNXDenoiser.from_module(net)
    elif not (model / "DONE").exists():
        raise SystemExit(f"{model} has no DONE file yet: the shared digits model is not finished")
    else:
        denoiser = load_denoiser(model / "network")
    dataset = load_dataset("digits")
    costs = ("corrector",) if args.smoke else args.costs  # smoke: seconds
    tables = cost_tables(denoiser, jnp.asarray(dataset.train[: args.cost_samples]), args, costs)
    n = 100 if args.smoke else 1000
    y0 = 80.0 * jax.random.normal(jax.random.key(args.seed), (n, *dataset.event_shape))
    key = jax.random.key(args.seed + 1)

    def metrics(x):  # clipped to the data range, as in the constant-rate experiment and NFE sweep
        m = evaluate_samples(np.clip(x, -1.0, 1.0), dataset, key=key)
        return {"fd": float(m["fd"]), "sw2": float(m["sw2"])}

    rows = sweep(denoiser, tables, EDM_BASELINES, args.samplers, args.nfe_list, y0, metrics)
    floor = metrics(np.asarray(dataset.train[:n]))
    return {
        "rows": rows,
        "floor_train_split": floor,
        "rho": rho_fits(tables, args.nfe_list),
        "tables": tables,
    }


# ---- output ----------------------------------------------------------------------------------


def table_md(rows, metric, group, column="schedule", lower=True):
    cols = list(dict.fromkeys(r[column] for r in rows))
    keys = list(dict.fromkeys(tuple(r[g] for g in group) for r in rows))
    lines = ["| " + " | ".join(group) + " | " + " | ".join(cols) + " |"]
    lines.append("|" + "---|" * (len(group) + len(cols)))
    for key in keys:
        vals = {r[column]: r[metric] for r in rows if tuple(r[g] for g in group) == key}
        best = (min if lower else max)(vals.values())
        cells = [f"**{vals[c]:.4g}**" if vals[c] == best else f"{vals[c]:.4g}" for c in cols]
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(name, result, metric, group_key, out: Path):
    rows = result["rows"]
    groups = list(dict.fromkeys(r[group_key] for r in rows)) if group_key else [None]
    tables = result.get("tables", {})
    if tables and not isinstance(next(iter(tables.values())), CostTable):
        tables = {f"{g}/{c}": t for g, ts in tables.items() for c, t in ts.items()}
    fig, axes = plt.subplots(1, len(groups) + 1, figsize=(5 * (len(groups) + 1), 4))
    for ax, group in zip(axes, groups, strict=False):
        sub = [r for r in rows if group is None or r[group_key] == group]
        for sampler in dict.fromkeys(r["sampler"] for r in sub):
            for label in dict.fromkeys(r["schedule"] for r in sub):
                pts = [
                    (r["nfe"], r[metric])
                    for r in sub
                    if r["sampler"] == sampler and r["schedule"] == label
                ]
                style = "o-" if label.startswith("equal") else "s--"
                ax.loglog(*zip(*pts, strict=True), style, ms=3, label=f"{label} ({sampler})")
        ax.set(xlabel="NFE", ylabel=metric, title=f"{name} {group or ''}")
        ax.legend(fontsize=6)
    ax = axes[-1]
    for label, table in tables.items():
        s, speed = local_speed(table)
        ax.loglog(s, speed / speed.max(), label=label)
    ax.set(xlabel="noise level s", ylabel="dLambda / dlog s (max 1)", title="local cost (speed)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / f"{name}.png"
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def save(name, result, metrics, group, out, args, plot_group=None):
    record = {k: v for k, v in result.items() if k != "tables"}
    record["command"] = "python experiments/p4_score_optimal.py " + " ".join(args.argv)
    record["tables"] = {}
    for key, value in result.get("tables", {}).items():
        items = value.items() if isinstance(value, dict) else [("", value)]
        for sub, t in items:
            record["tables"][f"{key}/{sub}".strip("/")] = {
                **t.describe(),
                "log_levels": np.asarray(t.log_levels).tolist(),
                "costs": np.asarray(t.costs).tolist(),
            }
    atomic_write_json(out / f"{name}.json", record)
    md = [f"<!-- {record['command']} -->"]
    for metric, lower in metrics:
        word = "lower" if lower else "higher"
        md += [f"\n### {name}: {metric} ({word} is better)\n"]
        md.append(table_md(result["rows"], metric, group, lower=lower))
    if "rho" in result:
        md.append(f"\n### {name}: EDM rho fitted to the equal-cost grids (points: rho)\n")
        md.append(json_lines(result["rho"]))
    atomic_write_bytes(out / f"{name}.md", ("\n".join(md) + "\n").encode())
    if name != "online":
        plot(name, result, metrics[0][0], plot_group, out)


def json_lines(rho: dict) -> str:
    flat = {}
    for key, value in rho.items():
        if "rho" in value:
            flat[key] = value
        else:
            flat.update({f"{key}/{k}": v for k, v in value.items()})
    return "\n".join(
        f"- {k}: rho = {v['rho']:.3g} (rms log error {v['rms_log_error']:.3g})"
        for k, v in flat.items()
    )


def plot_online(result, out: Path):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    h = result["history"]
    a.semilogy([r["step"] for r in h], [r["cost_spread"] for r in h], "o-", ms=3)
    a.set(xlabel="training step", ylabel="cost spread (CV of sqrt L_k)", title="Algorithm 2")
    for label in ("online_levels", "oracle_levels"):
        b.semilogy(result[label], "o-", ms=3, label=label.replace("_levels", ""))
    b.semilogy(
        np.asarray(EDM().noise_level(jnp.linspace(1, 0, len(result["online_levels"])))),
        "s--",
        ms=3,
        label="edm-rho7",
    )
    b.set(xlabel="step k", ylabel="noise level", title="grids")
    b.legend()
    fig.tight_layout()
    tmp = out / "online.tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out / "online.png")


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--part", default="default", choices=("default", "toy", "gmm", "online", "digits", "all")
    )
    p.add_argument("--smoke", action="store_true", help="every part, tiny sizes, seconds")
    p.add_argument("--nfe", default=None, help="comma-separated NFE budgets")
    p.add_argument("--samplers", default="euler,heun")
    p.add_argument("--intervals", type=int, default=None, help="cost-table intervals (128)")
    p.add_argument("--cost-samples", type=int, default=None, help="samples the costs average over")
    p.add_argument("--predictor-samples", type=int, default=None, help="(exact Jacobians: fewer)")
    p.add_argument("--predictor-intervals", type=int, default=None, help="(default: --intervals)")
    p.add_argument(
        "--costs",
        default="corrector,predictor",
        help="digits part: the costs to tabulate (comma-separated subset of corrector,predictor)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="runs/digits-edm", help="the shared digits model")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.samplers = ["euler"] if args.smoke else args.samplers.split(",")
    args.costs = tuple(args.costs.split(","))
    if not args.costs or not set(args.costs) <= {"corrector", "predictor"}:
        raise SystemExit(f"--costs must be a subset of corrector,predictor, got {args.costs!r}")
    args.intervals = args.intervals or (16 if args.smoke else 128)
    args.cost_samples = args.cost_samples or (128 if args.smoke else 2048)
    predictor_samples, predictor_intervals = args.predictor_samples, args.predictor_intervals
    out = Path(args.out) / ("smoke" if args.smoke else "")
    out.mkdir(parents=True, exist_ok=True)
    if (args.smoke and args.part == "default") or args.part == "all":
        parts = ("toy", "gmm", "online", "digits")
    elif args.part == "default":
        parts = ("toy", "gmm", "online")
    else:
        parts = (args.part,)
    for part in parts:
        nfe = args.nfe or ("5" if args.smoke else {"toy": "10,20"}.get(part, "10,20,50"))
        args.nfe_list = [int(v) for v in nfe.split(",")]
        digits = part == "digits"  # exact 64 x 64 Jacobians of a U-Net: a smaller table
        args.predictor_intervals = predictor_intervals or (
            8 if args.smoke else (32 if digits else args.intervals)
        )
        args.predictor_samples = predictor_samples or (
            16 if args.smoke else (64 if digits else 256)
        )
        print(f"== {part}", flush=True)
        started = time.perf_counter()
        if part == "toy":
            metrics = [
                ("rmse", True),
                ("w2", True),
                ("modes_covered", False),
                ("mode_weight_tv", True),
            ]
            save("toy", run_toy(args), metrics, ("target", "sampler", "nfe"), out, args, "target")
        elif part == "gmm":
            metrics = [
                ("rmse", True),
                ("sw2", True),
                ("gaussian_kl", True),
                ("mode_weight_tv", True),
            ]
            save("gmm", run_gmm(args), metrics, ("sampler", "nfe"), out, args)
        elif part == "online":
            result = run_online(args)
            save(
                "online", result, [("w2", True), ("modes_covered", False)], ("denoiser",), out, args
            )
            plot_online(result, out)
        else:
            save(
                "digits",
                run_digits(args),
                [("fd", True), ("sw2", True)],
                ("sampler", "nfe"),
                out,
                args,
            )
        print(f"   {part}: {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
