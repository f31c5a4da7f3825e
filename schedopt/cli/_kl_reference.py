"""Reference forms of the Gaussian KL for ``schedopt bench --sections kl_speed,kl_accuracy``.

Two forms that :mod:`schedopt.gaussian` is measured against, in the same process:

- :func:`arctan_euler_kl`: the straightforward vectorised form of Euler's KL with exact
  initialisation, ``log w_N = sum_k 2 log cos(phi_k - phi_{k+1})`` with
  ``phi = arctan(s / sqrt(c))`` (an arctan, a cos and a log per eigenvalue and step);
- :func:`previous_kl`: schedopt's own form before the chain was made rational (kept here
  only as the benchmark's yardstick): per step and eigenvalue the log variance ratio
  ``log r = 2 log|a| + log(c + s^2) - log(c + s'^2)`` (Euler: ``log1p(-defect)``), chained
  in log form ``log w' = logaddexp(log r + log w, log q)`` by one ``lax.scan`` over steps
  with ``(d,)`` carries; the multistep forms run the solver's update in a rematerialised
  ``lax.scan`` differentiated by JAX (the denoiser's gain computed inside each step) and
  end with the sum of four logs; the KL is ``(expm1(-l) + l) / 2`` as is.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import _multistep
from ..gaussian import multistep as _ms
from ..gaussian.chain import scan_steps
from ..gaussian.registry import solver_from_name
from ..gaussian.solvers import ancestral_split


def arctan_euler_kl(spectrum, grid):
    """Euler's forward KL, exact initialisation, as one vectorised ``(N + 1, d)`` expression.

    >>> from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid
    >>> sp, grid = Spectrum([0.5, 2.0]), sigma_grid([80.0, 3.0, 0.5, 0.0])
    >>> bool(abs(arctan_euler_kl(sp, grid) - gaussian_kl(sp, grid)) < 1e-4)
    True
    """
    c = spectrum.eigenvalues
    phi = jnp.arctan(grid.sigmas[:, None] / jnp.sqrt(c)[None, :])
    log_w = jnp.sum(2.0 * jnp.log(jnp.cos(phi[:-1] - phi[1:])), axis=0)
    return jnp.sum(spectrum.weights * 0.5 * (jnp.expm1(-log_w) + log_w))


def _log_r(a, c, s, s_next):
    return 2.0 * jnp.log(jnp.abs(a)) + jnp.log(c + s**2) - jnp.log(c + s_next**2)


def _previous_coefficients(solver, c, grid):
    """``(a, b, log_r, q_rel)``, each ``(N, d)``, as schedopt computed them before."""
    c, s, s_next = c[None, :], grid.sigmas[:-1, None], grid.sigmas[1:, None]
    zeros = jnp.zeros(jnp.broadcast_shapes(c.shape, s.shape), c.dtype)
    if solver.name == "euler":
        a = (c + s * s_next) / (c + s**2)
        defect = c * (s - s_next) ** 2 / ((c + s**2) * (c + s_next**2))
        return a, zeros, jnp.log1p(-defect), zeros
    if solver.name == "heun":
        h = s_next - s
        slope, slope_next = s / (c + s**2), s_next / (c + s_next**2)
        euler = 1.0 + h * slope
        heun = 1.0 + 0.5 * h * (slope + slope_next * euler)
        a = jnp.where(s_next > 0, heun, euler)
        return a, zeros, _log_r(a, c, s, s_next), zeros
    if solver.name == "ancestral":
        s_up, s_down = ancestral_split(s, s_next, solver.eta)
        a = (c + s * s_down) / (c + s**2)
        q_rel = jnp.broadcast_to(s_up**2 / (c + s_next**2), a.shape)
        return a, zeros, _log_r(a, c, s, s_next), q_rel
    if solver.name == "euler-maruyama":
        n, t = grid.num_steps, grid.t
        h = jnp.concatenate([t[:-1] - t[1:], jnp.zeros((n - (t.shape[0] - 1),), t.dtype)])
        h, dlam = h[:, None], grid.dlogsnr_dt[:n, None]
        lam = -2.0 * jnp.log(s)
        denoise = s_next == 0
        if solver.process == "ve":
            g2h = -(s**2) * dlam * h
            a, b, q = 1.0 - g2h / (c + s**2), zeros, solver.kappa * g2h
        else:
            lam_next = -2.0 * jnp.log(jnp.where(denoise, 1.0, s_next))
            alpha, sigma2 = jnp.sqrt(jax.nn.sigmoid(lam)), jax.nn.sigmoid(-lam)
            alpha_next = jnp.sqrt(jax.nn.sigmoid(lam_next))
            beta_h = -sigma2 * dlam * h
            gain_x = 1.0 + 0.5 * beta_h - beta_h / (alpha**2 * (c + s**2))
            a = gain_x * alpha / alpha_next
            b = ((1.0 + 0.5 * beta_h) * alpha - alpha_next) / alpha_next
            q = solver.kappa * beta_h / alpha_next**2
        a = jnp.where(denoise, c / (c + s**2), a)
        b = jnp.where(denoise, 0.0, b)
        q = jnp.where(denoise, 0.0, q)
        q_rel = jnp.broadcast_to(q / (c + s_next**2), a.shape)
        return a, b, _log_r(a, c, s, s_next), q_rel
    raise ValueError(f"no previous form for solver={solver.name!r}")


def _previous_propagate(solver, c, mean, grid, log_w0, delta0):
    if solver.multistep:
        return _previous_multistep(solver, c, grid, log_w0, delta0)
    a, b, log_r, q_rel = _previous_coefficients(solver, c, grid)

    def step(carry, k):
        log_w, delta = carry
        noisy = q_rel[k] > 0
        log_q = jnp.log(jnp.where(noisy, q_rel[k], 1.0))
        carried = log_r[k] + log_w
        log_w = jnp.where(noisy, jnp.logaddexp(carried, log_q), carried)
        return (log_w, a[k] * delta + b[k] * mean), None

    (log_w, delta), _ = jax.lax.scan(step, (log_w0, delta0), jnp.arange(a.shape[0]))
    return log_w, delta


def _scan(body, carry, xs):
    return scan_steps(lambda cr, x: (body(cr, x), None), carry, xs)


def _previous_gain(solver, c, levels, total_steps):
    """The multistep gain ``G`` as one ``lax.scan`` over steps, differentiated by JAX."""
    e0 = jnp.ones_like(c)
    if isinstance(solver, _ms.GaussianDPMSolverPP):
        plan = _multistep.dpmpp_plan(levels, total_steps, solver.order, solver.lower_order_final)

        def body(carry, x):
            e, history = carry
            ratio, weights, s = x
            return _multistep.linear_update(e, c / (c + s**2) * e, history, ratio, weights)

        history = tuple(jnp.zeros_like(c) for _ in range(solver.order - 1))
        return _scan(body, (e0, history), (plan.ratio, plan.weights, levels[:-1]))[0]
    if isinstance(solver, _ms.GaussianUniPC):
        plan = _multistep.unipc_plan(levels, total_steps, solver.order, solver.lower_order_final)

        def body(carry, x):
            e, corrected, history = carry
            *step, s = x
            return _multistep.unipc_update(e, c / (c + s**2) * e, corrected, history, step)

        history = tuple(jnp.zeros_like(c) for _ in range(solver.order))
        return _scan(body, (e0, e0, history), (*plan[:5], levels[:-1]))[0]
    if isinstance(solver, _ms.GaussianIPNDM):
        plan = _multistep.ipndm_plan(levels, solver.max_order)

        def body(carry, x):
            e, history = carry
            step, weights, s = x
            return _multistep.ipndm_update(e, s / (c + s**2) * e, history, step, weights)

        history = tuple(jnp.zeros_like(c) for _ in range(solver.max_order - 1))
        return _scan(body, (e0, history), (plan.step, plan.weights, levels[:-1]))[0]
    raise ValueError(f"no previous form for solver={solver.name!r}")


def _previous_sde_moments(solver, c, levels, variance0, delta0):
    plan = _multistep.dpmpp_sde_plan(levels, solver.eta)

    def body(carry, x):
        mean_e, mean_m, p_ee, p_em, p_mm = carry
        ratio, weights, noise_scale, s = x
        kappa = c / (c + s**2)
        a, b = ratio + weights[0] * kappa, weights[1]
        return (
            a * mean_e + b * mean_m,
            kappa * mean_e,
            a**2 * p_ee + 2.0 * a * b * p_em + b**2 * p_mm + noise_scale**2,
            kappa * (a * p_ee + b * p_em),
            kappa**2 * p_ee,
        )

    zeros = jnp.zeros_like(c)
    xs = (plan.ratio, plan.weights, plan.noise_scale, levels[:-1])
    carry = _scan(body, (delta0, zeros, variance0, zeros, zeros), xs)
    return carry[2], carry[0]


def _previous_multistep(solver, c, grid, log_w0, delta0):
    levels, to_zero = _ms.split_grid(grid)
    s0, s_last = levels[0], levels[-1]
    if isinstance(solver, _ms.GaussianDPMSolverPPSDE):
        # the covariance recursion is unchanged; only its start and end were in logs
        start = jnp.exp(log_w0)
        variance, mean_e = _previous_sde_moments(solver, c, levels, start * (c + s0**2), delta0)
        if to_zero:
            kappa = c / (c + s_last**2)
            return jnp.log(kappa**2 * variance) - jnp.log(c), kappa * mean_e
        return jnp.log(variance) - jnp.log(c + s_last**2), mean_e
    gain = _previous_gain(solver, c, levels, levels.shape[0] - 1 + int(to_zero))
    log_w = 2.0 * jnp.log(jnp.abs(gain)) + log_w0 + jnp.log(c + s0**2)
    log_w = log_w - jnp.log(c + s_last**2)
    if to_zero:
        gain = gain * c / (c + s_last**2)
        log_w = log_w + jnp.log(c) - jnp.log(c + s_last**2)
    return log_w, gain * delta0


def previous_kl(spectrum, grid, solver="euler", init="exact", direction="forward"):
    """The Gaussian KL as schedopt computed it before the rational chain (see above).

    >>> from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid
    >>> sp, grid = Spectrum([0.5, 2.0]), sigma_grid([80.0, 3.0, 0.5, 0.0])
    >>> bool(abs(previous_kl(sp, grid, "heun") - gaussian_kl(sp, grid, "heun")) < 1e-4)
    True
    """
    solver = solver_from_name(solver)
    c, mean, s0 = spectrum.eigenvalues, spectrum.mean, grid.sigmas[0]
    if init == "exact":
        log_w0, delta0 = jnp.zeros_like(c), jnp.zeros_like(c)
    else:
        v0 = s0**2 if init == "ve" else 1.0 + s0**2
        log_w0, delta0 = jnp.log(v0) - jnp.log(c + s0**2), -mean
    log_w, delta = _previous_propagate(solver, c, mean, grid, log_w0, delta0)
    mean_term = delta**2 / (c + grid.sigmas[-1] ** 2)
    if direction == "forward":
        kl = 0.5 * (jnp.expm1(-log_w) + log_w + mean_term * jnp.exp(-log_w))
    else:
        kl = 0.5 * (jnp.expm1(log_w) - log_w + mean_term)
    return jnp.sum(spectrum.weights * kl)
