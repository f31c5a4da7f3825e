"""``schedopt optimize``: fit a learnable schedule to an objective (the main job).

With no arguments: the digits spectrum, 10 Euler steps (10 NFE), Gaussian KL; writes
``RUN_DIR/schedule.json`` (a schedule card), ``RUN_DIR/schedule.png`` and
``RUN_DIR/log.jsonl``, and prints the objective of the learned schedule against the
baselines.

Every option is checked before anything runs, and an option that the chosen objective,
solver or family would ignore is refused rather than recorded. The run directory is
locked while the run writes to it and is left as it was if the run fails. With
``--resume`` the run checkpoints to ``RUN_DIR/checkpoints`` and continues a cut-off run
from its newest readable checkpoint; the options given must match the ones the
checkpoint records (each difference is named), and options left out are taken from it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax

from .._compile import fast_compile_options, fast_jit
from .._table import format_table
from ..baselines import BASELINES
from ..schedules import (
    FAMILIES,
    DecoupledTimes,
    MonotoneCubic,
    MonotoneMLP,
    PiecewiseLinear,
    RangedSchedule,
    make_schedule,
)
from ..schedules.base import FINALS
from ._common import (
    MAX_ITERATIONS,
    MAX_SEED,
    MAX_STEPS,
    STEPS_HELP,
    add_steps_option,
    family_parameters,
    float_range,
    int_range,
    noise_level,
    noise_range,
    working_dtype,
)
from ._objectives import as_setup, discover, entry_points, load_plugin
from ._rundir import RunDirectory, check_run_dir

LEARNABLE = {
    "monotone-cubic": MonotoneCubic,
    "piecewise-linear": PiecewiseLinear,
    "monotone-mlp": MonotoneMLP,
}
#: Fixed families a run can tune or start from: those with a free noise range.
FIXED = tuple(
    n for n in FAMILIES if n not in LEARNABLE and {"sigma_min", "sigma_max"} <= family_parameters(n)
)

#: ``--objective`` name -> built-in plug-in module (see ``schedopt/cli/_objectives``;
#: a run's own table, with any plug-in from elsewhere, is ``args.plugins``).
OBJECTIVES = discover()

REFERENCE_LABELS = dict(BASELINES, **{"asymptotic-optimum": "Euler-Maclaurin optimum"})

#: Options of the samplers and Gaussian solvers; each applies where the solver has a
#: field of that name (``eta``: ancestral; ``kappa``, ``process``: Euler-Maruyama, ...).
SOLVER_OPTIONS = ("eta", "kappa", "process", "noise")
#: ``--noise`` choices (:data:`schedopt.sampling.NOISES`, checked by a test; the samplers'
#: module imports diffrax, which a Gaussian run does not need).
NOISES = ("gaussian", "rademacher", "uniform")
#: Objectives whose cost cannot choose a range (zero on any range with equal steps).
NO_RANGE = ("constant-rate", "score-work")
#: Smallest ratio --sigma-max / --sigma-min (a logSNR range of 0.02).
MIN_RANGE = 1.01
#: What the run writes into its directory.
OUTPUTS = ("schedule.json", "schedule.png", "log.jsonl", "checkpoints")
#: Options that do not change the result (everything else must match on --resume);
#: ``iterations`` and ``checkpoint_every`` may change to extend a run.
NOT_SHAPING = frozenset(
    {"func", "command", "given", "out", "no_progress", "resume", "iterations", "checkpoint_every"}
)

PLUGIN_OPTIONS: dict[str, tuple[str, ...]] = {}
"""``--objective`` name -> the destinations of the options its built-in plug-in adds."""


class _Recorder:
    """An argparse group that records the destinations of the options added to it."""

    def __init__(self, group):
        self.group, self.dests = group, []

    def add_argument(self, *args, **kwargs):
        action = self.group.add_argument(*args, **kwargs)
        self.dests.append(action.dest)
        return action


def flag(dest: str) -> str:
    """The command-line spelling of an option destination: ``init_from`` -> ``--init-from``."""
    return "--" + dest.replace("_", "-")


def objective_in(argv) -> str | None:
    """The ``--objective`` value that ``argv`` gives (the last one, as argparse takes it),
    read before parsing so that a plug-in from elsewhere can add its options first.

    >>> objective_in(["optimize", "--objective", "mmd", "--objective=mypkg.energy"])
    'mypkg.energy'
    >>> objective_in(["optimize", "--num-steps", "4"]) is None
    True
    """
    value = None
    for i, token in enumerate(argv):
        if token == "--":
            break
        if token == "--objective" and i + 1 < len(argv):
            value = argv[i + 1]
        elif token.startswith("--objective="):
            value = token.partition("=")[2]
    return value


def register(subparsers, argv=()) -> None:
    """Add ``optimize``. ``argv`` is the command line: an ``--objective`` there that is not
    built in (an entry point of ``schedopt.objectives`` or a module path) is loaded now,
    and its options are added beside the built-in plug-ins' ones."""
    chosen = objective_in(argv)
    plugins = dict(OBJECTIVES)
    failure = None
    if chosen is not None and chosen not in plugins:
        try:
            plugins[chosen] = load_plugin(chosen, OBJECTIVES, option="")
        except ValueError as e:
            failure = str(e)

    def objective_value(value: str) -> str:
        if value in plugins:
            return value
        if value == chosen and failure is not None:
            raise argparse.ArgumentTypeError(failure)
        try:
            load_plugin(value, OBJECTIVES, option="")
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        raise argparse.ArgumentTypeError(  # a plug-in given in a form the pre-parse missed
            f"write --objective {value} in full: a plug-in's options are added before the "
            "command line is parsed"
        )

    p = subparsers.add_parser(
        "optimize",
        help="learn a schedule (default: digits spectrum, 10 Euler steps, Gaussian KL)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    declared = [f"{name}: plug-in {ep.value}" for name, ep in entry_points().items()]
    p.add_argument(
        "--objective",
        default="gaussian-kl",
        type=objective_value,
        metavar="OBJECTIVE",
        help="; ".join(
            [f"{name}: {module.HELP}" for name, module in OBJECTIVES.items()]
            + declared
            + ["or a plug-in module, package.module or package.module:attribute"]
        ),
    )
    add_steps_option(
        p,
        default=10,
        help=f"number of sampler steps N (default 10, at most {MAX_STEPS}); {STEPS_HELP}",
    )
    p.add_argument("--solver", default="euler", help="sampler of the objective (default euler)")
    p.add_argument(
        "--final", default="zero", choices=FINALS, help="grid end: zero (last step to s=0) or min"
    )
    p.add_argument(
        "--family",
        default="monotone-cubic",
        choices=(*LEARNABLE, *FIXED),
        help="learnable family, or a fixed family to tune",
    )
    p.add_argument(
        "--num-knots", type=int_range(1, 4096), default=32, help="knots of the knot families"
    )
    p.add_argument(
        "--init-from", default="edm", choices=FIXED, help="fixed family the learnable one starts as"
    )
    p.add_argument(
        "--init-card",
        default=None,
        metavar="CARD",
        help="a schedule card the learnable family starts as (instead of --init-from), e.g. "
        "the training noise a run of `schedopt train --learn-noise` learned; its range "
        "becomes --sigma-min/--sigma-max",
    )
    p.add_argument("--sigma-min", type=noise_level, default=0.002)
    p.add_argument("--sigma-max", type=noise_level, default=80.0)
    p.add_argument(
        "--learn-range",
        action="store_true",
        help="learn where the grid starts and stops (its first level and last positive "
        "level) with its spacing, inside --range-bounds; the run starts on "
        "[--sigma-min, --sigma-max]",
    )
    p.add_argument(
        "--range-bounds",
        type=noise_range,
        default=None,
        metavar="LO,HI",
        help="with --learn-range: the levels the model is valid on, which the learned range "
        "stays strictly inside (default: --sigma-min,--sigma-max; e.g. 0.002,160 lets the "
        "first level rise above 80)",
    )
    p.add_argument(
        "--time-inputs",
        type=int_range(2, 64),
        default=None,
        metavar="K",
        help="also learn the noise level the denoiser is told, apart from the level the "
        "state moves through (DecoupledTimes: a log-offset, piecewise linear in log s on K "
        "knots; sample-based objectives only; exporters refuse such a card)",
    )
    p.add_argument("--iterations", type=int_range(1, MAX_ITERATIONS), default=1500)
    p.add_argument("--lr", type=float_range(0, open_lo=True), default=1e-2, help="Adam rate")
    p.add_argument("--seed", type=int_range(0, MAX_SEED), default=0)
    p.add_argument("--out", default="runs/optimize", help="run directory (default runs/optimize)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--resume",
        action="store_true",
        help="checkpoint to RUN_DIR/checkpoints (orbax) and resume from there if a run was cut off",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int_range(1, MAX_ITERATIONS),
        default=100,
        help="steps between checkpoints (with --resume)",
    )
    solver = p.add_argument_group(
        "solver options", "each applies to the solvers that have it (refused otherwise)"
    )
    solver.add_argument("--eta", type=float_range(0, 1), default=1.0, help="ancestral eta")
    solver.add_argument(
        "--kappa",
        type=float_range(0, open_lo=True),
        default=1.0,
        help="euler-maruyama noise variance scale",
    )
    solver.add_argument("--process", default="vp", choices=("vp", "ve"), help="euler-maruyama SDE")
    solver.add_argument(
        "--noise", default="gaussian", choices=NOISES, help="stochastic samplers' noise"
    )
    for name, module in OBJECTIVES.items():
        group = _Recorder(p.add_argument_group(f"--objective {name}"))
        module.add_arguments(group)
        PLUGIN_OPTIONS[name] = tuple(group.dests)
    if chosen in plugins and chosen not in OBJECTIVES:
        failure = add_plugin_arguments(p, chosen, plugins[chosen])
        if failure is not None:
            del plugins[chosen]
    p.set_defaults(func=run, plugins=plugins)


def add_plugin_arguments(parser, value: str, plugin) -> str | None:
    """Add the options of the plug-in that ``--objective value`` loaded; the reason it
    cannot be used (its options clash with others, or its ``OPTIONS`` name options that
    do not exist), or None."""
    where = repr(value)
    group = _Recorder(parser.add_argument_group(f"--objective {value} ({plugin.NAME})"))
    try:
        plugin.add_arguments(group)
    except argparse.ArgumentError as e:
        return f"{where}: its add_arguments failed: {e} (rename its option)"
    except Exception as e:  # the plug-in's own error: say where it came from
        return f"{where}: its add_arguments failed: {type(e).__name__}: {e}"
    known = {action.dest for action in parser._actions}
    unknown = [d for d in plugin.OPTIONS if d not in known]
    if unknown:
        return (
            f"{where}: its OPTIONS name {', '.join(map(repr, unknown))}, which no option "
            f"defines (its own options: {', '.join(group.dests) or 'none'})"
        )
    return None


def plugin_of(args):
    """The plug-in module of ``--objective`` (built in, or loaded from elsewhere)."""
    plugins = getattr(args, "plugins", None) or OBJECTIVES
    if args.objective not in plugins:
        raise ValueError(
            f"--objective {args.objective!r} was not loaded from the command line: give "
            f"--objective {args.objective} again"
        )
    return plugins[args.objective]


# ---- validation -----------------------------------------------------------------------


def applicable_options(args) -> set[str]:
    """Destinations of the options that shape this run: the common ones, the chosen
    plug-in's, and the solver options the chosen solver has (``--num-knots`` for the knot
    families, ``--init-from`` for the learnable ones)."""
    plugin = plugin_of(args)
    dests = {"objective", "num_steps", "final", "family", "sigma_min", "sigma_max", "lr", "seed"}
    dests.add("x64")
    if args.family in LEARNABLE:
        dests |= {"init_from", "init_card"}
        if args.family != "monotone-mlp":
            dests.add("num_knots")
    if args.learn_range:
        dests |= {"learn_range", "range_bounds"}
    if args.time_inputs is not None:
        dests.add("time_inputs")
    dests |= set(plugin.OPTIONS)
    if hasattr(plugin, "solver_fields"):
        dests.add("solver")
        if args.solver in plugin.solver_names():
            dests |= set(SOLVER_OPTIONS) & plugin.solver_fields(args.solver)
    return dests


def check_options(args) -> None:
    """Refuse the options given that the chosen objective, solver or family ignores."""
    plugin = plugin_of(args)
    if hasattr(plugin, "solver_fields") and args.solver not in plugin.solver_names():
        raise ValueError(
            f"--solver {args.solver!r} is not a solver of --objective {args.objective}; "
            f"choose one of {', '.join(plugin.solver_names())}"
        )
    ignored = set(args.given) - applicable_options(args) - NOT_SHAPING
    problems = []
    for dest in sorted(ignored):
        plugins = getattr(args, "plugins", None) or OBJECTIVES
        users = [n for n, m in plugins.items() if dest in m.OPTIONS]
        if users:
            why = f"applies to --objective {' or '.join(users)}, not {args.objective}"
        elif dest in ("solver", *SOLVER_OPTIONS) and not hasattr(plugin, "solver_fields"):
            why = f"does not apply: --objective {args.objective} has no sampler"
        elif dest in SOLVER_OPTIONS:
            takers = [n for n in plugin.solver_names() if dest in plugin.solver_fields(n)]
            why = (
                f"does not apply to --solver {args.solver} with --objective {args.objective} "
                f"(solvers that take it: {', '.join(takers) or 'none'})"
            )
        elif dest == "range_bounds":
            why = "applies with --learn-range only"
        elif dest == "num_knots":
            why = f"applies to the knot families, not --family {args.family}"
        else:
            why = f"applies to learnable families, not --family {args.family}"
        problems.append(f"{flag(dest)} {why}")
    if "checkpoint_every" in args.given and not args.resume:
        problems.append("--checkpoint-every applies with --resume only")
    if args.init_card is not None and "init_from" in args.given:
        problems.append("--init-from and --init-card are two starts: give one")
    if problems:
        raise ValueError("; ".join(problems) + " (leave these options out)")
    if args.init_card is not None:
        adopt_card_range(args)
    if args.sigma_max < MIN_RANGE * args.sigma_min:
        raise ValueError(
            f"--sigma-max ({args.sigma_max:g}) must be at least {MIN_RANGE:g} x --sigma-min "
            f"({args.sigma_min:g}): a narrower noise range is not resolved"
        )
    if args.learn_range:
        check_range_options(args)
    if hasattr(plugin, "check_options"):
        plugin.check_options(args)


def init_card_schedule(args):
    """The schedule of ``--init-card``, read once (errors name the option and the file)."""
    from ..io.card import card_schedule, load_card

    if getattr(args, "_init_card", None) is None:
        try:
            args._init_card = card_schedule(load_card(args.init_card))
        except (OSError, ValueError) as e:
            raise ValueError(f"--init-card {args.init_card}: {e}") from None
    return args._init_card


def adopt_card_range(args) -> None:
    """``--sigma-min``/``--sigma-max`` become the range of ``--init-card``'s schedule;
    refused when they were given with other values."""
    start = init_card_schedule(args)
    ends = {"sigma_min": float(start.sigma_min), "sigma_max": float(start.sigma_max)}
    for dest, value in ends.items():
        if dest in args.given and not math.isclose(getattr(args, dest), value, rel_tol=1e-6):
            raise ValueError(
                f"{flag(dest)} {getattr(args, dest):g} differs from the range of --init-card "
                f"{args.init_card} ({value:g}); leave {flag(dest)} out"
            )
        setattr(args, dest, value)


def range_bounds(args) -> tuple[float, float]:
    """``--range-bounds``, or ``(--sigma-min, --sigma-max)`` without it."""
    return tuple(args.range_bounds) if args.range_bounds else (args.sigma_min, args.sigma_max)


def check_range_options(args) -> None:
    """Refuse ``--learn-range`` where the objective cannot price the range."""
    if args.objective in NO_RANGE:
        raise ValueError(
            f"--learn-range does not apply to --objective {args.objective}: its cost is zero "
            "on any range with equal steps, so it cannot choose one; learn the range with "
            "another objective (e.g. gaussian-kl --init ve) and give it as --sigma-min and "
            "--sigma-max"
        )
    if "init" in plugin_of(args).OPTIONS and args.init == "exact":
        raise ValueError(
            "--learn-range needs --init ve or vp: with --init exact the first state is drawn "
            "from the exact marginal at whatever level the grid starts, so the top of the "
            "range would cost nothing"
        )
    lo, hi = range_bounds(args)
    if not lo <= args.sigma_min < args.sigma_max <= hi:
        raise ValueError(
            f"--range-bounds {lo:g},{hi:g} must contain the starting range [--sigma-min "
            f"{args.sigma_min:g}, --sigma-max {args.sigma_max:g}]"
        )


def shaping_options(args) -> dict:
    """The options that shape the result, as JSON values (compared on ``--resume``)."""
    values = {d: getattr(args, d) for d in sorted(applicable_options(args))}
    return json.loads(json.dumps(values))


def solver_record(args) -> str | dict | None:
    """The solver for the card: its name, with the solver options it took, or None."""
    plugin = plugin_of(args)
    if not hasattr(plugin, "solver_fields"):
        return None
    options = {d: getattr(args, d) for d in SOLVER_OPTIONS if d in applicable_options(args)}
    return {"name": args.solver, **options} if options else args.solver


def adopt_checkpoint_settings(args, checkpoint_dir: Path):
    """With ``--resume`` and a checkpoint, take the checkpoint's value of every option left
    out, check the options (refusing those that do not apply), then refuse those given
    with another value than the checkpoint's, naming each. Returns the
    :class:`~schedopt.io.checkpoint.CheckpointInfo` (None without a checkpoint)."""
    from ..io.checkpoint import checkpoint_info

    info = checkpoint_info(checkpoint_dir)
    if info is None:
        check_options(args)
        return None
    where = f"--resume: {str(checkpoint_dir)!r} (step {info.step})"
    stored = (info.settings or {}).get("options")
    if stored is None:
        raise ValueError(
            f"{where} records no command-line settings (written by an older schedopt or "
            "through the API), so this run cannot be checked against it; use another --out"
        )
    # Checkpoints before the one vocabulary recorded the steps as ``nfe``.
    stored = {("num_steps" if d == "nfe" else d): v for d, v in stored.items()}
    for dest, value in stored.items():
        if dest not in args.given and dest != "x64" and hasattr(args, dest):
            setattr(args, dest, value)
    for dest, value in (
        ("iterations", info.info.get("num_iterations")),
        ("checkpoint_every", info.every),
    ):
        if dest not in args.given and value is not None:
            setattr(args, dest, value)
    check_options(args)
    current = shaping_options(args)
    differ = [
        f"{flag(d)} {stored.get(d)!r} there, {current.get(d)!r} here"
        for d in sorted(set(stored) | set(current))
        if stored.get(d) != current.get(d)
    ]
    if differ:
        raise ValueError(
            f"{where} holds a run made with other settings: {'; '.join(differ)}. Leave these "
            "options out to continue that run with its own, or use another --out"
        )
    if args.iterations < info.step:
        raise ValueError(f"{where}: --iterations {args.iterations} is below its step {info.step}")
    return info


def initial_schedule(args) -> object:
    """The schedule the optimisation starts from, per ``--family`` / ``--init-from``."""
    ends = dict(sigma_min=args.sigma_min, sigma_max=args.sigma_max)
    if args.family not in LEARNABLE:
        start = make_schedule(args.family, **ends)
    else:
        cls = LEARNABLE[args.family]
        if args.init_card is not None:
            start = init_card_schedule(args)
        else:
            start = make_schedule(args.init_from, **ends)
        if cls is MonotoneMLP:
            start = cls.from_schedule(start, key=jax.random.key(args.seed))
        else:
            start = cls.from_schedule(start, num_knots=args.num_knots)
    if args.learn_range:
        start = RangedSchedule.from_schedule(start, bounds=range_bounds(args))
    if args.time_inputs is not None:
        span = range_bounds(args) if args.learn_range else (args.sigma_min, args.sigma_max)
        start = DecoupledTimes.from_schedule(start, args.time_inputs, span)
    return start


# ---- the run --------------------------------------------------------------------------


@fast_jit
def evaluate_all(objective, schedules: dict, key) -> dict:
    """``objective(schedule, key)`` of every schedule, as one program (compiled quickly:
    it runs once)."""
    return {name: objective(schedule, key) for name, schedule in schedules.items()}


#: The key of the start schedule's value in :func:`prepare_report`'s result.
START = "__start__"


def prepare_report(objective, references: dict, start, key, args, process: str = "ve") -> dict:
    """What the report needs that the fit does not change, run in a thread beside it (XLA
    compiles with the interpreter lock released, so this overlaps the fit's compilation):
    the objective values of the references and of ``start`` (under :data:`START`), the
    import of matplotlib, and the compilation of the plot's and the card's programs (on
    ``start``, whose structure the learned schedule shares)."""
    values = evaluate_all(objective, {**references, START: start}, key)
    import matplotlib.figure  # noqa: F401  (plot_schedules imports it: about a second)

    from ..io.card import prepare_card
    from ..plot import schedule_curves

    schedule_curves({"learned": start, **references}, args.num_steps, args.final)
    prepare_card(start, num_steps=args.num_steps, final=args.final, process=process)
    return values


def run(args) -> int:
    from ..io.card import make_card, save_card
    from ..optimize import optimize
    from ..optimize.loop import OptimizationError
    from ..plot import plot_schedules

    out = check_run_dir(args.out, "--out", OUTPUTS)
    checkpoint_dir = out / "checkpoints"
    if args.resume:
        resumed = adopt_checkpoint_settings(args, checkpoint_dir)
    else:
        resumed = None
        check_options(args)
    plugin = plugin_of(args)
    setup = as_setup(plugin.build(args), f"--objective {args.objective!r}")
    objective = setup.objective
    if args.time_inputs is not None and not objective.runs_sampler:
        raise ValueError(
            f"--time-inputs does not apply to --objective {args.objective}: it sees only the "
            "grid, never the levels the denoiser is told; use a sample-based objective"
        )
    start = initial_schedule(args)
    settings = {"options": shaping_options(args), "fingerprint": setup.fingerprint}
    if resumed is not None and resumed.settings.get("fingerprint") != settings["fingerprint"]:
        raise ValueError(
            f"--resume: the data of this run differ from those of {str(checkpoint_dir)!r} "
            f"(fingerprint {resumed.settings.get('fingerprint')!r} there, "
            f"{settings['fingerprint']!r} here): did a file it reads change?"
        )
    if resumed is not None:
        print(
            f"schedopt optimize: continuing the run checkpointed in {str(checkpoint_dir)!r}",
            file=sys.stderr,
        )
    key = jax.random.fold_in(jax.random.key(args.seed), args.iterations)
    solved = solver_record(args) is not None
    sampler = args.solver if solved else "no sampler"

    started = time.perf_counter()
    with RunDirectory(out, option="--out", outputs=OUTPUTS, resumable=("checkpoints",)) as run_dir:
        log_path = run_dir.staged("log.jsonl")
        with ThreadPoolExecutor(max_workers=1) as pool:  # the report's own work, beside the fit
            report = pool.submit(
                prepare_report, objective, setup.references, start, key, args, setup.process
            )
            try:
                result = optimize(
                    start,
                    objective,
                    num_iterations=args.iterations,
                    learning_rate=args.lr,
                    seed=args.seed,
                    log_path=log_path,
                    progress=not args.no_progress,
                    checkpoint_dir=checkpoint_dir if args.resume else None,
                    checkpoint_every=args.checkpoint_every,
                    settings=settings if args.resume else None,
                    compiler_options=fast_compile_options() if setup.fast_compile else None,
                    **early_stopping(args, objective),
                )
            except OptimizationError as e:
                check_start_value(report.result()[START], objective, args)
                raise OptimizationError(
                    f"{e} (here --lr {args.lr:g}; --x64 computes in float64)"
                ) from None
            values = report.result()
        start_value = check_start_value(values.pop(START), objective, args)
        if result.final_loss > start_value + 0.01 * abs(start_value) + 1e-12:
            raise OptimizationError(
                f"the learned schedule is worse than the one it started from ({objective.name} "
                f"{result.final_loss:.6g} against {start_value:.6g}): the optimisation "
                f"diverged; lower --lr (now {args.lr:g})"
                + (
                    " and start in another --out (its checkpoints hold this run)"
                    if args.resume
                    else ""
                )
            )
        if result.best_step is not None:
            print(
                f"early stopping: kept step {result.best_step} of {result.num_iterations} "
                "(lowest loss on the held-out pairs)",
                file=sys.stderr,
            )
        label = args.family + (" + learned range" if args.learn_range else "")
        label += f" + time inputs on {args.time_inputs} knots" if args.time_inputs else ""
        rows = [["learned", f"schedopt ({label})", result.final_loss]]
        comparison = {"learned": result.final_loss}
        for name in setup.references:  # in their order (a compiled dict comes back sorted)
            value = float(values[name])
            comparison[name] = value
            rows.append([name, REFERENCE_LABELS.get(name, name), value])
        for row in rows:
            row.append(row[2] / result.final_loss if result.final_loss > 0 else float("nan"))
        card = make_card(
            result.schedule,
            num_steps=args.num_steps,
            final=args.final,
            process=setup.process,
            solver=solver_record(args),
            objective=objective.describe(),
            objective_value=result.final_loss,
            fingerprint=setup.fingerprint,
            settings=dict(
                shaping_options(args),
                command="optimize",
                iterations=args.iterations,
                iterations_run=result.num_iterations,
                best_step=result.best_step,
                resume=args.resume,
                comparison={k: v for k, v in comparison.items() if _finite(v)},
                **(learned_range(result.schedule) if args.learn_range else {}),
                seconds=time.perf_counter() - started,
            ),
        )
        save_card(run_dir.staged("schedule.json"), card)
        plot_schedules(
            run_dir.staged("schedule.png"),
            {"learned": result.schedule, **setup.references},
            args.num_steps,
            final=args.final,
            highlight="learned",
            title=f"{objective.name}, {args.num_steps} steps, {sampler}",
        )
        run_dir.commit(["log.jsonl", "schedule.png", "schedule.json"])
    print(f"\n{objective.name} at {args.num_steps} steps ({sampler}), lower is better:")
    print(format_table(["schedule", "description", objective.name, "x learned"], rows))
    print(f"\nwrote {out / 'schedule.json'}, {out / 'schedule.png'}, {out / 'log.jsonl'}")
    print(f"({result.num_iterations} iterations in {result.seconds:.1f} s)")
    return 0


def check_start_value(value, objective, args) -> float:
    """The objective at the start schedule, refused (naming the inputs) if not finite."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(
            f"{objective.name} is {value} at the schedule the run starts from "
            f"(--family {args.family}, --num-steps {args.num_steps}, noise levels "
            f"{args.sigma_min:g} to {args.sigma_max:g}) in {working_dtype().name}: the inputs "
            "are beyond its precision (e.g. eigenvalues far below the squared noise levels); "
            "pass --x64, or change --num-steps, --sigma-min or --sigma-max"
        )
    return value


def early_stopping(args, objective) -> dict:
    """``validation``/``patience`` for :func:`~schedopt.optimize.optimize` with
    ``--patience`` (the objective's held-out loss), else nothing."""
    if getattr(args, "patience", None) is None:
        return {}
    return {"validation": objective.validation_loss, "patience": args.patience}


def learned_range(schedule: RangedSchedule | DecoupledTimes) -> dict:
    """The card's record of a learned range: the bounds and the levels it settled on."""
    if isinstance(schedule, DecoupledTimes):
        schedule = schedule.schedule
    return {
        "learned_range": {
            "sigma_min": float(schedule.sigma_min),
            "sigma_max": float(schedule.sigma_max),
            "bounds": list(schedule.bounds),
        }
    }


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")
