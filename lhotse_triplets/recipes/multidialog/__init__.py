"""MultiDialog: audio-visual dialogues of actors, one cut per spoken turn.

About the corpus: MultiDialog (``IVLLab/MultiDialog`` on the Hugging Face hub; Park et al., "Let's
Go Real Talk: Spoken Dialogue Model for Face-to-Face Conversation", ACL 2024) holds about 9,000
English dialogues (about 340 hours) recorded by actors from TopicalChat scripts, each utterance
annotated with an emotion (Neutral, Happy, Fear, Angry, Disgusting, Surprising, Sad). Splits:
``train``, ``valid_freq``, ``valid_rare``, ``test_freq``, ``test_rare``. Check the dataset card
for the licence.

Its hub loader is a dataset script, which ``datasets`` >= 4 refuses to run, so this recipe reads
the files of a local snapshot (:mod:`.sources`): ``metadata/<split>/<split>_metadata_NNNN.jsonl``
(``file_name``, ``conv_id`` like ``t_<uuid>``, ``utterance_id`` 0-based, ``from``
``human``|``gpt``, ``value``, ``emotion``, ``original_full_path``) and the 16 kHz turn audio in
``data/<split>/<split>_chunks_NNNN.tar.gz`` (``t_<uuid>/t_<uuid>_<utt><actor>.wav``), read member
by member from the stream, never extracted whole (:mod:`.audio`). The same rows from a local HF
dataset with an ``audio`` column (``save_to_disk`` folder or parquet) work too.

Every turn becomes one cut, id ``<conv_id>-t<utterance_id>`` (:mod:`.rows`): the recording (16 kHz,
channel 0; resampled on load if a file has another rate), one supervision with the text, the
language and ``speaker`` = the role after mapping (``user`` or ``assistant``; default
``human=user,gpt=assistant``), and the custom fields ``role`` (the same), ``conversation_id``
(``conv_id``), ``turn`` (``utterance_id``), ``speaker_id`` (the actor letter at the end of the
audio stem), ``emotion`` and ``split``. A turn without audio stays a text-only cut (no recording,
duration 0) with ``audio_source="missing"``, counted in the log.

Written in ``output_dir``, one part per split (``train``, ``valid_freq``, ``valid_rare``,
``test_freq``, ``test_rare``: those found, or ``--splits``):

- ``multidialog_cuts_<split>.jsonl.gz``: the turn cuts;
- ``multidialog_failed_<split>.jsonl``: what failed;
- ``.multidialog_<split>.completed``: the completion marker (a rerun is not redone);
- ``audio/<split>/<conv_id>/<stem>.wav``: the turn audio, copied out of the chunks.

Failures (recorded, skipped, the run goes on): ``invalid_json``,
``invalid_utf8``, ``not_an_object``, ``missing_field``, ``invalid_id``, ``invalid_utterance_id``,
``unknown_role``, ``invalid_text`` (a row); ``unsafe_member``, ``unreadable_audio``,
``unreadable_archive`` (audio); ``duplicate_turn``, ``turn_gap``, ``incomplete_conversation``,
``duplicate_conversation`` (a conversation id seen in an earlier split of the same run; splits
prepared in separate runs are not compared): a conversation is
written whole (turns ``0..n-1``) or not at all.
"""

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lhotse import CutSet
from lhotse.utils import Pathlike

from lhotse_triplets import dialogues, text
from lhotse_triplets.errors import Failure
from lhotse_triplets.recipes.multidialog.audio import STAGE, AudioStore
from lhotse_triplets.recipes.multidialog.rows import (
    DEFAULT_ROLES,
    SAMPLING_RATE,
    TurnOptions,
    conversation_cuts,
    gather,
)
from lhotse_triplets.recipes.multidialog.sources import (
    SPLITS,
    dataset_rows,
    is_snapshot,
    load_dataset_splits,
    snapshot_files,
    snapshot_rows,
    snapshot_splits,
)
from lhotse_triplets.recipes.registry import recipe
from lhotse_triplets.recipes.utils import Item, file_stamp, prepare_manifest

CORPUS = "multidialog"
logger = logging.getLogger(__name__)


@recipe(CORPUS)
def prepare_multidialog(
    source: Pathlike,
    output_dir: Pathlike | None = None,
    *,
    splits: Sequence[str] | None = None,
    roles: str | None = None,
    language: str = "en",
    split: str = "train",
    max_prompt_chars: int | None = text.MAX_PROMPT_CHARS,
) -> dict[str, CutSet]:
    """Turn cuts (one per utterance, grouped by conversation) from a local MultiDialog copy,
    by split.

    :param source: a snapshot of ``IVLLab/MultiDialog`` (with ``metadata/`` and ``data/``), or
        a local HF dataset of the same rows with an ``audio`` column (``save_to_disk`` folder,
        a parquet file or a folder of them).
    :param output_dir: where ``multidialog_cuts_<split>.jsonl.gz``, the failed logs and the
        turn audio (``audio/<split>/``) go. ``None`` (Python only): in memory, audio too.
    :param splits: the splits to prepare (repeat the option); default: every split found.
    :param roles: the corpus's ``from`` mapped to roles (``user`` or ``assistant``),
        ``FROM=ROLE`` pairs joined by commas; default ``human=user,gpt=assistant``.
    :param language: ISO 639-1 code of the text (``supervision.language``).
    :param split: the split name of a single HF ``Dataset`` or of parquet files (a snapshot's
        splits are its folders); the turn audio is read at 16 kHz.
    :param max_prompt_chars: longest turn text kept, in characters (``none``: no cap); a longer
        turn fails and its conversation with it.
    :return: ``{split: cuts}`` for every prepared split, in the order prepared (lazy
        when written to ``output_dir``).

    Example::

        >>> parts = prepare_multidialog("MultiDialog", "data/multidialog", splits=["test_freq"])
        >>> parts = prepare_multidialog("md_hf", "data/md", roles="human=assistant,gpt=user")
        >>> test_freq = parts["test_freq"]
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"MultiDialog source not found: {source}")
    role_map = dialogues.parse_roles(roles, default=DEFAULT_ROLES)
    parts = _parts(source, split, splits)
    seen: set[str] = set()
    prepared: dict[str, CutSet] = {}
    for name, stamp, open_part in parts:
        params = {
            "source": str(source),
            "source_stat": stamp,
            "roles": role_map,
            "language": language,
        }
        store = AudioStore(Path(output_dir) / "audio" / name if output_dir is not None else None)
        options = TurnOptions(name, language, store, max_prompt_chars, None)
        items = _split_items(open_part, store, options, role_map, seen)
        prepared[name] = prepare_manifest(
            items,
            corpus=CORPUS,
            part=name,
            output_dir=output_dir,
            params=params,
            desc=f"Preparing MultiDialog {name}",
            max_prompt_chars=max_prompt_chars,
            max_answer_chars=None,
            texts_checked=True,  # per turn, failing the conversation
        )
    return prepared


Part = tuple[str, Any, Any]


def _parts(source: Path, split: str, splits: Sequence[str] | None) -> list[Part]:
    """``(split, stamp, open)`` per split to prepare; ``open(store)`` gives its rows and the
    audio failures."""
    if is_snapshot(source):
        names = list(splits) if splits else snapshot_splits(source)
        parts = []
        for name in names:
            metadata, chunks = snapshot_files(source, name)
            if not metadata:
                raise FileNotFoundError(f"no metadata/{name}/{name}_metadata_*.jsonl in {source}")
            stamp = _stamp([*metadata, *chunks])
            parts.append((name, stamp, _SnapshotPart(metadata, chunks)))
        return parts
    datasets_by_split = load_dataset_splits(source, split)
    names = list(splits) if splits else list(datasets_by_split)
    unknown = sorted(set(names) - set(datasets_by_split))
    if unknown:
        raise ValueError(f"splits {unknown} not in {source} (has {sorted(datasets_by_split)})")
    stamp = file_stamp(source) or _stamp(sorted(p for p in source.rglob("*") if p.is_file()))
    return [(name, stamp, _DatasetPart(datasets_by_split[name])) for name in names]


class _SnapshotPart:
    def __init__(self, metadata: list[Path], chunks: list[Path]) -> None:
        self.metadata, self.chunks = metadata, chunks

    def __call__(self, store: AudioStore, failures: list[Failure]) -> Iterator[tuple[str, Any]]:
        for chunk in self.chunks:
            failures.extend(store.add_archive(chunk))
        return snapshot_rows(self.metadata)


class _DatasetPart:
    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __call__(self, store: AudioStore, failures: list[Failure]) -> Iterator[tuple[str, Any]]:
        return dataset_rows(self.dataset, store, failures)


def _split_items(
    open_part: Any,
    store: AudioStore,
    options: TurnOptions,
    roles: Mapping[str, str],
    seen: set[str],
) -> Iterator[Item]:
    """The outputs of one split: audio and row failures, then each conversation's cuts."""
    failures: list[Failure] = []
    conversations, row_failures = gather(open_part(store, failures), roles)
    yield from ([f] for f in failures + row_failures)
    turns = missing = 0
    for conv_id, conversation in conversations.items():
        if conv_id in seen:
            reason = f"duplicate_conversation: {conv_id[:200]!r} is in an earlier split"
            yield [Failure(conv_id, STAGE, reason)]
            continue
        seen.add(conv_id)
        outputs = conversation_cuts(conversation, options)
        cuts = [o for o in outputs if not isinstance(o, Failure)]
        turns += len(cuts)
        missing += sum(1 for c in cuts if dialogues.is_text_only(c))
        yield outputs
    logger.info("MultiDialog %s: %d of %d turns have no audio", options.split, missing, turns)


def _stamp(paths: Sequence[Path]) -> str:
    """A digest of the names, sizes and times of ``paths`` (a changed file redoes the part)."""
    listing = [[str(p), file_stamp(p)] for p in paths]
    return hashlib.sha1(json.dumps(listing).encode()).hexdigest()


__all__ = ["CORPUS", "DEFAULT_ROLES", "SAMPLING_RATE", "SPLITS", "prepare_multidialog"]
