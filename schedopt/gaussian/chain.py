"""Chaining the per-step maps without a transcendental function per step and eigenvalue.

Per eigenvalue the output's variance over the exact marginal's, ``w``, obeys
``w' = r w + q`` (``r`` the step's variance ratio, ``q`` its injected noise over
``c + s'^2``), and every ``r`` and ``q`` is rational in the noise levels. Two carries are
updated with multiply-adds only:

- ``w' = r w + q``: a sum of non-negative terms, accurate relative to ``w`` at any size;
- ``u' = r u + x`` for the defect ``u = 1 - w``, with the step's *excess*
  ``x = 1 - r - q`` given by each solver in a form without cancellation (Euler:
  ``c (s - s')^2 / ((c + s^2)(c + s'^2))``): accurate relative to ``u`` when ``u`` is
  small, i.e. near KL 0, where ``1 - w`` computed from ``w`` would cancel.

A log ends the chain: ``log w = log1p(-u)`` where ``|u| < 1/2``, else ``log w`` (one per
eigenvalue for stochastic solvers; for deterministic ones one per :data:`BLOCK` steps,
the blocks' logs summed, which bounds the float32 rounding of a long chain of ratios
near 1). The steps are computed inside the scan, from each step's scalars, so no
``(num_steps, d)`` array is stored. For deterministic solvers (``q = 0``)
``log w = log w_0 + sum_k log r_k``, so the derivative is ``dw_0 / w_0 + sum_k dr_k / r_k``
(:func:`deterministic_log_ratio`'s JVP): a sum over steps, with no backward recursion.

Large spectra are evaluated in chunks of :data:`CHUNK` eigenvalues, one ``lax.map`` over
chunks of a rematerialised body (:func:`chunked_sum`, :func:`chunked_concat`), so that a
chunk's per-step arrays stay in cache in both the value and the gradient pass.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

#: Eigenvalues per chunk (a chunk's ``(num_steps, CHUNK)`` float32 arrays fit in L2).
CHUNK = 8192
#: Steps unrolled per ``lax.scan`` iteration.
UNROLL = 10
#: Steps chained per log in :func:`deterministic_log_ratio`.
BLOCK = 5


class Start(NamedTuple):
    """The initial state per eigenvalue: the variance ratio ``w`` (variance over
    ``c + s_0^2``), its defect ``u = 1 - w`` computed without cancellation, and the mean
    offset ``delta`` (``None``: zero)."""

    w: Array
    u: Array
    delta: Array | None = None

    @classmethod
    def from_log(cls, log_w: Array, delta: Array | None = None) -> Start:
        """From the log variance ratio: ``w = exp(l)``, ``u = -expm1(l)``.

        >>> Start.from_log(jnp.zeros(2)).u.tolist()
        [-0.0, -0.0]
        """
        return cls(jnp.exp(log_w), -jnp.expm1(log_w), delta)


def log_of_pair(u: Array, w: Array) -> Array:
    """``log w`` from the pair ``(u = 1 - w, w)``: ``log1p(-u)`` where ``|u| < 1/2``, else
    ``log w`` (each branch's argument is guarded, so gradients stay finite).

    >>> round(float(log_of_pair(jnp.array(1e-9), jnp.array(1.0))) * 1e9, 6)  # log(1) gives 0
    -1.0
    """
    small = jnp.abs(u) < 0.5
    return jnp.where(small, jnp.log1p(-jnp.where(small, u, 0.0)), jnp.log(jnp.where(small, 1.0, w)))


def scan_steps(body, carry, xs):
    """``lax.scan`` of ``body`` over steps with a rematerialised body: reverse mode stores
    only the carries per step and recomputes the step's coefficients (a few multiply-adds)
    instead of storing them."""
    steps = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if steps == 0:
        return carry
    body = jax.checkpoint(body)
    return jax.lax.scan(body, carry, xs, unroll=min(UNROLL, steps))[0]


def ratio_and_excess(co) -> tuple[Array, Array]:
    """A step's ``(r, 1 - r - q_rel)``, formed from ``log_r`` and ``q_rel`` where a
    hand-built :class:`~schedopt.gaussian.solvers.StepCoefficients` lacks them."""
    ratio = jnp.exp(co.log_r) if co.ratio is None else co.ratio
    excess = (1.0 - ratio) - co.q_rel if co.excess is None else co.excess
    return ratio, excess


def _step(solver, c, inputs):
    return solver.step_map(c, *inputs)


@eqx.filter_custom_jvp
def deterministic_log_ratio(solver, c: Array, w0: Array, u0: Array, inputs) -> Array:
    """``log(w_0 prod_k r_k)`` per eigenvalue of a deterministic single-step ``solver``
    (``r_k`` from its ``step_map`` on the per-step ``inputs``), from ``u0 = 1 - w0``.

    In blocks of :data:`BLOCK` steps, each chained from ``(u, w) = (0, 1)`` with
    ``u' = r u + (1 - r)`` and ``w' = r w`` and ended by one log (:func:`log_of_pair`); the
    blocks' logs are summed. A float32 ``r`` near 1 keeps few digits of ``1 - r``, so a
    chain of ``N`` steps loses about ``N`` roundings relative to ``log w``; blocks bound
    that to ``BLOCK`` at ``N / BLOCK`` logs per eigenvalue. The JVP is
    ``dw_0 / w_0 + sum_k dr_k / r_k``.

    >>> from schedopt.gaussian import Euler, sigma_grid
    >>> c, solver = jnp.array([1.0]), Euler()
    >>> inputs = solver.step_inputs(sigma_grid([2.0, 0.0]))
    >>> round(float(deterministic_log_ratio(solver, c, c, 0 * c, inputs)[0]), 6)  # log 0.2
    -1.609438
    """

    def block(xs):  # chain len(xs[0]) steps from (0, 1), then one log
        u, w = jnp.zeros_like(c), jnp.ones_like(c)
        for j in range(xs[0].shape[0]):
            r, excess = ratio_and_excess(_step(solver, c, [x[j] for x in xs]))
            u, w = r * u + excess, r * w
        return log_of_pair(u, w)

    log_w = log_of_pair(u0, w0)
    steps = inputs[0].shape[0]
    full = steps // BLOCK * BLOCK
    if full:
        blocks = [x[:full].reshape(-1, BLOCK) for x in inputs]
        log_w = jax.lax.scan(lambda acc, xs: (acc + block(xs), None), log_w, blocks)[0]
    if steps > full:
        log_w = log_w + block([x[full:] for x in inputs])
    return log_w


@deterministic_log_ratio.def_jvp
def _deterministic_log_ratio_jvp(primals, tangents):
    solver, c, w0, _, inputs = primals
    d_solver, dc, dw0, _, d_inputs = tangents
    out = deterministic_log_ratio(*primals)

    def ratios(solver, c, inputs):  # (num_steps, d)
        return ratio_and_excess(_step(solver, c[None, :], [x[:, None] for x in inputs]))[0]

    tangent = jnp.zeros_like(out)
    if not all(t is None for t in jax.tree_util.tree_leaves((d_solver, dc, d_inputs))):
        r, dr = eqx.filter_jvp(ratios, (solver, c, inputs), (d_solver, dc, d_inputs))
        tangent = jnp.sum(dr / r, axis=0)
    if dw0 is not None:
        tangent = tangent + dw0 / w0
    return out, tangent


def stochastic_chain(solver, c: Array, mean: Array, inputs, start: Start) -> tuple[Array, Array]:
    """``(log w_N, delta_N)`` of ``w' = r w + q_rel`` and ``delta' = a delta + b mu``,
    carrying ``u = 1 - w`` beside ``w`` with ``u' = r u + (1 - r - q_rel)``.

    >>> from schedopt.gaussian import Ancestral, sigma_grid
    >>> c, solver = jnp.array([1.0]), Ancestral()
    >>> inputs = solver.step_inputs(sigma_grid([2.0, 1.0]))
    >>> log_w, _ = stochastic_chain(solver, c, 0 * c, inputs, Start(c, 0 * c))
    >>> # s_down = 1/2, s_up^2 = 3/4: a = (1 + 2 s_down) / 5, r = a^2 5 / 2, q_rel = (3/4) / 2
    >>> round(float(jnp.exp(log_w[0])), 6)
    0.775
    """
    track = start.delta is not None or solver.drifts_mean
    delta0 = jnp.zeros_like(c) if start.delta is None else start.delta

    def body(carry, x):
        u, w, delta = carry
        co = _step(solver, c, x)
        r, excess = ratio_and_excess(co)
        if track:
            delta = co.a * delta + (co.b * mean if solver.drifts_mean else 0.0)
        return (r * u + excess, r * w + co.q_rel, delta), None

    u, w, delta = scan_steps(body, (start.u, start.w, delta0), inputs)
    return log_of_pair(u, w), delta


def mean_offset(solver, c: Array, mean: Array, inputs, delta0: Array | None) -> Array:
    """``delta_N`` of ``delta' = a delta + b mu`` from ``delta0`` (``None``: zero; then, for
    a solver without mean drift, no scan at all).

    >>> from schedopt.gaussian import Euler, sigma_grid
    >>> c, solver = jnp.array([1.0]), Euler()
    >>> inputs = solver.step_inputs(sigma_grid([2.0, 0.0]))
    >>> round(float(mean_offset(solver, c, 0 * c, inputs, c)[0]), 6)  # gain c / (c + s^2)
    0.2
    """
    if delta0 is None and not solver.drifts_mean:
        return jnp.zeros_like(c)

    def body(delta, x):
        co = _step(solver, c, x)
        return co.a * delta + (co.b * mean if solver.drifts_mean else 0.0), None

    return scan_steps(body, jnp.zeros_like(c) if delta0 is None else delta0, inputs)


# ---- chunks of the spectrum ------------------------------------------------------------


def _chunks(arrays, fills, chunk):
    d = arrays[0].shape[0]
    pad = (-d) % chunk
    out = []
    for array, fill in zip(arrays, fills, strict=True):
        padded = jnp.concatenate([array, jnp.full((pad,), fill, array.dtype)])
        out.append(padded.reshape(-1, chunk))
    return tuple(out)


def chunked_sum(fn, arrays: tuple[Array, ...], fills: tuple[float, ...], chunk: int | None = None):
    """``sum`` of ``fn(*arrays)`` (a scalar) evaluated in chunks of ``chunk`` entries of the
    ``(d,)`` arrays (``chunk``: :data:`CHUNK` by default), padded with ``fills`` (which must
    contribute 0).

    >>> x = jnp.arange(10.0)
    >>> float(chunked_sum(lambda a: jnp.sum(a**2), (x,), (0.0,), chunk=4))
    285.0
    """
    chunk = CHUNK if chunk is None else chunk
    if arrays[0].shape[0] <= chunk:
        return fn(*arrays)
    body = jax.checkpoint(lambda xs: fn(*xs))
    return jnp.sum(jax.lax.map(body, _chunks(arrays, fills, chunk)))


def chunked_concat(
    fn, arrays: tuple[Array, ...], fills: tuple[float, ...], chunk: int | None = None
):
    """``fn(*arrays)`` (a tuple of ``(d,)`` arrays) evaluated in chunks and concatenated.

    >>> x = jnp.arange(5.0)
    >>> chunked_concat(lambda a: (2 * a,), (x,), (0.0,), chunk=2)[0].tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    d, chunk = arrays[0].shape[0], CHUNK if chunk is None else chunk
    if d <= chunk:
        return fn(*arrays)
    body = jax.checkpoint(lambda xs: fn(*xs))
    out = jax.lax.map(body, _chunks(arrays, fills, chunk))
    return tuple(o.reshape(-1)[:d] for o in out)
