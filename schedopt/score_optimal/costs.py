"""The transport costs of Williams et al. (Score-Optimal Diffusion Schedules) between two noise
levels, estimated from denoiser evaluations only.

Sampling moves from noise level ``s`` to ``s'`` (EDM variables ``y = x0 + s eps``, score
``S_s(y) = (D(y; s) - y) / s^2``, velocity ``v(s) = s`` by default):

- **corrector-optimised** ``L_c(s, s') = v(s')^2 E_{y ~ p_s} ||S_{s'}(y) - S_s(y)||^2``: the
  work a corrector does when samples of ``p_s`` are declared samples of ``p_{s'}``.
- **predictor-optimised** ``L_p(s, s') = v(s')^2 E_{y ~ p_s} ||S_{s'}(F y) - grad log q(F y)||^2``:
  the same Fisher divergence after one Euler (DDIM) step ``F y = y + (s' - s)(y - D(y; s))/s``
  of the probability-flow ODE, ``q = F # p_s``. By the change of variables
  ``J_F^T grad log q(F y) = S_s(y) - grad log |det J_F(y)|``, which needs the Jacobian
  ``J_F``: exactly (``trace="exact"``, ``jax.jacfwd``) or with Hutchinson probes of a
  truncated series for ``log det`` and ``J_F^-T`` (``trace="hutchinson"``).

Locally ``L_c(s, s + h) = delta_c(s) h^2`` (``order = 2``). For an exact denoiser the
first-order term of ``L_p`` cancels (the Euler step is consistent with the continuity
equation), so ``L_p(s, s + h) = delta_p(s) h^4`` (``order = 4``); a trained denoiser adds
an ``O(h^2)`` inconsistency term. Closed forms for Gaussian data are in
:mod:`schedopt.score_optimal.gaussian`.
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractVar
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._checks import check_choice, check_positive_int, is_concrete
from ..models.base import AbstractDenoiser

VELOCITIES = ("sigma", "one")
TRACES = ("exact", "hutchinson")
COSTS = ("corrector", "predictor")


def velocity(name: str, noise_level: ArrayLike) -> Array:
    """The velocity ``v(s)`` that scales a cost: ``"sigma"`` (``v = s``, the paper's choice) or
    ``"one"`` (``v = 1``, the plain Fisher divergence).

    >>> float(velocity("sigma", 2.0)), float(velocity("one", 2.0))
    (2.0, 1.0)
    """
    check_choice("velocity", name, VELOCITIES)
    s = jnp.asarray(noise_level, dtype=jnp.result_type(float))
    return s if name == "sigma" else jnp.ones_like(s)


def check_noise_levels(name: str, noise_levels: ArrayLike, min_size: int = 2) -> Array:
    """A 1-D array of >= ``min_size`` positive, finite noise levels (checked when concrete)."""
    levels = jnp.asarray(noise_levels, dtype=jnp.result_type(float))
    if levels.ndim != 1 or levels.shape[0] < min_size:
        raise ValueError(
            f"`{name}` must be a 1-D array of >= {min_size} noise levels, got shape {levels.shape}"
        )
    if is_concrete(levels):
        arr = np.asarray(levels)
        if not np.all(np.isfinite(arr) & (arr > 0)):
            bad = arr[~(np.isfinite(arr) & (arr > 0))][:3]
            raise ValueError(f"`{name}` must be finite and > 0 everywhere; it holds {bad.tolist()}")
    return levels


def check_clean_batch(x0: ArrayLike) -> Array:
    """Clean samples of shape ``(batch >= 1, *event)``, float."""
    x0 = jnp.asarray(x0)
    if x0.ndim < 2 or x0.shape[0] < 1 or not jnp.issubdtype(x0.dtype, jnp.floating):
        raise ValueError(
            f"`x0` must be a float array of clean samples (batch, *event), got shape {x0.shape} "
            f"and dtype {x0.dtype}"
        )
    return x0


class AbstractScoreCost(eqx.Module):
    """A transport cost ``L(s, s')`` between noise levels, Monte Carlo over ``y ~ p_s``.

    Subclasses implement :meth:`pointwise` (the cost of each sample) and set ``order``,
    the power of the step in the local expansion ``L(s, s + h) ~ delta(s) |h|^order``.
    """

    velocity: AbstractVar[str]
    name: ClassVar[str] = "cost"
    order: ClassVar[int] = 2

    @abc.abstractmethod
    def pointwise(
        self,
        denoiser: AbstractDenoiser,
        y: Float[Array, "batch ..."],
        noise_level: ArrayLike,
        next_level: ArrayLike,
        key: PRNGKeyArray,
    ) -> Float[Array, " batch"]:
        """Per-sample cost of moving ``y ~ p_s`` (``s = noise_level``) to ``next_level``."""

    def interval_costs(
        self,
        denoiser: AbstractDenoiser,
        x0: Float[ArrayLike, "batch ..."],
        noise_levels: Float[ArrayLike, " m"],
        key: PRNGKeyArray,
        num_substeps: int = 1,
        symmetric: bool = False,
    ) -> Float[Array, " m-1"]:
        """``L(s_k, s_{k+1})`` for consecutive ``noise_levels``, averaged over ``y = x0 + s_k eps``.

        One ``eps ~ N(0, I)`` per clean sample is shared by all intervals (common random
        numbers), so with a fixed ``key`` the costs are a deterministic function of the grid.
        With ``num_substeps = S > 1`` each interval is split into ``S`` geometric sub-steps
        and its cost is ``(sum_j L_j^(1/order))^order``, the cost of the interval walked as a
        path: as ``S`` grows this tends to the squared local length ``(int sqrt(delta))^2``
        of the interval, while one long jump ``S = 1`` is not local (with ``v(s') = s'`` a
        jump to a small ``s'`` looks cheap). ``symmetric=True`` averages each (sub-)step's
        cost with the reverse step's, ``(L(a, b) + L(b, a)) / 2``, which cancels the
        first-order error of the one-sided ``v(s')`` in the length (second-order accurate).
        Jit-able and differentiable in ``noise_levels``.

        >>> from schedopt.models import GaussianDenoiser
        >>> x0 = jax.random.normal(jax.random.key(0), (512, 2))
        >>> c = CorrectorCost().interval_costs(GaussianDenoiser(jnp.ones(2)), x0,
        ...                                    jnp.array([4.0, 2.0, 1.0]), jax.random.key(1))
        >>> c.shape
        (2,)
        """
        x0 = check_clean_batch(x0)
        levels = check_noise_levels("noise_levels", noise_levels).astype(x0.dtype)
        sub = check_positive_int("num_substeps", num_substeps)
        if sub > 1:  # geometric sub-steps s_k (s_{k+1} / s_k)^(j / sub) inside each interval
            frac = jnp.arange(sub, dtype=levels.dtype) / sub
            inner = levels[:-1, None] * (levels[1:, None] / levels[:-1, None]) ** frac
            fine = jnp.concatenate([inner.reshape(-1), levels[-1:]])
            costs = self.interval_costs(denoiser, x0, fine, key, 1, symmetric)
            root = jnp.maximum(costs, 0.0).reshape(-1, sub) ** (1.0 / self.order)
            return jnp.sum(root, axis=1) ** self.order
        key_eps, key_probe = jax.random.split(key)
        eps = jax.random.normal(key_eps, x0.shape, x0.dtype)
        keys = jax.random.split(key_probe, levels.shape[0] - 1)
        forward = self._mean_costs(denoiser, x0, eps, (levels[:-1], levels[1:], keys))
        if not symmetric:
            return forward
        back_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
        back = self._mean_costs(denoiser, x0, eps, (levels[1:], levels[:-1], back_keys))
        return 0.5 * (forward + back)

    def _mean_costs(self, denoiser, x0, eps, steps) -> Array:
        """``E_y pointwise(y = x0 + s eps, s, s', key)`` for each step ``(s, s', key)`` of
        ``steps`` (arrays with a leading step axis), the samples taken ``chunk_size`` at a time.

        Called with concrete arrays (not under ``jit``), the (step, chunk) pairs run as a
        Python loop over one jitted body; traced, as one flat ``lax.map`` over the pairs.
        XLA's CPU runtime hung at random on loops whose body holds a large computation (a
        loop over samples nested in a loop over steps, two steps in one body, or a U-Net's
        Jacobian in the body; jax 0.10 on 2 cores), so the eager path has no XLA loop.
        The padding rows of the last chunk are masked.
        """
        n = x0.shape[0]
        chunk = min(getattr(self, "chunk_size", n), n)
        num_chunks = -(-n // chunk)
        pad = num_chunks * chunk - n

        def chunks(a):
            padded = jnp.concatenate([a, jnp.zeros((pad, *a.shape[1:]), a.dtype)])
            return padded.reshape(num_chunks, chunk, *a.shape[1:])

        x0_chunks, eps_chunks = chunks(x0), chunks(eps)
        keep = (jnp.arange(num_chunks * chunk) < n).reshape(num_chunks, chunk)
        num_steps = steps[0].shape[0]
        data = (x0_chunks, eps_chunks, keep)
        if all(is_concrete(a) for a in (*steps[:2], x0, eps)):
            pairs = [
                jnp.asarray(divmod(index, num_chunks)) for index in range(num_steps * num_chunks)
            ]
            sums = jnp.stack([_chunk_sum(self, denoiser, data, steps, *ij) for ij in pairs])
        else:
            sums = jax.lax.map(
                lambda index: _chunk_sum_impl(
                    self, denoiser, data, steps, index // num_chunks, index % num_chunks
                ),
                jnp.arange(num_steps * num_chunks),
            )
        return jnp.sum(sums.reshape(num_steps, num_chunks), axis=1) / n

    def local_cost(
        self,
        denoiser: AbstractDenoiser,
        x0: Float[ArrayLike, "batch ..."],
        noise_levels: Float[ArrayLike, " m"],
        key: PRNGKeyArray,
        relative_step: float = 0.02,
    ) -> Float[Array, " m"]:
        """``delta(s)`` with ``L(s, s + h) ~ delta(s) |h|^order``, at each noise level.

        Centred: ``(L(s, s + h) + L(s, s - h)) / (2 h^order)`` with ``h = relative_step * s``,
        which cancels the ``h^(order + 1)`` term (relative error ``O(relative_step^2)``).
        """
        x0 = check_clean_batch(x0)
        levels = check_noise_levels("noise_levels", noise_levels, 1).astype(x0.dtype)
        key_eps, key_probe = jax.random.split(key)
        eps = jax.random.normal(key_eps, x0.shape, x0.dtype)
        keys = jax.vmap(lambda k: jax.random.split(k))(jax.random.split(key_probe, levels.shape[0]))
        h = relative_step * levels
        up = self._mean_costs(denoiser, x0, eps, (levels, levels + h, keys[:, 0]))
        down = self._mean_costs(denoiser, x0, eps, (levels, levels - h, keys[:, 1]))
        return 0.5 * (up + down) / h**self.order


def _chunk_sum_impl(cost, denoiser, data, steps, i, j) -> Array:
    """Sum of ``cost.pointwise`` over chunk ``j`` of the samples at step ``i`` of ``steps``."""
    x0_chunks, eps_chunks, keep = data
    s, s_next, k = (a[i] for a in steps)
    y = x0_chunks[j] + s * eps_chunks[j]
    values = cost.pointwise(denoiser, y, s, s_next, jax.random.fold_in(k, j))
    return jnp.sum(jnp.where(keep[j], values, 0.0))


_chunk_sum = eqx.filter_jit(_chunk_sum_impl)


def _check_velocity(value: str) -> None:
    check_choice("velocity", value, VELOCITIES)


def _sum_event(x: Array) -> Array:
    return jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=1)


class CorrectorCost(AbstractScoreCost):
    """``L_c(s, s') = v(s')^2 E_{y ~ p_s} ||S_{s'}(y) - S_s(y)||^2``: two denoiser calls.

    Gaussian data ``N(0, c)``: ``L_c(s, s + h) = 4 s^4 / (c + s^2)^3 h^2 + O(h^3)`` per direction.

    >>> from schedopt.models import GaussianDenoiser
    >>> den = GaussianDenoiser(jnp.ones(1))
    >>> x0 = jax.random.normal(jax.random.key(0), (4096, 1))
    >>> d = CorrectorCost().local_cost(den, x0, jnp.array([1.0]), jax.random.key(1))
    >>> round(float(d[0]), 1)  # 4 s^4 / (c + s^2)^3 = 0.5
    0.5
    """

    velocity: str = eqx.field(static=True, default="sigma")
    name: ClassVar[str] = "corrector"
    order: ClassVar[int] = 2

    def __check_init__(self):
        _check_velocity(self.velocity)

    def pointwise(self, denoiser, y, noise_level, next_level, key=None):
        diff = denoiser.score(y, next_level) - denoiser.score(y, noise_level)
        return velocity(self.velocity, next_level) ** 2 * _sum_event(diff)

    def local_cost(self, denoiser, x0, noise_levels, key, relative_step=None):
        """``delta_c(s) = v(s)^2 E_{y ~ p_s} ||d S_s(y) / ds||^2``, exactly, by ``jax.jvp``.

        (``relative_step`` is ignored: no finite difference is taken.)
        """
        x0 = check_clean_batch(x0)
        levels = check_noise_levels("noise_levels", noise_levels, 1).astype(x0.dtype)
        eps = jax.random.normal(jax.random.split(key)[0], x0.shape, x0.dtype)

        def one(s):
            y = x0 + s * eps
            _, ds_score = jax.jvp(lambda level: denoiser.score(y, level), (s,), (jnp.ones_like(s),))
            return velocity(self.velocity, s) ** 2 * jnp.mean(_sum_event(ds_score))

        return jax.lax.map(one, levels)


class PredictorCost(AbstractScoreCost):
    """``L_p(s, s')``: Fisher divergence of ``p_{s'}`` from the one-Euler-step pushforward of p_s.

    ``trace="exact"`` forms the ``d x d`` Jacobian of the step per sample (fine up to a few
    hundred dimensions). ``trace="hutchinson"`` uses ``num_terms`` terms of
    ``log det(I + hA) = sum_k (-1)^(k+1) tr((hA)^k) / k`` with Rademacher probes ``z``
    (``tr(M) ~ z^T M z``) and of ``J^-T = sum_k (-h A^T)^k``, ``A = (I - dD/dy) / s``; two
    independent probes give residuals ``r_1, r_2`` and the unbiased ``r_1 . r_2``. The
    series needs ``|h| ||A|| < 1`` (steps ``|s' - s| < s`` suffice for an exact denoiser).
    :meth:`interval_costs` and :meth:`local_cost` take the samples ``chunk_size`` at a time
    (memory); :meth:`pointwise` evaluates the batch it is given at once.

    Gaussian data ``N(0, c)``: ``L_p(s, s + h) = s^2 c^2 / (c + s^2)^5 h^4 + O(h^5)`` per direction.

    >>> from schedopt.models import GaussianDenoiser
    >>> den = GaussianDenoiser(jnp.ones(1))
    >>> x0 = jax.random.normal(jax.random.key(0), (4096, 1))
    >>> d = PredictorCost().local_cost(den, x0, jnp.array([1.0]), jax.random.key(1))
    >>> round(float(d[0]), 2)  # s^2 c^2 / (c + s^2)^5 = 1 / 32
    0.03
    """

    velocity: str = eqx.field(static=True, default="sigma")
    trace: str = eqx.field(static=True, default="exact")
    num_terms: int = eqx.field(static=True, default=8)
    chunk_size: int = eqx.field(static=True, default=32)
    name: ClassVar[str] = "predictor"
    order: ClassVar[int] = 4

    def __check_init__(self):
        _check_velocity(self.velocity)
        check_choice("trace", self.trace, TRACES)
        check_positive_int("num_terms", self.num_terms)
        check_positive_int("chunk_size", self.chunk_size)

    def pointwise(self, denoiser, y, noise_level, next_level, key):
        event = y.shape[1:]
        flat = y.reshape(y.shape[0], -1)
        s, s_next = noise_level, next_level
        h = s_next - s

        def denoise(v, level):
            return denoiser(v.reshape((1, *event)), level).reshape(-1)

        def step(v):
            return v + h * (v - denoise(v, s)) / s

        def target_and_score(v):
            fy = step(v)
            target = (denoise(fy, s_next) - fy) / s_next**2
            return target, (denoise(v, s) - v) / s**2

        if self.trace == "exact":

            def residual(v):
                target, score = target_and_score(v)

                def logdet(u):
                    jac = jax.jacfwd(step)(u)
                    return jnp.linalg.slogdet(jac)[1], jac

                grad_logdet, jac = jax.grad(logdet, has_aux=True)(v)
                return target - jnp.linalg.solve(jac.T, score - grad_logdet)

            r = jax.vmap(residual)(flat)
            return velocity(self.velocity, s_next) ** 2 * jnp.sum(r**2, axis=1)

        num_terms = self.num_terms

        def a_times(u, w):  # A w, A = (I - dD/dy) / s at u
            return (w - jax.jvp(lambda x: denoise(x, s), (u,), (w,))[1]) / s

        def logdet_probe(u, z):  # z^T log(I + hA(u)) z by the truncated series
            def body(k, carry):
                total, w = carry
                w = h * a_times(u, w)
                sign = 1.0 - 2.0 * (k % 2)  # (-1)^(k+1), k from 1
                return total - sign * jnp.dot(z, w) / k, w

            init = (jnp.zeros((), z.dtype), z)
            return jax.lax.fori_loop(1, num_terms + 1, body, init)[0]

        def inverse_transpose(u, w):  # J^-T w by the truncated Neumann series
            _, vjp = jax.vjp(lambda x: denoise(x, s), u)

            def body(_, carry):
                out, term = carry
                term = -h * (term - vjp(term)[0]) / s
                return out + term, term

            return jax.lax.fori_loop(0, num_terms, body, (w, w))[0]

        def residuals(v, k):
            target, score = target_and_score(v)
            probes = jax.random.rademacher(k, (2, v.shape[0]), v.dtype)
            grads = jax.vmap(lambda z: jax.grad(logdet_probe)(v, z))(probes)
            pushed = jax.vmap(lambda g: inverse_transpose(v, score - g))(grads)
            r = target - pushed
            return jnp.dot(r[0], r[1])

        dots = jax.vmap(residuals)(flat, jax.random.split(key, flat.shape[0]))
        return velocity(self.velocity, s_next) ** 2 * dots


def make_cost(name: str, *, velocity: str = "sigma", trace: str = "exact") -> AbstractScoreCost:
    """A cost by name: ``"corrector"`` or ``"predictor"``.

    >>> make_cost("predictor", trace="hutchinson").order
    4
    """
    check_choice("cost", name, COSTS)
    if name == "corrector":
        return CorrectorCost(velocity=velocity)
    return PredictorCost(velocity=velocity, trace=trace)
