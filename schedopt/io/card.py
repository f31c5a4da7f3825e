"""Schedule cards: a JSON record of a schedule, its sampling grid and how it was found.

A card holds everything needed to use or reproduce a schedule without schedopt's
internals: the family and parameters (rebuildable with :func:`card_schedule`), the
process, the endpoints, the grid for the NFE it was optimised at (EDM noise levels, ``t``
and logSNR, and the process's ``alpha`` / ``sigma``), the objective and its value, the
solver, a data or spectrum fingerprint and the schedopt version. :func:`regrid_card`
recomputes the grid for any other NFE from the continuous schedule.

JSON has no infinity: with ``final="zero"`` the grid's last noise level is 0, whose
logSNR is ``+inf``, so ``t``, ``logsnr``, ``alpha`` and ``sigma`` list the *schedule
points* only and ``noise_levels`` has one more entry (the final 0). The card says so in
``grid["note"]``.

>>> from schedopt.schedules import EDM
>>> card = make_card(EDM(), num_steps=3)
>>> card["grid"]["noise_levels"]
[80.0, 2.515218, 0.0019999999, 0.0]
>>> card_schedule(card).family, regrid_card(card, 5)["grid"]["num_steps"]
('edm', 5)
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_choice, check_positive_int
from .._compile import fast_jit
from ..schedules.base import FINALS, AbstractSchedule, grid, grid_times
from ..schedules.processes import PROCESSES, AbstractProcess, process_from_name
from ..schedules.registry import schedule_from_config, schedule_to_config
from .atomic import atomic_write_json

#: Version of the card layout; :func:`load_card` refuses other versions.
CARD_VERSION = 1

GRID_NOTE = (
    "noise_levels are EDM noise levels s = sigma/alpha (k-diffusion's sigmas), noisy first; "
    "with final='zero' they end with one extra 0 (logSNR +inf, not stored): t, logsnr, "
    "alpha and sigma list the schedule points only."
)

_REQUIRED = ("card_version", "schedopt_version", "schedule", "process", "endpoints", "grid")
_GRID_KEYS = ("num_steps", "final", "noise_levels", "t", "logsnr", "alpha", "sigma")


def schedopt_version() -> str:
    """The installed schedopt version (``"unknown"`` when not installed as a package)."""
    try:
        return importlib.metadata.version("schedopt")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "unknown"


def _floats(values) -> list[float]:
    """Array to a JSON list; float32 values become their shortest round-tripping decimal."""
    arr = np.asarray(values)
    if arr.dtype == np.float32:
        return [float(str(v)) for v in arr.ravel()]
    return [float(v) for v in arr.astype(np.float64).ravel()]


def _float(value) -> float:
    return _floats(np.asarray(value).reshape(1))[0]


def _process_name(process) -> str:
    return process_from_name(process).name


@fast_jit
def _grid_arrays(schedule: AbstractSchedule, num_steps: int, final: str, proc: AbstractProcess):
    """``(t, logsnr, noise levels, alpha, sigma)`` of the grid, as one program."""
    ts = grid_times(num_steps, final)
    lam = schedule.logsnr(ts)
    return ts, lam, grid(schedule, num_steps, final), proc.alpha(lam), proc.sigma(lam)


def prepare_card(
    schedule: AbstractSchedule, *, num_steps: int, final: str = "zero", process: str = "ve"
) -> None:
    """Compile the grid program of :func:`make_card` for schedules shaped like
    ``schedule`` ahead of time (a later card of such a schedule then only runs it).

    >>> from schedopt.schedules import EDM
    >>> prepare_card(EDM(), num_steps=4)
    """
    _grid_arrays(schedule, num_steps, final, process_from_name(_process_name(process)))


def _grid(schedule: AbstractSchedule, num_steps: int, final: str, process: str) -> dict:
    """The sampling grid of ``schedule`` as JSON-able lists (see the module docstring)."""
    num_steps = check_positive_int("num_steps", num_steps)
    check_choice("final", final, FINALS)
    ts, lam, levels, alpha, sigma = _grid_arrays(
        schedule, num_steps, final, process_from_name(process)
    )
    out = {
        "num_steps": num_steps,
        "final": final,
        "noise_levels": _floats(levels),
        "t": _floats(ts),
        "logsnr": _floats(lam),
        "alpha": _floats(alpha),
        "sigma": _floats(sigma),
        "note": GRID_NOTE,
    }
    for name in ("noise_levels", "logsnr", "alpha", "sigma"):
        if not all(math.isfinite(v) for v in out[name]):
            raise ValueError(
                f"the schedule's {name} on the {num_steps}-step grid is not finite: "
                f"{out[name]!r:.200}"
            )
    return out


def _endpoints(schedule: AbstractSchedule) -> dict:
    return {
        "sigma_min": _float(schedule.sigma_min),
        "sigma_max": _float(schedule.sigma_max),
        "logsnr_max": _float(schedule.logsnr_max),
        "logsnr_min": _float(schedule.logsnr_min),
    }


def _check_jsonable(name: str, value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"`{name}` must be JSON-able without NaN/Infinity: {e}; got {value!r:.200}"
        ) from None
    return value


def card_nfe(solver: str | dict | None, num_steps: int, final: str = "zero") -> int | None:
    """Denoiser evaluations of ``num_steps`` steps of a card's ``solver`` record (a sampler
    name, or a dict of its ``name`` and options): the ``nfe`` of
    :func:`schedopt.sampling.make_sampler`, the one count that
    :func:`~schedopt.sampling.sampler_for_nfe` inverts. None without a solver, or for one
    the samplers do not know.

    >>> card_nfe("heun", 5), card_nfe({"name": "euler"}, 5), card_nfe(None, 5)
    (9, 5, None)
    """
    if solver is None:
        return None
    options = dict(solver) if isinstance(solver, dict) else {"name": solver}
    name = options.pop("name", None)
    from ..sampling import SAMPLERS, make_sampler  # diffrax, only for a card with a solver

    if name not in SAMPLERS:
        return None
    try:
        return int(make_sampler(name, num_steps, final=final, **options).nfe)
    except (TypeError, ValueError):
        return None


def make_card(
    schedule: AbstractSchedule,
    *,
    num_steps: int,
    final: str = "zero",
    process: str | AbstractProcess = "ve",
    solver: str | dict | None = None,
    objective: dict | None = None,
    objective_value: float | None = None,
    fingerprint: str | dict | None = None,
    settings: dict | None = None,
) -> dict:
    """A schedule card (a JSON-able dict) for ``schedule`` at ``num_steps`` sampling steps.

    ``optimized_at`` records ``num_steps`` (sampler steps), ``final`` and ``nfe``, the
    denoiser evaluations of ``solver`` at those steps (:func:`card_nfe`; None without a
    solver). Cards written before ``nfe`` was recorded read as they are.

    ``process`` (``"vp" | "ve" | "flow"``) is the model's process, used for the ``alpha``
    and ``sigma`` columns; ``objective`` is ``objective.describe()``; ``fingerprint``
    identifies the data or spectrum the schedule was fitted to; ``settings`` holds any
    further run settings (learning rate, iterations, seed, ...).

    >>> from schedopt.schedules import LogSNRLinear
    >>> card = make_card(LogSNRLinear(), num_steps=2, process="vp", objective_value=0.25)
    >>> card["process"], card["grid"]["t"], card["objective_value"]
    ('vp', [1.0, 0.0], 0.25)
    """
    if not isinstance(schedule, AbstractSchedule):
        raise ValueError(f"`schedule` must be an AbstractSchedule, got {type(schedule).__name__}")
    process = _process_name(process)
    if objective_value is not None:
        try:
            objective_value = float(np.asarray(objective_value).item())
        except (TypeError, ValueError):
            raise ValueError(
                f"`objective_value` must be a number, got {objective_value=!r}"
            ) from None
        if not math.isfinite(objective_value):
            raise ValueError(f"`objective_value` must be finite, got {objective_value=}")
    grid = _grid(schedule, num_steps, final, process)
    card = {
        "card_version": CARD_VERSION,
        "schedopt_version": schedopt_version(),
        "schedule": schedule_to_config(schedule),
        "process": process,
        "endpoints": _endpoints(schedule),
        "optimized_at": {
            "num_steps": grid["num_steps"],
            "nfe": card_nfe(solver, grid["num_steps"], final),
            "final": final,
        },
        "grid": grid,
        "objective": _check_jsonable("objective", objective),
        "objective_value": objective_value,
        "solver": _check_jsonable("solver", solver),
        "fingerprint": _check_jsonable("fingerprint", fingerprint),
        "settings": _check_jsonable("settings", settings),
    }
    return _check_jsonable("card", card)


def save_card(path: str | os.PathLike, card: dict) -> Path:
    """Validate ``card`` and write it to ``path`` as JSON, atomically (whole or not at all).

    >>> import tempfile, pathlib
    >>> from schedopt.schedules import EDM
    >>> p = save_card(pathlib.Path(tempfile.mkdtemp()) / "card.json", make_card(EDM(), num_steps=4))
    >>> load_card(p)["grid"]["num_steps"]
    4
    """
    validate_card(card, source="card")
    return atomic_write_json(path, card)


def load_card(path: str | os.PathLike) -> dict:
    """Read and validate a card written by :func:`save_card`.

    Raises ``ValueError`` naming ``path`` when the file is missing, is not valid JSON
    (e.g. truncated), has an unknown ``card_version``, values that are not finite
    numbers, a grid that is not strictly decreasing, or a grid that the schedule it
    records does not reproduce (to ``1e-4``; e.g. edited by hand or made by a schedopt
    whose family computes differently).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "schedule.json"
    if not path.is_file():
        raise ValueError(f"schedule card {str(path)!r} does not exist")
    source = f"schedule card {str(path)!r}"
    try:
        card = json.loads(path.read_text(), parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{source} is not valid JSON (truncated or corrupt?): {e}") from None
    except _NonFinite as e:
        raise ValueError(f"{source} holds {e}, which is not a finite number") from None
    validate_card(card, source=source)
    _check_grid_matches_schedule(card, source)
    return card


class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str):
    raise _NonFinite(name)


def _check_grid_matches_schedule(card: dict, source: str) -> None:
    grid_ = card["grid"]
    schedule = schedule_from_config(card["schedule"])
    expected = np.asarray(grid(schedule, grid_["num_steps"], grid_["final"]), np.float64)
    stored = np.asarray(grid_["noise_levels"], np.float64)
    if not np.allclose(stored, expected, rtol=1e-4, atol=0.0):
        i = int(np.argmax(~np.isclose(stored, expected, rtol=1e-4, atol=0.0)))
        raise ValueError(
            f"{source}: its grid does not match its schedule: noise_levels[{i}] is "
            f"{float(stored[i])!r}, the {card['schedule'].get('family')!r} schedule it "
            f"records gives {float(expected[i])!r} (edited by hand, or made by another "
            "schedopt version?)"
        )


def _numbers(source: str, where: str, values, length: int | None = None) -> np.ndarray:
    """``values`` as a float64 array after checking it is a list of finite real numbers."""
    ok = isinstance(values, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )
    if not ok:
        bad = (
            values
            if not isinstance(values, list)
            else next(v for v in values if not isinstance(v, int | float) or isinstance(v, bool))
        )
        raise ValueError(f"{source}: {where} must be a list of numbers, got {bad!r:.100}")
    if length is not None and len(values) != length:
        raise ValueError(f"{source}: {where} must hold {length} numbers, got {len(values)}")
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{source}: {where} must be finite, got {values!r:.200}")
    return arr


def _strictly_monotone(source: str, where: str, arr: np.ndarray, sign: int) -> None:
    steps = sign * np.diff(arr)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0))
        order = "decreasing" if sign < 0 else "increasing"
        raise ValueError(
            f"{source}: {where} must be strictly {order}; entry {i} ({float(arr[i])!r}) "
            f"is followed by {float(arr[i + 1])!r}"
        )


def validate_card(card: Any, *, source: str = "card") -> dict:
    """Check a card's layout, version and grid; raise ``ValueError`` naming ``source``.

    The grid's lists must be finite real numbers of the lengths ``num_steps`` and
    ``final`` imply: noise levels positive and strictly decreasing (the last one 0 with
    ``final="zero"``), ``t`` strictly decreasing in ``[0, 1]``, logSNR strictly
    increasing, ``alpha`` and ``sigma`` positive; the endpoints finite and ordered.

    >>> from schedopt.schedules import EDM
    >>> card = make_card(EDM(), num_steps=3)
    >>> card["grid"]["noise_levels"][1] = 90.0
    >>> validate_card(card)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: card: grid 'noise_levels' must be strictly decreasing; entry 0 (80.0) ...
    """
    if not isinstance(card, dict):
        raise ValueError(f"{source} must hold a JSON object, got {type(card).__name__}")
    missing = [k for k in _REQUIRED if k not in card]
    if missing:
        raise ValueError(f"{source} lacks the keys {missing}; is it a schedopt schedule card?")
    version = card["card_version"]
    if isinstance(version, bool) or version != CARD_VERSION:
        raise ValueError(
            f"{source} has card_version={version!r}; this schedopt "
            f"({schedopt_version()}) reads card_version={CARD_VERSION} only"
        )
    if card["process"] not in PROCESSES:
        raise ValueError(
            f"{source} has process={card['process']!r}; expected one of {', '.join(PROCESSES)}"
        )
    try:
        schedule_from_config(card["schedule"])
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(f"{source} holds a schedule that cannot be rebuilt: {e}") from None
    ends = card["endpoints"]
    if not isinstance(ends, dict) or any(k not in ends for k in _endpoint_keys()):
        raise ValueError(f"{source}: `endpoints` must hold the keys {list(_endpoint_keys())}")
    lo, hi = _numbers(source, "endpoints", [ends["sigma_min"], ends["sigma_max"]])
    if not 0 < lo < hi:
        raise ValueError(f"{source}: endpoints need 0 < sigma_min < sigma_max, got {lo}, {hi}")
    value = card.get("objective_value")
    if value is not None:
        _numbers(source, "objective_value", [value])
    grid_ = card["grid"]
    if not isinstance(grid_, dict) or any(k not in grid_ for k in _GRID_KEYS):
        raise ValueError(f"{source}: `grid` must hold the keys {list(_GRID_KEYS)}")
    n, final = grid_["num_steps"], grid_["final"]
    if final not in FINALS or isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{source}: bad grid num_steps={n!r} or final={final!r}")
    points = n if final == "zero" else n + 1
    lengths = {"noise_levels": n + 1, "t": points, "logsnr": points, "alpha": points}
    lengths["sigma"] = points
    arrays = {
        name: _numbers(
            source,
            f"grid {name!r} (num_steps={n}, final={final!r})",
            grid_[name],
            length,
        )
        for name, length in lengths.items()
    }
    levels = arrays["noise_levels"]
    positive = levels[:-1] if final == "zero" else levels
    if np.any(positive <= 0) or (final == "zero" and levels[-1] != 0):
        raise ValueError(
            f"{source}: grid 'noise_levels' must be positive"
            + (" and end with 0 (final='zero')" if final == "zero" else "")
            + f", got {grid_['noise_levels']!r:.200}"
        )
    _strictly_monotone(source, "grid 'noise_levels'", levels, -1)
    t = arrays["t"]
    if np.any((t < 0) | (t > 1)):
        raise ValueError(f"{source}: grid 't' must lie in [0, 1], got {grid_['t']!r:.200}")
    if points > 1:
        _strictly_monotone(source, "grid 't'", t, -1)
        _strictly_monotone(source, "grid 'logsnr'", arrays["logsnr"], 1)
    for name in ("alpha", "sigma"):
        if np.any(arrays[name] <= 0):
            raise ValueError(f"{source}: grid {name!r} must be positive")
    return card


def _endpoint_keys() -> tuple[str, ...]:
    return ("sigma_min", "sigma_max", "logsnr_max", "logsnr_min")


def card_schedule(card: dict) -> AbstractSchedule:
    """The continuous schedule a card describes.

    >>> from schedopt.schedules import EDM
    >>> s = card_schedule(make_card(EDM(rho=5.0), num_steps=8))
    >>> float(s.rho)
    5.0
    """
    validate_card(card)
    return schedule_from_config(card["schedule"])


def card_process(card: dict) -> AbstractProcess:
    """The process a card was made for (``VP()``, ``VE()`` or ``Flow()``)."""
    return process_from_name(card["process"])


def regrid_card(card: dict, num_steps: int, final: str = "zero") -> dict:
    """A copy of ``card`` whose grid has ``num_steps`` steps, recomputed from the schedule.

    Everything else (objective, its value, ``optimized_at``) is kept: the objective value
    still refers to the steps (and NFE) in ``card["optimized_at"]``.

    >>> from schedopt.schedules import EDM
    >>> card = make_card(EDM(), num_steps=10)
    >>> new = regrid_card(card, 4, final="min")
    >>> len(new["grid"]["noise_levels"]), new["optimized_at"]["num_steps"]
    (5, 10)
    """
    schedule = card_schedule(card)
    out = copy.deepcopy(card)
    out["grid"] = _grid(schedule, num_steps, final, card["process"])
    return out
