"""The Gaussian KL on the digits spectrum: exact KL of learned vs baseline schedules over NFE.

For each solver (default Euler = DDIM and Heun; ``--solvers`` takes any Gaussian solver,
the multistep ones included) and NFE budget (the most steps the solver affords within it),
learn a monotone-cubic schedule by minimising the closed-form KL, and compare it with the
baselines and the Euler–Maclaurin (asymptotic) optimum at the same number of steps.
Writes ``OUT/table.md``, ``results.json`` and ``kl_vs_nfe.png`` (``--out``, default
``experiments/out/p0``).

    python experiments/p0_gaussian_kl.py            # full sweep (~2-4 min on 2 cores)
    python experiments/p0_gaussian_kl.py --smoke    # seconds
    python experiments/p0_gaussian_kl.py --solvers dpmpp-2m,unipc --nfe 3,5,10 \
        --out experiments/out/multistep
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from schedopt.baselines import baseline_schedules  # noqa: E402
from schedopt.gaussian import (  # noqa: E402
    SOLVERS,
    Spectrum,
    asymptotically_optimal_schedule,
    solver_from_name,
)
from schedopt.io import atomic_write_bytes, atomic_write_json  # noqa: E402
from schedopt.objectives import GaussianKL  # noqa: E402
from schedopt.optimize import optimize  # noqa: E402
from schedopt.schedules import EDM, MonotoneCubic  # noqa: E402

OUT = Path(__file__).parent / "out" / "p0"


def steps_within(solver: str, nfe: int) -> int:
    """The most steps ``solver`` takes within ``nfe`` evaluations (Heun ``2N - 1``)."""
    n, gaussian = 1, solver_from_name(solver)
    while gaussian.nfe(n + 1) <= nfe:
        n += 1
    return n


def run(nfes, solvers, iterations, seed=0):
    spectrum = Spectrum.digits()
    references = baseline_schedules(spectrum)
    references["asymptotic-optimum"] = asymptotically_optimal_schedule(spectrum)
    rows = []
    for solver in solvers:
        for budget in nfes:
            n = steps_within(solver, budget)
            objective = GaussianKL(spectrum, num_steps=n, solver=solver)
            started = time.perf_counter()
            result = optimize(
                MonotoneCubic.from_schedule(EDM(), 32),
                objective,
                num_iterations=iterations,
                seed=seed,
                progress=False,
            )
            row = {
                "solver": solver,
                "steps": n,
                "nfe": objective.solver.nfe(n),
                "learned": result.final_loss,
                "seconds": time.perf_counter() - started,
            }
            for name, schedule in references.items():
                row[name] = float(objective(schedule, None))
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def table(rows, names):
    header = "| solver | steps | NFE | learned | " + " | ".join(names) + " |"
    lines = [header, "|" + "---|" * (4 + len(names))]
    for r in rows:
        cells = [r["solver"], str(r["steps"]), str(r["nfe"]), f"{r['learned']:.4g}"]
        cells += [f"{r[n]:.4g} ({r[n] / r['learned']:.2g}x)" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, names, path):
    solvers = list(dict.fromkeys(r["solver"] for r in rows))
    fig, axes = plt.subplots(1, len(solvers), figsize=(5.5 * len(solvers), 4), sharey=True)
    axes = [axes] if len(solvers) == 1 else list(axes)
    for ax, solver in zip(axes, solvers, strict=True):
        sub = [r for r in rows if r["solver"] == solver]
        nfe = [r["nfe"] for r in sub]
        ax.loglog(nfe, [r["learned"] for r in sub], "k-o", lw=2.5, label="learned")
        for n in names:
            ax.loglog(nfe, [r[n] for r in sub], "-o", ms=3, label=n)
        ax.set_xlabel("NFE")
        ax.set_title(solver)
    axes[0].set_ylabel("KL(data || output), digits spectrum")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sweep for tests")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--solvers", default=None, help=f"comma-separated, of {','.join(SOLVERS)}")
    parser.add_argument("--nfe", default=None, help="comma-separated NFE budgets")
    args = parser.parse_args(argv)
    if args.smoke:
        nfes, solvers, iterations = [3, 5], ["euler"], 50
    else:
        nfes, solvers, iterations = [3, 4, 5, 6, 8, 10, 15, 20, 50], ["euler", "heun"], 1500
    if args.solvers:
        solvers = args.solvers.split(",")
        for solver in solvers:
            if solver not in SOLVERS:
                raise SystemExit(f"--solvers must be among {','.join(SOLVERS)}, got {solver!r}")
    if args.nfe:
        nfes = [int(x) for x in args.nfe.split(",")]
    rows = run(nfes, solvers, iterations)
    out = Path(args.out)
    names = [k for k in rows[0] if k not in ("solver", "steps", "nfe", "learned", "seconds")]
    atomic_write_json(out / "results.json", rows)
    atomic_write_bytes(out / "table.md", (table(rows, names) + "\n").encode())
    plot(rows, names, out / "kl_vs_nfe.png")
    wins = sum(all(r["learned"] <= r[n] * (1 + 1e-6) for n in names) for r in rows)
    print(f"learned schedule best or tied in {wins}/{len(rows)} settings; wrote {out}")


if __name__ == "__main__":
    main()
