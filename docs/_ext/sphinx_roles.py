"""Griffe extension for the API pages: Sphinx roles in docstrings become cross-references.

The docstrings are Sphinx style (``:param x:``, ``:func:`name```, ``Example::``). Griffe's
Sphinx parser reads the fields but leaves roles and literal-block markers in the text, where
Markdown would show them as they are. This rewrites, before rendering:

- ``:func:`~pkg.mod.name``` (any Python role) into an optional autorefs cross-reference titled
  ``name`` (the full path without ``~``): a link when the target is on a page, plain code when it
  is not (another library), never a ``--strict`` failure;
- a line ending in ``::`` (a reST literal block follows) into one ending in ``:``.

Loaded by ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).

Example::

    >>> _rewrite(":func:`~.reading.open` reads it.", "pkg.base", "pkg")
    '<autoref identifier="pkg.reading.open" optional><code>open</code></autoref> reads it.'
"""

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj|const|type):`(~?)([^`]+)`")
LITERAL_BLOCK = re.compile(r"(?<=\S)::$", re.MULTILINE)


def _target(name: str, module: str, package: str) -> str:
    """The full dotted path of a role's target: ``.name`` in ``package``, ``name`` in ``module``."""
    if name.startswith("."):
        return package + name
    return name if "." in name else f"{module}.{name}"


def _rewrite(text: str, module: str, package: str) -> str:
    """``text`` with its Sphinx roles as autorefs and its ``::`` markers as ``:``."""

    def replace(match: re.Match) -> str:
        short, content = match.group(1), match.group(2).strip()
        title, _, explicit = content.partition("<")
        name = explicit.rstrip(">").strip() if explicit else content
        name = name.rstrip("()")
        shown = title.strip() if explicit else (name.rsplit(".", 1)[-1] if short else name)
        target = _target(name.lstrip("~"), module, package)
        return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'

    return LITERAL_BLOCK.sub(":", ROLE.sub(replace, text))


class SphinxRoles(griffe.Extension):
    """Rewrites every loaded object's docstring (see the module docstring)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring, relative names resolved against its package."""
        if obj.docstring is None:
            return
        module = obj.module
        package = module.path if module.is_package else module.path.rpartition(".")[0]
        obj.docstring.value = _rewrite(obj.docstring.value, module.path, package or module.path)
