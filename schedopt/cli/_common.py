"""Helpers shared by the subcommands: argument types with bounds, lists and spectra, tables.

Every option is checked when the command line is parsed, before anything is computed or
written: the ``argparse`` types below refuse a value with a message naming the option
and the value (``argument --num-steps: must be an integer from 1 to 10000, got '0'``).
Floating-point options are checked against the working precision (float32 unless
``--x64``), so that a value the computation would turn into ``inf`` or 0 is refused.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from ..gaussian.spectrum import Spectrum

#: Largest number of sampling steps a command accepts (``--num-steps``, ``--reference-steps``, ...).
MAX_STEPS = 10_000
#: Largest number of optimiser iterations / training steps.
MAX_ITERATIONS = 10_000_000
#: Largest sample count, batch or data size.
MAX_SAMPLES = 10_000_000
#: Largest spectrum dimension (``power-law:DIM``).
MAX_DIM = 10_000_000
#: Largest ``--num-steps`` x spectrum dimension of a Gaussian KL (its arrays hold this many
#: entries per step map; about 2 GB of float32 for value and gradient).
MAX_KL_ENTRIES = 50_000_000
#: Seeds are 32-bit: ``jax.random.key`` keeps the low 32 bits of larger ones.
MAX_SEED = 2**32 - 1
#: float32 loses the Gaussian KL below this ratio of eigenvalue to squared noise level.
MIN_EIGENVALUE_RATIO_FLOAT32 = 1e-12


def working_dtype() -> np.dtype:
    """The floating-point type computations use: float32, or float64 with ``--x64``."""
    return np.dtype(jnp.result_type(float))


def _float_text(value: float) -> str:
    return f"{value:.3g}"


def int_range(lo: int, hi: int):
    """An ``argparse`` type: an integer in ``[lo, hi]``.

    >>> int_range(1, 10)("3")
    3
    >>> int_range(1, 10)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be an integer from 1 to 10, got '0'
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be an integer from {lo} to {hi}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


#: Attribute of the parsed arguments listing the deprecated spellings used (each warned).
DEPRECATED = "deprecated_spellings"

#: The help sentence on sampler steps and evaluations, shared by every command.
STEPS_HELP = (
    "--num-steps counts sampler steps N; NFE counts denoiser evaluations, which depend on "
    "the solver (Euler: N, Heun: 2N - 1 with --final zero)"
)


def add_steps_option(parser, *, default, help: str, alias: bool = True) -> None:
    """Add ``--num-steps`` (sampler steps, destination ``num_steps``) and, with ``alias``,
    ``--nfe`` as its deprecated spelling: the same number of *steps*, with a warning to
    write ``--num-steps`` (an old command line keeps its meaning; nothing is converted).
    The two are mutually exclusive."""
    group = parser.add_mutually_exclusive_group()
    kind = int_range(1, MAX_STEPS)

    def given(text: str) -> int:
        # argparse counts an option as given only if its value `is not` the default, and
        # CPython caches small ints: a fresh subclass instance makes `--num-steps 10`
        # conflict with `--nfe` even where 10 is the default (plain_ints() undoes it)
        return ExplicitInt(kind(text))

    given.__name__ = kind.__name__
    group.add_argument(
        "--num-steps", dest="num_steps", type=given, default=default, metavar="N", help=help
    )
    if alias:
        group.add_argument(
            "--nfe",
            dest="num_steps",
            type=kind,
            default=argparse.SUPPRESS,
            metavar="N",
            action=_deprecated_action(
                "--nfe",
                "--num-steps",
                "here it has always counted sampler steps, not "
                "evaluations; the number is used unchanged",
            ),
            help="deprecated spelling of --num-steps (the same number of steps)",
        )


class ExplicitInt(int):
    """An int read from the command line (see :func:`add_steps_option`)."""


def plain_ints(args) -> None:
    """Turn every :class:`ExplicitInt` of the parsed ``args`` back into an ``int``."""
    for name, value in vars(args).items():
        if type(value) is ExplicitInt:
            setattr(args, name, int(value))


def add_deprecated_alias(group, old: str, new: str, dest: str, **kwargs) -> None:
    """Add ``old`` as a deprecated spelling of the option ``new`` (same ``dest``, ``type``
    and ``choices`` as given in ``kwargs``): its value is stored as given, and the
    command warns on stderr to write ``new``."""
    group.add_argument(
        old,
        dest=dest,
        default=argparse.SUPPRESS,
        action=_deprecated_action(old, new, "the same option"),
        help=f"deprecated spelling of {new}",
        **kwargs,
    )


def _deprecated_action(old: str, new: str, why: str) -> type[argparse.Action]:
    message = f"{old} is deprecated: write {new} ({why})"

    class Deprecated(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            setattr(namespace, self.dest, values)
            used = getattr(namespace, DEPRECATED, None)
            used = used if isinstance(used, tuple) else ()
            if message not in used:
                setattr(namespace, DEPRECATED, (*used, message))

    return Deprecated


def float_range(
    lo: float | None = None,
    hi: float | None = None,
    *,
    open_lo: bool = False,
    open_hi: bool = False,
):
    """An ``argparse`` type: a finite real number in ``[lo, hi]`` (``open_lo`` /
    ``open_hi`` exclude the bound); either bound may be None.

    >>> float_range(0, 1, open_lo=True)("0.5")
    0.5
    >>> float_range(0, 1, open_lo=True)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a number > 0 and <= 1, got '0'
    """
    parts = []
    if lo is not None:
        parts.append(f"{'>' if open_lo else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if open_hi else '<='} {hi:g}")
    what = "a number " + " and ".join(parts) if parts else "a finite number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        bad = not math.isfinite(value)
        bad = bad or (lo is not None and (value <= lo if open_lo else value < lo))
        bad = bad or (hi is not None and (value >= hi if open_hi else value > hi))
        if bad:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def int_list(lo: int, hi: int, max_items: int = 16):
    """An ``argparse`` type: comma-separated integers in ``[lo, hi]`` (``"32,64"``).

    >>> int_list(1, 512)("32,64")
    [32, 64]
    """

    def parse(text: str) -> list[int]:
        try:
            values = [int(x) for x in text.split(",")]
        except ValueError:
            values = []
        if not 1 <= len(values) <= max_items or not all(lo <= v <= hi for v in values):
            raise argparse.ArgumentTypeError(
                f"must be 1 to {max_items} comma-separated integers from {lo} to {hi}, got {text!r}"
            )
        return values

    parse.__name__ = "integer list"
    return parse


def noise_level_range() -> tuple[float, float]:
    """Noise levels the working precision can square: ``sqrt(tiny)`` to ``sqrt(max)``."""
    info = np.finfo(working_dtype())
    return float(np.sqrt(info.tiny)), float(np.sqrt(info.max))


def check_noise_level(option: str | None, value: float, *, allow_zero: bool = False) -> float:
    """Refuse a noise level outside :func:`noise_level_range` (or ``<= 0``), naming
    ``option`` and the value and pointing at ``--x64`` where float64 would hold it.

    >>> check_noise_level("--sigma-max", 1e30)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --sigma-max 1e+30 is outside the noise levels float32 can square (...); ...
    """
    lo, hi = noise_level_range()
    prefix = f"{option} {value!r}" if option else f"{value!r}"
    if allow_zero and value == 0:
        return value
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{prefix} is not a positive finite noise level")
    if not lo <= value <= hi:
        name = working_dtype().name
        hint = "; pass --x64 for float64" if name == "float32" and 1e-150 < value < 1e150 else ""
        raise ValueError(
            f"{prefix} is outside the noise levels {name} can square "
            f"({_float_text(lo)} to {_float_text(hi)}){hint}"
        )
    return value


def noise_level(text: str) -> float:
    """An ``argparse`` type: a positive noise level the working precision can square."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    try:
        return check_noise_level(None, value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


noise_level.__name__ = "noise level"


def noise_range(text: str) -> tuple[float, float]:
    """An ``argparse`` type: two noise levels ``LO,HI`` with ``LO < HI`` (``"0.002,160"``).

    >>> noise_range("0.002,160")
    (0.002, 160.0)
    """
    items = text.split(",")
    if len(items) != 2:
        raise argparse.ArgumentTypeError(f"must be two noise levels LO,HI, got {text!r}")
    lo, hi = (noise_level(item.strip()) for item in items)
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"must satisfy LO < HI, got {text!r}")
    return lo, hi


noise_range.__name__ = "noise range"


def parse_floats(name: str, text: str) -> list[float]:
    """``"80,1.5,0"`` to floats; errors name the option and the bad item.

    >>> parse_floats("sigmas", "80, 1.5,0")
    [80.0, 1.5, 0.0]
    """
    out = []
    for item in text.split(","):
        item = item.strip()
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"--{name} must be comma-separated numbers, got {item!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"--{name} must be finite numbers, got {item!r}")
        out.append(value)
    return out


SPECTRUM_HELP = (
    "data spectrum: 'digits' (scikit-learn's 8x8 digits in [-1, 1]), "
    "'power-law:DIM[:EXPONENT]', or a .npy file of eigenvalues"
)

_NPY_MAGIC = b"\x93NUMPY"


def load_npy(option: str, path: str | Path) -> np.ndarray:
    """A NumPy ``.npy`` file (no pickles), or a ``ValueError`` naming ``option``, the path
    and what is wrong with it (missing, empty, not an ``.npy`` file, unreadable)."""
    path = Path(path)
    where = f"cannot read {option} {str(path)!r}"
    if not path.is_file():
        raise ValueError(f"{where}: file not found")
    with open(path, "rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if not head:
        raise ValueError(f"{where}: it is empty (0 bytes), not a NumPy .npy file")
    if head != _NPY_MAGIC:
        raise ValueError(
            f"{where}: it is not a NumPy .npy file (no .npy header; a text file? "
            "write it with numpy.save)"
        )
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        raise ValueError(f"{where}: {e} (truncated, or an object array?)") from None


def parse_spectrum(spec: str | None, eigenvalues: str | None = None) -> Spectrum:
    """A spectrum from ``--eigenvalues a,b,c`` or ``--spectrum NAME`` (see ``SPECTRUM_HELP``)."""
    if eigenvalues is not None:
        values = np.asarray(parse_floats("eigenvalues", eigenvalues))
        return _checked_spectrum("--eigenvalues", values)
    spec = spec or "digits"
    if spec == "digits":
        return Spectrum.digits()
    if spec.startswith("power-law:"):
        parts = spec.split(":")[1:]
        try:
            dim = int(parts[0])
            exponent = float(parts[1]) if len(parts) > 1 else 1.0
        except (ValueError, IndexError):
            raise ValueError(f"--spectrum power-law needs DIM[:EXPONENT], got {spec!r}") from None
        if len(parts) > 2 or not 1 <= dim <= MAX_DIM or not 0 < exponent <= 100:
            raise ValueError(
                f"--spectrum power-law:DIM[:EXPONENT] needs 1 <= DIM <= {MAX_DIM} and "
                f"0 < EXPONENT <= 100, got {spec!r}"
            )
        return _checked_spectrum(
            "--spectrum", np.asarray(Spectrum.power_law(dim, exponent).eigenvalues)
        )
    if Path(spec).suffix == ".npy":
        return _checked_spectrum(f"--spectrum {spec!r}", load_npy("--spectrum", spec))
    raise ValueError(f"unknown --spectrum {spec!r}; {SPECTRUM_HELP}")


def _checked_spectrum(where: str, values: np.ndarray) -> Spectrum:
    """``Spectrum(values)`` after checking the values fit the working precision; errors
    start with ``where`` (e.g. ``--eigenvalues``)."""
    if values.ndim != 1 or values.shape[0] < 1 or values.shape[0] > MAX_DIM:
        raise ValueError(
            f"{where} must hold a 1-D list of 1 to {MAX_DIM} eigenvalues, got shape {values.shape}"
        )
    if np.iscomplexobj(values):
        raise ValueError(f"{where}: eigenvalues must be real, got complex values")
    if not np.issubdtype(values.dtype, np.number) or values.dtype == bool:
        raise ValueError(f"{where}: eigenvalues must be numbers, got dtype {values.dtype}")
    values = values.astype(np.float64)
    bad = values[~np.isfinite(values) | (values <= 0)]
    if bad.size:
        raise ValueError(f"{where}: eigenvalues must be finite and > 0, got {bad[:3].tolist()}")
    info = np.finfo(working_dtype())
    if values.min() < info.tiny or values.max() > np.sqrt(info.max):
        raise ValueError(
            f"{where}: eigenvalues must lie between {_float_text(float(info.tiny))} and "
            f"{_float_text(float(np.sqrt(info.max)))} in {info.dtype} (got "
            f"{values.min():.3g} to {values.max():.3g}); pass --x64 for float64"
        )
    return Spectrum(values)


def check_spectrum_precision(spectrum: Spectrum, sigma_max: float, option: str) -> None:
    """Refuse, in float32, eigenvalues below ``1e-12`` of the largest squared noise level:
    float32's closed-form KL loses them (16% low at ``1e-16``, then NaN); float64 does not.
    """
    if working_dtype() != np.float32:
        return
    smallest = float(np.min(np.asarray(spectrum.eigenvalues)))
    ratio = smallest / sigma_max**2
    if ratio < MIN_EIGENVALUE_RATIO_FLOAT32:
        raise ValueError(
            f"{option}: the smallest eigenvalue {smallest:.3g} is {ratio:.2g} of the largest "
            f"noise level squared ({sigma_max:g}^2), below what float32 resolves "
            f"({MIN_EIGENVALUE_RATIO_FLOAT32:g}); pass --x64 to compute in float64"
        )


def family_parameters(name: str) -> set[str]:
    """The keyword parameters of a schedule family's constructor (``sigma_min`` and
    ``sigma_max`` for those taking ``**endpoints``).

    >>> sorted(family_parameters("edm"))
    ['rho', 'sigma_max', 'sigma_min']
    """
    import inspect

    from ..schedules import FAMILIES

    out = set()
    for p in inspect.signature(FAMILIES[name]).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            out |= {"sigma_min", "sigma_max"}
        elif p.kind is not p.VAR_POSITIONAL:
            out.add(p.name)
    return out


def network_dir(option: str, path: str) -> Path:
    """The saved network a ``schedopt train`` run directory (or its ``network/`` folder)
    holds; refused before any work when there is none."""
    folder = Path(path)
    if (folder / "network").is_dir():
        folder = folder / "network"
    if not (folder / "network.json").is_file():
        raise ValueError(
            f"{option} {path!r} is not a saved network (no network.json in it or in its "
            "network/ folder; `schedopt train` writes one)"
        )
    return folder


def dataset_denoiser(dataset, network: str | None, option: str):
    """The denoiser an objective needs: the saved network at ``network`` (a
    ``schedopt train`` network directory) if given, else the data set's exact oracle.

    ``option`` names the command-line flag in the error for data without a known density.
    """
    if network is not None:
        from ..models.nnx_adapter import load_denoiser

        return load_denoiser(network_dir(option, network))
    if dataset.distribution is None:
        raise ValueError(
            f"{dataset.name!r} has no exact oracle (no known density): give {option} "
            "(a saved network directory, e.g. runs/digits-edm/network)"
        )
    from ..models.oracles import GaussianMixtureDenoiser

    return GaussianMixtureDenoiser.from_mixture(dataset.distribution)
