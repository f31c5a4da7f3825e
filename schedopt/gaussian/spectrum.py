"""Gaussian data described in its eigenbasis: eigenvalues ``c_i``, mean ``mu_i``, weights.

Everything in the Gaussian theory diagonalises in the eigenbasis of the covariance, so
a ``Spectrum`` is all a closed-form computation needs. ``weights`` count multiplicities
(a direction with weight 2 stands for two equal eigenvalues).
"""

from __future__ import annotations

import functools
import hashlib

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import (
    check_array_finite,
    check_array_positive,
    check_positive_float,
    check_positive_int,
    is_concrete,
)


class Spectrum(eqx.Module):
    """Eigenvalues (``> 0``), mean in the eigenbasis and multiplicity weights of a Gaussian.

    Refused: no eigenvalue, complex or non-finite values, eigenvalues ``<= 0``, negative
    weights, and shapes that differ.

    >>> sp = Spectrum(jnp.array([0.5, 1.0, 2.0]))
    >>> sp.dim, float(sp.mean.sum())
    (3, 0.0)
    """

    eigenvalues: Float[Array, " d"]
    mean: Float[Array, " d"]
    weights: Float[Array, " d"]

    def __init__(
        self,
        eigenvalues: ArrayLike,
        mean: ArrayLike | None = None,
        weights: ArrayLike | None = None,
    ):
        dtype = jnp.result_type(float)
        for name, value in (("eigenvalues", eigenvalues), ("mean", mean), ("weights", weights)):
            if value is not None and jnp.iscomplexobj(value):
                raise ValueError(
                    f"`{name}` must be real, got complex values (dtype "
                    f"{getattr(value, 'dtype', 'complex')}); a covariance has real eigenvalues"
                )
        self.eigenvalues = jnp.atleast_1d(jnp.asarray(eigenvalues, dtype=dtype))
        d = self.eigenvalues.shape
        self.mean = jnp.zeros(d, dtype) if mean is None else jnp.asarray(mean, dtype=dtype)
        self.weights = jnp.ones(d, dtype) if weights is None else jnp.asarray(weights, dtype=dtype)

    def __check_init__(self):
        if self.eigenvalues.ndim != 1:
            raise ValueError(
                f"`eigenvalues` must be 1-D, got shape {tuple(self.eigenvalues.shape)}"
            )
        if self.eigenvalues.shape[0] < 1:
            raise ValueError("`eigenvalues` must hold at least one eigenvalue, got none")
        check_array_positive("eigenvalues", self.eigenvalues)
        for name in ("mean", "weights"):
            value = getattr(self, name)
            if value.shape != self.eigenvalues.shape:
                expected = tuple(self.eigenvalues.shape)
                raise ValueError(
                    f"`{name}` must have the shape of `eigenvalues` {expected}, "
                    f"got {tuple(value.shape)}"
                )
        check_array_finite("mean", self.mean)
        if is_concrete(self.weights) and np.any(np.asarray(self.weights) < 0):
            raise ValueError("`weights` must be >= 0 everywhere")

    @property
    def dim(self) -> int:
        return int(self.eigenvalues.shape[0])

    def fingerprint(self) -> str:
        """A short SHA-256 of the eigenvalues, mean and weights (for schedule cards)."""
        h = hashlib.sha256()
        for a in (self.eigenvalues, self.mean, self.weights):
            h.update(np.asarray(a, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]

    # ---- constructors ---------------------------------------------------------------

    @classmethod
    def from_data(cls, data: ArrayLike, min_eigenvalue_ratio: float = 1e-6) -> Spectrum:
        """Covariance eigenvalues and eigenbasis mean of ``data`` of shape ``(n, d)``.

        Directions whose eigenvalue is below ``min_eigenvalue_ratio * max`` (constant
        pixels, exact collinearity) carry no Gaussian KL and are dropped.

        >>> x = np.random.default_rng(0).normal(size=(100_000, 2)) * [1.0, 2.0]
        >>> [round(c) for c in sorted(Spectrum.from_data(x).eigenvalues.tolist())]
        [1, 4]
        """
        x = np.asarray(data, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"`data` must have shape (n >= 2, d), got {x.shape}")
        check_array_finite("data", x)
        ratio = check_positive_float("min_eigenvalue_ratio", min_eigenvalue_ratio)
        values, mean = _eigen(x, ratio)
        return cls(values, mean=mean)

    @classmethod
    def digits(cls, split: str = "all") -> Spectrum:
        """scikit-learn's bundled 8x8 digits, pixels scaled to ``[-1, 1]`` (no download).

        ``split`` is ``"all"`` (1797 images), ``"train"`` or ``"test"`` (the fixed split of
        :func:`schedopt.data.load_digits`). With all images, 61 of the 64 directions remain
        (three pixels are constant). Read from package data (``digits_spectrum.npz``, made
        by ``scripts/make_digits_spectrum.py`` with :func:`digits_spectrum_from_data`), so
        that scikit-learn is not imported; a test checks both agree.

        >>> Spectrum.digits().dim
        61
        """
        from .._checks import check_choice

        check_choice("split", split, DIGITS_SPLITS)
        arrays = _digits_asset()
        return cls(arrays[f"{split}_eigenvalues"], mean=arrays[f"{split}_mean"])

    @classmethod
    def power_law(cls, dim: int, exponent: float = 1.0, scale: float = 1.0) -> Spectrum:
        """Synthetic spectrum ``c_i = scale * i^(-exponent)``, ``i = 1 .. dim``.

        >>> Spectrum.power_law(3, exponent=1.0).eigenvalues.tolist()
        [1.0, 0.5, 0.3333333432674408]
        """
        d = check_positive_int("dim", dim)
        p = check_positive_float("exponent", exponent)
        a = check_positive_float("scale", scale)
        return cls(a * np.arange(1, d + 1, dtype=np.float64) ** (-p))


#: The splits of :meth:`Spectrum.digits`.
DIGITS_SPLITS = ("all", "train", "test")
_DIGITS_ASSET = "digits_spectrum.npz"


def digits_spectrum_from_data(split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """``(eigenvalues, mean)`` (float64) of the digits ``split`` computed from the images
    (imports scikit-learn): what :meth:`Spectrum.digits` reads from package data.

    >>> values, mean = digits_spectrum_from_data("test")
    >>> values.shape == mean.shape
    True
    """
    from ..data.digits import load_digits

    images, _ = load_digits(split)
    return _eigen(images.reshape(images.shape[0], -1))


def _eigen(data, min_eigenvalue_ratio: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(data, dtype=np.float64)
    mu = x.mean(axis=0)
    cov = np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])
    values, vectors = np.linalg.eigh(cov)
    keep = values > min_eigenvalue_ratio * values.max()
    return values[keep], (vectors.T @ mu)[keep]


@functools.cache
def _digits_asset() -> dict[str, np.ndarray]:
    from importlib.resources import files

    with files(__package__).joinpath("_assets", _DIGITS_ASSET).open("rb") as f, np.load(f) as z:
        return {name: z[name] for name in z.files}
