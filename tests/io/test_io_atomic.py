"""Atomic writes: whole files with ordinary permissions."""

import os
import stat

import pytest

from schedopt.io import atomic_write_bytes, atomic_write_json


def test_atomic_write_makes_a_whole_file_with_umask_permissions(tmp_path):
    path = atomic_write_bytes(tmp_path / "a" / "b.bin", b"hello")
    assert path.read_bytes() == b"hello"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in path.parent.iterdir()] == ["b.bin"]


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"bad": float("nan")})
    assert list(tmp_path.iterdir()) == []
