"""``schedopt bench``: speed benchmarks printed as one JSON object.

Every figure is the median of ``--repeats`` timed runs after a first (compiling) run,
whose extra time is reported separately as ``compile_s`` (first run minus the median);
the persistent compilation cache is off in this process, so that is compilation.
Ratios are measured in the same process. Sections:

- ``kl_scaling``: Gaussian-KL value and value+gradient (w.r.t. a 32-knot monotone cubic
  schedule) vs spectrum size ``d`` and vs number of steps;
- ``time_to_schedule``: wall time to a 5-step Heun schedule for every objective: gaussian-kl
  (optax loop), the sample-based trajectory matching, MMD, sliced W2 and Fréchet on the
  8-mode ring oracle, constant-rate (the speed table and the direct construction, and
  the optax objective) and score-work (the cost table and Algorithm 1, and the optax
  path energy), the DP search and the AYS-style optimiser;
- ``sampler_overhead``: diffrax Euler sampler vs a hand-written ``fori_loop``
  (``scripts/bench_sampler.py``), with their ratio;
- ``few_step_gradients``: value+gradient w.r.t. the grid of every few-step solver at 5 NFE
  on the digits U-Net (random weights, 128 samples), schedopt's sampler vs a hand-unrolled
  loop of the same steps (:mod:`schedopt.cli._few_step`), with their ratio;
- ``digits_time_to_schedule``: teacher pairs and a full fit of each sample-based objective
  (range learned) on the digits U-Net at 5 NFE with DPM-Solver++(2M);
- ``torch_bridge``: value+gradient w.r.t. the grid of a 5-NFE DPM-Solver++(2M) sample on a
  diffusers ``UNet2DModel`` through :mod:`schedopt.integrations.torch` vs the same
  computation in torch alone, with their ratio (:mod:`schedopt.integrations.torch_bench`;
  skipped without torch and diffusers);
- ``sharding``: value+gradient of a sample-based objective with its batch split over every
  device vs on one device (skipped with one device; on CPU,
  ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` gives two);
- ``default_job``: wall time of ``schedopt optimize`` with no options (the README's main
  job) end to end in a fresh process: the first run with an empty compilation cache, the
  second reading it, and a run without the cache; beside the time of its imports alone;
- ``kl_speed``: Gaussian-KL value+gradient at ``--kl-dim`` eigenvalues, Euler at 50 steps
  beside the straightforward arctan/cos/log form, the previous form and a one-pass memory
  reference, and every other solver beside its previous form (ratios, same run);
- ``kl_accuracy``: the float32 KL's error against float64, current and previous form, over
  spectra from 1e-6 to 1e3, grids from 3 to 200 steps and near-zero KLs
  (:mod:`schedopt.cli._kl_bench`).

Example: ``schedopt bench --quick`` (seconds) or ``schedopt bench --sizes 100,10000,1000000``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import platform
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from ._common import MAX_DIM, int_range

SECTIONS = (
    "kl_scaling",
    "time_to_schedule",
    "sampler_overhead",
    "few_step_gradients",
    "digits_time_to_schedule",
    "torch_bridge",
    "sharding",
    "default_job",
    "kl_speed",
    "kl_accuracy",
    "noise_learning_step",
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="speed benchmarks (JSON)",
        description="Time Gaussian-KL evaluation/gradient vs spectrum size and steps, time to "
        "a schedule per objective, and sampler overhead; prints JSON. "
        "Example: schedopt bench --quick",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, 3 repeats (for tests)")
    p.add_argument("--sizes", default=None, help="spectrum sizes, comma-separated")
    p.add_argument("--steps", default=None, help="step counts for the NFE scaling, comma-separated")
    p.add_argument(
        "--repeats",
        type=int_range(1, 1000),
        default=None,
        help="timed runs per figure (median; default 7, --quick 3)",
    )
    p.add_argument(
        "--iterations", type=int_range(1, 1_000_000), default=None, help="optimiser iterations"
    )
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}")
    p.add_argument(
        "--kl-dim",
        type=int_range(1, MAX_DIM),
        default=None,
        help="eigenvalues of kl_speed (default 10^6)",
    )
    p.add_argument("--output", default=None, help="also write the JSON to this file")
    p.set_defaults(func=run)


def _ints(name: str, text: str, hi: int) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--{name} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1 or max(values) > hi:
        raise ValueError(f"--{name} must be integers from 1 to {hi}, got {text!r}")
    return values


def timed(fn, repeats: int) -> dict:
    """``{"compile_s", "median_s", "runs"}`` of ``fn()`` (its result is blocked on).

    >>> sorted(timed(lambda: 1, 2))
    ['compile_s', 'median_s', 'runs']
    """
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"compile_s": max(first - median, 0.0), "median_s": median, "runs": repeats}


def kl_scaling(sizes, steps, repeats: int) -> dict:
    from ..gaussian import Spectrum
    from ..objectives import GaussianKL
    from ..schedules import EDM, MonotoneCubic

    schedule = MonotoneCubic.from_schedule(EDM(), 32)
    rng = np.random.default_rng(0)

    def case(d, n):
        spectrum = Spectrum(np.sort(rng.lognormal(-1.0, 1.5, d))[::-1].copy())
        objective = GaussianKL(spectrum, num_steps=n, solver="heun")
        value = jax.jit(lambda s: objective(s))
        grad = jax.jit(jax.value_and_grad(lambda s: objective(s)))
        v = timed(lambda: value(schedule), repeats)
        g = timed(lambda: grad(schedule), repeats)
        return {
            "dim": d,
            "num_steps": n,
            "value": v,
            "value_and_grad": g,
            "grad_over_value": g["median_s"] / v["median_s"],
        }

    by_size = [case(d, steps[len(steps) // 2]) for d in sizes]
    by_steps = [case(sizes[len(sizes) // 2], n) for n in steps]
    return {"solver": "heun", "by_size": by_size, "by_steps": by_steps}


def time_to_schedule(iterations: int, repeats: int, quick: bool) -> dict:
    from ..constant_rate import SampleFrechet, tabulate_speed
    from ..data import ring
    from ..gaussian import Spectrum
    from ..models import GaussianMixtureDenoiser
    from ..objectives import (
        MMD,
        ConstantRate,
        Frechet,
        GaussianKL,
        ScoreWork,
        SlicedWasserstein,
        TrajectoryMatching,
    )
    from ..optimize import optimize
    from ..sampling import ODESampler
    from ..schedules import EDM, MonotoneCubic
    from ..score_optimal import CorrectorCost, CostTable
    from ..search import dp_search, gaussian_step_costs, optimize_ays, teacher_levels

    spectrum = Spectrum.digits()
    start = MonotoneCubic.from_schedule(EDM(), 16)
    n = 5
    mixture = ring()
    denoiser = GaussianMixtureDenoiser.from_mixture(mixture)
    data = mixture.sample(jax.random.key(1), 512 if quick else 4096)
    batch = 64 if quick else 256
    sampler = ODESampler(n, "heun")
    trajectory = TrajectoryMatching(
        denoiser,
        sampler,
        num_pairs=batch,
        validation_fraction=0.0,
        reference_steps=32 if quick else 128,
    )
    discrepancies = {
        name: cls(denoiser, sampler, data, batch_size=batch, data_batch_size=batch)
        for name, cls in (("mmd", MMD), ("sliced-w2", SlicedWasserstein), ("frechet", Frechet))
    }

    def fit(objective):
        return lambda its: optimize(start, objective, num_iterations=its, progress=False)

    levels = teacher_levels(0.002, 80.0, 32 if quick else 128)
    sample_iterations = max(iterations // 5, 3)
    speed_points, cost_intervals = (17, 16) if quick else (129, 128)
    measure = SampleFrechet.from_data(data, num_samples=256 if quick else 1000)
    table = CostTable.estimate(
        CorrectorCost(), denoiser, data[:batch], jax.random.key(2), num_intervals=cost_intervals
    )
    out = {
        "num_steps": n,
        "solver": "heun",
        "sample_batch": batch,
        "gaussian-kl": schedule_timing(
            fit(GaussianKL(spectrum, num_steps=n, solver="heun")), iterations, repeats
        ),
        "trajectory-matching(ring)": schedule_timing(fit(trajectory), sample_iterations, repeats),
        **{
            f"{name}(ring)": schedule_timing(fit(objective), sample_iterations, repeats)
            for name, objective in discrepancies.items()
        },
        "constant-rate-direct(ring)": timed(
            lambda: tabulate_speed(measure, num_points=speed_points).schedule(1.0).logits,
            repeats,
        ),
        "constant-rate-objective(ring)": schedule_timing(
            fit(ConstantRate(measure, num_steps=n)), iterations, repeats
        ),
        "score-work-table(ring)": timed(
            lambda: CostTable.estimate(
                CorrectorCost(),
                denoiser,
                data[:batch],
                jax.random.key(2),
                num_intervals=cost_intervals,
            ).noise_levels(n + 1),
            repeats,
        ),
        "score-work-objective(ring)": schedule_timing(fit(ScoreWork(table)), iterations, repeats),
        "dp-search(gaussian one-step KL)": timed(
            lambda: dp_search(levels, gaussian_step_costs(spectrum, levels, "heun"), n).cost,
            repeats,
        ),
        "ays-optimiser": schedule_timing(
            lambda its: optimize_ays(spectrum, n, num_iterations=its).cost, iterations, repeats
        ),
        "dp_teacher_levels": int(levels.shape[0]),
        "speed_table_points": speed_points,
        "cost_table_intervals": cost_intervals,
        "note": "each figure: the first run (compiling) minus the median is compile_s; "
        "repeated optimise calls reuse the compiled loop, so median_s is the run alone; "
        "per_iteration_s = median_s / iterations (it includes the final evaluation)",
    }
    return out


def sharding(quick: bool, repeats: int) -> dict:
    """Value+gradient of trajectory matching on the 64-D mixture oracle, batch split over
    every device vs one device (same process, same batch)."""
    from ..data import unequal_mixture
    from ..models import GaussianMixtureDenoiser
    from ..objectives import TrajectoryMatching
    from ..parallel import batch_mesh
    from ..sampling import ODESampler
    from ..schedules import EDM, MonotoneCubic

    devices = jax.devices()
    if len(devices) < 2:
        return {
            "skipped": "one device; on CPU set "
            "XLA_FLAGS=--xla_force_host_platform_device_count=2 to compare"
        }
    denoiser = GaussianMixtureDenoiser.from_mixture(unequal_mixture())
    batch = 64 * len(devices) if quick else 1024 * len(devices)
    schedule = MonotoneCubic.from_schedule(EDM(), 16)
    key = jax.random.key(0)

    def case(mesh):
        objective = TrajectoryMatching(
            denoiser,
            ODESampler(8, "heun"),
            num_pairs=batch,
            validation_fraction=0.0,
            reference_steps=32 if quick else 128,
            mesh=mesh,
        )
        fn = jax.jit(jax.value_and_grad(lambda s: objective(s, key)))
        return timed(lambda: fn(schedule), repeats)

    single, sharded = case(batch_mesh(devices[:1])), case(batch_mesh(devices))
    return {
        "objective": "trajectory matching, 64-D mixture oracle, Heun 8 steps, 128-step teacher",
        "batch": batch,
        "devices": len(devices),
        "single_device": single,
        "sharded": sharded,
        "speedup": single["median_s"] / sharded["median_s"],
    }


def schedule_timing(fit, iterations: int, repeats: int) -> dict:
    """:func:`timed` of ``fit(iterations)``, with the median's share per iteration.

    >>> sorted(schedule_timing(lambda its: 0.0, 5, 2))
    ['compile_s', 'iterations', 'median_s', 'per_iteration_s', 'runs']
    """
    timing = timed(lambda: fit(iterations), repeats)
    return {"iterations": iterations, **timing, "per_iteration_s": timing["median_s"] / iterations}


#: What ``default_job`` runs: the README's main job, in a fresh interpreter.
DEFAULT_JOB = ("-m", "schedopt.cli", "optimize", "--no-progress")
#: What the job imports (its floor: the time before any of its own work).
JOB_IMPORTS = (
    "import schedopt.cli.optimize, schedopt.optimize, schedopt.plot, schedopt.io.card, "
    "schedopt.cli._objectives.gaussian_kl"
)


def default_job(repeats: int, extra=(), python=None) -> dict:
    """Wall times of :data:`DEFAULT_JOB` (plus ``extra`` arguments) in fresh processes:
    with an empty compilation cache (``first``), reading it (``cached``), without a cache
    (``no_cache``), and of its imports alone; medians of ``repeats``."""
    import os
    import subprocess
    import sys
    import tempfile

    from ._cache import ENV

    python = python or sys.executable

    def wall(argv, cache) -> float:
        env = dict(os.environ, **{ENV: str(cache)})
        start = time.perf_counter()
        done = subprocess.run([python, *argv], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
        return seconds

    runs = {"first": [], "cached": [], "no_cache": [], "imports": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            job = [*DEFAULT_JOB, "--out", str(Path(tmp) / "run"), *extra]
            cache = Path(tmp) / "cache"
            runs["first"].append(wall(job, cache))
            runs["cached"].append(wall(job, cache))
            runs["no_cache"].append(wall([*job, "--no-compile-cache"], cache))
            runs["imports"].append(wall(["-c", JOB_IMPORTS], "off"))
    median = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "command": "schedopt optimize --no-progress " + " ".join(extra),
        **{f"{k}_s": v for k, v in median.items()},
        "runs": runs,
        "cached_over_first": median["cached"] / median["first"],
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "note": "wall time of a fresh process end to end (imports, set-up, 1500-step fit, "
        "baseline table, plot, card); first: empty compilation cache; cached: the second "
        "run, reading it; no_cache: --no-compile-cache; imports: the job's imports alone",
    }


def sampler_overhead(quick: bool, repeats: int) -> dict:
    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_sampler.py"
    if not path.exists():
        return {"skipped": f"{path} not found"}
    spec = importlib.util.spec_from_file_location("_bench_sampler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--repeats", str(max(repeats, 3))]
    if quick:
        argv += ["--batch", "64", "--dim", "4", "--steps", "8"]
    with contextlib.redirect_stdout(io.StringIO()):
        return module.main(argv)


def torch_bridge(quick: bool, repeats: int) -> dict:
    """:func:`schedopt.integrations.torch_bench.bridge_overhead` (skipped without torch)."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("diffusers") is None:
        return {"skipped": "torch and diffusers are not installed"}
    from ..integrations.torch_bench import bridge_overhead

    return bridge_overhead(quick=quick, repeats=repeats)


def run(args) -> int:
    from ._cache import configure_compile_cache
    from ._common import MAX_STEPS
    from ._rundir import check_output_file

    # compile_s must time compilation, not a read of the persistent cache
    configure_compile_cache(disabled=True)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    for s in sections:
        if s not in SECTIONS:
            raise ValueError(f"--sections must be a subset of {','.join(SECTIONS)}; got {s!r}")
    if not sections:
        raise ValueError(f"--sections must name at least one of {','.join(SECTIONS)}")
    if args.output is not None:
        check_output_file("--output", args.output)
    quick = args.quick
    sizes = args.sizes or ("100,1000" if quick else "100,1000,10000,100000,1000000")
    sizes = _ints("sizes", sizes, MAX_DIM)
    steps = _ints("steps", args.steps or ("5,10" if quick else "5,10,20,50"), MAX_STEPS)
    repeats = args.repeats if args.repeats is not None else (3 if quick else 7)
    iterations = args.iterations if args.iterations is not None else (10 if quick else 200)
    kl_dim = args.kl_dim if args.kl_dim is not None else (10_000 if quick else 1_000_000)
    record = {
        "device": str(jax.devices()[0]),
        "num_devices": jax.device_count(),
        "platform": platform.machine(),
        "jax": jax.__version__,
        "repeats": repeats,
        "note": "medians after one compiling run; compile_s = first run - median",
    }
    if "kl_scaling" in sections:
        record["kl_scaling"] = kl_scaling(sizes, steps, repeats)
    if "time_to_schedule" in sections:
        record["time_to_schedule"] = time_to_schedule(iterations, repeats, quick)
    if "sampler_overhead" in sections:
        record["sampler_overhead"] = sampler_overhead(quick, repeats)
    if "few_step_gradients" in sections:
        from ._few_step import few_step_gradients

        record["few_step_gradients"] = few_step_gradients(timed, quick, repeats)
    if "digits_time_to_schedule" in sections:
        from ._few_step import digits_time_to_schedule

        record["digits_time_to_schedule"] = digits_time_to_schedule(timed, quick, repeats)
    if "torch_bridge" in sections:
        record["torch_bridge"] = torch_bridge(quick, repeats)
    if "sharding" in sections:
        record["sharding"] = sharding(quick, repeats)
    if "default_job" in sections:
        extra = ("--iterations", "20", "--num-steps", "4") if quick else ()
        record["default_job"] = default_job(1 if quick else min(repeats, 3), extra)
    if "kl_speed" in sections or "kl_accuracy" in sections:
        from . import _kl_bench
    if "kl_speed" in sections:
        solvers = [] if quick else None  # quick: Euler's four forms only
        record["kl_speed"] = _kl_bench.kl_speed(timed, kl_dim, 50, repeats, solvers)
    if "kl_accuracy" in sections:
        if quick:
            record["kl_accuracy"] = _kl_bench.kl_accuracy((3, 20), ["euler"])
        else:
            record["kl_accuracy"] = _kl_bench.kl_accuracy()
    if "noise_learning_step" in sections:
        from ._train_bench import noise_learning_step

        record["noise_learning_step"] = noise_learning_step(quick, repeats)
    text = json.dumps(record, indent=2)
    if args.output:
        from ..io import atomic_write_bytes

        atomic_write_bytes(args.output, (text + "\n").encode())
    print(text)
    return 0
