"""Package attributes imported on first use, so importing a package stays cheap (PEP 562)."""
from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def lazy_getattr(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module relative to ``package``) on first use."""
    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(import_module(exports[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def lazy_dir(exports: dict[str, str], namespace: dict[str, Any]) -> Callable[[], list[str]]:
    """A module ``__dir__`` listing the lazy exports with what is already defined, so tab completion shows them."""
    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports) | set(namespace.get("__all__", ())))

    return __dir__
