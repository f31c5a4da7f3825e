"""Decoupled time inputs: does telling the denoiser learned levels help a few-step fit?

For each target, solver and NFE: the sliced-W2 fit with the range learned
(``sliced-w2+range``: a 16-knot monotone cubic from EDM rho = 7 in a ``RangedSchedule``)
against the same fit with the denoiser's time inputs learned too (``+time``: the same
schedule in a :class:`~schedopt.schedules.DecoupledTimes` with ``--knots`` offsets), the
same Adam steps, learning rate and batches. Both are sampled with the real sampler on
held-out seeds ``HELD_OUT_SEED + i`` (never used by a fit) and scored by sliced W2 to
held-out data; the ratio ``+time / range`` is paired by seed (mean and 95% t-interval).

    python experiments/time_inputs.py --smoke
    python experiments/time_inputs.py --targets ring,gmm64 --solvers euler,heun,dpmpp-2m \\
        --nfe 3,5 --out experiments/out/time-inputs
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from nfe_sweep import SIGMA_MAX, SIGMA_MIN, make_target, num_steps_for
from range_fits import BOUNDS, fit_all, held_out_metrics

from schedopt.io import atomic_write_json
from schedopt.metrics import mean_interval
from schedopt.sampling import make_sampler
from schedopt.schedules import EDM, DecoupledTimes, MonotoneCubic, RangedSchedule

OUT = Path(__file__).parent / "out" / "time-inputs"
TARGETS = ("ring", "gmm64", "digits-gaussian")


def starts(knots: int) -> dict:
    base = MonotoneCubic.from_schedule(EDM(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX), 16)
    ranged = RangedSchedule.from_schedule(base, BOUNDS, (SIGMA_MIN, SIGMA_MAX))
    return {"range": ranged, "range+time": DecoupledTimes.from_schedule(ranged, knots, BOUNDS)}


def cell(target, solver: str, nfe: int, args) -> dict:
    n = num_steps_for(solver, nfe)
    sampler = make_sampler(solver, n)
    shape = (args.eval_samples, *target.event_shape)
    run = jax.jit(lambda s, k: sampler.sample(target.denoiser, s, k, shape, init="ve"))
    arms = {name: ("sliced-w2", start) for name, start in starts(args.knots).items()}
    fitted, seconds, _ = fit_all(target, solver, n, args, arms)
    if set(fitted) != set(arms):
        raise RuntimeError(f"a fit failed ({target.name} {solver} {n} steps): see above")
    out = {"target": target.name, "solver": solver, "nfe": nfe, "steps": n}
    for name, schedule in fitted.items():
        scores = held_out_metrics(target, run, schedule, args.seeds)["sw2"]["seeds"]
        record = {"sw2": scores, "fit_s": seconds[name]}
        if isinstance(schedule, DecoupledTimes):
            record["offsets"] = np.asarray(schedule.offsets).tolist()
        out[name] = record
    ratio = np.asarray(out["range+time"]["sw2"]) / np.asarray(out["range"]["sw2"])
    out["ratio"] = mean_interval(ratio)
    return out


def table(rows: list[dict]) -> str:
    lines = [
        "| target | solver | NFE | range: sliced W2 | range+time: sliced W2 | ratio (95% CI) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = (mean_interval(r[k]["sw2"]) for k in ("range", "range+time"))
        lines.append(
            f"| {r['target']} | {r['solver']} | {r['nfe']} | {a['mean']:.3g} ± {a['ci95']:.2g} "
            f"| {b['mean']:.3g} ± {b['ci95']:.2g} "
            f"| {r['ratio']['mean']:.3g} ± {r['ratio']['ci95']:.2g} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default="ring,gmm64")
    p.add_argument("--solvers", default="euler,heun,dpmpp-2m")
    p.add_argument("--nfe", default="3,5")
    p.add_argument("--knots", type=int, default=6, help="DecoupledTimes offsets")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--objective-batch", type=int, default=128)
    p.add_argument("--eval-samples", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--smoke", action="store_true", help="CI size: ring, Euler, NFE 3")
    args = p.parse_args(argv)
    if args.smoke:
        args.targets, args.solvers, args.nfe = "ring", "euler", "3"
        args.iterations, args.objective_batch, args.eval_samples, args.seeds = 5, 64, 256, 2
    targets = args.targets.split(",")
    for t in targets:
        if t not in TARGETS:
            raise ValueError(f"`--targets` must name {', '.join(TARGETS)}; got {t!r}")
    started = time.perf_counter()
    rows = []
    for name in targets:
        target = make_target(name, Path("runs/unused"), 2000)
        for solver in args.solvers.split(","):
            for nfe in (int(v) for v in args.nfe.split(",")):
                rows.append(cell(target, solver, nfe, args))
                print(json.dumps({k: rows[-1][k] for k in ("target", "solver", "nfe", "ratio")}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python experiments/time_inputs.py " + " ".join(argv or [])
    atomic_write_json(
        out / "results.json",
        {"command": command, "seconds": time.perf_counter() - started, "rows": rows},
    )
    (out / "table.md").write_text(table(rows))
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
