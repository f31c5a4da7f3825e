"""Express a sampling grid for another process or another model's discrete timesteps.

The EDM noise level ``s = sigma / alpha`` is the same for every process (VP, VE, flow),
so a grid found for one process is used by another by keeping ``s`` and changing only
the scale ``alpha`` (:func:`to_process` / :func:`from_process`). A discrete-time model
(DDPM, Stable Diffusion: 1000 timesteps with a table of ``alpha_bar``) is driven by
integer timesteps instead: :func:`noise_levels_to_timesteps` finds them through the
model's table (:class:`~schedopt.schedules.Tabulated`) and
:func:`timesteps_to_noise_levels` goes back.

When the grid's range differs from the target model's (EDM's ``[0.002, 80]`` against
Stable Diffusion's ``[0.029, 14.6]``), ``endpoints="clip"`` keeps the noise levels and
clips them to the target's range, while ``endpoints="rescale"`` maps ``log s`` affinely
onto the target's range, keeping the schedule's shape (:func:`rescale_noise_levels`).

>>> from schedopt.schedules import EDM, Tabulated, grid
>>> sd = Tabulated.scaled_linear()
>>> levels = grid(EDM(sigma_min=0.03, sigma_max=14.0), 8)[:-1]
>>> noise_levels_to_timesteps(levels, sd, rounding="distinct").tolist()
[992, 882, 738, 541, 294, 89, 12, 0]
"""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike

from .._checks import check_choice, check_sigma_range
from ..schedules.processes import AbstractProcess, process_from_name
from ..schedules.tabulated import Tabulated

ROUNDINGS = ("distinct", "nearest", "none")
ENDPOINTS = ("clip", "rescale")


def to_process(
    noise_levels: ArrayLike, process: str | AbstractProcess
) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, sigma)`` of ``process`` at EDM noise levels ``s`` (``s = 0`` allowed).

    VP: ``alpha = 1 / sqrt(1 + s^2)``; VE: ``alpha = 1``; flow: ``alpha = 1 / (1 + s)``;
    ``sigma = s * alpha`` in every case.

    >>> alpha, sigma = to_process([1.0, 0.0], "vp")
    >>> np.round(alpha ** 2 + sigma ** 2, 6).tolist()
    [1.0, 1.0]
    """
    s = _levels("noise_levels", noise_levels, allow_zero=True)
    name = process_from_name(process).name
    if name == "vp":
        alpha = 1.0 / np.sqrt(1.0 + s**2)
    elif name == "ve":
        alpha = np.ones_like(s)
    else:
        alpha = 1.0 / (1.0 + s)
    return alpha, s * alpha


def from_process(alpha: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """EDM noise level ``s = sigma / alpha`` of any process.

    >>> from_process([0.5], [0.5]).tolist()
    [1.0]
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if np.any(alpha <= 0) or np.any(sigma < 0):
        raise ValueError(f"need alpha > 0 and sigma >= 0, got alpha={alpha!r}, sigma={sigma!r}")
    return sigma / alpha


def _levels(name: str, values: ArrayLike, *, allow_zero: bool = False) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array, got shape {arr.shape}")
    bad = ~np.isfinite(arr) | (arr < 0 if allow_zero else arr <= 0)
    if np.any(bad):
        sign = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be finite and {sign}; it holds {arr[bad][:3].tolist()}")
    return arr


def table_range(table: Tabulated) -> tuple[float, float]:
    """``(sigma_min, sigma_max)`` of a discrete model: its timestep 0 and its last timestep."""
    levels = np.asarray(table.timestep_noise_levels(), dtype=np.float64)
    return float(levels[0]), float(levels[-1])


def rescale_noise_levels(
    noise_levels: ArrayLike,
    source_range: tuple[float, float],
    target_range: tuple[float, float],
) -> np.ndarray:
    """Map ``log s`` affinely from ``source_range`` onto ``target_range`` (``s = 0`` stays 0).

    This keeps the schedule's shape: the fraction ``f = (lam_max - lam) / (lam_max - lam_min)``
    of every point is the same before and after. It is its own inverse with the ranges
    swapped.

    >>> rescale_noise_levels([80.0, 0.002, 0.0], (0.002, 80.0), (0.03, 15.0)).tolist()
    [15.0, 0.03, 0.0]
    """
    s = _levels("noise_levels", noise_levels, allow_zero=True)
    lo, hi = check_sigma_range(*source_range)
    new_lo, new_hi = check_sigma_range(*target_range)
    out = np.zeros_like(s)
    pos = s > 0
    fraction = (np.log(s[pos]) - np.log(lo)) / (np.log(hi) - np.log(lo))
    out[pos] = np.exp(np.log(new_lo) + fraction * (np.log(new_hi) - np.log(new_lo)))
    # exact endpoints in floating point
    out[pos & (s == lo)] = new_lo
    out[pos & (s == hi)] = new_hi
    return out


def noise_levels_to_timesteps(
    noise_levels: ArrayLike, table: Tabulated, *, rounding: str = "distinct"
) -> np.ndarray:
    """Timesteps of a discrete model (``k = 0`` cleanest) at the given noise levels.

    The fractional timestep inverts the table linearly in ``log s`` (as k-diffusion's
    ``sigma_to_t`` and diffusers' ``_sigma_to_t``); levels outside the table are clipped
    to its ends. ``rounding``:

    - ``"none"``: the fractional timesteps (float);
    - ``"nearest"``: each rounded to the nearest integer (may repeat);
    - ``"distinct"``: strictly decreasing integers (the levels must not increase), each
      as close to its fractional value as the constraint allows (least total absolute
      displacement from the nearest integers, by pool-adjacent-violators); needs
      ``len(noise_levels) <= K``. Repeated levels (e.g. several clipped to the table's
      end) get neighbouring timesteps.

    >>> sd = Tabulated.scaled_linear()
    >>> noise_levels_to_timesteps([14.6, 0.03, 0.0292, 0.0291], sd).tolist()
    [999, 2, 1, 0]
    """
    check_choice("rounding", rounding, ROUNDINGS)
    s = _levels("noise_levels", noise_levels)
    k = np.arange(table.num_timesteps, dtype=np.float64)
    log_levels = np.log(np.asarray(table.timestep_noise_levels(), dtype=np.float64))
    frac = np.interp(np.log(s), log_levels, k)  # table noise levels increase with k
    if rounding == "none":
        return frac
    if rounding == "nearest":
        return np.rint(frac).astype(np.int64)
    if np.any(np.diff(s) > 0):
        raise ValueError(
            "`noise_levels` must be non-increasing for rounding='distinct', got "
            f"{s.tolist()!r:.200}"
        )
    return distinct_decreasing_integers(frac, upper=table.num_timesteps - 1)


def distinct_decreasing_integers(values: ArrayLike, *, upper: int) -> np.ndarray:
    """Strictly decreasing integers in ``[0, upper]`` closest (in total L1) to ``values``.

    With ``u_i = r_i + i`` the constraint ``r_i > r_{i+1}`` reads ``u_i >= u_{i+1}``, an
    isotonic L1 regression solved by pool-adjacent-violators with block medians; a final
    pass clips to the range and restores strictness.

    >>> distinct_decreasing_integers([10.4, 10.3, 10.2, 0.0], upper=999).tolist()
    [11, 10, 9, 0]
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n > upper + 1:
        raise ValueError(
            f"cannot place {n} distinct timesteps in [0, {upper}]; use at most {upper + 1} steps"
        )
    target = np.rint(x) + np.arange(n)
    # pool adjacent violators for a non-increasing L1 fit: blocks of (median, members)
    blocks: list[list[float]] = []
    for value in target:
        blocks.append([value])
        while len(blocks) > 1 and np.median(blocks[-2]) < np.median(blocks[-1]):
            last = blocks.pop()
            blocks[-1].extend(last)
    u = np.concatenate([np.full(len(b), np.floor(np.median(b))) for b in blocks])
    r = (u - np.arange(n)).astype(np.int64)
    # feasibility: element i needs room for the n - 1 - i after it and the i before it
    r = np.clip(r, n - 1 - np.arange(n), upper - np.arange(n))
    for i in range(1, n):
        r[i] = min(r[i], r[i - 1] - 1)
    return r


def timesteps_to_noise_levels(timesteps: ArrayLike, table: Tabulated) -> np.ndarray:
    """Noise levels of (integer or fractional) timesteps: the table, interpolated in ``log s``.

    >>> sd = Tabulated.scaled_linear()
    >>> round(float(timesteps_to_noise_levels([999], sd)[0]), 3)
    14.615
    """
    t = np.asarray(timesteps, dtype=np.float64)
    if (
        t.ndim != 1
        or np.any(~np.isfinite(t))
        or np.any(t < 0)
        or np.any(t > table.num_timesteps - 1)
    ):
        raise ValueError(
            f"`timesteps` must be a 1-D array in [0, {table.num_timesteps - 1}], "
            f"got {t.tolist()!r:.200}"
        )
    log_levels = np.log(np.asarray(table.timestep_noise_levels(), dtype=np.float64))
    return np.exp(np.interp(t, np.arange(table.num_timesteps), log_levels))


def grid_for_discrete_model(
    noise_levels: ArrayLike,
    table: Tabulated,
    *,
    endpoints: str = "clip",
    source_range: tuple[float, float] | None = None,
) -> dict:
    """A ``final="zero"`` grid (``N`` levels, then 0) expressed for a discrete model.

    Returns ``timesteps`` (``N`` distinct decreasing integers), ``fractional_timesteps``,
    ``sigmas`` (the table's noise levels at the integer timesteps, then 0: what the model
    actually sees) and ``target_noise_levels`` (the requested levels after clipping or
    rescaling, then 0). ``endpoints="rescale"`` needs ``source_range``, the schedule's
    ``(sigma_min, sigma_max)``.

    >>> from schedopt.schedules import EDM, grid
    >>> out = grid_for_discrete_model(grid(EDM(), 4), Tabulated.scaled_linear(),
    ...                               endpoints="rescale", source_range=(0.002, 80.0))
    >>> out["timesteps"]
    [999, 758, 258, 0]
    """
    check_choice("endpoints", endpoints, ENDPOINTS)
    s = _levels("noise_levels", noise_levels, allow_zero=True)
    if s[-1] != 0 or np.any(s[:-1] <= 0):
        raise ValueError(
            "`noise_levels` must be a final='zero' grid: positive levels then one 0, got "
            f"{s.tolist()!r:.200}"
        )
    lo, hi = table_range(table)
    if endpoints == "rescale":
        if source_range is None:
            raise ValueError("endpoints='rescale' needs source_range=(sigma_min, sigma_max)")
        s = rescale_noise_levels(s, source_range, (lo, hi))
    points = np.clip(s[:-1], lo, hi)
    ints = noise_levels_to_timesteps(points, table, rounding="distinct")
    return {
        "timesteps": ints.tolist(),
        "fractional_timesteps": noise_levels_to_timesteps(points, table, rounding="none").tolist(),
        "sigmas": timesteps_to_noise_levels(ints, table).tolist() + [0.0],
        "target_noise_levels": points.tolist() + [0.0],
    }


def grid_from_discrete_model(
    timesteps: ArrayLike,
    table: Tabulated,
    *,
    endpoints: str = "clip",
    target_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """The way back: a discrete model's timesteps as a ``final="zero"`` noise-level grid.

    With ``endpoints="rescale"``, ``log s`` is mapped from the table's range onto
    ``target_range`` (the inverse of the rescaling in :func:`grid_for_discrete_model`).

    >>> sd = Tabulated.scaled_linear()
    >>> np.round(grid_from_discrete_model([999, 0], sd, endpoints="rescale",
    ...                                    target_range=(0.002, 80.0)), 4).tolist()
    [80.0, 0.002, 0.0]
    """
    check_choice("endpoints", endpoints, ENDPOINTS)
    levels = np.append(timesteps_to_noise_levels(timesteps, table), 0.0)
    if endpoints == "rescale":
        if target_range is None:
            raise ValueError("endpoints='rescale' needs target_range=(sigma_min, sigma_max)")
        levels = rescale_noise_levels(levels, table_range(table), target_range)
    return levels
