"""The command line's persistent JAX compilation cache.

Every ``schedopt`` command stores the programs XLA compiles for it on disk and reads them
back in later runs, so a second run of a command skips compilation (JAX's persistent
compilation cache, ``jax_compilation_cache_dir``, here with no minimum compile time or
size, so that even small programs are kept).

Where: ``$SCHEDOPT_COMPILE_CACHE`` if it names a directory, else ``schedopt/jax`` under the
user's cache directory (``$XDG_CACHE_HOME``, by default ``~/.cache``; macOS
``~/Library/Caches``; Windows ``%LOCALAPPDATA%``). Off: ``--no-compile-cache`` on any
command, or ``SCHEDOPT_COMPILE_CACHE=off`` (also ``0``, ``false``, ``no``, ``none``). The
cache is trusted code: do not point it at a directory that others can write to. Deleting
the directory is always safe.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

#: The environment variable that moves (a path) or disables (``off``) the cache.
ENV = "SCHEDOPT_COMPILE_CACHE"
_OFF = ("off", "0", "false", "no", "none")


def user_cache_dir(environ=None, platform: str | None = None) -> Path:
    """The user's cache directory for schedopt's compiled programs (see the module doc).

    >>> str(user_cache_dir({"XDG_CACHE_HOME": "/tmp/c"}, platform="linux"))
    '/tmp/c/schedopt/jax'
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif platform.startswith("win"):
        base = Path(environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "schedopt" / "jax"


def compile_cache_dir(disabled: bool = False, environ=None) -> Path | None:
    """The cache directory to use, or ``None`` when the cache is off (``disabled``, i.e.
    ``--no-compile-cache``, or ``SCHEDOPT_COMPILE_CACHE=off``).

    >>> compile_cache_dir(environ={"SCHEDOPT_COMPILE_CACHE": "off"}) is None
    True
    >>> str(compile_cache_dir(environ={"SCHEDOPT_COMPILE_CACHE": "/tmp/jc"}))
    '/tmp/jc'
    """
    environ = os.environ if environ is None else environ
    value = environ.get(ENV)
    if disabled or (value is not None and value.strip().lower() in (*_OFF, "")):
        return None
    return Path(value).expanduser() if value else user_cache_dir(environ)


def configure_compile_cache(disabled: bool = False) -> Path | None:
    """Turn JAX's persistent compilation cache on at :func:`compile_cache_dir` (or off);
    returns the directory in use. A directory that cannot be created gives a warning and
    no cache, never an error."""
    import jax

    directory = compile_cache_dir(disabled)
    if directory is not None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            warnings.warn(
                f"schedopt: no compilation cache ({ENV}={str(directory)!r} cannot be "
                f"created: {e}); set {ENV}=off to silence this",
                stacklevel=2,
            )
            directory = None
    if directory is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return directory
