"""Renamed or moved public names: the old name still works, with a ``DeprecationWarning``."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable


def deprecated_getattr(package: str, namespace: dict, renamed: dict[str, str]) -> Callable:
    """A module ``__getattr__`` for ``package``: an old name in ``renamed`` warns and
    returns the object it now is; any other name is an ``AttributeError``.

    ``renamed`` maps an old name to a name in ``namespace`` (the package's ``globals()``),
    or to a dotted path ``"schedopt.module.name"`` for a name that moved elsewhere.

    >>> import warnings
    >>> get = deprecated_getattr("pkg", {"new": 1}, {"old": "new"})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     value = get("old")
    >>> value, str(caught[0].message)
    (1, 'pkg.old is deprecated: use pkg.new, the same object')
    """

    def __getattr__(name):
        if name in renamed:
            new = renamed[name]
            if "." in new:
                module, _, attr = new.rpartition(".")
                value = getattr(importlib.import_module(module), attr)
            else:
                new, value = f"{package}.{new}", namespace[new]
            warnings.warn(
                f"{package}.{name} is deprecated: use {new}, the same object",
                DeprecationWarning,
                stacklevel=2,
            )
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
