"""Per-step coefficients of the multistep solvers, shared by the diffrax solvers
(:mod:`schedopt.sampling.multistep`) and their exact Gaussian forms
(:mod:`schedopt.gaussian.multistep`).

Every solver here is linear in the states and denoiser outputs it keeps, with
coefficients that depend only on the grid. A *plan* holds them for every step of a grid
of positive levels ``s_0 > ... > s_{M-1}`` (``M - 1`` solver steps), noisy first;
``total_steps`` is the length of the whole sampling grid, ``M - 1`` plus one when a last
step to ``s = 0`` follows (which every solver takes as first order: it returns the
denoiser's output, ``D(y; s_{M-1})``). Write ``lam = -log s``, ``h_i = lam_{i+1} - lam_i``
and ``phi_1 = 1 - exp(-h)``; in EDM variables ``y = x / alpha`` (the same for VP and VE):

- DPM-Solver++ (Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
  Probabilistic Models"), data prediction: ``y' = (s'/s) y + sum_j W_j D_{i-j}``, with
  ``W = [phi_1]`` at first order, ``phi_1 [1 + 1/(2 r), -1/(2 r)]`` at second
  (``r = h_{i-1} / h_i``, the midpoint form of k-diffusion and diffusers) and diffusers'
  third-order form. Orders warm up (``min(order, i + 1)``) and, as diffusers does with
  ``lower_order_final`` for grids of fewer than 15 steps, fall to ``total_steps - i``
  at the end.
- DPM-Solver++(2M) SDE (k-diffusion's ``sample_dpmpp_2m_sde``, midpoint):
  ``y' = (s'/s) e^{-eta h} y + phi (D_i + (D_i - D_{i-1}) / (2 r)) + s' sqrt(1 - e^{-2 eta h}) xi``,
  ``phi = 1 - e^{-(1 + eta) h}``.
- UniPC (Zhao et al., "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling
  of Diffusion Models"), ``B(h) = expm1(h)`` ("bh2"), data prediction, as diffusers'
  ``UniPCMultistepScheduler``: a predictor from the corrected state and a corrector that
  reuses the next evaluation (the model is evaluated once per step, at the *predicted*
  state). Orders ``min(order, total_steps - i, i + 1)``; the corrector at step ``i``
  has the previous predictor's order.
- iPNDM (Zhang and Chen, "Fast Sampling of Diffusion Models with Exponential
  Integrator"; the form of the GITS and DMN code bases): Adams–Bashforth on the EDM ODE
  ``dy/ds = d = (y - D) / s``, ``y' = y + (s' - s) sum_k a_k d_{i-k}`` with the fixed
  coefficients :data:`ADAMS_BASHFORTH` and order ``min(max_order, i + 1)``.

Denominators of orders a step does not use are replaced by safe values, so gradients
through :func:`jnp.where` stay finite.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

#: Adams–Bashforth coefficients by order (newest derivative first), as iPNDM uses them.
ADAMS_BASHFORTH = {
    1: (1.0,),
    2: (3 / 2, -1 / 2),
    3: (23 / 12, -16 / 12, 5 / 12),
    4: (55 / 24, -59 / 24, 37 / 24, -9 / 24),
}

#: diffusers lowers DPM-Solver++'s final orders only on grids shorter than this.
LOWER_ORDER_FINAL_BELOW = 15


def _log_levels(levels: Float[Array, " m"]) -> tuple[Array, Array, Array, Array]:
    """``(h, h_prev, h_prev2, s_ratio)`` per solver step, previous steps padded with ``h``."""
    lam = -jnp.log(levels)
    h = lam[1:] - lam[:-1]
    h_prev = jnp.concatenate([h[:1], h[:-1]])
    h_prev2 = jnp.concatenate([h_prev[:1], h_prev[:-1]])
    return h, h_prev, h_prev2, levels[1:] / levels[:-1]


def _orders(num_solver_steps: int, order: int, caps: np.ndarray | None = None) -> np.ndarray:
    steps = np.arange(num_solver_steps)
    out = np.minimum(order, steps + 1)
    return out if caps is None else np.minimum(out, caps)


def _lower_order_final_caps(num_solver_steps: int, total_steps: int) -> np.ndarray:
    return total_steps - np.arange(num_solver_steps)


class LinearPlan(NamedTuple):
    """``y' = ratio y + sum_j weights[:, j] D_{i-j} + noise_scale xi`` per step (axis 0)."""

    ratio: Float[Array, " n"]
    weights: Float[Array, "n k"]
    noise_scale: Float[Array, " n"]
    orders: np.ndarray


def dpmpp_plan(
    levels: Float[Array, " m"], total_steps: int, order: int = 2, lower_order_final: bool = True
) -> LinearPlan:
    """DPM-Solver++'s multistep coefficients on ``levels`` (see the module docstring).

    >>> plan = dpmpp_plan(jnp.array([4.0, 2.0, 1.0]), total_steps=3)
    >>> plan.orders.tolist(), [round(float(w), 4) for w in plan.weights[1]]
    ([1, 2], [0.75, -0.25])
    """
    n = levels.shape[0] - 1
    caps = None
    if lower_order_final and total_steps < LOWER_ORDER_FINAL_BELOW:
        caps = _lower_order_final_caps(n, total_steps)
    orders = _orders(n, order, caps)
    h, h_prev, h_prev2, ratio = _log_levels(levels)
    phi1 = -jnp.expm1(-h)
    zero = jnp.zeros_like(h)
    first = jnp.stack([phi1, zero, zero], axis=1)
    r0 = h_prev / h
    second = jnp.stack([phi1 * (1 + 0.5 / r0), -phi1 * 0.5 / r0, zero], axis=1)
    r1 = h_prev2 / h
    d10 = jnp.stack([1 / r0, -1 / r0, zero], axis=1)  # (D_i - D_{i-1}) / r0
    d11 = jnp.stack([zero, 1 / r1, -1 / r1], axis=1)  # (D_{i-1} - D_{i-2}) / r1
    d1 = d10 + (r0 / (r0 + r1))[:, None] * (d10 - d11)
    d2 = (d10 - d11) / (r0 + r1)[:, None]
    psi2 = jnp.expm1(-h) / h + 1.0
    psi3 = (jnp.expm1(-h) + h) / h**2 - 0.5
    third = first + psi2[:, None] * d1 - psi3[:, None] * d2
    o = jnp.asarray(orders)[:, None]
    weights = jnp.where(o == 1, first, jnp.where(o == 2, second, third))
    return LinearPlan(ratio, weights[:, :order], zero, orders)


def dpmpp_sde_plan(levels: Float[Array, " m"], eta: float | Array = 1.0) -> LinearPlan:
    """DPM-Solver++(2M) SDE's coefficients (k-diffusion's midpoint form, no final lowering).

    >>> plan = dpmpp_sde_plan(jnp.array([4.0, 2.0]), eta=0.0)
    >>> round(float(plan.weights[0, 0]), 4), float(plan.noise_scale[0])
    (0.5, 0.0)
    """
    n = levels.shape[0] - 1
    orders = _orders(n, 2)
    h, h_prev, _, ratio = _log_levels(levels)
    phi = -jnp.expm1(-(1.0 + eta) * h)
    r = h_prev / h
    second = jnp.where(jnp.asarray(orders) == 2, 0.5 / r, 0.0)
    weights = jnp.stack([phi * (1 + second), -phi * second], axis=1)
    noise_scale = levels[1:] * jnp.sqrt(-jnp.expm1(-2.0 * eta * h))
    return LinearPlan(ratio * jnp.exp(-eta * h), weights, noise_scale, orders)


def linear_update(y, denoised, history, ratio, weights, noise=None, noise_scale=None):
    """One step of a :class:`LinearPlan`: returns ``(y', history')``; ``history`` holds the
    previous denoiser outputs, newest first (as many as ``weights`` has columns, minus one).

    >>> y, hist = linear_update(2.0, 1.0, (0.0,), 0.5, jnp.array([0.5, 0.0]))
    >>> float(y), [float(h) for h in hist]
    (1.5, [1.0])
    """
    outputs = (denoised, *history)
    y_next = ratio * y
    for j in range(len(outputs)):
        y_next = y_next + weights[j] * outputs[j]
    if noise is not None:
        y_next = y_next + noise_scale * noise
    return y_next, outputs[:-1]


class UniPCPlan(NamedTuple):
    """UniPC's predictor ``y_{i+1} = ratio_p y^c_i + sum_j predictor[:, j] D_{i-j}`` and
    corrector ``y^c_i = ratio_c y^c_{i-1} + sum_j corrector[:, j] D_{i-j}`` (``j = 0`` is
    the new evaluation; ``corrects`` is False where the state is taken as is)."""

    ratio_p: Float[Array, " n"]
    predictor: Float[Array, "n k"]
    ratio_c: Float[Array, " n"]
    corrector: Float[Array, "n k1"]
    corrects: Float[Array, " n"]
    orders: np.ndarray


def _unipc_b(hh: Array, order: int) -> list[Array]:
    """diffusers' ``b`` vector of UniPC with ``B(h) = expm1(hh)``, ``hh = -h``."""
    h_phi_k = jnp.expm1(hh) / hh - 1.0
    factorial = 1
    b_h = jnp.expm1(hh)
    out = []
    for i in range(1, order + 1):
        out.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1.0 / factorial
    return out


def _solve(matrix_rows: list[list[Array]], rhs: list[Array]) -> Array:
    """Solve the small system ``R rho = b`` per step (``R`` given row by row)."""
    matrix = jnp.stack([jnp.stack(row, axis=-1) for row in matrix_rows], axis=-2)
    return jnp.linalg.solve(matrix, jnp.stack(rhs, axis=-1)[..., None])[..., 0]


def _unipc_predictor(h, lam_hist, order):
    """Coefficients on ``D_i, D_{i-1}, ...`` (beyond ``-expm1(-h) D_i``) of UniP-``order``."""
    hh = -h
    b = _unipc_b(hh, order)
    rks = [lam_hist[k] / h for k in range(order - 1)]  # (lam_{i-k-1} - lam_i) / h
    weights = [-jnp.expm1(hh)] + [jnp.zeros_like(h)] * (order - 1)
    if order == 1:
        return weights
    if order == 2:
        rhos = [0.5 * jnp.ones_like(h)]
    else:
        rows = [[rk**p for rk in rks] for p in range(order - 1)]
        solved = _solve(rows, b[: order - 1])
        rhos = [solved[..., k] for k in range(order - 1)]
    scale = -jnp.expm1(hh)  # -B(h)
    for k in range(order - 1):  # D1s[k] = (D_{i-k-1} - D_i) / rk
        weights[k + 1] = weights[k + 1] + scale * rhos[k] / rks[k]
        weights[0] = weights[0] - scale * rhos[k] / rks[k]
    return weights


def _unipc_corrector(h, lam_hist, order):
    """Coefficients on ``D_new, D_{i-1}, D_{i-2}, ...`` of UniC-``order`` (from ``i - 1``)."""
    hh = -h
    b = _unipc_b(hh, order)
    rks = [lam_hist[k] / h for k in range(order - 1)] + [jnp.ones_like(h)]
    if order == 1:
        rhos = [0.5 * jnp.ones_like(h)]
    else:
        rows = [[rk**p for rk in rks] for p in range(order)]
        solved = _solve(rows, b)
        rhos = [solved[..., k] for k in range(order)]
    scale = -jnp.expm1(hh)
    # x_c = ratio x + phi D_{i-1} + scale (sum_k rho_k (D_{i-1-k} - D_{i-1}) / rk
    #                                      + rho_last (D_new - D_{i-1}))
    weights = [scale * rhos[-1], -jnp.expm1(hh) - scale * rhos[-1]]
    weights += [jnp.zeros_like(h)] * (order - 1)
    for k in range(order - 1):
        weights[k + 2] = weights[k + 2] + scale * rhos[k] / rks[k]
        weights[1] = weights[1] - scale * rhos[k] / rks[k]
    return weights


def _lam_back(lam: Array, base: np.ndarray, h_ref: Array, count: int) -> list[Array]:
    """``lam_{base-k-1} - lam_base`` for ``k < count`` (per step; ``-(k + 1) h_ref`` where
    that level does not exist, a safe stand-in for orders the step does not use)."""
    out = []
    for k in range(count):
        idx = base - k - 1
        value = lam[np.clip(idx, 0, None)] - lam[np.clip(base, 0, None)]
        out.append(jnp.where(jnp.asarray(idx >= 0), value, -(k + 1) * h_ref))
    return out


def _by_order(orders: np.ndarray, columns: int, make) -> Array:
    """Stack ``make(p)`` (a list of per-step coefficient arrays) into ``(n, columns)``,
    taking at each step the order ``orders[i]`` asks for."""
    out = None
    for p in sorted(set(orders.tolist())):
        w = jnp.stack(make(p), axis=1)
        w = jnp.pad(w, ((0, 0), (0, columns - w.shape[1])))
        out = w if out is None else jnp.where(jnp.asarray(orders == p)[:, None], w, out)
    return out


def unipc_plan(
    levels: Float[Array, " m"], total_steps: int, order: int = 2, lower_order_final: bool = True
) -> UniPCPlan:
    """UniPC-``order`` (bh2) coefficients on ``levels`` (see the module docstring).

    >>> plan = unipc_plan(jnp.array([4.0, 2.0, 1.0]), total_steps=3)
    >>> plan.orders.tolist(), bool(plan.corrects[0]), bool(plan.corrects[1])
    ([1, 2], False, True)
    """
    if order not in (1, 2, 3):
        raise ValueError(f"`order` must be 1, 2 or 3 for UniPC, got order={order!r}")
    n = levels.shape[0] - 1
    caps = _lower_order_final_caps(n, total_steps) if lower_order_final else None
    orders = _orders(n, order, caps)
    lam = -jnp.log(levels)
    h = lam[1:] - lam[:-1]
    steps = np.arange(n)
    back = _lam_back(lam, steps, h, order - 1)
    predictor = _by_order(orders, order, lambda p: _unipc_predictor(h, back, p))
    # the corrector at step i >= 1 revisits the step i - 1 -> i with that step's order
    h_c = jnp.concatenate([h[:1], h[:-1]])
    back_c = _lam_back(lam, steps - 1, h_c, order - 1)
    orders_c = np.concatenate([[1], orders[:-1]])
    corrector = _by_order(orders_c, order + 1, lambda p: _unipc_corrector(h_c, back_c, p))
    ratio = levels[1:] / levels[:-1]
    ratio_c = jnp.concatenate([ratio[:1], ratio[:-1]])
    corrects = jnp.asarray(steps >= 1, levels.dtype)
    return UniPCPlan(ratio, predictor, ratio_c, corrector, corrects, orders)


def unipc_update(y, denoised, corrected, history, plan_step):
    """One UniPC step from the predicted state ``y`` with its evaluation ``denoised``:
    ``(y_next_predicted, corrected_state, history')``; ``history`` holds the previous
    denoiser outputs, newest first (``order`` of them), ``corrected`` the previous
    corrected state.

    >>> plan = unipc_plan(jnp.array([4.0, 2.0]), total_steps=2)
    >>> step = tuple(field[0] for field in plan[:5])
    >>> y, y_c, hist = unipc_update(jnp.array(3.0), jnp.array(1.0), jnp.array(0.0), (0.0, 0.0),
    ...                            step)
    >>> float(y), float(y_c)  # first order: (s'/s) y + (1 - s'/s) D
    (2.0, 3.0)
    """
    ratio_p, predictor, ratio_c, corrector, corrects = plan_step
    outputs = (denoised, *history)
    y_c = ratio_c * corrected
    for j in range(corrector.shape[0]):
        y_c = y_c + corrector[j] * outputs[j]
    y_c = corrects * y_c + (1.0 - corrects) * y
    y_next = ratio_p * y_c
    for j in range(predictor.shape[0]):
        y_next = y_next + predictor[j] * outputs[j]
    return y_next, y_c, outputs[:-1]


class IPNDMPlan(NamedTuple):
    """``y' = y + step[:, None] * sum_k weights[:, k] d_{i-k}`` per step."""

    step: Float[Array, " n"]
    weights: Float[Array, "n k"]
    orders: np.ndarray


def ipndm_plan(levels: Float[Array, " m"], max_order: int = 4) -> IPNDMPlan:
    """iPNDM's Adams–Bashforth coefficients on ``levels`` (orders warm up, never lowered).

    >>> ipndm_plan(jnp.array([4.0, 2.0, 1.0])).orders.tolist()
    [1, 2]
    """
    if max_order not in ADAMS_BASHFORTH:
        raise ValueError(f"`max_order` must be 1, 2, 3 or 4, got max_order={max_order!r}")
    n = levels.shape[0] - 1
    orders = _orders(n, max_order)
    table = np.zeros((n, max_order))
    for i, p in enumerate(orders):
        table[i, :p] = ADAMS_BASHFORTH[int(p)]
    return IPNDMPlan(levels[1:] - levels[:-1], jnp.asarray(table, levels.dtype), orders)


def ipndm_update(y, derivative, history, step, weights):
    """One iPNDM step with the current ``derivative = (y - D) / s``: ``(y', history')``.

    >>> y, hist = ipndm_update(1.0, 2.0, (0.0,), -0.5, jnp.array([1.0, 0.0]))
    >>> float(y)
    0.0
    """
    derivatives = (derivative, *history)
    slope = weights[0] * derivative
    for k in range(1, len(derivatives)):
        slope = slope + weights[k] * derivatives[k]
    return y + step * slope, derivatives[:-1]
