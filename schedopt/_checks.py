"""Argument validation shared by the whole package.

Every check raises ``ValueError`` naming the argument and showing its value, in the
style of optax's factories: ``ValueError("... got num_steps=0")``. Checks on array
values run only when the value is concrete (not traced), so every public function
stays jit-able; traced values are validated where they are built instead.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds actual numbers (not a tracer inside ``jit``/``grad``)."""
    return not isinstance(x, jax.core.Tracer)


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {name}={value!r}")
    return int(value)


def check_finite_float(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real number."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a real number, got {name}={value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"`{name}` must be finite, got {name}={value!r}")
    return out


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise if it is not finite and > 0."""
    out = check_finite_float(name, value)
    if out <= 0:
        raise ValueError(f"`{name}` must be > 0, got {name}={value!r}")
    return out


def check_sigma_range(sigma_min: Any, sigma_max: Any) -> tuple[float, float]:
    """Validate a pair of EDM noise levels ``0 < sigma_min < sigma_max``."""
    lo = check_positive_float("sigma_min", sigma_min)
    hi = check_positive_float("sigma_max", sigma_max)
    if lo >= hi:
        raise ValueError(
            "`sigma_min` must be smaller than `sigma_max`, got "
            f"sigma_min={sigma_min!r}, sigma_max={sigma_max!r}"
        )
    return lo, hi


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(choices)}; got {name}={value!r}")
    return value


def check_array_finite(name: str, value: Any) -> None:
    """Raise if a concrete array holds NaN or infinity (no-op under tracing)."""
    if is_concrete(value):
        arr = np.asarray(value)
        if not np.all(np.isfinite(arr)):
            bad = arr[~np.isfinite(arr)].ravel()[:3]
            raise ValueError(f"`{name}` must be finite everywhere; it holds {bad.tolist()}")


def check_array_positive(name: str, value: Any) -> None:
    """Raise if a concrete array is not finite and strictly positive everywhere."""
    check_array_finite(name, value)
    if is_concrete(value):
        arr = np.asarray(value)
        if np.any(arr <= 0):
            bad = arr[arr <= 0].ravel()[:3]
            raise ValueError(f"`{name}` must be > 0 everywhere; it holds {bad.tolist()}")


def check_strictly_decreasing(name: str, value: Any) -> None:
    """Raise if a concrete 1-D array is not finite and strictly decreasing."""
    check_array_finite(name, value)
    if is_concrete(value):
        arr = np.asarray(value)
        if arr.ndim != 1 or arr.shape[0] < 2:
            raise ValueError(f"`{name}` must be a 1-D array of >= 2 values, got shape {arr.shape}")
        steps = np.diff(arr)
        if np.any(steps >= 0):
            i = int(np.argmax(steps >= 0))
            raise ValueError(
                f"`{name}` must be strictly decreasing; {name}[{i}]={arr[i]!r} is followed "
                f"by {name}[{i + 1}]={arr[i + 1]!r}"
            )
