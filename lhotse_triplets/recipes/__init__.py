"""Recipes: ``prepare_<corpus>()`` functions that turn source corpora into cuts.

A recipe is one module (or package) holding a ``prepare_<corpus>`` function decorated with
:func:`recipe`; the shared bookkeeping (output names, completion marker, writer, failed log) is
:func:`~lhotse_triplets.recipes.utils.prepare_manifest`. Built-in recipes are imported on first
use (``_BUILTIN_MODULES`` in :mod:`.registry`).

Example::

    from lhotse_triplets.recipes import get_recipe
    cuts = get_recipe("sample")(output_dir="data/sample", num_conversations=5)
"""

from lhotse_triplets.recipes.registry import RECIPES, available_recipes, get_recipe, recipe
from lhotse_triplets.recipes.utils import prepare_manifest
from lhotse_triplets.registry import lazy_attributes

#: Prepare functions exported here, imported from their module when first asked for.
_LAZY = {
    "prepare_llava_instruct": "lhotse_triplets.recipes.llava_instruct",
    "prepare_sample": "lhotse_triplets.recipes.sample",
    "generate_sample_corpus": "lhotse_triplets.recipes.sample",
    "prepare_speaker_set": "lhotse_triplets.recipes.speakers",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "RECIPES",
    "available_recipes",
    "generate_sample_corpus",
    "get_recipe",
    "prepare_llava_instruct",
    "prepare_manifest",
    "prepare_sample",
    "prepare_speaker_set",
    "recipe",
]
