"""Why does diffusers' trailing grid win so many sliced-W2 cells of the NFE sweep?

The trailing grid differs from the others in two ways: its noise range (it starts at the
DDPM table's maximum, about 157, and its last positive level is the table's level at
timestep ``1000/N - 1``, e.g. 0.74 at N = 5) and its spacing. This separates the two with
four grids per cell, each with one final step to 0:

- ``trailing``: the grid itself;
- ``edm``: EDM rho = 7 on the sweep's range [0.002, 80];
- ``edm-on-trailing-range``: EDM rho = 7 on the trailing grid's own [last level, first level];
- ``trailing-on-edm-range``: the trailing levels mapped affinely in log sigma onto [0.002, 80].

Sliced W2 and MMD to held-out data (mean over ``--seeds``), and on the trained digits
model (``--model``) the Fréchet distance of classifier features, the table's metric there.
Writes ``experiments/out/trailing/rows.jsonl`` and ``table.md``.

    python experiments/trailing_range.py         # ring, gmm64, digits Gaussian (minutes)
    python experiments/trailing_range.py --targets gmm64 --nfe 5,10
    python experiments/trailing_range.py --targets digits-model \
        --out experiments/out/trailing-digits
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np
from nfe_sweep import (
    SIGMA_MAX,
    SIGMA_MIN,
    SOLVERS,
    _choices,
    _ints,
    _sampling_fn,
    make_target,
    num_steps_for,
    seed_metrics,
    trailing_schedule,
)

from schedopt.io import atomic_write_bytes
from schedopt.sampling import SAMPLERS
from schedopt.schedules import EDM, grid
from schedopt.search import schedule_from_sigmas

OUT = Path(__file__).parent / "out" / "trailing"
TARGETS = ("ring", "gmm64", "digits-gaussian", "digits-model")


def grids(n: int) -> dict[str, np.ndarray]:
    """The four grids of one cell (``n + 1`` levels each, the last 0)."""
    trailing = np.asarray(grid(trailing_schedule(n), n), np.float64)
    positive = trailing[:-1]
    lo, hi = float(positive[-1]), float(positive[0])
    log = np.log(positive)
    span = log[0] - log[-1] if n > 1 else 1.0
    mapped = np.exp(np.log(SIGMA_MAX) + (log[0] - log) / span * np.log(SIGMA_MIN / SIGMA_MAX))
    return {
        "trailing": trailing,
        "edm": np.asarray(grid(EDM(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX), n)),
        "edm-on-trailing-range": np.asarray(grid(EDM(sigma_min=lo, sigma_max=hi), n)),
        "trailing-on-edm-range": np.concatenate([mapped, [0.0]]),
    }


def run(args) -> list[dict]:
    rows = []
    for name in args.targets:
        target = make_target(name, Path(args.model), args.batch)
        batch = min(args.batch, 1000) if name == "digits-model" else args.batch
        for solver in args.solvers:
            for nfe in args.nfe:
                n = num_steps_for(solver, nfe)
                if n < 2:
                    continue
                sample = _sampling_fn(target, solver, n, batch)
                for strategy, sigmas in grids(n).items():
                    schedule = schedule_from_sigmas(sigmas)
                    row = dict(
                        target=name, solver=solver, nfe=nfe, steps=n, strategy=strategy,
                        sigma_max=float(sigmas[0]), sigma_last=float(sigmas[-2]),
                    )  # fmt: skip
                    row |= seed_metrics(target, sample, schedule, args.seeds)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                jax.clear_caches()
    return rows


def table(rows) -> str:
    """One line per cell: the headline metric (FD where there is one, else sliced W2) of
    each grid, the best in bold."""
    names = list(dict.fromkeys(r["strategy"] for r in rows))
    lines = [
        "| target | solver | NFE | metric | last level of trailing | " + " | ".join(names) + " |",
        "|---|---|---|---|---|" + "---|" * len(names),
    ]
    cells = {}
    for r in rows:
        cells.setdefault((r["target"], r["solver"], r["nfe"]), {})[r["strategy"]] = r
    for (target, solver, nfe), cell in cells.items():
        metric = "fd" if "fd" in cell["trailing"] else "sw2"
        best = min(r[metric] for r in cell.values())
        values = [
            f"**{cell[s][metric]:.4g}**" if cell[s][metric] == best else f"{cell[s][metric]:.4g}"
            for s in names
        ]
        last = cell["trailing"]["sigma_last"]
        lines.append(
            f"| {target} | {solver} | {nfe} | {metric} | {last:.3g} | " + " | ".join(values) + " |"
        )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default="ring,gmm64,digits-gaussian")
    p.add_argument("--solvers", default=",".join(SOLVERS))
    p.add_argument("--nfe", default="3,5,10,20")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--batch", type=int, default=2000)
    p.add_argument("--model", default="runs/digits-edm", help="trained digits model directory")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    args.targets = _choices("--targets", args.targets, TARGETS)
    args.solvers = _choices("--solvers", args.solvers, SAMPLERS)
    args.nfe = _ints("--nfe", args.nfe)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run(args)
    atomic_write_bytes(out / "rows.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    atomic_write_bytes(out / "table.md", (table(rows) + "\n").encode())
    print(table(rows))


if __name__ == "__main__":
    main()
