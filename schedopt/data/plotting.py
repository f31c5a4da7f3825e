"""PNG pictures of samples: a grid of images, or a scatter of the first two coordinates."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np


def plot_samples(
    path: str | os.PathLike,
    samples: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    title: str | None = None,
    max_images: int = 100,
) -> Path:
    """Write ``samples`` to a PNG at ``path`` (atomically).

    Images ``(n, H, W, 1)`` in ``[-1, 1]`` become a square grid (at most ``max_images``);
    vectors ``(n, d)`` a scatter of the first two coordinates over ``reference`` in grey.

    >>> import tempfile, numpy as np
    >>> p = plot_samples(tempfile.mkdtemp() + "/s.png", np.zeros((4, 8, 8, 1)))
    >>> p.stat().st_size > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.asarray(samples)
    if x.ndim == 4:
        x = x[:max_images]
        side = math.ceil(math.sqrt(len(x)))
        fig, axes = plt.subplots(side, side, figsize=(side * 0.5, side * 0.5))
        for ax in np.ravel(axes):
            ax.axis("off")
        for ax, image in zip(np.ravel(axes), x, strict=False):
            ax.imshow(np.clip(image[..., 0], -1, 1), cmap="gray_r", vmin=-1, vmax=1)
        fig.subplots_adjust(0.01, 0.01, 0.99, 0.99 if title is None else 0.93, 0.05, 0.05)
        dpi = 80
    elif x.ndim == 2 and x.shape[1] >= 2:
        fig, ax = plt.subplots(figsize=(4, 4))
        if reference is not None:
            ref = np.asarray(reference)
            ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.75", label="data")
        ax.scatter(x[:, 0], x[:, 1], s=2, c="C0", label="samples")
        ax.set_aspect("equal")
        ax.legend(loc="upper right", markerscale=4)
        dpi = 100
    else:
        raise ValueError(
            f"`samples` must be images (n, H, W, 1) or vectors (n, d >= 2), got {x.shape}"
        )
    if title:
        fig.suptitle(title, fontsize=8)
    from ..plot import save_figure

    save_figure(path, fig, dpi)
    plt.close(fig)
    return Path(path)
