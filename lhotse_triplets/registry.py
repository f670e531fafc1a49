"""The one registry every extension point uses: name -> implementation, filled by a decorator.

Backends (per kind), recipes, export formats and executors each keep a :class:`Registry`. Its
built-in implementations live in modules imported on first lookup, so registering costs
nothing at import time and adding one is one new module plus one line in that tuple; code
outside the package (a plugin, a test) registers with the same decorator. A lookup of an
unknown name raises ``ValueError`` listing the known ones (as NeMo's ``get_parser_fn`` does).

Example::

    EXPORTERS = Registry("export format", ["lhotse_triplets.export.shar"])

    @EXPORTERS.register("shar")
    def export_shar(cuts, output_dir, options=None): ...

    EXPORTERS.get("shar")   # the function; EXPORTERS.get("sahr") -> ValueError naming "shar"
"""

import importlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Implementations of one kind by name (a read-only mapping, always current).

    :param kind: what is registered, for messages (``"recipe"``, ``"tts backend"``).
    :param builtin_modules: modules that register the built-in implementations when imported.
    :param tolerant: a built-in module that fails to import (an optional dependency broken)
        is logged and skipped instead of raising, so it does not hide the others.
    """

    def __init__(
        self, kind: str, builtin_modules: Sequence[str] = (), *, tolerant: bool = False
    ) -> None:
        self.kind = kind
        self.builtin_modules = tuple(builtin_modules)
        self.tolerant = tolerant
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make the decorated class or function available as ``name``."""

        def wrapper(item: T) -> T:
            self._items[name] = item
            return item

        return wrapper

    def unregister(self, name: str) -> None:
        """Remove ``name`` (e.g. what a test registered); unknown names are ignored."""
        self._items.pop(name, None)

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self.builtin_modules:
            try:
                importlib.import_module(module)
            except ImportError as e:
                if not self.tolerant:
                    raise
                logger.warning("%s implementations in %s are unavailable: %s", self.kind, module, e)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._load_builtins()
        return sorted(self._items)

    def get(self, name: str) -> T:  # type: ignore[override]
        """The implementation registered as ``name``.

        :raises ValueError: for an unknown name, listing the known ones.
        """
        known = self.names()
        if name not in self._items:
            raise ValueError(
                f"Unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(known) or '-'}"
            )
        return self._items[name]

    def __getitem__(self, name: str) -> T:
        if name not in self:
            raise KeyError(name)
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind}: {', '.join(self.names())})"


def lazy_attributes(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``modules[name]`` (a module of ``package``, or an
    absolute one) the first time ``name`` is asked for: a package can export names of modules
    that are registered lazily without importing them.

    Example::

        __getattr__ = lazy_attributes(__name__, {"export_shar": "shar"})
    """

    def __getattr__(name: str) -> Any:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = modules[name]
        if not module.startswith(package + "."):
            module = f"{package}.{module}"
        return getattr(importlib.import_module(module), name)

    return __getattr__
