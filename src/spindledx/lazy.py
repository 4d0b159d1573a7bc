"""Lazy re-exports for package ``__init__`` modules (PEP 562 module ``__getattr__``), so importing a package
does not import the heavy libraries its submodules need."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, modules: dict[str, tuple[str, ...]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports a name's module on first use; ``modules`` maps module -> names."""
    exports = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook name
        module = exports.get(name)
        if module is not None:
            return getattr(importlib.import_module(module), name)
        if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")  # a submodule, as an eager package would have it
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
