"""Recipes: ``prepare_<corpus>()`` functions that turn source corpora into prompt cuts."""

from collections.abc import Callable

from lhotse import CutSet

from lhotse_triplets.recipes.llava_instruct import prepare_llava_instruct
from lhotse_triplets.recipes.sample import generate_sample_corpus, prepare_sample

#: Recipes ``run`` can use (``prepare.recipe`` in a pipeline config): name -> prepare function
#: taking ``output_dir`` and keyword options.
RECIPES: dict[str, Callable[..., CutSet]] = {
    "sample": prepare_sample,
    "llava_instruct": prepare_llava_instruct,
}


def get_recipe(name: str) -> Callable[..., CutSet]:
    """The prepare function registered as ``name``; ``ValueError`` listing known names."""
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; known recipes: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


__all__ = [
    "RECIPES",
    "generate_sample_corpus",
    "get_recipe",
    "prepare_llava_instruct",
    "prepare_sample",
]
