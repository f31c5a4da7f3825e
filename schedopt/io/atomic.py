"""Atomic file output, stale temporaries and directory locks.

- :func:`atomic_write_bytes` writes through a hidden temporary file
  ``.NAME.PID.RANDOM.tmp`` and ``os.replace``: the file appears whole or not at all.
  A process killed mid-write leaves its temporary behind; the next write of the same
  file (and :func:`remove_stale_temporaries`) removes those of processes that have ended.
- :class:`DirectoryLock` holds an exclusive ``flock`` on ``DIR/.schedopt.lock`` while a
  process writes to ``DIR``; a second writer gets :class:`DirectoryInUseError` at once.
  The kernel releases the lock when its process ends, however it ends.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

try:  # POSIX; elsewhere locks are not taken
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

LOCK_NAME = ".schedopt.lock"
# .NAME.PID.RANDOM.tmp (files, atomic_write_bytes) or .NAME.PID.RANDOM.tmpdir (folders);
# older schedopt wrote .NAME.RANDOM.tmp, without the PID.
_TEMPORARY = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[^.]+\.tmp(?:dir)?$")


class DirectoryInUseError(RuntimeError):
    """Another process holds the :class:`DirectoryLock` of a directory."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(
    directory: str | os.PathLike, *, name: str | None = None, any_owner: bool = False
) -> list[Path]:
    """Remove the temporaries left in ``directory`` by killed writers; return them.

    A temporary is stale when the process named in it has ended; with ``any_owner=True``
    (for a directory whose :class:`DirectoryLock` the caller holds) every temporary is,
    as are those of older schedopt versions, which carry no process id. ``name`` limits
    the sweep to the temporaries of one file.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / ".card.json.999999999.x1.tmp").write_text("partial")
    >>> [p.name for p in remove_stale_temporaries(d)]
    ['.card.json.999999999.x1.tmp']
    """
    directory = Path(directory)
    removed = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or (name is not None and match["name"] != name):
            continue
        pid = match["pid"]
        if not any_owner and (pid is None or _process_alive(int(pid))):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def temporary_name(path: str | os.PathLike) -> str:
    """The prefix of this process's temporaries of ``path``: ``.NAME.PID.``."""
    return f".{Path(path).name}.{os.getpid()}."


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``: all or nothing.

    Stale temporaries of ``path`` left by killed writers are removed first. A symbolic
    link at ``path`` is replaced by the file, never followed.

    >>> import tempfile, pathlib
    >>> p = atomic_write_bytes(pathlib.Path(tempfile.mkdtemp()) / "a.txt", b"hello")
    >>> p.read_bytes()
    b'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, name=path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_name(path), suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> what open() would have made
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """``atomic_write_bytes`` of ``obj`` as indented JSON (no NaN/Infinity allowed)."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode())


class DirectoryLock:
    """An exclusive lock on ``directory`` while this process writes to it.

    ``acquire`` creates ``directory/.schedopt.lock`` (holding the owner's process id) and
    takes an ``flock`` on it without waiting; if another process holds it,
    :class:`DirectoryInUseError` names the directory and that process. ``release`` (or
    leaving the ``with`` block) removes the file. ``directory`` must exist.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with DirectoryLock(d):
    ...     try:
    ...         DirectoryLock(d).acquire()
    ...     except DirectoryInUseError as e:
    ...         print("in use")
    in use
    """

    def __init__(self, directory: str | os.PathLike, *, what: str = "directory"):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> DirectoryLock:
        if fcntl is None or self._fd is not None:  # pragma: no cover
            return self
        for _ in range(10):  # retried only if the file was replaced while locking it
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666 & ~_umask())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise DirectoryInUseError(
                    f"{self.what} {str(self.directory)!r} is in use by another schedopt "
                    f"process (pid {owner}); wait for it to finish or use another directory"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return self
            os.close(fd)  # the previous owner removed it between our open and flock
        raise DirectoryInUseError(  # pragma: no cover
            f"{self.what} {str(self.directory)!r}: cannot take its lock {str(self.path)!r}"
        )

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
