"""InstructS2S-200K: LLaMA-Omni's speech instruction dialogues, one cut per turn.

About the corpus: ``ICTNLP/InstructS2S-200K`` on the Hugging Face hub (Fang et al., "LLaMA-Omni",
2024) holds about 200K English speech instruction dialogues rewritten from Alpaca and UltraChat,
spoken with CosyVoice2. After ``cat en_part_* | tar -xz`` the folder holds
``instruct_en_200k_data_cosy2.json``, one ~1 GB JSON array of
``{"id", "conversation": [{"from": "human"|"gpt", "text", "speech", "unit"}]}``, and the wavs the
``speech`` paths name (relative to that folder; names end ``-<k>-user.wav`` /
``-<k>-assistant.wav``). Turns alternate and a conversation can have several exchanges; ``unit``
appears on ``gpt`` turns only and holds CosyVoice2 speech tokens (``<2957><4299>...``, values up
to about 6,560; not HuBERT clusters). Check the dataset card for the licence.

The JSON is parsed as a stream (``ijson``), so memory stays flat on the full file. Every turn
becomes one cut, id ``{id}-t{turn}``:

- the recording is the turn's wav, resampled to 16 kHz (lazily, on load; channel 0 of a
  multi-channel file); a turn whose wav is not in the corpus is kept text only (no recording,
  ``custom["audio_source"] = "missing"``) and counted in the end-of-run log, not failed;
- the supervision holds the text, the language and, as ``speaker``, the role: ``human -> user``,
  ``gpt -> assistant`` by default (``roles``, e.g. ``--roles human=User,gpt=Assistant``);
- custom fields: ``conversation_id`` (the row's ``id``), ``turn`` (0-based, contiguous),
  ``speaker_id`` (``human``/``gpt``), ``split``, and ``speech_units`` (the ``unit`` tokens as a
  list of integers) on the turns that have them.

A row that cannot be used in full is written to ``instructs2s_failed_<split>.jsonl`` as one
failure named by its conversation id (none of its turns are kept, so the turns of every kept
conversation stay contiguous), and the run goes on: ``not_an_object``, ``invalid_id``,
``duplicate_id``, ``no_conversation``, ``malformed_turn``, ``unknown_role``, ``empty_turn``,
``invalid_units``, ``outside_root`` (a wav path leaving ``audio_dir``), ``audio_role_mismatch``
(a ``-user.wav`` on a ``gpt`` turn or the reverse), ``unreadable_audio``, ``empty_audio``, and
the text checks every recipe inherits (``control_characters``, ``no_speakable_text``,
``wrong_script``, ``prompt_too_long`` against ``max_turn_chars``). A file broken part way keeps
the rows before the break and records ``invalid_json``.
"""

import logging
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from lhotse import CutSet
from lhotse.utils import Pathlike

from lhotse_triplets import fields, text
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.recipes.instructs2s.rows import (
    DEFAULT_ROLES,
    MISSING,
    SAMPLING_RATE,
    TurnOptions,
    conversation_outputs,
    parse_roles,
    parse_units,
    row_conversation_id,
    stream_rows,
    turn_cut,
)
from lhotse_triplets.recipes.registry import recipe
from lhotse_triplets.recipes.utils import STAGE, Output, file_stamp, prepare_manifest

logger = logging.getLogger(__name__)

CORPUS = "instructs2s"
#: The file the corpus's archive holds, looked for when ``source`` is a folder.
DEFAULT_FILE = "instruct_en_200k_data_cosy2.json"


@recipe(CORPUS)
def prepare_instructs2s(
    source: Pathlike,
    output_dir: Pathlike | None = None,
    *,
    audio_dir: Pathlike | None = None,
    roles: str | None = None,
    language: str = "en",
    split: str = "train",
    limit: int | None = None,
    allow_outside: bool = False,
    max_turn_chars: int | None = text.MAX_ANSWER_CHARS,
) -> CutSet:
    """Turn cuts (one per turn, 16 kHz on load) from InstructS2S-200K, parsed as a stream.

    :param source: the extracted corpus folder (holding ``instruct_en_200k_data_cosy2.json``, or
        a single ``*.json``) or the JSON file itself.
    :param output_dir: where to write ``instructs2s_cuts_<split>.jsonl.gz`` and the failure log
        ``instructs2s_failed_<split>.jsonl``. ``None`` (Python only): the cuts are returned in
        memory.
    :param audio_dir: the folder the ``speech`` paths are relative to (default: the JSON's).
    :param roles: the corpus's speakers mapped to roles, ``NAME=ROLE,...`` (default
        ``human=user,gpt=assistant``); a turn of an unlisted speaker fails its conversation.
    :param language: ISO 639-1 code of the text (``supervision.language``).
    :param split: the split recorded in ``custom["split"]``; also names the output files.
    :param limit: read only the first ``limit`` rows (in order).
    :param allow_outside: read wav paths that resolve outside ``audio_dir``; by default such a
        conversation fails (``outside_root``).
    :param max_turn_chars: longest turn text kept, in characters (``none``: no cap); a longer one
        fails its conversation (``prompt_too_long``).
    :return: the turn cuts (lazy when written to ``output_dir``).

    Example::

        >>> cuts = prepare_instructs2s("InstructS2S-200K", "data/instructs2s", limit=1000)
        >>> cuts = prepare_instructs2s("InstructS2S-200K", roles="human=User,gpt=Assistant")
    """
    json_path = corpus_file(source)
    options = TurnOptions(
        audio_dir=Path(audio_dir) if audio_dir is not None else json_path.parent,
        roles=parse_roles(roles),
        language=language,
        split=split,
        allow_outside=allow_outside,
        max_turn_chars=max_turn_chars,
    )
    if not options.audio_dir.is_dir():
        raise NotADirectoryError(f"audio_dir is not a folder: {options.audio_dir}")
    params = {
        "source": str(json_path),
        "source_stat": file_stamp(json_path),
        "audio_dir": str(options.audio_dir),
        "roles": options.roles,
        "language": language,
        "split": split,
        "limit": limit,
        "allow_outside": allow_outside,
    }
    return prepare_manifest(
        _conversations(json_path, options, limit),
        corpus=CORPUS,
        part=split,
        output_dir=output_dir,
        params=params,
        total=limit,
        desc="Preparing InstructS2S",
        max_prompt_chars=max_turn_chars,
        max_answer_chars=None,
    )


def corpus_file(source: Pathlike) -> Path:
    """The corpus's JSON file: ``source`` itself, or inside the folder ``source``
    (:data:`DEFAULT_FILE`, else its only ``*.json``).

    Example::

        >>> corpus_file("InstructS2S-200K")
        PosixPath('InstructS2S-200K/instruct_en_200k_data_cosy2.json')
    """
    path = Path(source)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"InstructS2S source not found: {source}")
    if (path / DEFAULT_FILE).is_file():
        return path / DEFAULT_FILE
    candidates = sorted(path.glob("*.json"))
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates[:5]) or "none"
        raise FileNotFoundError(f"no {DEFAULT_FILE} in {path} (*.json found: {found})")
    return candidates[0]


def _conversations(path: Path, options: TurnOptions, limit: int | None) -> Iterator[list[Output]]:
    """The outputs of each row; a row whose id was seen before fails (``duplicate_id``)."""
    seen_ids: set[str] = set()
    missing_audio = 0
    for index, row in islice(stream_rows(path), limit):
        fallback_id = f"row{index}"
        if isinstance(row, ItemError):
            yield [Failure.of(fallback_id, STAGE, row)]
            continue
        try:
            conversation_id = row_conversation_id(row, index)
        except ItemError as e:
            yield [Failure.of(fallback_id, STAGE, e)]
            continue
        if conversation_id in seen_ids:
            reason = f"duplicate_id: conversation id {conversation_id[:200]!r} was seen before"
            yield [Failure(conversation_id, STAGE, reason)]
            continue
        seen_ids.add(conversation_id)
        outputs = conversation_outputs(conversation_id, row, options)
        missing_audio += sum(
            1 for o in outputs if not isinstance(o, Failure) and o.custom.get(fields.AUDIO_SOURCE)
        )
        yield outputs
    logger.info("%d turns of %s have no audio in the corpus (kept text only)", missing_audio, path)


__all__ = [
    "CORPUS",
    "DEFAULT_FILE",
    "DEFAULT_ROLES",
    "MISSING",
    "SAMPLING_RATE",
    "TurnOptions",
    "conversation_outputs",
    "corpus_file",
    "parse_roles",
    "parse_units",
    "prepare_instructs2s",
    "row_conversation_id",
    "stream_rows",
    "turn_cut",
]
