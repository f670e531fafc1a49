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
- the supervision holds the text, the language and, as ``speaker``, the role (``user`` or
  ``assistant``): ``human -> user``, ``gpt -> assistant`` by default (``roles``, e.g.
  ``--roles human=assistant,gpt=user``);
- custom fields: ``role`` (the same), ``conversation_id`` (the row's ``id``), ``turn`` (0-based,
  contiguous), ``speaker_id`` (``human``/``gpt``), ``split``, and ``speech_units`` (the ``unit``
  tokens as a list of integers) on the turns that have them.

With ``--synthesize-missing TTS`` (a TTS backend name, e.g. ``kokoro``) a *user* turn whose wav is
missing is spoken by that TTS (voice ``--synthesize-voice``, default its first voice for the
language) instead: the wav is written to ``audio/<conversation>/<cut id>.wav`` in ``output_dir``,
read resampled to 16 kHz, and the cut records ``audio_source = "synthesized: <tts>"``, ``voice``
and ``tts_model``; its role stays. Assistant turns without a wav stay text only. A turn the TTS
fails on fails its conversation (``synthesis_failed``). The printed summary counts the turns by
``audio_source``.

Written in ``output_dir``, one part, the split ``split`` (default ``train``; the corpus has no
other):

- ``instructs2s_cuts_<split>.jsonl.gz``: the turn cuts;
- ``instructs2s_failed_<split>.jsonl``: the failed conversations;
- ``.instructs2s_<split>.completed``: the completion marker (a rerun is not redone);
- ``audio/``: the synthesized user turns (``--synthesize-missing`` only); the corpus's own wavs
  stay where they are.

A row that cannot be used in full is written to ``instructs2s_failed_<split>.jsonl`` as one
failure named by its conversation id (none of its turns are kept, so the turns of every kept
conversation stay contiguous), and the run goes on: ``not_an_object``, ``invalid_id``,
``duplicate_id``, ``no_conversation``, ``malformed_turn``, ``unknown_role``, ``empty_turn``,
``invalid_units``, ``outside_root`` (a wav path leaving ``audio_dir``), ``audio_role_mismatch``
(a ``-user.wav`` on a ``gpt`` turn or the reverse), ``unreadable_audio``, ``empty_audio``, and
the text checks every recipe inherits (``control_characters``, ``no_speakable_text``,
``wrong_script``, ``prompt_too_long`` against ``max_turn_chars``), and ``synthesis_failed``. A
file broken part way keeps the rows before the break and records ``invalid_json``.

Example::

    parts = prepare_instructs2s("InstructS2S-200K", "data/instructs2s", synthesize_missing="kokoro")
    train = parts["train"]
"""

import logging
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from lhotse import CutSet
from lhotse.utils import Pathlike

from lhotse_triplets import dialogues, fields, text
from lhotse_triplets.dialogues import SYNTHESIZED
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.recipes.instructs2s.rows import (
    DEFAULT_ROLES,
    MISSING,
    SAMPLING_RATE,
    Synthesizer,
    TurnOptions,
    conversation_outputs,
    make_turn_cut,
    parse_units,
    row_conversation_id,
    stream_rows,
)
from lhotse_triplets.recipes.registry import recipe
from lhotse_triplets.recipes.utils import (
    STAGE,
    Output,
    file_stamp,
    first_of_each_conversation,
    prepare_manifest,
)

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
    synthesize_missing: str | None = None,
    synthesize_voice: str | None = None,
) -> dict[str, CutSet]:
    """Turn cuts (one per turn, 16 kHz on load) from InstructS2S-200K, parsed as a stream.

    :param source: the extracted corpus folder (holding ``instruct_en_200k_data_cosy2.json``, or
        a single ``*.json``) or the JSON file itself.
    :param output_dir: where to write ``instructs2s_cuts_<split>.jsonl.gz`` and the failure log
        ``instructs2s_failed_<split>.jsonl``. ``None`` (Python only): the cuts are returned in
        memory.
    :param audio_dir: the folder the ``speech`` paths are relative to (default: the JSON's).
    :param roles: the corpus's speakers mapped to roles (``user`` or ``assistant``),
        ``NAME=ROLE,...`` (default ``human=user,gpt=assistant``); a turn of an unlisted speaker
        fails its conversation.
    :param language: ISO 639-1 code of the text (``supervision.language``).
    :param split: the split recorded in ``custom["split"]``; also names the output files (the
        corpus has one split; the turn audio is read at 16 kHz).
    :param limit: read only the first ``limit`` rows (in order).
    :param allow_outside: read wav paths that resolve outside ``audio_dir``; by default such a
        conversation fails (``outside_root``).
    :param max_turn_chars: longest turn text kept, in characters (``none``: no cap); a longer one
        fails its conversation (``prompt_too_long``).
    :param synthesize_missing: a TTS backend (e.g. ``kokoro``) that speaks the user turns whose
        wav is missing (written under ``output_dir/audio/``); default: they stay text only.
    :param synthesize_voice: the voice of that TTS (default: its first voice for ``language``).
    :return: ``{split: cuts}``: the turn cuts (lazy when written to ``output_dir``).

    Example::

        >>> train = prepare_instructs2s("InstructS2S-200K", "data/instructs2s", limit=1000)["train"]
        >>> parts = prepare_instructs2s("InstructS2S-200K", roles="human=assistant,gpt=user")
        >>> parts = prepare_instructs2s("InstructS2S-200K", "out", synthesize_missing="kokoro")
    """
    json_path = corpus_file(source)
    options = TurnOptions(
        audio_dir=Path(audio_dir) if audio_dir is not None else json_path.parent,
        roles=dialogues.parse_roles(roles, default=DEFAULT_ROLES),
        language=language,
        split=split,
        allow_outside=allow_outside,
        max_turn_chars=max_turn_chars,
        synthesizer=synthesizer(synthesize_missing, synthesize_voice, language, output_dir),
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
        "synthesize_missing": synthesize_missing,
        "synthesize_voice": options.synthesizer.voice if options.synthesizer else None,
    }
    cuts = prepare_manifest(
        _conversations(json_path, options, limit),
        corpus=CORPUS,
        part=split,
        output_dir=output_dir,
        params=params,
        total=limit,
        desc="Preparing InstructS2S",
        max_prompt_chars=max_turn_chars,
        max_answer_chars=None,
        texts_checked=True,  # per turn, failing the conversation
    )
    return {split: cuts}


def synthesizer(
    name: str | None, voice: str | None, language: str, output_dir: Pathlike | None
) -> Synthesizer | None:
    """The TTS that speaks missing user turns (``None`` without ``name``), its voice checked.

    :raises ValueError: an unknown TTS or option (listing the known ones), or a voice the TTS
        does not offer for ``language``.

    Example::

        >>> synthesizer("kokoro", None, "en", "out").voice
        'af_heart'
    """
    if name is None:
        return None
    from lhotse_triplets.backends.registry import build

    tts = build("tts", name)
    try:
        voices = list(tts.voices(language))
    except ItemError as e:
        raise ValueError(f"--synthesize-missing {name}: {e.reason}") from None
    if not voices or (voice is not None and voice not in voices):
        offered = ", ".join(voices[:10]) or "none"
        raise ValueError(f"--synthesize-voice {voice!r}: {name} offers {offered} for {language!r}")
    audio_dir = Path(output_dir) / "audio" if output_dir is not None else None
    return Synthesizer(tts, name, voice or voices[0], audio_dir)


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


def _row_id(row: object, fallback_id: str) -> str:
    return row_conversation_id(row, int(fallback_id.removeprefix("row")))


def _conversations(path: Path, options: TurnOptions, limit: int | None) -> Iterator[list[Output]]:
    """The outputs of each row; a row whose id was seen before fails (``duplicate_id``)."""
    sources: Counter = Counter()
    rows = ((f"row{index}", row) for index, row in islice(stream_rows(path), limit))
    for item in first_of_each_conversation(rows, _row_id, STAGE):
        if isinstance(item, Failure):
            yield [item]
            continue
        conversation_id, _, row = item
        outputs = conversation_outputs(conversation_id, row, options)
        sources.update(
            o.custom[fields.AUDIO_SOURCE]
            for o in outputs
            if not isinstance(o, Failure) and fields.AUDIO_SOURCE in o.custom
        )
        yield outputs
    synthesized = sum(n for source, n in sources.items() if source.startswith(SYNTHESIZED))
    logger.info(
        "%d turns of %s have no audio in the corpus (kept text only); %d synthesized",
        sources[MISSING],
        path,
        synthesized,
    )


__all__ = [
    "CORPUS",
    "DEFAULT_FILE",
    "DEFAULT_ROLES",
    "MISSING",
    "SAMPLING_RATE",
    "TurnOptions",
    "SYNTHESIZED",
    "Synthesizer",
    "conversation_outputs",
    "corpus_file",
    "make_turn_cut",
    "parse_units",
    "prepare_instructs2s",
    "row_conversation_id",
    "stream_rows",
    "synthesizer",
]
