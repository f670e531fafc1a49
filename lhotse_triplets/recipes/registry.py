"""A registry of recipes by name, filled by the :func:`recipe` decorator.

A recipe is a ``prepare_<corpus>(corpus_dir_or_source, output_dir=None, **options) -> CutSet``
function; registering it makes it available to ``run`` (``prepare.recipe`` in a pipeline config)
and gives it a ``lhotse-triplets prepare <name>`` command built from its signature and docstring.

Example::

    @recipe("my_corpus", short={"num_items": "n"})
    def prepare_my_corpus(corpus_dir: Pathlike, output_dir: Pathlike | None = None) -> CutSet:
        ...

    cuts = get_recipe("my_corpus")("corpus/", "data/my_corpus")
"""

from collections.abc import Callable, Mapping

from lhotse import CutSet

from lhotse_triplets.registry import Registry

#: Modules that hold the built-in recipes, imported on first lookup (a recipe imports optional
#: dependencies inside its functions). Adding a corpus: one module with a ``@recipe``-decorated
#: prepare function, and one line here.
_BUILTIN_MODULES = (
    "lhotse_triplets.recipes.llava_instruct",
    "lhotse_triplets.recipes.sample",
    "lhotse_triplets.recipes.speakers",
    "lhotse_triplets.recipes.deepdialogue",
    "lhotse_triplets.recipes.multidialog",
    "lhotse_triplets.recipes.instructs2s",
)

PrepareFunction = Callable[..., CutSet]

#: Recipes ``run`` can use (``prepare.recipe`` in a pipeline config): name -> prepare function
#: (a read-only mapping, always current).
RECIPES: Registry[PrepareFunction] = Registry("recipe", _BUILTIN_MODULES)


def recipe(
    name: str, *, short: Mapping[str, str] | None = None
) -> Callable[[PrepareFunction], PrepareFunction]:
    """Function decorator: make a prepare function available as ``get_recipe(name)``.

    :param name: the registry name (also the ``prepare`` CLI command; ``-`` and ``_`` both work).
    :param short: one-letter CLI flags for some parameters, e.g. ``{"num_conversations": "n"}``.

    Example::

        >>> @recipe("toy")
        ... def prepare_toy(output_dir: Pathlike | None = None) -> CutSet: ...
    """

    def wrapper(prepare: PrepareFunction) -> PrepareFunction:
        prepare.registry_name = name
        prepare.short_options = dict(short or {})
        return RECIPES.register(name)(prepare)

    return wrapper


def available_recipes() -> list[str]:
    """Names of the registered recipes, sorted.

    Example::

        >>> available_recipes()
        ['llava_instruct', 'sample']
    """
    return RECIPES.names()


def get_recipe(name: str) -> PrepareFunction:
    """The prepare function registered as ``name``; ``ValueError`` listing the known names.

    Example::

        >>> cuts = get_recipe("sample")(output_dir="data/sample", num_conversations=5)
    """
    return RECIPES.get(name)
