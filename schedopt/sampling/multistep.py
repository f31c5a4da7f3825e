"""The probability-flow term and the low-NFE solvers on diffrax: DPM-Solver++(2M/3M),
UniPC, iPNDM and DPM-Solver++(2M) SDE, plus an explicit Runge–Kutta step with its stages
unrolled.

:class:`ProbabilityFlowTerm` is ``dy = (y - D(y; s)) / s ds`` along the piecewise-linear
path ``u -> s(u)`` through the grid's levels at ``u = 0, 1, ..., M - 1``; every diffrax
solver that takes a plain term (Euler, the explicit Runge–Kutta methods) steps it, and the
multistep solvers also read the denoiser and the levels from it. Their
``solver_state`` carries the step counter, the grid's coefficients (computed once in
``init``, :mod:`schedopt._multistep`) and the history (previous denoiser outputs, or
derivatives for iPNDM; UniPC also its corrected state). They need ``StepTo`` at the
integer times ``0, 1, ..., M - 1`` (as :func:`~schedopt.sampling.probability_flow` uses
them) and cost one evaluation per step.

Few steps unrolled, many steps looped: XLA's CPU backend runs the backward pass of
convolutions inside loops several times slower than unrolled, so grids of at most
:data:`UNROLL_MAX_STEPS` solver steps are stepped in Python over the solver's own
``step`` (:func:`unrolled_solve`); diffrax's Runge–Kutta solvers run their stages in a
while loop, so there :class:`UnrolledRungeKutta` takes the same tableau with its stages
unrolled. Longer grids go through ``diffrax.diffeqsolve``.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
from jaxtyping import Array, Float

from .. import _multistep
from .._checks import is_concrete
from ..models.base import AbstractDenoiser

#: Grids of at most this many solver steps are stepped unrolled (see the module docstring).
UNROLL_MAX_STEPS = 16


class ProbabilityFlowTerm(diffrax.AbstractTerm):
    """``dy = (y - D(y; s)) / s ds`` with ``s(u)`` linear between ``levels`` at integer ``u``.

    ``total_steps`` is the number of steps of the whole sampling grid: ``M - 1`` between the
    levels, plus one when a last step to ``s = 0`` follows (multistep solvers lower their
    order towards the end of the grid).

    >>> from schedopt.models import GaussianDenoiser
    >>> term = ProbabilityFlowTerm(GaussianDenoiser(jnp.ones(1)), jnp.array([2.0, 1.0]), 2)
    >>> float(term.contr(0.0, 1.0)), round(float(term.vf(0.0, jnp.ones((1, 1)), None)[0, 0]), 6)
    (-1.0, 0.4)
    """

    denoiser: AbstractDenoiser
    levels: Float[Array, " m"]
    total_steps: int = eqx.field(static=True)

    def noise_level(self, u) -> Array:
        """``s(u)``, linear between the levels."""
        ts = jnp.arange(self.levels.shape[0], dtype=self.levels.dtype)
        return diffrax.LinearInterpolation(ts=ts, ys=self.levels).evaluate(u)

    def denoise(self, u, y) -> Array:
        """``D(y; s(u))``."""
        return self.denoiser(y, self.noise_level(u))

    def vf(self, t, y, args):
        del args
        s = self.noise_level(t)
        return (y - self.denoiser(y, s)) / s

    def contr(self, t0, t1, **kwargs):
        del kwargs
        return self.noise_level(t1) - self.noise_level(t0)

    def prod(self, vf, control):
        return jtu.tree_map(lambda v: control * v, vf)


def _flow(terms) -> ProbabilityFlowTerm:
    """The :class:`ProbabilityFlowTerm` inside ``terms`` (first of a ``MultiTerm``; diffeqsolve
    wraps each term to handle the integration direction, always forward here)."""
    if isinstance(terms, diffrax.MultiTerm):
        terms = terms.terms[0]
    while not isinstance(terms, ProbabilityFlowTerm) and hasattr(terms, "term"):
        terms = terms.term
    if not isinstance(terms, ProbabilityFlowTerm):
        raise ValueError(
            f"multistep solvers step a ProbabilityFlowTerm, got {type(terms).__name__}"
        )
    return terms


def _done(y0, y1, state):
    return y1, None, dict(y0=y0, y1=y1), state, diffrax.RESULTS.successful


class AbstractMultistepSolver(diffrax.AbstractSolver):
    """A multistep solver over :class:`ProbabilityFlowTerm`: one denoiser call per step,
    history in ``solver_state``, coefficients from :mod:`schedopt._multistep`."""

    name: ClassVar[str] = "multistep"
    term_structure: ClassVar = ProbabilityFlowTerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    def strong_order(self, terms):
        return None

    @abc.abstractmethod
    def plan(self, terms) -> tuple:
        """The per-step coefficient arrays (leading axis: solver step) for ``terms``."""

    def history_size(self) -> int:
        """Arrays of the state's shape kept between steps."""
        return self.order(None) - 1

    def init(self, terms, t0, t1, y0, args):
        del t0, t1, args
        history = tuple(jnp.zeros_like(y0) for _ in range(self.history_size()))
        return jnp.zeros((), jnp.int32), self.plan(terms), history

    def func(self, terms, t0, y0, args):
        return _flow(terms).vf(t0, y0, args)


def _at(plan, k):
    return tuple(field[k] for field in plan)


class DPMSolverPP(AbstractMultistepSolver):
    """DPM-Solver++ multistep, data prediction, order 2 (``"dpmpp-2m"``, k-diffusion's
    ``sample_dpmpp_2m``) or 3 (``"dpmpp-3m"``, diffusers' ``solver_order=3``).

    ``lower_order_final``: as diffusers, grids of fewer than 15 steps end with lower
    orders (only the last step to ``s = 0`` with order 2, which every solver here takes
    as first order).

    >>> DPMSolverPP(order=3).order(None)
    3
    """

    solver_order: int = eqx.field(static=True, default=2)
    lower_order_final: bool = eqx.field(static=True, default=True)

    def __init__(self, order: int = 2, lower_order_final: bool = True):
        if order not in (2, 3):
            raise ValueError(f"`order` must be 2 or 3 for DPM-Solver++, got order={order!r}")
        self.solver_order = order
        self.lower_order_final = bool(lower_order_final)

    @property
    def name(self) -> str:
        return f"dpmpp-{self.solver_order}m"

    def order(self, terms):
        return self.solver_order

    def plan(self, terms):
        flow = _flow(terms)
        p = _multistep.dpmpp_plan(
            flow.levels, flow.total_steps, self.solver_order, self.lower_order_final
        )
        return p.ratio, p.weights

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        k, plan, history = solver_state
        ratio, weights = _at(plan, k)
        denoised = _flow(terms).denoise(t0, y0)
        y1, history = _multistep.linear_update(y0, denoised, history, ratio, weights)
        return _done(y0, y1, (k + 1, plan, history))


class UniPC(AbstractMultistepSolver):
    """UniPC with ``B(h) = expm1(h)`` (bh2), data prediction, ``order`` 1–3 (default 2), as
    diffusers' ``UniPCMultistepScheduler``: its corrector reuses the next evaluation, so
    one evaluation per step. ``lower_order_final``: orders ``min(order, total_steps - i)``.

    >>> UniPC().order(None)
    2
    """

    solver_order: int = eqx.field(static=True, default=2)
    lower_order_final: bool = eqx.field(static=True, default=True)

    name: ClassVar[str] = "unipc"

    def __init__(self, order: int = 2, lower_order_final: bool = True):
        if order not in (1, 2, 3):
            raise ValueError(f"`order` must be 1, 2 or 3 for UniPC, got order={order!r}")
        self.solver_order = order
        self.lower_order_final = bool(lower_order_final)

    def order(self, terms):
        return self.solver_order

    def history_size(self):
        return self.solver_order

    def plan(self, terms):
        flow = _flow(terms)
        p = _multistep.unipc_plan(
            flow.levels, flow.total_steps, self.solver_order, self.lower_order_final
        )
        return p.ratio_p, p.predictor, p.ratio_c, p.corrector, p.corrects

    def init(self, terms, t0, t1, y0, args):
        k, plan, history = super().init(terms, t0, t1, y0, args)
        return k, plan, (y0, history)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        k, plan, (corrected, history) = solver_state
        denoised = _flow(terms).denoise(t0, y0)
        y1, corrected, history = _multistep.unipc_update(
            y0, denoised, corrected, history, _at(plan, k)
        )
        return _done(y0, y1, (k + 1, plan, (corrected, history)))


class IPNDM(AbstractMultistepSolver):
    """iPNDM: Adams–Bashforth of order up to ``max_order`` (default 4) on the EDM ODE,
    lower orders only while warming up (as the GITS and DMN code bases).

    >>> IPNDM().order(None)
    4
    """

    max_order: int = eqx.field(static=True, default=4)

    name: ClassVar[str] = "ipndm"

    def __check_init__(self):
        if self.max_order not in _multistep.ADAMS_BASHFORTH:
            raise ValueError(f"`max_order` must be 1, 2, 3 or 4, got max_order={self.max_order!r}")

    def order(self, terms):
        return self.max_order

    def plan(self, terms):
        p = _multistep.ipndm_plan(_flow(terms).levels, self.max_order)
        return p.step, p.weights

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        k, plan, history = solver_state
        flow = _flow(terms)
        s = flow.noise_level(t0)
        derivative = (y0 - flow.denoise(t0, y0)) / s
        step, weights = _at(plan, k)
        y1, history = _multistep.ipndm_update(y0, derivative, history, step, weights)
        return _done(y0, y1, (k + 1, plan, history))


class DPMSolverPPSDE(AbstractMultistepSolver):
    """DPM-Solver++(2M) SDE (k-diffusion's ``sample_dpmpp_2m_sde``, midpoint form) with
    ``eta`` (1: the reverse SDE; 0: DPM-Solver++(2M)). Terms: ``MultiTerm(flow, noise)``
    where ``noise.contr(k, k + 1)`` is step ``k``'s unit-variance draw.

    >>> DPMSolverPPSDE(eta=0.5).eta
    0.5
    """

    eta: float | Array = 1.0

    name: ClassVar[str] = "dpmpp-2m-sde"
    term_structure: ClassVar = diffrax.MultiTerm[tuple[ProbabilityFlowTerm, diffrax.AbstractTerm]]

    def __check_init__(self):
        if is_concrete(self.eta) and not float(self.eta) >= 0.0:
            raise ValueError(f"`eta` must be >= 0, got eta={self.eta!r}")

    def order(self, terms):
        return 2

    def strong_order(self, terms):
        return 0.5

    def plan(self, terms):
        p = _multistep.dpmpp_sde_plan(_flow(terms).levels, self.eta)
        return p.ratio, p.weights, p.noise_scale

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        k, plan, history = solver_state
        noise_term = terms.terms[1]
        ratio, weights, noise_scale = _at(plan, k)
        denoised = _flow(terms).denoise(t0, y0)
        noise = noise_term.contr(t0, t1)
        y1, history = _multistep.linear_update(
            y0, denoised, history, ratio, weights, noise, noise_scale
        )
        return _done(y0, y1, (k + 1, plan, history))


def unit_noise_term(path: diffrax.AbstractPath) -> diffrax.ControlTerm:
    """The noise term of :class:`DPMSolverPPSDE`: ``contr(k, k + 1)`` is ``path``'s
    increment, the step's draw."""

    def diffusion(t, y, args):
        return lx.IdentityLinearOperator(jax.eval_shape(lambda: y))

    return diffrax.ControlTerm(diffusion, path)


class UnrolledRungeKutta(diffrax.AbstractSolver):
    """An explicit Runge–Kutta solver with its stages unrolled in Python.

    Takes a diffrax explicit RK solver's Butcher tableau and computes exactly its step
    (``k_j = f(t0 + c_j dt, y0 + sum_l a_jl k_l) * control``, ``y1 = y0 + sum_j b_j k_j``,
    first stage reused for FSAL tableaux); diffrax itself runs the stages in a while
    loop, whose backward pass is slow on XLA's CPU backend.

    >>> UnrolledRungeKutta(diffrax.Heun()).order(None)
    2
    """

    solver: diffrax.AbstractRungeKutta

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return None

    def init(self, terms, t0, t1, y0, args):
        if self.solver.tableau.fsal:
            return terms.vf(t0, y0, args)
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        tableau = self.solver.tableau
        control = terms.contr(t0, t1)
        dt = t1 - t0
        fs = [solver_state if tableau.fsal else terms.vf(t0, y0, args)]
        stages = [terms.prod(fs[0], control)]
        for c, row in zip(tableau.c, tableau.a_lower, strict=True):
            y = y0
            for a, k in zip(row, stages, strict=True):
                if a != 0:
                    y = jtu.tree_map(lambda yi, ki, a=float(a): yi + a * ki, y, k)
            fs.append(terms.vf(t0 + float(c) * dt, y, args))
            stages.append(terms.prod(fs[-1], control))
        y1 = y0
        for b, k in zip(tableau.b_sol, stages, strict=True):
            if b != 0:
                y1 = jtu.tree_map(lambda yi, ki, b=float(b): yi + b * ki, y1, k)
        # FSAL: the last stage is evaluated at (t1, y1), the next step's first
        state = fs[-1] if tableau.fsal else None
        return _done(y0, y1, state)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


def unrolled_solve(solver: diffrax.AbstractSolver, terms, y0, num_steps: int):
    """``num_steps`` steps of ``solver`` over ``u = 0, 1, ..., num_steps``, in Python.

    Diffrax's explicit RK solvers are replaced by :class:`UnrolledRungeKutta` of the same
    tableau.

    >>> from schedopt.models import GaussianDenoiser
    >>> term = ProbabilityFlowTerm(GaussianDenoiser(jnp.ones(1)), jnp.array([2.0, 1.0]), 1)
    >>> round(float(unrolled_solve(diffrax.Euler(), term, jnp.ones((1, 1)), 1)[0, 0]), 6)
    0.6
    """
    if isinstance(solver, diffrax.AbstractRungeKutta):
        solver = UnrolledRungeKutta(solver)
    y = y0
    dtype = jnp.result_type(float)
    state = solver.init(terms, jnp.asarray(0.0, dtype), jnp.asarray(num_steps, dtype), y0, None)
    for k in range(num_steps):
        t0, t1 = jnp.asarray(k, dtype), jnp.asarray(k + 1, dtype)
        y, _, _, state, _ = solver.step(terms, t0, t1, y, None, state, False)
    return y


def solve_grid(solver: diffrax.AbstractSolver, terms, y0, num_steps: int):
    """``num_steps`` steps over ``u = 0, 1, ..., num_steps``: unrolled for at most
    :data:`UNROLL_MAX_STEPS` steps (:func:`unrolled_solve`), else ``diffeqsolve`` with
    ``StepTo`` at the integer times.

    >>> from schedopt.models import GaussianDenoiser
    >>> term = ProbabilityFlowTerm(GaussianDenoiser(jnp.ones(1)), jnp.array([2.0, 1.0]), 1)
    >>> round(float(solve_grid(diffrax.Euler(), term, jnp.ones((1, 1)), 1)[0, 0]), 6)
    0.6
    """
    if num_steps <= UNROLL_MAX_STEPS:
        return unrolled_solve(solver, terms, y0, num_steps)
    ts = jnp.arange(num_steps + 1, dtype=jnp.result_type(y0.dtype, float))
    sol = diffrax.diffeqsolve(
        terms,
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=y0,
        stepsize_controller=diffrax.StepTo(ts=ts),
        saveat=diffrax.SaveAt(t1=True),
        max_steps=num_steps,
    )
    return sol.ys[0]


#: The multistep solvers by name.
MULTISTEP_SOLVERS = {
    "dpmpp-2m": lambda: DPMSolverPP(order=2),
    "dpmpp-3m": lambda: DPMSolverPP(order=3),
    "unipc": UniPC,
    "ipndm": IPNDM,
}
