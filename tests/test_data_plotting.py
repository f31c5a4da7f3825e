"""PNG pictures of samples."""

from __future__ import annotations

import numpy as np
import pytest

from schedopt.data.plotting import plot_samples


def test_image_grid_and_scatter(tmp_path):
    images = np.random.default_rng(0).uniform(-1, 1, size=(10, 8, 8, 1))
    p = plot_samples(tmp_path / "grid.png", images, title="ten")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    q = plot_samples(tmp_path / "s.png", np.zeros((5, 3)), reference=np.ones((5, 3)))
    assert q.stat().st_size > 0
    assert sorted(x.name for x in tmp_path.iterdir()) == ["grid.png", "s.png"]  # no temp files


def test_bad_shape(tmp_path):
    with pytest.raises(ValueError, match=r"\(5,\)"):
        plot_samples(tmp_path / "x.png", np.zeros(5))
    assert not (tmp_path / "x.png").exists()
