"""``schedopt bench`` sections ``kl_speed`` and ``kl_accuracy``: the Gaussian KL against the
forms it replaced (:mod:`schedopt.cli._kl_reference`), measured in the same process.

- ``kl_speed``: value+gradient with respect to a 32-knot monotone cubic at ``d``
  eigenvalues; Euler at ``N`` steps beside the straightforward arctan/cos/log form, the
  previous log-form chain and one read-and-write pass over a float32 ``(N, d)`` array (the
  memory floor of any form that touches every element-step once), as ratios; every other
  solver beside its previous form.
- ``kl_accuracy``: the float32 KL's relative error against a float64 evaluation on the
  same float32 inputs (eigenvalues and grid rounded to float32 first, so that only the
  evaluation's error is measured), for the current and the previous form, over spectra
  from 1e-6 to 1e3, grids from 3 to 200 steps and near-zero KLs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..gaussian import SOLVERS, Spectrum, gaussian_kl
from ..gaussian.solvers import StepGrid, step_grid
from ..schedules import EDM, LogSNRLinear, MonotoneCubic
from ._kl_reference import arctan_euler_kl, previous_kl

#: Solvers timed besides Euler, with their step count.
OTHER_STEPS = 20


def _spectrum(d: int) -> Spectrum:
    rng = np.random.default_rng(0)
    return Spectrum(np.sort(rng.lognormal(-1.0, 1.5, d))[::-1].copy())


def kl_speed(timed, dim: int, num_steps: int, repeats: int, solvers=None) -> dict:
    """Value+gradient timings (``timed`` is :func:`schedopt.cli.bench.timed`)."""
    spectrum = _spectrum(dim)
    schedule = MonotoneCubic.from_schedule(EDM(), 32)

    def value_and_grad(kl, n, solver):
        def loss(s):
            grid = step_grid(s, n, derivative=solver == "euler-maruyama")
            return kl(spectrum, grid, solver)

        fn = jax.jit(jax.value_and_grad(loss))
        return timed(lambda: fn(schedule), repeats)

    def arctan(spectrum, grid, solver):
        return arctan_euler_kl(spectrum, grid)

    euler = {
        "schedopt": value_and_grad(gaussian_kl, num_steps, "euler"),
        "arctan_form": value_and_grad(arctan, num_steps, "euler"),
        "previous_form": value_and_grad(previous_kl, num_steps, "euler"),
    }
    array = jnp.ones((num_steps, dim), jnp.float32)
    one_pass = jax.jit(lambda x: x * 1.0001)  # reads and writes every element once
    euler["memory_pass"] = timed(lambda: one_pass(array), repeats)
    median = {k: v["median_s"] for k, v in euler.items()}
    euler["ratios"] = {
        "schedopt_over_arctan_form": median["schedopt"] / median["arctan_form"],
        "schedopt_over_previous_form": median["schedopt"] / median["previous_form"],
        "schedopt_over_memory_pass": median["schedopt"] / median["memory_pass"],
        "arctan_form_over_memory_pass": median["arctan_form"] / median["memory_pass"],
    }
    others = {}
    for solver in solvers if solvers is not None else [s for s in SOLVERS if s != "euler"]:
        mine = value_and_grad(gaussian_kl, OTHER_STEPS, solver)
        before = value_and_grad(previous_kl, OTHER_STEPS, solver)
        others[solver] = {
            "schedopt": mine,
            "previous_form": before,
            "schedopt_over_previous_form": mine["median_s"] / before["median_s"],
        }
    return {
        "dim": dim,
        "gradient_wrt": "32-knot monotone cubic (from EDM)",
        "euler": {"num_steps": num_steps, **euler},
        "other_solvers": {"num_steps": OTHER_STEPS, **others},
        "note": "value+gradient medians; ratios in the same run; memory_pass: x * 1.0001 "
        f"over a float32 ({num_steps}, {dim}) array",
    }


# ---- accuracy ------------------------------------------------------------------------

#: Spectra of the accuracy cases (each padded to 64 directions with weight 0).
SPECTRA = {
    **{f"c={c:g}": [c] for c in (1e-6, 1e-4, 1e-2, 1.0, 1e1, 1e3)},
    "log-uniform 1e-6..1e3 (64)": list(np.geomspace(1e-6, 1e3, 64)),
}
#: Schedules of the accuracy grids; the narrow ones give KLs near 0 (steps tiny next to
#: the eigenvalues), where ``1 - w`` and ``expm1(-l) + l`` cancel.
SCHEDULES = {
    "edm": EDM(),
    "logsnr-linear": LogSNRLinear(),
    "narrow edm [1e-3, 1e-2]": EDM(sigma_min=1e-3, sigma_max=1e-2),
}
_WIDTH = 64


def _cases_arrays():
    c = np.ones((len(SPECTRA), _WIDTH))
    w = np.zeros((len(SPECTRA), _WIDTH))
    for i, values in enumerate(SPECTRA.values()):
        c[i, : len(values)], w[i, : len(values)] = values, 1.0
    # rounded to float32 first: both evaluations see the same numbers
    return c.astype(np.float32), w.astype(np.float32)


def _grid_arrays(schedule, num_steps, final):
    with jax.enable_x64(True):
        grid = step_grid(schedule, num_steps, final)
        return grid.final_zero, *(np.asarray(x, np.float32) for x in grid[:3])


#: KLs below this are "near zero": float32 holds a variance ratio ``w`` to ~1e-7, so a
#: form that does not carry ``1 - w`` cannot resolve a KL (about ``(1 - w)^2 / 4``) there.
NEAR_ZERO = 1e-10


def kl_accuracy(steps=(3, 10, 50, 200), solvers=None, compiler_options=None) -> dict:
    """Relative errors of the float32 KL (current and previous form) per solver
    (``compiler_options``: XLA's, for the evaluations; ``None``: the defaults)."""
    c32, w32 = _cases_arrays()
    rows = {}
    disagreement = 0.0
    for solver in solvers if solvers is not None else list(SOLVERS):
        mine, before, reference, cases = [], [], [], []
        for sched_name, schedule in SCHEDULES.items():
            for n in steps:
                for final in ("zero", "min"):
                    final_zero, sigmas, t, dlam = _grid_arrays(schedule, n, final)
                    values = _evaluate(
                        solver, final_zero, c32, w32, sigmas, t, dlam, compiler_options
                    )
                    ref = values["float64"]
                    resolved = ref >= NEAR_ZERO
                    gap = np.abs(values["float64_previous"] / ref - 1)[resolved]
                    disagreement = max(disagreement, float(np.max(gap, initial=0.0)))
                    mine.append(values["float32"])
                    before.append(values["previous"])
                    reference.append(ref)
                    cases += [(sched_name, n, final, name) for name in SPECTRA]
        rows[solver] = _accuracy_row(*(np.concatenate(x) for x in (mine, before, reference)), cases)
    return {
        "reference": "float64 evaluation (schedopt's form) of the same float32-rounded "
        "eigenvalues and grids",
        "reference_forms_max_disagreement": disagreement,
        "spectra": list(SPECTRA),
        "schedules": list(SCHEDULES),
        "num_steps": list(steps),
        "finals": ["zero", "min"],
        "near_zero_below": NEAR_ZERO,
        "by_solver": rows,
        "note": "relative errors |KL_float32 / KL_float64 - 1|; resolvable: KL_float64 >= "
        f"{NEAR_ZERO:g}, where schedopt_worse_cases counts cases whose error exceeds the "
        "previous form's by more than 1e-6 (a few float32 roundings); near_zero: the rest, "
        "with absolute errors too; reference_forms_max_disagreement: the two forms in "
        "float64 on resolvable cases",
    }


def _accuracy_row(mine, before, reference, cases) -> dict:
    error_mine, error_before = np.abs(mine / reference - 1), np.abs(before / reference - 1)
    resolved = reference >= NEAR_ZERO
    row = {"cases": int(reference.shape[0])}
    if np.any(resolved):
        worst = int(np.flatnonzero(resolved)[np.argmax(error_mine[resolved])])
        fields = ("schedule", "num_steps", "final", "spectrum")
        row["resolvable"] = {
            "cases": int(np.sum(resolved)),
            "schedopt": _summary(error_mine[resolved]),
            "previous_form": _summary(error_before[resolved]),
            "schedopt_worse_cases": int(np.sum((error_mine > error_before + 1e-6)[resolved])),
            "schedopt_worst_case": {
                **dict(zip(fields, cases[worst], strict=True)),
                "kl": float(reference[worst]),
            },
        }
    tiny = ~resolved
    if np.any(tiny):
        row["near_zero"] = {
            "cases": int(np.sum(tiny)),
            "min_kl": float(np.min(reference[tiny])),
            "schedopt": {
                **_summary(error_mine[tiny]),
                "max_abs": float(np.max(np.abs(mine - reference)[tiny])),
            },
            "previous_form": {
                **_summary(error_before[tiny]),
                "max_abs": float(np.max(np.abs(before - reference)[tiny])),
            },
        }
    return row


def _summary(errors: np.ndarray) -> dict:
    return {"max": float(np.max(errors)), "median": float(np.median(errors))}


def _evaluate(solver, final_zero, c, w, sigmas, t, dlam, compiler_options=None) -> dict:
    """KLs of every spectrum (rows of ``c``, ``w``) on one grid, four ways."""
    out = {}
    for key, form, x64 in (
        ("float32", gaussian_kl, False),
        ("previous", previous_kl, False),
        ("float64", gaussian_kl, True),
        ("float64_previous", previous_kl, True),
    ):
        with jax.enable_x64(x64):
            dtype = jnp.float64 if x64 else jnp.float32
            arrays = [jnp.asarray(x, dtype) for x in (c, w, sigmas, t, dlam)]
            program = _batched(form, solver, final_zero, compiler_options)
            out[key] = np.asarray(program(*arrays), np.float64)
    return out


_PROGRAMS: dict = {}


def _batched(form, solver, final_zero, compiler_options=None):
    options = tuple(sorted((compiler_options or {}).items()))
    key = (form, solver, final_zero, options)  # jit keeps float32 and float64 apart
    if key not in _PROGRAMS:

        def one(c, w, sigmas, t, dlam):
            grid = StepGrid(sigmas=sigmas, t=t, dlogsnr_dt=dlam, final_zero=final_zero)
            return form(Spectrum(c, weights=w), grid, solver)

        batched = jax.vmap(one, in_axes=(0, 0, None, None, None))
        _PROGRAMS[key] = jax.jit(batched, compiler_options=compiler_options)
    return _PROGRAMS[key]
