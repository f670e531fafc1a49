"""``lhotse-triplets prepare <recipe>``: one command per recipe, made from its signature.

Nothing here names a recipe: each command is made, when click asks for it, from the prepare
function in the recipe registry (:mod:`lhotse_triplets.recipes.registry`):

- its positional parameters without a default, and ``output_dir``, become arguments
  (``SOURCE OUTPUT_DIR``); every other parameter becomes an ``--option`` typed from its annotation
  (``bool``: a flag, ``--x/--no-x`` when it is not off by default; ``int``/``float``/``str``/paths;
  ``Literal[...]``: a choice; ``list[...]``: repeatable), with the default of the signature;
  an ``X | None`` option whose default is not ``None`` (a cap such as ``max_prompt_chars``) also
  takes ``none`` (no cap);
- the help of the command is the docstring's first line, that of each option its ``:param:``;
- one-letter flags come from the ``short`` mapping given to ``@recipe``.

Command names are the registry names; ``llava-instruct`` and ``llava_instruct`` both work.
"""

import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from lhotse_triplets.recipes.registry import available_recipes, get_recipe
from lhotse_triplets.recipes.utils import describe_prepared

_PARAM_DOC = re.compile(r"^:param (\w+):(.*(?:\n(?![ \t]*(?::|$)).*)*)", re.MULTILINE)
_RST_ROLE = re.compile(r":\w+:`~?([^`]+)`")
_SCALARS: dict[Any, click.ParamType] = {int: click.INT, float: click.FLOAT, str: click.STRING}
_SEQUENCES = (list, tuple, Sequence)


class RecipeGroup(click.Group):
    """A click group whose commands are the registered recipes, built when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *available_recipes()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in available_recipes():
            command = recipe_command(cmd_name, get_recipe(cmd_name))
        return command


prepare = RecipeGroup(
    "prepare",
    help="Import a corpus into cuts: prompt cuts (image, user turn, answer, ids), one cut per "
    "dialogue turn (conversation id, turn, role), or a speaker set.",
    context_settings={"token_normalize_func": lambda s: s.replace("-", "_")},
)


def recipe_command(name: str, prepare_function: Callable[..., Any]) -> click.Command:
    """The ``prepare <name>`` command of a recipe, from its signature and docstring.

    :param name: the command name (the recipe's registry name).
    :param prepare_function: the recipe; ``short_options`` on it (set by ``@recipe``) gives
        one-letter flags.

    Example::

        >>> command = recipe_command("sample", get_recipe("sample"))
        >>> [p.name for p in command.params][:3]
        ['output_dir', 'num_conversations', 'seed']
    """
    signature = inspect.signature(prepare_function, eval_str=True)
    doc = inspect.getdoc(prepare_function) or ""
    docs = _param_docs(doc)
    short = getattr(prepare_function, "short_options", {})
    params = [
        _click_param(p, docs.get(p.name), short.get(p.name))
        for p in signature.parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    arguments = [
        f"{p.name.upper()}: {docs[p.name]}"
        for p in params
        if isinstance(p, click.Argument) and p.name in docs
    ]
    summary = _plain(doc.strip().split("\n")[0])
    return click.Command(
        name,
        callback=functools.partial(_run, name),
        params=params,
        help="\n\n".join([summary, *arguments]),
        short_help=summary,
        context_settings={"show_default": True},
    )


def _run(recipe_name: str, /, **values: Any) -> None:
    """Call recipe ``recipe_name`` with the parsed ``values``; print where its cuts are."""
    prepare_function = get_recipe(recipe_name)
    signature = inspect.signature(prepare_function)
    for p in signature.parameters.values():
        if isinstance(values.get(p.name), tuple):  # repeatable option
            values[p.name] = list(values[p.name]) or p.default
    positional = [
        values.pop(p.name) for p in signature.parameters.values() if p.kind is p.POSITIONAL_ONLY
    ]
    click.echo(describe_prepared(prepare_function(*positional, **values)))


def _click_param(p: inspect.Parameter, help_text: str | None, short: str | None) -> click.Parameter:
    """A click argument (required positional parameters, ``output_dir``) or option."""
    annotation = _without_none(p.annotation)
    if p.name == "output_dir" or (p.default is p.empty and p.kind is not p.KEYWORD_ONLY):
        return click.Argument([p.name], type=_click_type(annotation, p.name))
    flag = "--" + p.name.replace("_", "-")
    names = [f"-{short}"] if short else []
    required = p.default is p.empty
    default = None if required else p.default
    if annotation is bool:
        on_off = flag if default is False else f"{flag}/--no-{flag[2:]}"
        return click.Option([on_off, *names, p.name], is_flag=True, default=default, help=help_text)
    multiple = typing.get_origin(annotation) in _SEQUENCES
    item = typing.get_args(annotation)[0] if multiple else annotation
    param_type = _click_type(item, p.name)
    if default is not None and annotation is not p.annotation and not multiple:
        param_type = _OrNone(param_type)  # ``X | None`` with a value by default: ``none`` too
    return click.Option(
        [flag, *names, p.name],
        type=param_type,
        multiple=multiple,
        required=required,
        default=default,
        help=help_text,
    )


class _OrNone(click.ParamType):
    """A click type that also takes ``none`` (for ``X | None`` options with a default value)."""

    def __init__(self, inner: click.ParamType) -> None:
        self.inner = inner
        self.name = f"{inner.name}|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return None
        return self.inner.convert(value, param, ctx)


def _without_none(annotation: Any) -> Any:
    """``X`` for ``X | None`` (``Optional[X]``); other annotations (``str | Path | None``, too)
    unchanged."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 else annotation


def _click_type(annotation: Any, name: str) -> click.ParamType:
    """The click type of a parameter annotated ``annotation``."""
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if annotation is inspect.Parameter.empty:
        return click.STRING
    args = typing.get_args(annotation)
    if annotation is Path or Path in args:  # Path, Pathlike (str | Path)
        return click.Path()
    if typing.get_origin(annotation) is typing.Literal:
        return click.Choice([str(a) for a in args])
    raise TypeError(f"Recipe parameter {name!r}: no command-line type for {annotation!r}")


def _param_docs(doc: str) -> dict[str, str]:
    """``{name: text}`` of the ``:param name: text`` entries of a docstring, as plain text."""
    return {name: _plain(text) for name, text in _PARAM_DOC.findall(doc)}


def _plain(text: str) -> str:
    """reStructuredText made plain: one line, no ``literal`` quotes or :role:`x` markup."""
    return _RST_ROLE.sub(r"\1", " ".join(text.split())).replace("``", "")
