"""Issue 9: the NFE sweep of baselines, search methods and learned schedules, and P0's claim.

For each target (oracle denoisers: the digits Gaussian spectrum, the 2-D 8-mode ring, the
64-D unequal mixture), solver (Euler = DDIM, Heun, Euler-Maruyama) and NFE, every strategy
gives a sampling grid:

- baselines: ``baseline_schedules(spectrum)`` (EDM rho=7, logSNR-uniform, uniform-t,
  cosine, tangent-1, tangent-optimal) and ``trailing`` (diffusers' trailing spacing of
  the 1000-step DDPM table);
- search: ``dp-kl`` (DP over 96 log-uniform teacher levels, cost = exact one-step Gaussian
  KL of the solver, Euler's for EM) and ``ays`` (AYS-style bound optimiser);
- schedopt: ``gaussian-kl`` (monotone cubic, Adam on the closed-form KL for the solver).

Each grid gets the target spectrum's exact Gaussian KL (P0's ranking proxy; the covariance
spectrum of a mixture) and a sample metric (sliced W2 to held-out data, mean over seeds).
Per (target, solver, NFE): Spearman correlation of the two rankings, and whether the
KL-selected strategy has the best sample metric. Writes ``experiments/out/sweep/``
``rows.jsonl`` (appended as cells finish), ``summary.json``, ``table.md``, ``sw2_vs_nfe.png``.

    python experiments/nfe_sweep.py --smoke       # CI size (~1 min)
    python experiments/nfe_sweep.py --nfe 3,5,10,20 --seeds 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from schedopt.baselines import baseline_schedules
from schedopt.data import ring, unequal_mixture
from schedopt.gaussian import Spectrum, gaussian_kl, step_grid
from schedopt.io import atomic_write_bytes, atomic_write_json
from schedopt.metrics import sliced_wasserstein
from schedopt.models import GaussianDenoiser, GaussianMixtureDenoiser
from schedopt.objectives import GaussianKL
from schedopt.optimize import optimize
from schedopt.sampling import make_sampler
from schedopt.schedules import EDM, MonotoneCubic, Tabulated
from schedopt.search import (
    dp_search,
    gaussian_step_costs,
    optimize_ays,
    schedule_from_sigmas,
    teacher_levels,
)

OUT = Path(__file__).parent / "out" / "sweep"
SOLVERS = ("euler", "heun", "euler-maruyama")
NFES = (3, 4, 5, 6, 8, 10, 15, 20, 50)
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


def targets(names):
    """name -> (denoiser, spectrum, data sampler)."""
    out = {}
    for name in names:
        if name == "digits-gaussian":
            spectrum = Spectrum.digits()
            denoiser = GaussianDenoiser.from_spectrum(spectrum)
            out[name] = (denoiser, spectrum, denoiser.sample)
            continue
        mixture = {"ring": ring, "gmm64": unequal_mixture}[name]()
        eig, vecs = np.linalg.eigh(np.asarray(mixture.covariance(), np.float64))
        mean = vecs.T @ np.asarray(mixture.mean(), np.float64)
        spectrum = Spectrum(np.maximum(eig, 1e-6), mean)
        out[name] = (GaussianMixtureDenoiser.from_mixture(mixture), spectrum, mixture.sample)
    return out


def num_steps_for(solver: str, nfe: int) -> int:
    """Steps within an NFE budget: Heun ``2N - 1``, Euler and EM ``N``."""
    return (nfe + 1) // 2 if solver == "heun" else nfe


def trailing_schedule(num_steps: int):
    """diffusers' ``timestep_spacing="trailing"`` on the 1000-step DDPM table."""
    table = Tabulated.ddpm_linear()
    k = table.num_timesteps
    steps = np.round(np.arange(k, 0, -k / num_steps)).astype(int) - 1
    levels = np.asarray(table.timestep_noise_levels())[steps]
    return schedule_from_sigmas(np.concatenate([levels, [0.0]]))


def strategies(spectrum, solver, n, iterations, teacher):
    """name -> schedule, plus the seconds each took to build."""
    out, seconds = {}, {}
    for name, schedule in baseline_schedules(spectrum, SIGMA_MIN, SIGMA_MAX).items():
        out[name], seconds[name] = schedule, 0.0
    if n >= 2:
        out["trailing"], seconds["trailing"] = trailing_schedule(n), 0.0
        cost_solver = "euler" if solver == "euler-maruyama" else solver
        start = time.perf_counter()
        cost = gaussian_step_costs(spectrum, teacher, cost_solver)
        out["dp-kl"] = schedule_from_sigmas(dp_search(teacher, cost, n).sigmas)
        seconds["dp-kl"] = time.perf_counter() - start
        start = time.perf_counter()
        result = optimize_ays(spectrum, n, SIGMA_MIN, SIGMA_MAX, num_iterations=iterations)
        out["ays"], seconds["ays"] = (
            schedule_from_sigmas(result.sigmas),
            time.perf_counter() - start,
        )
    start = time.perf_counter()
    learned = optimize(
        MonotoneCubic.from_schedule(EDM(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX), 16),
        GaussianKL(spectrum, num_steps=n, solver=solver),
        num_iterations=iterations,
        progress=False,
    )
    out["gaussian-kl"], seconds["gaussian-kl"] = learned.schedule, time.perf_counter() - start
    return out, seconds


def run(target_names, solvers, nfes, seeds, batch, iterations, path):
    teacher = teacher_levels(SIGMA_MIN, SIGMA_MAX, 96)
    rows = []
    for target, (denoiser, spectrum, draw) in targets(target_names).items():
        data = draw(jax.random.key(10_000), batch)
        for solver in solvers:
            for nfe in nfes:
                n = num_steps_for(solver, nfe)
                if n < 1:
                    continue
                schedules, seconds = strategies(spectrum, solver, n, iterations, teacher)
                sampler = make_sampler(solver, n)
                sample = jax.jit(
                    lambda sch, k, sampler=sampler, d=denoiser, dim=spectrum.dim: sampler.sample(
                        d, sch, k, (batch, dim), init="ve"
                    )
                )
                for name, schedule in schedules.items():
                    kl = float(gaussian_kl(spectrum, step_grid(schedule, n), solver))
                    sw2 = []
                    for seed in range(seeds):
                        x = sample(schedule, jax.random.key(seed))
                        ok = bool(jnp.all(jnp.isfinite(x)))
                        value = sliced_wasserstein(x, data, jax.random.key(99)) if ok else jnp.inf
                        sw2.append(float(value))
                    row = dict(
                        target=target,
                        solver=solver,
                        nfe=nfe,
                        steps=n,
                        strategy=name,
                        gaussian_kl=kl,
                        sw2=float(np.mean(sw2)),
                        sw2_seeds=sw2,
                        build_s=seconds[name],
                    )
                    rows.append(row)
                    with path.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                print(f"{target} {solver} nfe={nfe}: {len(schedules)} strategies", flush=True)
    return rows


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def summarise(rows):
    cells = {}
    for r in rows:
        cells.setdefault((r["target"], r["solver"], r["nfe"]), []).append(r)
    out = []
    for (target, solver, nfe), group in sorted(cells.items()):
        kls = [r["gaussian_kl"] for r in group]
        sws = [r["sw2"] for r in group]
        kl_pick = group[int(np.argmin(kls))]["strategy"]
        sw_best = group[int(np.argmin(sws))]["strategy"]
        out.append(
            dict(
                target=target,
                solver=solver,
                nfe=nfe,
                strategies=len(group),
                spearman=spearman(kls, sws),
                kl_selected=kl_pick,
                sw2_best=sw_best,
                kl_selected_wins=kl_pick == sw_best,
                kl_selected_sw2_rank=1 + int(np.sum(np.asarray(sws) < sws[np.argmin(kls)])),
            )
        )
    return out


def table(summary):
    lines = [
        "| target | solver | NFE | Spearman(KL, SW2) | KL-selected | best SW2 | KL pick's rank |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['target']} | {s['solver']} | {s['nfe']} | {s['spearman']:.2f} | "
            f"{s['kl_selected']} | {s['sw2_best']} | "
            f"{s['kl_selected_sw2_rank']}/{s['strategies']} |"
        )
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(r["target"], r["solver"]) for r in rows})
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.5), squeeze=False)
    for ax, (target, solver) in zip(axes[0], keys, strict=True):
        sub = [r for r in rows if r["target"] == target and r["solver"] == solver]
        for name in sorted({r["strategy"] for r in sub}):
            pts = sorted((r["nfe"], r["sw2"]) for r in sub if r["strategy"] == name)
            ax.plot(*zip(*pts, strict=True), marker="o", label=name, lw=1)
        ax.set(xscale="log", yscale="log", title=f"{target} / {solver}", xlabel="NFE")
    axes[0][0].set_ylabel("sliced W2")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--targets", default="digits-gaussian,ring,gmm64")
    p.add_argument("--solvers", default=",".join(SOLVERS))
    p.add_argument("--nfe", default=",".join(map(str, NFES)))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--batch", type=int, default=2000)
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if args.smoke:
        args.targets, args.solvers, args.nfe = "ring", "euler,heun", "3,5"
        args.seeds, args.batch, args.iterations = 1, 256, 20
    nfes = [int(x) for x in args.nfe.split(",")]
    if min(nfes) < 1:
        raise ValueError(f"`--nfe` must be positive integers, got {args.nfe!r}")
    for s in args.solvers.split(","):
        if s not in SOLVERS:
            raise ValueError(f"`--solvers` must be a subset of {','.join(SOLVERS)}; got {s!r}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    rows_path.unlink(missing_ok=True)
    rows = run(
        args.targets.split(","),
        args.solvers.split(","),
        nfes,
        args.seeds,
        args.batch,
        args.iterations,
        rows_path,
    )
    summary = summarise(rows)
    atomic_write_json(out / "summary.json", {"args": vars(args), "cells": summary})
    atomic_write_bytes(out / "table.md", (table(summary) + "\n").encode())
    plot(rows, out / "sw2_vs_nfe.png")
    print(table(summary))
    return rows, summary


if __name__ == "__main__":
    main()
