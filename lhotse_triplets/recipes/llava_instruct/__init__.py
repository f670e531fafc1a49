"""LLaVA-style visual instruction data: conversations about one image.

About the corpus: LLaVA's visual instruction tuning data (Liu et al., "Visual Instruction
Tuning", 2023) and the collections built on its format, such as LLaVA-OneVision-1.5-Instruct-Data
(``mvp-lab/LLaVA-OneVision-1.5-Instruct-Data`` on the Hugging Face hub, one config per source
corpus, e.g. ``CLEVR``), hold conversations about an image: user turns (the first one usually
carries an ``<image>`` placeholder) alternate with assistant replies. Each row has an ``id``, a
``conversations`` list (``{"from": "human"|"gpt", "value"}`` in LLaVA's own files,
``{"role": "user"|"assistant", "content"}`` in chat-style dumps), often a ``data_source`` and the
image: embedded (``image``/``images`` columns of the hub datasets) or a path relative to an image
folder (LLaVA's JSON). Licences differ per source corpus (the CLEVR images, for instance, are
CC BY 4.0): check the dataset card of the config you use.

This recipe turns every user turn that has an assistant reply into one text-only *prompt cut*
(id ``{conversation_id}-t{turn}``): the user text without placeholders is the supervision text,
the reply is kept verbatim in ``custom[fields.ANSWER]``, and the image is attached with
``attach_image``. Sources it reads (:mod:`.sources`; one row-processing function,
:func:`llava_row_to_cuts`, serves them all):

- a Hugging Face hub dataset id (streamed, nothing is downloaded beforehand; embedded images are
  written to ``output_dir/images/<id>.<ext>`` with their original encoding);
- a local JSONL dump (``*.jsonl``/``*.jsonl.gz``), one conversation per line, with images looked
  up in ``image_dir`` (the row's ``image`` field, else ``<id>.{png,jpg,jpeg,webp}``); a bad line is
  recorded and skipped;
- local ``*.parquet``/``*.arrow``/``*.json`` files, a folder of them, or a dataset saved with
  ``Dataset.save_to_disk``, read through HF ``datasets``.

A user turn may carry ``"translations": {language: text}``; they are kept in
``custom[fields.TRANSLATIONS]``. Items that cannot be used are written to
``llava_instruct_failed_<split>.jsonl`` with a reason ``"<code>: <detail>"``, and the run goes on:

- the line: ``invalid_utf8``, ``invalid_json``, ``not_an_object`` (with its line number; a UTF-8
  BOM opening the file is dropped), ``unreadable_source`` (a gzip dump cut short);
- the row: ``invalid_id`` (an id that is not a string or an integer), ``duplicate_id``,
  ``no_conversations``, ``empty_conversation``, ``malformed_turn``, ``unknown_role``,
  ``invalid_translations``;
- a user turn: ``empty_turn``, ``placeholders_only``, ``no_reply``, ``empty_reply``, and the text
  checks every recipe inherits (:func:`~lhotse_triplets.recipes.utils.check_cut_text`:
  ``control_characters``, ``no_speakable_text``, ``wrong_script``, ``prompt_too_long``,
  ``answer_too_long``);
- the image (:mod:`.images`): ``missing_image``, ``unreadable_image`` (decoded in full),
  ``outside_root`` (a path leaving ``image_dir``), ``invalid_image``, ``too_many_images``, and
  ``placeholder_mismatch`` (more ``<image>`` placeholders than images; without any image the
  placeholders are only removed, as for a text-only preparation).

Ids are kept as they are in the manifest (``"a/b"`` stays ``"a/b"``); the files named after them
(embedded images) use :func:`~lhotse_triplets.paths.safe_name`, and every file written is checked
to lie in ``output_dir``.
"""

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from lhotse import CutSet
from lhotse.utils import Pathlike

from lhotse_triplets import text
from lhotse_triplets.cuts import make_prompt_cut
from lhotse_triplets.errors import Failure
from lhotse_triplets.recipes.llava_instruct.images import IMAGE_EXTENSIONS, image_for_row
from lhotse_triplets.recipes.llava_instruct.rows import (
    PLACEHOLDER_PATTERN,
    ROLES,
    STAGE,
    Output,
    llava_row_to_cuts,
    parse_turns,
    row_conversation_id,
    split_placeholders,
    tidy_text,
)
from lhotse_triplets.recipes.llava_instruct.sources import Row, Rows, open_llava_rows
from lhotse_triplets.recipes.registry import recipe
from lhotse_triplets.recipes.utils import file_stamp, first_of_each_conversation, prepare_manifest

CORPUS = "llava_instruct"


@recipe(CORPUS)
def prepare_llava_instruct(
    source: Pathlike,
    output_dir: Pathlike | None = None,
    *,
    image_dir: Pathlike | None = None,
    config: str | None = None,
    split: str = "train",
    limit: int | None = None,
    language: str = "en",
    require_images: bool | None = None,
    streaming: bool = True,
    allow_outside: bool = False,
    max_prompt_chars: int | None = text.MAX_PROMPT_CHARS,
    max_answer_chars: int | None = text.MAX_ANSWER_CHARS,
) -> CutSet:
    """Prompt cuts (one per user turn with a reply) from LLaVA-style instruction data.

    :param source: a hub dataset id, a JSONL dump, parquet/arrow/json files (or a folder of
        them), or a folder written by ``Dataset.save_to_disk``.
    :param output_dir: where to write ``llava_instruct_cuts_<split>.jsonl.gz``, the failure log
        ``llava_instruct_failed_<split>.jsonl`` and embedded images (``images/``). ``None``
        (Python only): the cuts are returned in memory, embedded images too.
    :param image_dir: folder the images of a JSONL dump (or path-valued image columns) live in.
    :param config: the hub dataset's config (e.g. ``CLEVR``); also the default ``data_source``.
    :param split: the split to read; also names the output files.
    :param limit: read only the first ``limit`` rows (in order).
    :param language: ISO 639-1 code of the source text (``supervision.language``).
    :param require_images: record an item as failed when its image cannot be found; by default
        on when ``image_dir`` is given. Without ``image_dir`` a JSONL dump is prepared text only.
    :param streaming: stream datasets read through HF ``datasets`` instead of caching them.
    :param allow_outside: read image paths that resolve outside ``image_dir`` (``../x.png``,
        absolute paths, symlinks pointing out); by default such an item fails (``outside_root``).
    :param max_prompt_chars: longest user text kept as a prompt, in characters (``none``: no
        cap); a longer one fails (``prompt_too_long``).
    :param max_answer_chars: longest answer kept, in characters (``none``: no cap); a longer one
        fails (``answer_too_long``).
    :return: the prompt cuts (lazy when written to ``output_dir``).

    Example::

        >>> hub_id = "mvp-lab/LLaVA-OneVision-1.5-Instruct-Data"
        >>> cuts = prepare_llava_instruct(hub_id, "data/clevr", config="CLEVR", limit=1000)
        >>> cuts = prepare_llava_instruct("clevr.jsonl", "data/clevr", image_dir="clevr/images")
    """
    if image_dir is not None and not Path(image_dir).is_dir():
        raise NotADirectoryError(f"image_dir is not a folder: {image_dir}")
    if require_images is None:
        require_images = image_dir is not None
    params = {
        "source": str(source),
        "source_stat": file_stamp(source),
        "image_dir": str(image_dir) if image_dir is not None else None,
        "config": config,
        "split": split,
        "limit": limit,
        "language": language,
        "require_images": require_images,
        "allow_outside": allow_outside,
        "max_prompt_chars": max_prompt_chars,
        "max_answer_chars": max_answer_chars,
    }
    options = dict(
        language=language,
        image_dir=image_dir,
        image_output_dir=Path(output_dir) / "images" if output_dir is not None else None,
        require_images=require_images,
        data_source=config,
        allow_outside=allow_outside,
    )
    rows = _rows(source, config=config, split=split, streaming=streaming, limit=limit)
    return prepare_manifest(
        _conversations(rows, **options),
        corpus=CORPUS,
        part=split,
        output_dir=output_dir,
        params=params,
        total=limit,
        desc="Preparing LLaVA instruct",
        max_prompt_chars=max_prompt_chars,
        max_answer_chars=max_answer_chars,
    )


def _rows(source: Pathlike, *, limit: int | None, **open_options: Any) -> Rows:
    """The rows of ``source`` (opened when first drawn), the first ``limit`` only if given."""
    rows, _ = open_llava_rows(source, **open_options)
    yield from islice(rows, limit)


def _conversations(rows: Rows, **options: Any) -> Iterator[list[Output]]:
    """The outputs of each row; a row whose conversation id was seen before fails."""
    for item in first_of_each_conversation(rows, row_conversation_id, STAGE):
        if isinstance(item, Failure):
            yield [item]
            continue
        _, fallback_id, row = item
        yield llava_row_to_cuts(row, fallback_id=fallback_id, **options)


__all__ = [
    "CORPUS",
    "IMAGE_EXTENSIONS",
    "PLACEHOLDER_PATTERN",
    "ROLES",
    "STAGE",
    "Row",
    "image_for_row",
    "llava_row_to_cuts",
    "make_prompt_cut",
    "open_llava_rows",
    "parse_turns",
    "prepare_llava_instruct",
    "row_conversation_id",
    "split_placeholders",
    "tidy_text",
]
