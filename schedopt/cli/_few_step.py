"""``schedopt bench --sections few_step_gradients``: value and gradient with respect to the
grid of a few-step sampler on the digits 8x8 U-Net (random weights), schedopt's sampler
against a hand-unrolled reference loop of the same steps.

The references are plain Python loops of the update formulas, with no diffrax: Euler
(``y + (s' - s)(y - D)/s``), EDM's Heun, and the multistep solvers' updates from
:mod:`schedopt._multistep` applied step by step. Both sides end with ``D(y; s_{N-1})``
(the step to 0) and are jitted once; each figure is a median of repeated runs after a
compiling run, and the ratio ``schedopt / reference`` is measured in the same process.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import _multistep

SOLVERS = ("euler", "heun", "dpmpp-2m", "dpmpp-3m", "unipc", "ipndm", "dpmpp-2m-sde")


def reference_sampler(solver: str, denoiser, levels, y0, xi=None):
    """The hand-unrolled loop of ``solver`` through positive ``levels``, then ``D`` at the
    last level; ``xi`` (one draw per step) for ``"dpmpp-2m-sde"``."""
    n = levels.shape[0]
    y = y0
    if solver == "euler":
        for k in range(n - 1):
            s, s_next = levels[k], levels[k + 1]
            y = y + (s_next - s) * (y - denoiser(y, s)) / s
    elif solver == "heun":
        for k in range(n - 1):
            s, s_next = levels[k], levels[k + 1]
            d = (y - denoiser(y, s)) / s
            y_euler = y + (s_next - s) * d
            d_next = (y_euler - denoiser(y_euler, s_next)) / s_next
            y = y + 0.5 * (s_next - s) * (d + d_next)
    elif solver in ("dpmpp-2m", "dpmpp-3m", "dpmpp-2m-sde"):
        if solver == "dpmpp-2m-sde":
            plan = _multistep.dpmpp_sde_plan(levels)
        else:
            plan = _multistep.dpmpp_plan(levels, n, 2 if solver == "dpmpp-2m" else 3)
        history = tuple(jnp.zeros_like(y) for _ in range(plan.weights.shape[1] - 1))
        for k in range(n - 1):
            noise = None if xi is None else xi[k]
            y, history = _multistep.linear_update(
                y,
                denoiser(y, levels[k]),
                history,
                plan.ratio[k],
                plan.weights[k],
                noise,
                plan.noise_scale[k],
            )
    elif solver == "unipc":
        plan = _multistep.unipc_plan(levels, n)
        corrected, history = y, (jnp.zeros_like(y), jnp.zeros_like(y))
        for k in range(n - 1):
            step = tuple(field[k] for field in plan[:5])
            y, corrected, history = _multistep.unipc_update(
                y, denoiser(y, levels[k]), corrected, history, step
            )
    elif solver == "ipndm":
        plan = _multistep.ipndm_plan(levels)
        history = tuple(jnp.zeros_like(y) for _ in range(3))
        for k in range(n - 1):
            d = (y - denoiser(y, levels[k])) / levels[k]
            y, history = _multistep.ipndm_update(y, d, history, plan.step[k], plan.weights[k])
    else:
        raise ValueError(f"no reference loop for solver={solver!r}; one of {', '.join(SOLVERS)}")
    return denoiser(y, levels[-1])


def few_step_gradients(timed, quick: bool, repeats: int, nfe: int = 5) -> dict:
    """Per solver: value+grad w.r.t. the grid, reference loop vs schedopt, and the ratio."""
    from ..models import NNXDenoiser
    from ..models.networks import build_network, default_network_config
    from ..sampling import dpmpp_2m_sde, probability_flow, sampler_for_nfe

    batch = 16 if quick else 128
    network = build_network(default_network_config((8, 8, 1)), seed=0)
    denoiser = NNXDenoiser.from_module(network)
    y0 = 80.0 * jax.random.normal(jax.random.key(0), (batch, 8, 8, 1))
    target = jax.random.normal(jax.random.key(1), (batch, 8, 8, 1))
    out = {"nfe": nfe, "batch": batch, "model": "digits 8x8 U-Net (random weights)"}
    for solver in SOLVERS[:3] if quick else SOLVERS:
        sampler = sampler_for_nfe(solver, nfe)
        n = sampler.num_steps
        levels = jnp.asarray(np.geomspace(80.0, 0.002, n))
        xi = jax.random.normal(jax.random.key(2), (n - 1, *y0.shape))

        def ours(lv, solver=solver, xi=xi):
            if solver == "dpmpp-2m-sde":
                return dpmpp_2m_sde(denoiser, lv, y0, xi)
            return probability_flow(denoiser, lv, y0, solver=solver)

        def reference(lv, solver=solver, xi=xi):
            return reference_sampler(solver, denoiser, lv, y0, xi)

        def loss(sample):
            return jax.jit(jax.value_and_grad(lambda lv: jnp.mean((sample(lv) - target) ** 2)))

        ours_fn, reference_fn = loss(ours), loss(reference)
        v_ours, g_ours = ours_fn(levels)
        v_ref, g_ref = reference_fn(levels)
        # float32: the same value, and the same gradient up to 1e-3 of its largest entry
        scale = float(np.max(np.abs(g_ref)))
        agree = bool(
            np.allclose(v_ours, v_ref, rtol=1e-4)
            and float(np.max(np.abs(g_ours - g_ref))) <= 1e-3 * scale
        )
        t_ref = timed(lambda f=reference_fn, lv=levels: f(lv), repeats)
        t_ours = timed(lambda f=ours_fn, lv=levels: f(lv), repeats)
        out[solver] = {
            "num_steps": n,
            "nfe": sampler.nfe,
            "reference": t_ref,
            "schedopt": t_ours,
            "ratio": t_ours["median_s"] / t_ref["median_s"],
            "agree": agree,
        }
    out["note"] = (
        "ratio = schedopt / hand-unrolled reference (target <= 1.3); grids of at most "
        "UNROLL_MAX_STEPS solver steps are stepped unrolled over the diffrax solvers' own step"
    )
    return out


def digits_time_to_schedule(timed, quick: bool, repeats: int, nfe: int = 5) -> dict:
    """Wall time to a schedule for each sample-based objective on the digits U-Net (random
    weights: the time does not depend on them), DPM-Solver++(2M) at ``nfe``: the teacher
    pairs (trajectory; 64 Heun steps, computed once) and a full Adam fit of a 16-knot cubic
    with the range learned."""
    from ..data import load_dataset
    from ..models import NNXDenoiser
    from ..models.networks import build_network, default_network_config
    from ..objectives import TrajectoryMatching, discrepancy_objective, teacher_pairs
    from ..objectives.teacher import _MEMORY
    from ..optimize import optimize
    from ..sampling import make_sampler
    from ..schedules import EDM, MonotoneCubic, RangedSchedule

    denoiser = NNXDenoiser.from_module(build_network(default_network_config((8, 8, 1)), seed=0))
    data = jnp.asarray(load_dataset("digits").train)
    if quick:  # a smoke size: the section runs, the figures mean little
        nfe, num_pairs, batch, iterations, teacher_steps = 2, 16, 12, 2, 4
    else:
        num_pairs, batch, iterations, teacher_steps = 256, 128, 300, 64
    sampler = make_sampler("dpmpp-2m", nfe)
    start = RangedSchedule.from_schedule(
        MonotoneCubic.from_schedule(EDM(), 16), (0.002, 160.0), (0.002, 80.0)
    )

    def pairs():
        _MEMORY.clear()  # time the teacher solve itself, not the cache
        return teacher_pairs(denoiser, (8, 8, 1), num_pairs, teacher_steps=teacher_steps).targets

    out = {"nfe": nfe, "solver": "dpmpp-2m", "iterations": iterations, "batch": batch}
    out["teacher_pairs"] = timed(pairs, repeats)
    out["teacher_pairs"]["num_pairs"] = num_pairs
    objectives = {
        "trajectory": TrajectoryMatching(
            denoiser,
            sampler,
            teacher_pairs(denoiser, (8, 8, 1), num_pairs, teacher_steps=teacher_steps),
        ),
        **{
            name: discrepancy_objective(
                name, denoiser, sampler, data, batch_size=batch, data_batch_size=256
            )
            for name in (("sliced-w2",) if quick else ("sliced-w2", "mmd"))
        },
    }
    for name, objective in objectives.items():

        def fit(objective=objective):
            return optimize(start, objective, num_iterations=iterations, progress=False).losses

        out[name] = timed(fit, repeats)
    out["note"] = (
        "fit median_s excludes compilation (compile_s); time to a trajectory schedule is "
        "teacher_pairs + trajectory"
    )
    return out
