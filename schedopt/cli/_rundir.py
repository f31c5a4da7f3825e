"""The output directory of a command (``--out``): checked first, locked, whole or unchanged.

A command that writes a run directory

1. checks it with :func:`check_run_dir` before any work (a file, a path under a file, an
   unwritable parent, or a symbolic link among the names the command writes is refused);
2. enters :class:`RunDirectory`: the directory (and missing parents) is created, locked
   (:class:`~schedopt.io.atomic.DirectoryLock`: a second writer fails at once), and the
   temporaries of killed runs are removed;
3. writes its results into a hidden staging folder (:meth:`RunDirectory.staged`) and
   moves them into place at the end (:meth:`RunDirectory.commit`).

If the command fails, everything it added is removed and a directory it created is
deleted: the directory is left as it was. The one exception is resumable state (a
``checkpoints`` folder holding a step, and what belongs with it), which stays so that
the run can be resumed. A killed command leaves only its staging folder, which the next
command in that directory removes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..io.atomic import LOCK_NAME, DirectoryLock, remove_stale_temporaries, temporary_name


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and not path.is_symlink() and path != path.parent:
        path = path.parent
    return path


def check_run_dir(path: str | os.PathLike, option: str, outputs: tuple[str, ...]) -> Path:
    """Refuse ``path`` as an output directory before anything is computed or written.

    Raises ``ValueError`` naming ``option`` when ``path`` is a file, lies under a file,
    cannot be created or written, or holds a symbolic link named like one of ``outputs``
    (schedopt does not follow links out of a run directory).
    """
    path = Path(path)
    where = f"{option} {str(path)!r}"
    if path.exists() and not path.is_dir():
        raise ValueError(f"{where} exists and is not a directory")
    if path.is_symlink() and not path.exists():
        raise ValueError(f"{where} is a dangling symbolic link")
    existing = _nearest_existing(path.absolute())
    if not existing.is_dir():
        raise ValueError(f"{where} cannot be created: {str(existing)!r} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{where} is not writable: no write permission on {str(existing)!r}")
    for name in outputs:
        if (path / name).is_symlink():
            raise ValueError(
                f"{where}: {name!r} in it is a symbolic link; schedopt does not follow links "
                "out of a run directory (remove the link or use another directory)"
            )
    return path


def check_output_file(option: str, path: str | os.PathLike) -> Path:
    """Refuse ``path`` as a file to write before any work: a directory, a symbolic link,
    or a path whose folder is missing, not a folder or not writable.

    >>> check_output_file("--out", "/nonexistent-folder/x.json")
    Traceback (most recent call last):
    ...
    ValueError: --out '/nonexistent-folder/x.json': its folder '/nonexistent-folder' does not exist
    """
    path = Path(path)
    where = f"{option} {str(path)!r}"
    if path.is_symlink():
        raise ValueError(f"{where} is a symbolic link; give the path of a plain file")
    if path.is_dir():
        raise ValueError(f"{where} is a directory; give a file path")
    folder = path.absolute().parent
    if not folder.exists():
        raise ValueError(f"{where}: its folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ValueError(f"{where}: {str(folder)!r} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{where} is not writable: no write permission on {str(folder)!r}")
    return path


class RunDirectory:
    """A locked output directory whose results appear whole or not at all.

    ``outputs`` are the names the command writes (checked for symbolic links);
    ``resumable`` the names kept after a failure when ``checkpoints`` holds a step.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with RunDirectory(out, outputs=("a.txt",)) as run:
    ...     _ = run.staged("a.txt").write_text("done")
    ...     run.commit(["a.txt"])
    >>> sorted(p.name for p in out.iterdir())
    ['a.txt']
    >>> try:
    ...     with RunDirectory(out / "new", outputs=("a.txt",)) as run:
    ...         _ = run.staged("a.txt").write_text("half")
    ...         raise RuntimeError("failed")
    ... except RuntimeError:
    ...     pass
    >>> (out / "new").exists()
    False
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        option: str = "--out",
        outputs: tuple[str, ...] = (),
        resumable: tuple[str, ...] = (),
    ):
        self.path = Path(path)
        self.option = option
        self.outputs = tuple(outputs)
        self.resumable = tuple(resumable)
        self._created: list[Path] = []
        self._lock: DirectoryLock | None = None
        self._before: set[str] = set()
        self._staging: Path | None = None

    # ---- entering: create, lock, clean ----------------------------------------------

    def __enter__(self) -> RunDirectory:
        check_run_dir(self.path, self.option, self.outputs)
        try:
            self._make_dirs()
            self._lock = DirectoryLock(self.path, what=f"{self.option} directory").acquire()
        except OSError as e:
            self._remove_created()
            raise OSError(
                e.errno,
                f"cannot create or lock the {self.option} directory: {e.strerror}",
                str(self.path),
            ) from None
        except BaseException:
            self._remove_created()
            raise
        try:
            remove_stale_temporaries(self.path, any_owner=True)
            remove_stale_temporaries(self.path / "exports")  # dead writers' only: unlocked
            self._before = set(os.listdir(self.path)) - {LOCK_NAME}
            self._staging = Path(
                tempfile.mkdtemp(
                    dir=self.path, prefix=temporary_name("incomplete"), suffix=".tmpdir"
                )
            )
        except BaseException:
            self._release()
            self._remove_created()
            raise
        return self

    def _make_dirs(self) -> None:
        missing = []
        path = self.path.absolute()
        while not path.exists():
            missing.append(path)
            path = path.parent
        for folder in reversed(missing):
            folder.mkdir()
            self._created.append(folder)

    # ---- writing --------------------------------------------------------------------

    def staged(self, name: str) -> Path:
        """Where to write output ``name`` until :meth:`commit` moves it into place."""
        return self._staging / name

    def target(self, name: str) -> Path:
        """``path / name``, refusing a symbolic link there."""
        target = self.path / name
        if target.is_symlink():
            raise ValueError(
                f"{self.option} {str(self.path)!r}: {name!r} in it is a symbolic link; "
                "schedopt does not follow links out of a run directory"
            )
        return target

    def commit(self, names: list[str]) -> None:
        """Move the staged ``names`` into the directory, in order (put the one that marks
        a finished run, e.g. the card, last); a folder replaces the old one whole."""
        for name in names:
            source, target = self.staged(name), self.target(name)
            if source.is_dir() and target.is_dir():
                old = self._staging / f".old-{name}"
                os.replace(target, old)
                os.replace(source, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(source, target)

    # ---- leaving: keep, or roll back ------------------------------------------------

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if self._staging is not None:
                shutil.rmtree(self._staging, ignore_errors=True)
            if kind is not None:
                self._roll_back()
        finally:
            self._release()
            if kind is not None and self._created and not self._kept_anything():
                self._remove_created()

    def _resumable_kept(self) -> set[str]:
        checkpoints = self.path / "checkpoints"
        has_step = checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())
        return set(self.resumable) if has_step else set()

    def _roll_back(self) -> None:
        keep = self._before | self._resumable_kept() | {LOCK_NAME}
        for entry in os.scandir(self.path):
            if entry.name in keep:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)

    def _kept_anything(self) -> bool:
        return self.path.is_dir() and any(True for _ in os.scandir(self.path))

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _remove_created(self) -> None:
        for folder in reversed(self._created):
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []
