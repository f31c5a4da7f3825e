"""Atomic writes (whole files, ordinary permissions), stale temporaries, directory locks."""

import os
import signal
import stat
import subprocess
import sys

import pytest

from schedopt.io import atomic_write_bytes, atomic_write_json
from schedopt.io.atomic import DirectoryInUseError, DirectoryLock, remove_stale_temporaries


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


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    (tmp_path / "run").mkdir()
    link = tmp_path / "run" / "log.jsonl"
    link.symlink_to(outside)  # dangling
    atomic_write_bytes(link, b"data")
    assert not outside.exists() and not link.is_symlink() and link.read_bytes() == b"data"


DEAD = 2**22 + 4321  # above Linux's default pid_max: no such process


def test_stale_temporaries_are_swept_by_owner(tmp_path):
    dead = tmp_path / f".card.json.{DEAD}.ab12.tmp"
    live = tmp_path / f".card.json.{os.getpid()}.cd34.tmp"
    legacy = tmp_path / ".card.json.ef56.tmp"  # an older schedopt's: no pid
    other = tmp_path / f".plot.png.{DEAD}.gh78.tmp"
    folder = tmp_path / f".incomplete.{DEAD}.ij90.tmpdir"
    folder.mkdir()
    for path in (dead, live, legacy, other, folder / "log.jsonl"):
        path.write_text("partial")
    keep = tmp_path / ".hidden-but-not-ours"
    keep.write_text("x")
    # the next write of card.json removes its dead writers' temporaries only
    atomic_write_bytes(tmp_path / "card.json", b"{}")
    assert not dead.exists() and live.exists() and legacy.exists() and other.exists()
    assert sorted(p.name for p in remove_stale_temporaries(tmp_path)) == [
        folder.name,
        other.name,
    ]
    # under the directory's lock every temporary is stale, a live pid's and a legacy one too
    removed = remove_stale_temporaries(tmp_path, any_owner=True)
    assert sorted(p.name for p in removed) == sorted([live.name, legacy.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden-but-not-ours", "card.json"]


LOCKER = """
import sys, time
from schedopt.io.atomic import DirectoryLock
DirectoryLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_directory_lock_excludes_other_processes_until_they_end(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(DirectoryInUseError, match=rf"in use by .* \(pid {child.pid}\)"):
            DirectoryLock(tmp_path).acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # killed without cleaning up: its lock file stays, the kernel released the lock
    assert (tmp_path / ".schedopt.lock").exists()
    with DirectoryLock(tmp_path):
        with pytest.raises(DirectoryInUseError):
            DirectoryLock(tmp_path).acquire()  # exclusive within a process too
    assert not (tmp_path / ".schedopt.lock").exists()
