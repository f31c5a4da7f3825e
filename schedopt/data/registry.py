"""Data sets by name: fixed train/test arrays, plus the exact density when there is one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from .._checks import check_positive_int
from .digits import load_digits
from .mixtures import GaussianMixture, gaussian_with_spectrum, grid_mixture, ring, unequal_mixture
from .toy import moons, swiss_roll


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A named data set: ``train`` and ``test`` arrays of shape ``(n, *event_shape)``.

    ``distribution`` is the exact mixture the arrays were drawn from (``None`` for digits,
    moons and swiss roll); labels are the digit classes or mixture components.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    distribution: GaussianMixture | None = None

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])

    @property
    def is_image(self) -> bool:
        return len(self.event_shape) == 3


def _default_spectrum(dim: int = 16) -> np.ndarray:
    return np.geomspace(1e-2, 1.0, check_positive_int("dim", dim))


_MIXTURES: dict[str, Callable[..., GaussianMixture]] = {
    "ring": ring,
    "grid": grid_mixture,
    "gmm64": unequal_mixture,
    "gaussian": lambda dim=16, rotation_seed=0: gaussian_with_spectrum(
        _default_spectrum(dim), rotation_seed=rotation_seed
    ),
}
_TOYS = {"moons": moons, "swiss-roll": swiss_roll}

#: Every name ``load_dataset`` accepts.
DATASETS: tuple[str, ...] = ("digits", *_MIXTURES, *_TOYS)


def load_dataset(
    name: str, *, seed: int = 0, num_train: int = 20_000, num_test: int = 5_000, **params
) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`); generated sets are drawn from ``seed``.

    ``num_train``/``num_test`` apply to generated sets (digits has a fixed split);
    ``params`` go to the preset (e.g. ``num_modes`` for ``ring``, ``dim`` for ``gaussian``).

    >>> ds = load_dataset("ring", num_train=100, num_test=10)
    >>> ds.train.shape, ds.distribution.num_components
    ((100, 2), 8)
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if name == "digits":
        if params:
            raise ValueError(f"dataset 'digits' takes no parameters, got {params!r}")
        x_train, y_train = load_digits("train")
        x_test, y_test = load_digits("test")
        return Dataset(name, x_train, x_test, y_train, y_test)
    n_train = check_positive_int("num_train", num_train)
    n_test = check_positive_int("num_test", num_test)
    key = jax.random.key(seed)
    try:
        if name in _MIXTURES:
            dist = _MIXTURES[name](**params)
        else:
            x = np.asarray(_TOYS[name](key, n_train + n_test, **params), np.float32)
            return Dataset(name, x[:n_train], x[n_train:])
    except TypeError as e:
        raise ValueError(f"bad parameters {params!r} for dataset {name!r}: {e}") from None
    # one draw split in two: a single compilation for both sets
    x, labels = dist.sample_with_labels(key, n_train + n_test)
    x, labels = np.asarray(x, np.float32), np.asarray(labels)
    return Dataset(name, x[:n_train], x[n_train:], labels[:n_train], labels[n_train:], dist)
