"""Error decomposition of a VE sampler on a Gaussian-mixture target with an exact score (Wang,
He & Tao, "Evaluating the design space of diffusion-based generative models").

All arms share the same clean draws ``x0``, prior noise ``eps`` and (for Euler–Maruyama)
Brownian path (common random numbers). With ``S = s(1)`` (``sigma_max``), ``Phi_N`` the
``N``-step sampler and ``Phi_ref`` a converged reference (many steps of the same ODE or
SDE, the same Brownian path), ``D`` the denoiser under test and ``D*`` the exact one:

    A = Phi_N(D,  S eps)         the sample                B = Phi_N(D*, S eps)
    C = Phi_ref(D*, S eps)       exact score, no disc.     Z = Phi_ref(D*, x0 + S eps)

``Z`` starts from the true noised marginal, so it is (up to the reference's own error and
the stop at ``sigma_min``) a draw from the data. The per-sample displacements add exactly,
``A - Z = (A - B) + (B - C) + (C - Z)``, and the reported terms are their root mean square
norms ``E = sqrt(E ||.||^2)``:

    E_S = rms(A - B)   score error (same sampler, same start)
    E_D = rms(B - C)   discretisation error (exact score, N steps vs the reference)
    E_I = rms(C - Z)   initialisation error (prior N(0, S^2) vs the true marginal)

so ``total = rms(A - Z) <= E_S + E_D + E_I`` (triangle inequality in L2; not an equality).
``total`` bounds ``W2(law A, law Z)`` from above; the sliced W2 between ``A`` and ``Z`` is
reported too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_positive_int
from ..metrics.distances import sliced_wasserstein
from ..models.base import AbstractDenoiser
from ..models.oracles import GaussianMixtureDenoiser
from ..sampling import AbstractSampler, EulerMaruyama, ODESampler, euler_maruyama
from ..schedules.base import AbstractSchedule
from ..schedules.processes import VE

TERMS = ("score", "discretisation", "initialisation")


class ErrorDecomposition(eqx.Module):
    """``E_S``, ``E_D``, ``E_I`` and the total (RMS per-sample distances; see module docs).

    >>> d = ErrorDecomposition(*map(jnp.asarray, (0.1, 0.2, 0.3, 0.35, 0.3)), nfe=10)
    >>> round(d.sum_of_terms, 3), d.as_dict()["nfe"]
    (0.6, 10)
    """

    score: Float[Array, ""]
    discretisation: Float[Array, ""]
    initialisation: Float[Array, ""]
    total: Float[Array, ""]
    sliced_w2: Float[Array, ""]
    nfe: int = eqx.field(static=True)

    @property
    def sum_of_terms(self) -> float:
        """``E_S + E_D + E_I`` (an upper bound on ``total``)."""
        return float(self.score + self.discretisation + self.initialisation)

    def as_dict(self) -> dict:
        """Plain floats: the three terms, ``total``, ``sum_of_terms``, ``sliced_w2``, ``nfe``."""
        out = {name: float(getattr(self, name)) for name in TERMS}
        out.update(
            total=float(self.total),
            sum_of_terms=self.sum_of_terms,
            sliced_w2=float(self.sliced_w2),
            nfe=self.nfe,
        )
        return out


def _rms(a: Array, b: Array) -> Array:
    return jnp.sqrt(jnp.mean(jnp.sum((a - b) ** 2, axis=-1)))


@eqx.filter_jit
def _run_ode(sampler, denoiser, schedule, y0):
    return sampler(denoiser, schedule, y0)


@eqx.filter_jit
def _run_em(sampler, denoiser, schedule, y0, xi, times):
    return euler_maruyama(
        denoiser,
        schedule,
        y0,
        xi,
        times,
        process=sampler.process,
        kappa=sampler.kappa,
        to_zero=sampler.final == "zero",
    )


def _runners(sampler: AbstractSampler, schedule: AbstractSchedule, key, shape, reference_steps):
    """``(run, run_reference)``: functions ``(denoiser, y0) -> sample`` sharing noise."""
    if isinstance(sampler, ODESampler):
        reference = ODESampler(reference_steps, "heun", final=sampler.final)
        return (
            lambda den, y0: _run_ode(sampler, den, schedule, y0),
            lambda den, y0: _run_ode(reference, den, schedule, y0),
        )
    if isinstance(sampler, EulerMaruyama):
        if not isinstance(sampler.process, VE):
            raise ValueError(
                f"the decomposition is for VE samplers: got process={sampler.process!r} "
                "(use EulerMaruyama(..., process='ve'))"
            )
        if sampler.noise != "gaussian":
            raise ValueError(
                "coupling to a Brownian reference needs Gaussian noise, got "
                f"noise={sampler.noise!r}"
            )
        intervals = sampler.num_steps - 1 if sampler.final == "zero" else sampler.num_steps
        if intervals < 1:
            raise ValueError(
                "Euler-Maruyama with final='zero' needs num_steps >= 2 here, got "
                f"num_steps={sampler.num_steps}"
            )
        factor = max(1, math.ceil(reference_steps / intervals))
        fine = factor * intervals
        # both finals put their schedule points uniformly on t in [1, 0]
        times = 1.0 - jnp.arange(intervals + 1) / intervals
        fine_times = 1.0 - jnp.arange(fine + 1) / fine
        xi_fine = jax.random.normal(key, (fine, *shape))
        xi = xi_fine.reshape(intervals, factor, *shape).sum(axis=1) / math.sqrt(factor)
        return (
            lambda den, y0: _run_em(sampler, den, schedule, y0, xi, times),
            lambda den, y0: _run_em(sampler, den, schedule, y0, xi_fine, fine_times),
        )
    raise ValueError(
        "`sampler` must be an ODESampler or a VE EulerMaruyama sampler, got "
        f"sampler={type(sampler).__name__}"
    )


def decompose_error(
    denoiser: AbstractDenoiser,
    mixture,
    schedule: AbstractSchedule,
    sampler: AbstractSampler,
    key: PRNGKeyArray,
    *,
    num_samples: int = 2000,
    reference_steps: int = 512,
) -> ErrorDecomposition:
    """``E_S``, ``E_D``, ``E_I`` of ``sampler`` on ``schedule`` with ``denoiser`` (module docs).

    ``mixture`` is a :class:`schedopt.data.GaussianMixture` (its exact denoiser is ``D*``);
    ``sampler`` an :class:`~schedopt.sampling.ODESampler` (reference: ``reference_steps``
    Heun steps) or a VE Gaussian :class:`~schedopt.sampling.EulerMaruyama` (reference: the
    same Brownian path on a grid ``ceil(reference_steps / intervals)`` times finer).

    >>> from schedopt.data import ring
    >>> from schedopt.models import GaussianMixtureDenoiser
    >>> from schedopt.schedules import EDM
    >>> gm = ring(4)
    >>> d = decompose_error(GaussianMixtureDenoiser.from_mixture(gm), gm, EDM(),
    ...                     ODESampler(8, "euler"), jax.random.key(0), num_samples=64,
    ...                     reference_steps=32)
    >>> float(d.score), d.nfe
    (0.0, 8)
    """
    out = decompose_errors(
        {"denoiser": denoiser},
        mixture,
        schedule,
        sampler,
        key,
        num_samples=num_samples,
        reference_steps=reference_steps,
    )
    return out["denoiser"]


def decompose_errors(
    denoisers: Mapping[str, AbstractDenoiser],
    mixture,
    schedule: AbstractSchedule,
    sampler: AbstractSampler,
    key: PRNGKeyArray,
    *,
    num_samples: int = 2000,
    reference_steps: int = 512,
) -> dict[str, ErrorDecomposition]:
    """:func:`decompose_error` for several denoisers sharing all noise and the references
    (computed once), so their terms are compared under common random numbers.

    >>> from schedopt.data import ring
    >>> from schedopt.models import GaussianMixtureDenoiser
    >>> from schedopt.schedules import LogSNRLinear
    >>> gm = ring(4)
    >>> exact = GaussianMixtureDenoiser.from_mixture(gm)
    >>> out = decompose_errors({"a": exact, "b": exact}, gm, LogSNRLinear(),
    ...                        ODESampler(4, "euler"), jax.random.key(0), num_samples=32,
    ...                        reference_steps=16)
    >>> out["a"].as_dict() == out["b"].as_dict()
    True
    """
    n = check_positive_int("num_samples", num_samples)
    reference_steps = check_positive_int("reference_steps", reference_steps)
    if not denoisers:
        raise ValueError("`denoisers` must name at least one denoiser, got an empty mapping")
    for name, den in denoisers.items():
        if not isinstance(den, AbstractDenoiser):
            raise ValueError(
                f"`denoisers[{name!r}]` must be an AbstractDenoiser, got {type(den).__name__}"
            )
    exact = GaussianMixtureDenoiser.from_mixture(mixture)
    key_x, key_e, key_w, key_p = jax.random.split(key, 4)
    x0 = mixture.sample(key_x, n)
    y_prior = schedule.noise_level(1.0) * jax.random.normal(key_e, x0.shape, x0.dtype)
    run, run_ref = _runners(sampler, schedule, key_w, x0.shape, reference_steps)
    b = run(exact, y_prior)
    c = run_ref(exact, y_prior)
    z = run_ref(exact, x0 + y_prior)
    e_d, e_i = _rms(b, c), _rms(c, z)
    out = {}
    for name, den in denoisers.items():
        a = run(den, y_prior)
        out[name] = ErrorDecomposition(
            score=_rms(a, b),
            discretisation=e_d,
            initialisation=e_i,
            total=_rms(a, z),
            sliced_w2=sliced_wasserstein(a, z, key_p, 128),
            nfe=sampler.nfe,
        )
    return out
