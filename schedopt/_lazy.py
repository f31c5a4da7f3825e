"""Packages whose public names are imported from their submodules on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_getattr(package: str, namespace: dict, sources: dict[str, str]) -> Callable:
    """A module ``__getattr__`` for ``package``: ``name`` in ``sources`` (name -> submodule)
    is imported from ``package.<submodule>`` on first use and cached in ``namespace`` (the
    package's ``globals()``); any other name is an ``AttributeError``.

    >>> ns = {}
    >>> get = lazy_getattr("schedopt", ns, {"atomic_write_json": "io.atomic"})
    >>> get("atomic_write_json").__name__, "atomic_write_json" in ns
    ('atomic_write_json', True)
    """

    def __getattr__(name):
        if name in sources:
            module = importlib.import_module(f".{sources[name]}", package)
            value = namespace[name] = getattr(module, name)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
