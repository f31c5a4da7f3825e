"""Express a sampling grid for another process or another model's discrete timesteps.

The EDM noise level ``s = sigma / alpha`` is the same for every process (VP, VE, flow),
so a grid found for one process is used by another by keeping ``s`` and changing only
the scale ``alpha`` (:func:`to_process` / :func:`from_process`). A discrete-time model
(DDPM, Stable Diffusion: 1000 timesteps with a table of ``alpha_bar``) is driven by
integer timesteps instead: :func:`noise_levels_to_timesteps` finds them through the
model's table (:class:`~schedopt.schedules.Tabulated`) and
:func:`timesteps_to_noise_levels` goes back.

When the grid's range differs from the target model's (EDM's ``[0.002, 80]`` against
Stable Diffusion's ``[0.029, 14.6]``), :func:`fit_noise_levels` either maps ``log s``
affinely onto the target's range, keeping the schedule's shape and all its steps
(``endpoints="rescale"``, the default everywhere, :func:`rescale_noise_levels`), or keeps
the noise levels and clips them to the range (``endpoints="clip"``). Clipping that would
put two levels on the same end (a zero-length step, which k-diffusion's multistep samplers
turn into NaN) is refused with an error naming the levels and the range; so is any grid
whose steps are not strictly decreasing (:func:`check_final_zero_grid`).

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


def check_final_zero_grid(name: str, noise_levels: ArrayLike) -> np.ndarray:
    """Return a ``final="zero"`` grid as float64, or raise naming the first bad step.

    The grid must be ``N >= 1`` finite, strictly decreasing positive levels followed by one
    0: a repeated level is a zero-length step (multistep samplers divide by its length) and
    a rising one runs the sampler backwards.

    >>> check_final_zero_grid("sigmas", [2.0, 1.0, 0.0]).tolist()
    [2.0, 1.0, 0.0]
    """
    s = _levels(name, noise_levels, allow_zero=True)
    if s.size < 2 or s[-1] != 0 or np.any(s[:-1] <= 0):
        raise ValueError(
            f"`{name}` must be a final='zero' grid: positive levels then one 0, got "
            f"{s.tolist()!r:.200}"
        )
    steps = np.diff(s)
    if np.any(steps >= 0):
        i = int(np.argmax(steps >= 0))
        kind = "zero-length" if steps[i] == 0 else "increasing"
        raise ValueError(
            f"`{name}` has a {kind} step: {name}[{i}]={float(s[i])!r} is followed by "
            f"{name}[{i + 1}]={float(s[i + 1])!r} (its {s.size - 1} steps must strictly "
            "decrease)"
        )
    return s


def fit_noise_levels(
    noise_levels: ArrayLike,
    target_range: tuple[float, float],
    *,
    endpoints: str = "rescale",
    source_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Fit a ``final="zero"`` grid into a model's noise range ``target_range``.

    ``endpoints="rescale"`` maps ``log s`` affinely from ``source_range`` (default: the
    grid's own first and last positive levels) onto ``target_range``: same shape, all
    steps kept. ``endpoints="clip"`` keeps the levels and clips them into the range; when
    that would repeat a level (two levels beyond the same end: a zero-length step) it
    raises, naming the levels and the range, instead of returning a silently degenerate
    grid.

    >>> fit_noise_levels([80.0, 1.0, 0.002, 0.0], (0.02, 20.0)).round(4).tolist()
    [20.0, 1.1493, 0.02, 0.0]
    >>> fit_noise_levels([15.0, 1.0, 0.03, 0.0], (0.02, 20.0), endpoints="clip").tolist()
    [15.0, 1.0, 0.03, 0.0]
    """
    check_choice("endpoints", endpoints, ENDPOINTS)
    s = check_final_zero_grid("noise_levels", noise_levels)
    lo, hi = check_sigma_range(*target_range)
    if endpoints == "rescale":
        if source_range is None:
            source_range = (s[-2], s[0]) if s.size > 2 else (s[0] / 2.0, s[0])
        out = rescale_noise_levels(s, source_range, (lo, hi))
        out[:-1] = np.clip(out[:-1], lo, hi)  # a source range a rounding inside the grid's
    else:
        out = np.append(np.clip(s[:-1], lo, hi), 0.0)
        for side, beyond in (("above", s[:-1] > hi), ("below", s[:-1] < lo)):
            clipped = s[:-1][beyond]
            end = hi if side == "above" else lo
            at_end = clipped.size + int(np.any(s[:-1] == end))
            if at_end > 1:
                raise ValueError(
                    f"endpoints='clip': the noise levels {_short(clipped)} lie {side} the "
                    f"model's range [{lo:.6g}, {hi:.6g}]; clipped to {end:.6g} they would give "
                    f"{at_end - 1} zero-length step(s). Use endpoints='rescale' (keeps all "
                    "steps), fewer steps, or a schedule within the range"
                )
    return check_final_zero_grid("noise_levels", out)


def _short(values: np.ndarray) -> str:
    shown = ", ".join(f"{v:.6g}" for v in values[:4])
    return shown + (f", ... ({values.size} levels)" if values.size > 4 else "")


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
    endpoints: str = "rescale",
    source_range: tuple[float, float] | None = None,
) -> dict:
    """A ``final="zero"`` grid (``N`` levels, then 0) expressed for a discrete model.

    The levels are first fitted into the table's range (:func:`fit_noise_levels`;
    ``source_range`` defaults to the grid's own ends), then given distinct integer
    timesteps. Returns ``timesteps`` (``N`` distinct decreasing integers),
    ``fractional_timesteps`` (of the fitted levels), ``sigmas`` (the table's noise levels at
    the integer timesteps, then 0: what the model actually sees) and
    ``target_noise_levels`` (the fitted levels, then 0). More than ``K`` steps cannot have
    distinct timesteps and are refused.

    >>> from schedopt.schedules import EDM, grid
    >>> out = grid_for_discrete_model(grid(EDM(), 4), Tabulated.scaled_linear())
    >>> out["timesteps"]
    [999, 758, 258, 0]
    """
    s = check_final_zero_grid("noise_levels", noise_levels)
    if s.size - 1 > table.num_timesteps:
        raise ValueError(
            f"a {s.size - 1}-step grid cannot have distinct timesteps on a "
            f"{table.num_timesteps}-timestep model; use num_steps <= {table.num_timesteps}"
        )
    fitted = fit_noise_levels(s, table_range(table), endpoints=endpoints, source_range=source_range)
    points = fitted[:-1]
    ints = noise_levels_to_timesteps(points, table, rounding="distinct")
    return {
        "timesteps": ints.tolist(),
        "fractional_timesteps": noise_levels_to_timesteps(points, table, rounding="none").tolist(),
        "sigmas": timesteps_to_noise_levels(ints, table).tolist() + [0.0],
        "target_noise_levels": fitted.tolist(),
    }


def grid_from_discrete_model(
    timesteps: ArrayLike,
    table: Tabulated,
    *,
    target_range: tuple[float, float] | None = None,
    endpoints: str = "rescale",
) -> np.ndarray:
    """The way back: a discrete model's timesteps as a ``final="zero"`` noise-level grid.

    Without ``target_range`` the levels are the table's own. With it they are fitted into
    ``target_range`` like :func:`fit_noise_levels` (``"rescale"`` maps ``log s`` from the
    table's range onto it: the inverse of :func:`grid_for_discrete_model`'s rescaling).

    >>> sd = Tabulated.scaled_linear()
    >>> np.round(grid_from_discrete_model([999, 0], sd, target_range=(0.002, 80.0)), 4).tolist()
    [80.0, 0.002, 0.0]
    """
    check_choice("endpoints", endpoints, ENDPOINTS)
    levels = np.append(timesteps_to_noise_levels(timesteps, table), 0.0)
    if target_range is None:
        return levels
    return fit_noise_levels(
        levels, target_range, endpoints=endpoints, source_range=table_range(table)
    )
