"""scikit-learn's bundled handwritten digits: 1797 images of 8x8, no download.

Pixels (integers 0..16) are scaled to ``[-1, 1]`` by ``x / 8 - 1`` and laid out
channels-last, shape ``(n, 8, 8, 1)``. The train/test split is fixed: stratified by
label, 20% test, ``random_state=0`` (1437 train, 360 test images).
"""

from __future__ import annotations

import functools

import numpy as np

from .._checks import check_choice

SPLITS = ("train", "test", "all")
IMAGE_SHAPE = (8, 8, 1)
TEST_FRACTION = 0.2
SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def _load_all() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = _sk_load_digits()
    images = (bunch.images.astype(np.float32) / 8.0 - 1.0)[..., None]
    labels = bunch.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    for arr in (x_train, x_test, y_train, y_test):
        arr.setflags(write=False)
    return x_train, x_test, y_train, y_test


def load_digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 8, 8, 1)`` in ``[-1, 1]`` (float32) and labels ``(n,)`` (int32).

    >>> x, y = load_digits("test")
    >>> x.shape, y.shape, float(x.min()), float(x.max())
    ((360, 8, 8, 1), (360,), -1.0, 1.0)
    """
    check_choice("split", split, SPLITS)
    x_train, x_test, y_train, y_test = _load_all()
    if split == "train":
        return x_train, y_train
    if split == "test":
        return x_test, y_test
    return np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])


def to_pixels(images: np.ndarray) -> np.ndarray:
    """Inverse scaling to the original ``[0, 16]`` range, clipped."""
    return np.clip((np.asarray(images) + 1.0) * 8.0, 0.0, 16.0)
