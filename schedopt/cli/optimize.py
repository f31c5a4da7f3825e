"""``schedopt optimize``: fit a learnable schedule to an objective (the main job).

With no arguments: the digits spectrum, 10 NFE, Euler, Gaussian KL; writes
``RUN_DIR/schedule.json`` (a schedule card), ``RUN_DIR/schedule.png`` and
``RUN_DIR/log.jsonl``, and prints the objective of the learned schedule against the
baselines.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax

from .._checks import check_choice
from .._compile import fast_compile_options, fast_jit
from ..baselines import BASELINES
from ..gaussian import SOLVERS
from ..schedules import FAMILIES, MonotoneCubic, MonotoneMLP, PiecewiseLinear, make_schedule
from ..schedules.base import FINALS
from ._common import format_table
from ._objectives import discover

LEARNABLE = {
    "monotone-cubic": MonotoneCubic,
    "piecewise-linear": PiecewiseLinear,
    "monotone-mlp": MonotoneMLP,
}


#: ``--objective`` name -> plug-in module (see ``schedopt/cli/_objectives``).
OBJECTIVES = discover()

REFERENCE_LABELS = dict(BASELINES, **{"asymptotic-optimum": "Euler-Maclaurin optimum (P0)"})


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "optimize",
        help="learn a schedule (default: digits spectrum, 10 NFE, Euler, Gaussian KL)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--objective",
        default="gaussian-kl",
        help="; ".join(f"{name}: {module.HELP}" for name, module in OBJECTIVES.items()),
    )
    p.add_argument("--nfe", type=int, default=10, help="number of sampling steps N (default 10)")
    p.add_argument("--solver", default="euler", help=f"sampler, e.g. {', '.join(SOLVERS)}")
    p.add_argument("--final", default="zero", help="grid end: zero (last step to s=0) or min")
    p.add_argument(
        "--family", default="monotone-cubic", help="learnable family, or a fixed family to tune"
    )
    p.add_argument("--num-knots", type=int, default=32, help="knots of the knot families")
    p.add_argument("--init-from", default="edm", help="fixed family the learnable one starts as")
    p.add_argument("--sigma-min", type=float, default=0.002)
    p.add_argument("--sigma-max", type=float, default=80.0)
    p.add_argument("--iterations", type=int, default=1500)
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/optimize", help="run directory (default runs/optimize)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--resume",
        action="store_true",
        help="checkpoint to RUN_DIR/checkpoints (orbax) and resume from there if a run was cut off",
    )
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    for name, module in OBJECTIVES.items():
        module.add_arguments(p.add_argument_group(f"--objective {name}"))
    p.set_defaults(func=run)


def initial_schedule(args) -> object:
    """The schedule the optimisation starts from, per ``--family`` / ``--init-from``."""
    ends = dict(sigma_min=args.sigma_min, sigma_max=args.sigma_max)
    if args.family in LEARNABLE:
        if args.init_from in LEARNABLE or args.init_from not in FAMILIES:
            raise ValueError(f"--init-from must be a fixed family, got {args.init_from!r}")
        start = make_schedule(args.init_from, **ends)
        cls = LEARNABLE[args.family]
        if cls is MonotoneMLP:
            return cls.from_schedule(start, key=jax.random.key(args.seed))
        return cls.from_schedule(start, num_knots=args.num_knots)
    if args.family not in FAMILIES:
        raise ValueError(
            f"unknown --family {args.family!r}; learnable: {', '.join(LEARNABLE)}; "
            f"fixed: {', '.join(FAMILIES)}"
        )
    return make_schedule(args.family, **ends)


@fast_jit
def evaluate_all(objective, schedules: dict, key) -> dict:
    """``objective(schedule, key)`` of every schedule, as one program (compiled quickly:
    it runs once)."""
    return {name: objective(schedule, key) for name, schedule in schedules.items()}


def prepare_report(objective, references: dict, start, key, args) -> dict:
    """What the report needs that the fit does not change, run in a thread beside it (XLA
    compiles with the interpreter lock released, so this overlaps the fit's compilation):
    the references' objective values (returned), the import of matplotlib, and the
    compilation of the plot's and the card's programs (on ``start``, whose structure the
    learned schedule shares)."""
    values = evaluate_all(objective, references, key)
    import matplotlib.figure  # noqa: F401  (plot_schedules imports it: about a second)

    from ..io.card import prepare_card
    from ..plot import schedule_curves

    schedule_curves({"learned": start, **references}, args.nfe, args.final)
    prepare_card(start, num_steps=args.nfe, final=args.final, process="ve")
    return values


def run(args) -> int:
    from ..io.card import make_card, save_card
    from ..optimize import optimize
    from ..plot import plot_schedules

    check_choice("objective", args.objective, tuple(OBJECTIVES))
    check_choice("final", args.final, FINALS)
    if args.nfe < 1:
        raise ValueError(f"--nfe must be >= 1, got --nfe={args.nfe}")
    setup = OBJECTIVES[args.objective].build(args)
    objective = setup.objective
    start = initial_schedule(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.jsonl"
    checkpoint_dir = out / "checkpoints" if args.resume else None

    started = time.perf_counter()
    key = jax.random.fold_in(jax.random.key(args.seed), args.iterations)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the report's own work, beside the fit
        report = pool.submit(prepare_report, objective, setup.references, start, key, args)
        result = optimize(
            start,
            objective,
            num_iterations=args.iterations,
            learning_rate=args.lr,
            seed=args.seed,
            log_path=log_path,
            progress=not args.no_progress,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=args.checkpoint_every,
            compiler_options=fast_compile_options() if setup.fast_compile else None,
        )
        reference_values = report.result()
    rows = [["learned", f"schedopt ({args.family})", result.final_loss]]
    comparison = {"learned": result.final_loss}
    for name in setup.references:  # in their order (a compiled dict comes back sorted)
        value = reference_values[name]
        comparison[name] = float(value)
        rows.append([name, REFERENCE_LABELS.get(name, name), float(value)])
    for row in rows:
        row.append(row[2] / result.final_loss if result.final_loss > 0 else float("nan"))

    settings = {k: v for k, v in vars(args).items() if k != "func"}
    card = make_card(
        result.schedule,
        num_steps=args.nfe,
        final=args.final,
        process="ve",
        solver=args.solver,
        objective=objective.describe(),
        objective_value=result.final_loss,
        fingerprint=setup.fingerprint,
        settings=dict(settings, comparison=comparison, seconds=time.perf_counter() - started),
    )
    save_card(out / "schedule.json", card)
    plot_schedules(
        out / "schedule.png",
        {"learned": result.schedule, **setup.references},
        args.nfe,
        final=args.final,
        highlight="learned",
        title=f"{objective.name}, {args.nfe} steps, {args.solver}",
    )
    print(f"\n{objective.name} at {args.nfe} steps ({args.solver}), lower is better:")
    print(format_table(["schedule", "description", objective.name, "x learned"], rows))
    print(f"\nwrote {out / 'schedule.json'}, {out / 'schedule.png'}, {log_path}")
    print(f"({result.num_iterations} iterations in {result.seconds:.1f} s)")
    return 0
