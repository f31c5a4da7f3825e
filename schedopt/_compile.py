"""Compiling for programs that run once: XLA options that compile several times faster.

XLA's CPU compiler spends most of its time in LLVM, optimising every fused loop. For a
program whose run time is small next to its compile time (a one-off evaluation of a few
schedules, the optax loop of a small Gaussian-KL fit), skipping that work is the faster
trade: :data:`FAST_COMPILE` compiles 3-5x faster, and the program runs at most a few times
slower (at d = 10^6 eigenvalues that is seconds, so large problems keep XLA's defaults).

:func:`filter_jit` is ``equinox.filter_jit`` (arrays traced, everything else static) with
XLA ``compiler_options``; :func:`fast_jit` is it with :func:`fast_compile_options`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import equinox as eqx
import jax

#: Options for programs that run once or cheaply (CPU only: elsewhere they are dropped).
FAST_COMPILE: dict[str, object] = {
    "xla_backend_optimization_level": 0,
    "xla_cpu_use_fusion_emitters": False,
}


def fast_compile_options() -> dict[str, object] | None:
    """:data:`FAST_COMPILE` on the CPU backend, else ``None`` (XLA's defaults).

    >>> fast_compile_options() == (FAST_COMPILE if jax.default_backend() == "cpu" else None)
    True
    """
    return dict(FAST_COMPILE) if jax.default_backend() == "cpu" else None


def fast_jit(fn: Callable) -> Callable:
    """``fn`` compiled by :func:`filter_jit` with :func:`fast_compile_options` (resolved at
    the first call, so that importing a module does not start a backend): for one-off
    evaluations.

    >>> import jax.numpy as jnp
    >>> fast_jit(lambda x: x + 1)(jnp.zeros(2)).tolist()
    [1.0, 1.0]
    """
    compiled = []

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if not compiled:
            compiled.append(filter_jit(fn, fast_compile_options()))
        return compiled[0](*args, **kwargs)

    return call


def filter_jit(fn: Callable, compiler_options: dict | None = None) -> Callable:
    """``fn`` compiled as ``equinox.filter_jit`` would (array leaves of the arguments are
    traced, every other leaf is static), with XLA ``compiler_options`` (``None``: defaults).

    >>> import jax.numpy as jnp
    >>> double = filter_jit(lambda x, n: x * n, fast_compile_options())
    >>> double(jnp.arange(3.0), 2).tolist()
    [0.0, 2.0, 4.0]
    """
    if not compiler_options:
        return eqx.filter_jit(fn)
    options = tuple(sorted(compiler_options.items()))

    @functools.wraps(fn)
    def call(*args, **kwargs):
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        traced = tuple(eqx.is_array(leaf) for leaf in leaves)
        dynamic = [leaf for leaf, t in zip(leaves, traced, strict=True) if t]
        static = tuple(None if t else leaf for leaf, t in zip(leaves, traced, strict=True))
        try:
            compiled = _compiled(fn, treedef, static, traced, options)
        except TypeError:  # an unhashable static leaf: equinox's own handling
            return eqx.filter_jit(fn)(*args, **kwargs)
        return compiled(dynamic)

    return call


@functools.lru_cache(maxsize=256)
def _compiled(fn, treedef, static, traced, options):
    def flat(dynamic):
        it = iter(dynamic)
        leaves = [next(it) if t else s for s, t in zip(static, traced, strict=True)]
        args, kwargs = jax.tree_util.tree_unflatten(treedef, leaves)
        return fn(*args, **kwargs)

    return jax.jit(flat, compiler_options=dict(options))
