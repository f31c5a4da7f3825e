"""The design space of VE diffusion — error decomposition, sampling schedule vs score quality,
and training noise distributions / loss weightings.

Claims under test (Wang, He & Tao, "Evaluating the design space of diffusion-based
generative models"): with a well-trained score Song's geometric VE schedule is
preferable, with a less-trained one EDM's polynomial schedule; good training noise
distributions and weightings are bell-shaped around intermediate noise levels (like EDM's).

Setting: the 8-mode 2-D ring (std 0.1, radius 1), its exact denoiser ``D*``, VE process
with ``sigma in [0.002, 80]``; Song = ``LogSNRLinear`` (geometric sigma), EDM = ``EDM(rho)``.
Errors are the RMS per-sample distances of :mod:`schedopt.analysis.decomposition`
(common random numbers; ``total = rms(sample - ideal)``), plus sliced W2 to the ideal.

Part A (sampling): score qualities = exact, controlled perturbations
(``PerturbedDenoiser``, ``"edm"`` profile, several sizes), and MLP denoisers trained for
increasing budgets; schedules Song and EDM ``rho`` in ``RHOS``; Euler (deterministic) and
VE Euler–Maruyama (stochastic); several NFE; ``SEEDS`` evaluation seeds (and training
seeds). Part B (training): one MLP trained at a fixed budget under several noise
distributions / weightings, ``SEEDS`` seeds each; its ``E_S`` on a fixed sampler and its
per-noise-level denoiser error.

Writes ``results.json``, ``tables.md`` and ``p3_design_space.png`` to ``--out``.

    .venv/bin/python experiments/p3_design_space.py              # ~15 min on 2 busy cores
    .venv/bin/python experiments/p3_design_space.py --smoke --out /tmp/p3
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from schedopt.analysis import PerturbedDenoiser, decompose_errors, denoiser_error
from schedopt.data import ring
from schedopt.io.atomic import atomic_write_bytes, atomic_write_json
from schedopt.models import GaussianMixtureDenoiser
from schedopt.models.networks import MLPDenoiser
from schedopt.models.noise import LogNormal, LogUniform
from schedopt.models.training import train_denoiser
from schedopt.sampling import EulerMaruyama, ODESampler
from schedopt.schedules import EDM, Cosine, LogSNRLinear

FULL = dict(
    rhos=(3.0, 7.0, 10.0),
    steps=(10, 40),
    sizes=(0.02, 0.1),
    budgets=(200, 2000),
    train_budget=1000,
    seeds=(0, 1, 2),
    num_samples=2000,
    reference_steps=128,
    num_data=4096,
    arms=None,
    width=64,
    depth=2,
)
SMOKE = dict(
    rhos=(7.0,),
    steps=(10,),
    sizes=(0.05,),
    budgets=(20,),
    train_budget=20,
    seeds=(0, 1),
    num_samples=128,
    reference_steps=16,
    num_data=256,
    width=16,
    depth=1,
    arms=("edm-lognormal/edm", "log-uniform/edm"),
)
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0
# training arms: (noise distribution, weighting)
TRAIN_ARMS = {
    "edm-lognormal/edm": (LogNormal(), "edm"),
    "edm-lognormal/snr": (LogNormal(), "snr"),
    "edm-lognormal/uniform": (LogNormal(), "uniform"),
    "log-uniform/edm": (LogUniform(SIGMA_MIN, SIGMA_MAX), "edm"),
    "cosine-t/edm": (Cosine(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX), "edm"),
    "bell(ln s~N(-0.7,0.8^2))/edm": (LogNormal(loc=-0.7, scale=0.8), "edm"),
}


def mean_ci(values) -> dict:
    """Mean and 95% t-interval half-width over seeds."""
    v = np.asarray(values, dtype=float)
    t95 = {1: float("nan"), 2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78}.get(len(v), 2.0)
    half = t95 * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
    return {"mean": float(v.mean()), "ci95": float(half), "values": v.tolist()}


def schedules(rhos) -> dict:
    out = {"song": LogSNRLinear(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX)}
    for rho in rhos:
        out[f"edm-rho{rho:g}"] = EDM(rho=rho, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX)
    return out


def train(data, cfg, *, steps, noise, weighting, seed):
    net = MLPDenoiser(2, width=cfg["width"], depth=cfg["depth"], rngs=nnx.Rngs(seed))
    result = train_denoiser(
        net,
        data,
        num_steps=steps,
        batch_size=256,
        learning_rate=2e-3,
        noise=noise,
        weighting=weighting,
        ema_decay=0.99,
        seed=seed,
        progress=False,
        log_every=max(1, min(200, steps)),
    )
    return result.denoiser, result.history[-1]["loss"]


def part_a(cfg, gm, exact, log) -> dict:
    """Sampling schedule vs score quality."""
    records = []
    for seed in cfg["seeds"]:
        data = np.asarray(gm.sample(jax.random.key(1000 + seed), cfg["num_data"]))
        dens = {"exact": exact}
        for size in cfg["sizes"]:
            dens[f"perturbed-{size:g}"] = PerturbedDenoiser(
                exact, size, "edm", key=jax.random.key(2000 + seed)
            )
        for budget in cfg["budgets"]:
            t0 = time.perf_counter()
            dens[f"trained-{budget}"], loss = train(
                data, cfg, steps=budget, noise="edm", weighting="edm", seed=seed
            )
            dt = time.perf_counter() - t0
            log(f"  seed {seed}: trained {budget} steps, loss {loss:.4f} ({dt:.0f}s)")
        for sched_name, schedule in schedules(cfg["rhos"]).items():
            for sampler_name in ("euler", "em"):
                for n in cfg["steps"]:
                    sampler = (
                        ODESampler(n, "euler")
                        if sampler_name == "euler"
                        else EulerMaruyama(n, process="ve")
                    )
                    out = decompose_errors(
                        dens,
                        gm,
                        schedule,
                        sampler,
                        jax.random.key(seed),
                        num_samples=cfg["num_samples"],
                        reference_steps=cfg["reference_steps"],
                    )
                    for den_name, d in out.items():
                        records.append(
                            dict(
                                seed=seed,
                                denoiser=den_name,
                                schedule=sched_name,
                                sampler=sampler_name,
                                num_steps=n,
                                **d.as_dict(),
                            )
                        )
            log(f"  seed {seed}: {sched_name} done")
    return {"records": records}


def best_schedules(records, metric) -> list[dict]:
    """Per (denoiser, sampler, num_steps): each schedule's mean metric over seeds and the winner."""
    keys = sorted({(r["denoiser"], r["sampler"], r["num_steps"]) for r in records})
    rows = []
    for den, sampler, n in keys:
        by_sched = {}
        for r in records:
            if (r["denoiser"], r["sampler"], r["num_steps"]) == (den, sampler, n):
                by_sched.setdefault(r["schedule"], []).append(r[metric])
        stats = {k: mean_ci(v) for k, v in by_sched.items()}
        best = min(stats, key=lambda k: stats[k]["mean"])
        edm_best = min((k for k in stats if k != "song"), key=lambda k: stats[k]["mean"])
        # paired difference song - best EDM over seeds (common random numbers)
        diff = mean_ci(np.asarray(by_sched["song"]) - np.asarray(by_sched[edm_best]))
        rows.append(
            dict(
                denoiser=den,
                sampler=sampler,
                num_steps=n,
                best=best,
                best_edm=edm_best,
                stats=stats,
                song_minus_best_edm=diff,
            )
        )
    return rows


def part_b(cfg, gm, exact, log) -> dict:
    """Training noise distribution / weighting at a fixed budget."""
    levels = np.geomspace(SIGMA_MIN, SIGMA_MAX, 15)
    schedule = EDM(rho=7.0, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX)
    sampler = ODESampler(max(cfg["steps"]), "euler")
    per_seed = {}
    for seed in cfg["seeds"]:
        data = np.asarray(gm.sample(jax.random.key(1000 + seed), cfg["num_data"]))
        dens = {}
        for arm, (noise, weighting) in TRAIN_ARMS.items():
            if cfg["arms"] is not None and arm not in cfg["arms"]:
                continue
            t0 = time.perf_counter()
            dens[arm], loss = train(
                data, cfg, steps=cfg["train_budget"], noise=noise, weighting=weighting, seed=seed
            )
            log(f"  seed {seed}: {arm} loss {loss:.4f} ({time.perf_counter() - t0:.0f}s)")
        out = decompose_errors(
            dens,
            gm,
            schedule,
            sampler,
            jax.random.key(seed),
            num_samples=cfg["num_samples"],
            reference_steps=cfg["reference_steps"],
        )
        for arm, den in dens.items():
            prof = denoiser_error(
                den, exact, gm, levels, jax.random.key(3000 + seed), num_samples=cfg["num_samples"]
            )
            per_seed.setdefault(arm, []).append(
                dict(seed=seed, **out[arm].as_dict(), error_profile=np.asarray(prof).tolist())
            )
    summary = {}
    for arm, rows in per_seed.items():
        summary[arm] = dict(
            score=mean_ci([r["score"] for r in rows]),
            total=mean_ci([r["total"] for r in rows]),
            sliced_w2=mean_ci([r["sliced_w2"] for r in rows]),
            error_profile=np.mean([r["error_profile"] for r in rows], axis=0).tolist(),
        )
    return {
        "noise_levels": levels.tolist(),
        "per_seed": per_seed,
        "summary": summary,
        "sampler": f"euler N={sampler.num_steps}, EDM rho=7",
    }


def fmt(s: dict) -> str:
    return f"{s['mean']:.4f} ± {s['ci95']:.4f}"


def tables(res) -> str:
    lines = ["## Part A: best sampling schedule by score quality (metric: total RMS error)", ""]
    lines.append(
        "| denoiser | sampler | N | best | best EDM | song | best EDM value "
        "| song − best EDM (paired) |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for r in res["part_a"]["best_total"]:
        st = r["stats"]
        lines.append(
            f"| {r['denoiser']} | {r['sampler']} | {r['num_steps']} | {r['best']} | "
            f"{r['best_edm']} | {fmt(st['song'])} | {fmt(st[r['best_edm']])} | "
            f"{fmt(r['song_minus_best_edm'])} |"
        )
    lines += ["", "## Part A: the same with sliced W2 to the ideal samples", ""]
    lines.append("| denoiser | sampler | N | best | song | best EDM | song − best EDM |")
    lines.append("|---|---|---|---|---|---|---|")
    for r in res["part_a"]["best_sw2"]:
        st = r["stats"]
        lines.append(
            f"| {r['denoiser']} | {r['sampler']} | {r['num_steps']} | {r['best']} | "
            f"{fmt(st['song'])} | {r['best_edm']}: {fmt(st[r['best_edm']])} | "
            f"{fmt(r['song_minus_best_edm'])} |"
        )
    pb = res["part_b"]
    lines += ["", f"## Part B: training arms ({pb['sampler']}); mean ± 95% CI over seeds", ""]
    lines.append("| arm | E_S | total | sliced W2 | argmax of error profile (s) |")
    lines.append("|---|---|---|---|---|")
    for arm, s in sorted(pb["summary"].items(), key=lambda kv: kv[1]["score"]["mean"]):
        peak = pb["noise_levels"][int(np.argmax(s["error_profile"]))]
        lines.append(
            f"| {arm} | {fmt(s['score'])} | {fmt(s['total'])} | {fmt(s['sliced_w2'])} "
            f"| {peak:.3g} |"
        )
    return "\n".join(lines) + "\n"


def plot(res, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    pb = res["part_b"]
    for arm, s in pb["summary"].items():
        axes[1].loglog(pb["noise_levels"], s["error_profile"], marker=".", label=arm)
    axes[1].set_xlabel("noise level s")
    axes[1].set_ylabel("RMS |D_theta - D*|")
    axes[1].set_title("Part B: denoiser error by noise level")
    axes[1].legend(fontsize=6)
    recs = res["part_a"]["records"]
    n = max(r["num_steps"] for r in recs)
    dens = sorted({r["denoiser"] for r in recs})
    scheds = list(dict.fromkeys(r["schedule"] for r in recs))
    for den in dens:
        vals = [
            np.mean(
                [
                    r["total"]
                    for r in recs
                    if r["denoiser"] == den
                    and r["schedule"] == s
                    and r["sampler"] == "euler"
                    and r["num_steps"] == n
                ]
            )
            for s in scheds
        ]
        axes[0].plot(range(len(scheds)), vals, marker="o", label=den)
    axes[0].set_xticks(range(len(scheds)), scheds, rotation=30, fontsize=7)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("total RMS error")
    axes[0].set_title(f"Part A: Euler, N={n}")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny settings (seconds)")
    p.add_argument("--out", default="experiments/out/p3", help="output directory")
    p.add_argument("--parts", default="a,b", help="comma-separated parts to run (a, b)")
    args = p.parse_args(argv)
    cfg = SMOKE if args.smoke else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gm = ring(8)
    exact = GaussianMixtureDenoiser.from_mixture(gm)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f}s] {msg}", file=sys.stderr, flush=True)

    parts = set(args.parts.split(","))
    res = {
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        "smoke": args.smoke,
    }
    if "b" in parts:
        log("part B: training arms")
        res["part_b"] = part_b(cfg, gm, exact, log)
        atomic_write_json(out / "results.json", res)
    if "a" in parts:
        log("part A: schedules x score quality")
        res["part_a"] = part_a(cfg, gm, exact, log)
        res["part_a"]["best_total"] = best_schedules(res["part_a"]["records"], "total")
        res["part_a"]["best_sw2"] = best_schedules(res["part_a"]["records"], "sliced_w2")
    res["seconds"] = time.perf_counter() - t_start
    atomic_write_json(out / "results.json", res)
    if "a" in parts and "b" in parts:
        atomic_write_bytes(out / "tables.md", tables(res).encode())
        plot(res, out / "p3_design_space.png")
        print(tables(res))
    print(json.dumps({"out": str(out), "seconds": round(res["seconds"], 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
