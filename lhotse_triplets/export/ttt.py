"""TTT rows: one row per dialogue turn, as long-context test-time-training (TTT) trainers read
them, saved as a Hugging Face dataset.

::

    OUT/ttt/                 ``Dataset.save_to_disk`` (``datasets.load_from_disk("OUT/ttt")``)
    OUT/ttt/ttt.json         how the rows are laid out (read by ``validate``)

One row per turn, conversations in the order they first appear, each conversation's turns in
order from turn 0:

- ``conversation_id`` (the corpus's own for dialogue turn cuts; ``<id>-<language>-<voice>`` for
  triplet cuts, whose conversations exist once per language and voice), ``turn_number``
  (0-based, contiguous), ``role`` (``user``/``assistant``), ``transcript`` (the turn's text);
- ``speech``: mono ``float32`` samples at ``sampling_rate`` (default 16 kHz), ``speech_lengths``
  their count; a text-only turn (the corpus has no audio for it) has ``[]`` and ``0``, and its
  ``audio_source`` column says ``missing``;
- ``id`` (the cut's), ``language``, ``audio_source``;
- given a ``tokenizer``: ``input_ids`` = tokens of the role prefix ``"<Role name>: "`` + tokens
  of the transcript, ``labels`` = ``-100`` over the prefix and the transcript's token ids
  after it, both padded (``pad_id`` / ``-100``) to the next multiple of ``pad_multiple``;
  ``attention_mask`` (1 over the real tokens) and ``num_tokens`` (the unpadded length).

Triplet cuts (not dialogue turns, e.g. the quick start's) give two rows each: the spoken
prompt (``user``, its speech and text) then the answer (``assistant``, text only, id
``<cut id>-assistant``), numbered ``0..n-1`` per (conversation, language, voice) over the turns
the gate kept. A dialogue whose turns are not ``0, 1, ..., n-1`` (no turn 0, a gap,
a repeat), or one of whose turns fails (its audio cannot be loaded, it has no text), fails as a
whole (every turn recorded, none written): TTT training resets its state at turn 0 and needs
every turn. **Zero rows**: a dataset with its columns and no row (``details["empty"]``).

:func:`~lhotse_triplets.export.open_export` (:func:`read_ttt`) reads the rows back as triplets:
no image, the speech, the transcript as target text.

``ttt.json``::

    {"format": "ttt", "pad_multiple": 64, "pad_id": 3, "label_ignore": -100,
     "sampling_rate": 16000, "tokenizer": "spm.model", "tokenizer_kind": "sentencepiece",
     "role_prefixes": {"user": "User: ", "assistant": "Assistant: "},
     "rows": 6, "conversations": 2}

Example::

    >>> result = export_ttt(cuts, "data", tokenizer="tokenizer.model", pad_multiple=64)
    >>> ds = datasets.load_from_disk(result.paths["ttt"])
    >>> ds[0]["turn_number"], len(ds[0]["input_ids"]) % 64
    (0, 0)
"""

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lhotse.cut import Cut
from tqdm.auto import tqdm

from lhotse_triplets import fields
from lhotse_triplets.cuts import cut_language, cut_text
from lhotse_triplets.dialogues import (
    ASSISTANT,
    MISSING_AUDIO,
    USER,
    is_turn_cut,
    role_names,
    turn_gaps,
    turn_number,
    turn_role,
)
from lhotse_triplets.errors import ItemError
from lhotse_triplets.export.base import ExportOptions, ExportResult, exporter
from lhotse_triplets.export.common import (
    ID,
    AtomicOutput,
    ConversationKey,
    ItemGuard,
    audio_samples,
    export_file,
    group_conversations,
    kept_cuts,
    layout,
)
from lhotse_triplets.export.reading import TTT_METADATA, Triplet, is_ttt, reader
from lhotse_triplets.tokenizers import TextTokenizer, load_tokenizer

FORMAT = "ttt"
STAGE = f"export_{FORMAT}"
#: The dataset folder inside the export directory.
TTT_DIR = "ttt"
#: ``labels`` value of positions the loss ignores (PyTorch's ``CrossEntropyLoss`` default).
LABEL_IGNORE = -100
#: Audio rate of the rows when ``sampling_rate`` is not set.
DEFAULT_SAMPLING_RATE = 16000
#: Our role -> the name in the ``"<name>: "`` prefix of ``input_ids`` (over ``role_names``).
DEFAULT_ROLE_NAMES = {USER: "User", ASSISTANT: "Assistant"}
#: ``audio_source`` of a text-only turn (the corpus has no audio for it).

#: Columns (those not named by ``fields``).
TURN_NUMBER = "turn_number"
SPEECH = "speech"
SPEECH_LENGTHS = "speech_lengths"
TRANSCRIPT = "transcript"
INPUT_IDS = "input_ids"
LABELS = "labels"
ATTENTION_MASK = "attention_mask"
NUM_TOKENS = "num_tokens"
#: The columns a tokenizer adds.
TOKEN_COLUMNS = (INPUT_IDS, LABELS, ATTENTION_MASK, NUM_TOKENS)
#: Rows written to the Arrow cache at a time (a few minutes of audio, not the whole corpus).
_WRITER_BATCH_ROWS = 64


def padded_length(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple`` (an exact multiple stays as it is).

    Example::

        >>> padded_length(1, 64), padded_length(64, 64), padded_length(65, 64)
        (64, 64, 128)
    """
    return -(-n // multiple) * multiple


@dataclass
class TokenLayout:
    """How a turn becomes ``input_ids``/``labels``: role prefix + text, padded.

    Example::

        >>> layout = TokenLayout(load_tokenizer("spm.model"), 64, {"user": "User: "})
        >>> row = layout.columns("user", "hello")
        >>> len(row["input_ids"]), row["labels"][:2]
        (64, [-100, -100])
    """

    tokenizer: TextTokenizer
    pad_multiple: int
    #: our role -> the prefix before the turn's text (``"User: "``).
    prefixes: Mapping[str, str]

    def columns(self, role: str, text: str) -> dict[str, Any]:
        """``input_ids``, ``labels``, ``attention_mask``, ``num_tokens`` of one turn."""
        prefix = self.tokenizer.encode(self.prefixes.get(role, f"{role}: "))
        text_ids = self.tokenizer.encode(text)
        n = len(prefix) + len(text_ids)
        pad = padded_length(n, self.pad_multiple) - n
        return {
            INPUT_IDS: prefix + text_ids + [self.tokenizer.pad_id] * pad,
            LABELS: [LABEL_IGNORE] * len(prefix) + text_ids + [LABEL_IGNORE] * pad,
            ATTENTION_MASK: [1] * n + [0] * pad,
            NUM_TOKENS: n,
        }


def features(tokenized: bool) -> Any:
    """The ``datasets.Features`` of the rows (with the token columns when ``tokenized``).

    Example::

        >>> features(False)["speech"]
        List(Value('float32'))
    """
    from datasets import Features, Sequence, Value

    columns = {
        fields.CONVERSATION_ID: Value("string"),
        TURN_NUMBER: Value("int32"),
        fields.ROLE: Value("string"),
        SPEECH: Sequence(Value("float32")),
        SPEECH_LENGTHS: Value("int64"),
        TRANSCRIPT: Value("string"),
        ID: Value("string"),
        fields.LANGUAGE: Value("string"),
        fields.AUDIO_SOURCE: Value("string"),
    }
    if tokenized:
        columns.update(
            {
                INPUT_IDS: Sequence(Value("int64")),
                LABELS: Sequence(Value("int64")),
                ATTENTION_MASK: Sequence(Value("int8")),
                NUM_TOKENS: Value("int32"),
            }
        )
    return Features(columns)


def token_layout(options: ExportOptions) -> TokenLayout | None:
    """The :class:`TokenLayout` of ``options.tokenizer`` (``None`` without one), loaded before
    any work so a wrong path stops the export at once.

    :raises ValueError: ``export.tokenizer: ...`` naming the path and what is wrong with it.
    """
    if options.tokenizer is None:
        return None
    try:
        tokenizer = load_tokenizer(options.tokenizer)
    except (OSError, ValueError) as e:
        raise ValueError(f"export.tokenizer: {e}") from None
    names = role_names(options.role_names or None, default=DEFAULT_ROLE_NAMES)
    prefixes = {role: f"{name}: " for role, name in names.items()}
    return TokenLayout(tokenizer, options.pad_multiple, prefixes)


@exporter(FORMAT)
def export_ttt(cuts: Iterable[Cut], output_dir: Path, options: ExportOptions) -> ExportResult:
    """TTT rows: one per dialogue turn (speech, transcript, padded input_ids/labels), HF dataset.

    Writes ``OUT/ttt/`` atomically (see the module docstring). Options used: ``tokenizer``
    (``None``: no token columns), ``pad_multiple``, ``role_names`` (the prefixes' names,
    default ``User``/``Assistant``), ``sampling_rate`` (default 16000), ``include_rejected``,
    ``overwrite``, ``progress``, ``on_failure``.

    :return: paths ``ttt``; counts of turns (and seconds) per language; details ``rows``,
        ``conversations``, ``text_only`` (turns without audio) and ``metadata`` (``ttt.json``).
    :raises ValueError: for a tokenizer that cannot be loaded, an unsafe path.
    :raises FileExistsError: see ``overwrite``.

    Example::

        >>> export_ttt(cuts, "data", tokenizer="spm.model").details["rows"]
        6
    """
    from datasets import Dataset

    tokens = token_layout(options)
    rate = options.sampling_rate or DEFAULT_SAMPLING_RATE
    target = AtomicOutput(
        output_dir / TTT_DIR,
        overwrite=options.overwrite,
        replaceable=layout(
            TTT_METADATA, "state.json", "dataset_info.json", patterns=[r"data-\d+-of-\d+\.arrow"]
        ),
        format=FORMAT,
    )
    result = ExportResult(FORMAT, paths={FORMAT: str(target.path)})
    guard = ItemGuard(STAGE, result.counts, options.on_failure)
    groups = group_conversations(kept_cuts(cuts, options.include_rejected, result.counts))
    stats = {"rows": 0, "conversations": 0, "text_only": 0}

    def rows() -> Iterator[dict[str, Any]]:
        for key, group in tqdm(groups.items(), desc=FORMAT, disable=not options.progress):
            with guard.item(*(c.id for c in group)) as outcome:
                turns = conversation_rows(key, group, rate, tokens)
            if not outcome.ok:
                continue
            stats["conversations"] += 1
            for row in turns:
                stats["rows"] += 1
                stats["text_only"] += row[SPEECH_LENGTHS] == 0
                result.counts.count(row[fields.LANGUAGE], row[SPEECH_LENGTHS] / rate)
                yield row

    schema = features(tokens is not None)
    with target as tmp, tempfile.TemporaryDirectory(dir=tmp) as cache:
        try:
            ds = Dataset.from_generator(
                rows,
                features=schema,
                cache_dir=cache,
                split="train",
                fingerprint=uuid.uuid4().hex,
                writer_batch_size=_WRITER_BATCH_ROWS,
            )
        except ValueError:
            if result.counts.written:
                raise
            ds = Dataset.from_dict({name: [] for name in schema}, features=schema)
        ds.save_to_disk(str(tmp), num_shards=1 if not len(ds) else None)
        del ds
        shutil.rmtree(cache, ignore_errors=True)
        metadata = ttt_metadata(tokens, options.pad_multiple, rate, stats)
        export_file(tmp, TTT_METADATA).write_text(json.dumps(metadata, indent=1), "utf-8")
    if not result.counts.written:
        result.say_empty("rows", "the dataset has its columns and no row")
    result.details.update(stats, metadata=str(target.path / TTT_METADATA))
    return result


def ttt_metadata(
    tokens: TokenLayout | None, pad_multiple: int, sampling_rate: int, counts: Mapping[str, int]
) -> dict[str, Any]:
    """The content of ``ttt.json``: the padding, label and audio layout of the rows.

    :param counts: ``rows`` and ``conversations`` written.

    Example::

        >>> ttt_metadata(None, 64, 16000, {"rows": 6, "conversations": 2})["pad_id"] is None
        True
    """
    tokenizer = tokens.tokenizer if tokens is not None else None
    return {
        "format": FORMAT,
        "pad_multiple": pad_multiple,
        "pad_id": tokenizer.pad_id if tokenizer is not None else None,
        "label_ignore": LABEL_IGNORE,
        "sampling_rate": sampling_rate,
        "tokenizer": tokenizer.name if tokenizer is not None else None,
        "tokenizer_kind": tokenizer.kind if tokenizer is not None else None,
        "role_prefixes": dict(tokens.prefixes) if tokens is not None else None,
        "rows": counts["rows"],
        "conversations": counts["conversations"],
    }


def read_ttt_metadata(path: Path | str) -> dict[str, Any]:
    """The ``ttt.json`` of the TTT rows folder ``path``.

    :raises ValueError: naming the file when it is missing or not a JSON object.

    Example::

        >>> read_ttt_metadata("data/ttt")["pad_multiple"]
        64
    """
    meta_path = Path(path) / TTT_METADATA
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{meta_path}: no such file (not a TTT rows export)") from None
    except ValueError as e:
        raise ValueError(f"{meta_path}: not JSON ({e})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def conversation_rows(
    key: ConversationKey, group: list[Cut], sampling_rate: int, tokens: TokenLayout | None
) -> list[dict[str, Any]]:
    """The rows of one conversation (its cuts ordered by turn), all or none.

    Dialogue turn cuts: one row per turn, numbered as the corpus numbers them. Triplet cuts: the
    spoken prompt (a ``user`` row) then its answer (an ``assistant`` row, text only) of each
    kept cut, numbered ``0..n-1`` in source order (the gate's rejected turns are left out).

    :raises ItemError: when a dialogue's turns are not ``0..n-1``, or a turn has no text or
        audio.
    """
    if not is_turn_cut(group[0]):
        return _triplet_rows(key.name, group, sampling_rate, tokens)
    reason = turn_gaps(turn_number(c) for c in group)
    if reason is not None:
        raise ItemError(f"turns: conversation {key.conversation_id!r}: {reason}", group[0].id)
    return [
        turn_row(key.conversation_id, cut, sampling_rate, tokens, turn_number(cut)) for cut in group
    ]


def _triplet_rows(
    name: str, group: list[Cut], sampling_rate: int, tokens: TokenLayout | None
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for cut in group:
        rows.append(turn_row(name, cut, sampling_rate, tokens, len(rows)))
        answer = (cut.custom or {}).get(fields.ANSWER)
        if isinstance(answer, str) and answer.strip():
            rows.append(_row(name, f"{cut.id}-{ASSISTANT}", len(rows), ASSISTANT, [], answer, cut))
            if tokens is not None:
                rows[-1].update(tokens.columns(ASSISTANT, answer))
    return rows


def turn_row(
    conversation: str, cut: Cut, sampling_rate: int, tokens: TokenLayout | None, number: int
) -> dict[str, Any]:
    """The row of one turn cut (a triplet cut: a user turn), turn ``number``.

    :raises ItemError: for a turn with no text, or whose audio cannot be loaded.
    """
    text = cut_text(cut)
    if not text:
        raise ItemError("no_text: the turn has no text", cut.id)
    role = turn_role(cut) or USER
    source = (cut.custom or {}).get(fields.AUDIO_SOURCE)
    if is_turn_cut(cut) and not cut.has_recording:
        speech: list[float] = []
        source = source or MISSING_AUDIO
    else:
        speech = audio_samples(cut, sampling_rate)[0]
    row = _row(conversation, cut.id, number, role, speech, text, cut, source)
    if tokens is not None:
        row.update(tokens.columns(role, text))
    return row


def _row(
    conversation: str,
    row_id: str,
    number: int,
    role: str,
    speech: Any,
    text: str,
    cut: Cut,
    source: Any = None,
) -> dict[str, Any]:
    return {
        fields.CONVERSATION_ID: conversation,
        TURN_NUMBER: number,
        fields.ROLE: role,
        SPEECH: speech,
        SPEECH_LENGTHS: len(speech),
        TRANSCRIPT: text,
        ID: row_id,
        fields.LANGUAGE: cut_language(cut),
        fields.AUDIO_SOURCE: None if source is None else str(source),
    }


@reader(FORMAT, detect=is_ttt)
def read_ttt(path: Path) -> Iterator[Triplet]:
    """The rows of a ``ttt`` export as :class:`~lhotse_triplets.export.reading.Triplet` s: no
    image, the speech (empty for a text-only turn), the transcript as target text, the other
    columns as metadata (what :func:`~lhotse_triplets.export.open_export` gives).

    Example::

        >>> image, speech, sr, transcript, meta = next(read_ttt("data/ttt"))
        >>> meta["conversation_id"], meta["turn_number"]
        ('c1', 0)
    """
    from datasets import load_from_disk

    sampling_rate = read_ttt_metadata(path)["sampling_rate"]
    for row in load_from_disk(str(path)):
        speech = np.asarray(row[SPEECH], dtype=np.float32)
        meta = {k: v for k, v in row.items() if k not in (SPEECH, TRANSCRIPT)}
        yield Triplet(None, speech, sampling_rate, row[TRANSCRIPT], meta)
