"""Lazy server packages (PEP 562): importing a server imports none of its tools.

A server package `servers/<server>/` holds one module per tool, named like the
tool's function. Python's import system sets a package attribute to the submodule
it just imported, which would make `from servers.time import get_current_time`
return the module rather than the function once the module had been imported by
its full path. `lazy_tools` gives the package a module type that stores the
function instead.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["lazy_tools"]


class _ServerPackage(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}":
            value = getattr(value, name, value)
        super().__setattr__(name, value)


def lazy_tools(
    package: str, names: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Make `package` load each tool function in `names` on first access.

    Returns the `__getattr__` and `__dir__` for the package's namespace.
    """
    module = sys.modules[package]
    module.__class__ = _ServerPackage
    known = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name not in known:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        function = getattr(importlib.import_module(f"{package}.{name}"), name)
        setattr(module, name, function)
        return function

    def __dir__() -> list[str]:
        return sorted(known | set(vars(module)))

    return __getattr__, __dir__
