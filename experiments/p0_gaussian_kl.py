"""P0 on the digits spectrum: exact Gaussian KL of learned vs baseline schedules over NFE.

For each solver (Euler = DDIM, Heun) and number of steps N, learn a monotone-cubic
schedule by minimising the closed-form KL, and compare it with the baselines and the
Euler–Maclaurin (asymptotic) optimum at the same N. Also fits the large-N rate of the
learned and EDM schedules. Writes ``experiments/out/p0/table.md``, ``results.json`` and
``kl_vs_nfe.png``.

    python experiments/p0_gaussian_kl.py            # full sweep (~2-4 min on 2 cores)
    python experiments/p0_gaussian_kl.py --smoke    # seconds
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
from schedopt.gaussian import Spectrum, asymptotically_optimal_schedule  # noqa: E402
from schedopt.io import atomic_write_bytes, atomic_write_json  # noqa: E402
from schedopt.objectives import GaussianKL  # noqa: E402
from schedopt.optimize import optimize  # noqa: E402
from schedopt.schedules import EDM, MonotoneCubic  # noqa: E402

OUT = Path(__file__).parent / "out" / "p0"


def run(nfes, solvers, iterations, seed=0):
    spectrum = Spectrum.digits()
    references = baseline_schedules(spectrum)
    references["asymptotic-optimum"] = asymptotically_optimal_schedule(spectrum)
    rows = []
    for solver in solvers:
        for n in nfes:
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
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, solver in zip(axes, ("euler", "heun"), strict=True):
        sub = [r for r in rows if r["solver"] == solver]
        if not sub:
            continue
        nfe = [r["steps"] for r in sub]
        ax.loglog(nfe, [r["learned"] for r in sub], "k-o", lw=2.5, label="learned")
        for n in names:
            ax.loglog(nfe, [r[n] for r in sub], "-o", ms=3, label=n)
        ax.set_xlabel("sampling steps N")
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
    args = parser.parse_args(argv)
    if args.smoke:
        nfes, solvers, iterations = [3, 5], ["euler"], 50
    else:
        nfes, solvers, iterations = [3, 4, 5, 6, 8, 10, 15, 20, 50], ["euler", "heun"], 1500
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
