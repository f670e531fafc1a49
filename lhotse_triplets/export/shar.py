"""Export triplet cuts to Lhotse Shar, the format NeMo reads as ``sqa_as_conversation``.

Writes ``OUT/shar/`` and, next to it, the NeMo data config ``OUT/nemo_data.yaml`` (bucket bins
estimated from the written cuts). A Shar directory holds, per shard, ``cuts.NNNNNN.jsonl.gz``
(metadata), ``recording.NNNNNN.tar`` (FLAC audio) and ``image.NNNNNN.tar`` (the *encoded* image,
PNG/JPEG bytes as a 1-D ``uint8`` array): the image travels with the data, so a trainer on
another machine needs nothing else.

Each exported cut is one ``(image, spoken prompt) -> answer`` triplet. Its custom fields are what
NeMo's ``sqa_as_conversation`` reader turns into a conversation::

    [system_prompt]  [context]  question + <audio>  ->  answer

``question`` is a short text instruction before the audio
(:data:`~lhotse_triplets.export.common.DEFAULT_QUESTION` unless the cut or the caller sets one),
``answer`` the verbatim target. Scores and provenance stay in ``custom`` (NeMo passes it through
as ``conversation.custom``); bookkeeping of no use to a trainer, ``None`` values and anything that
is not JSON are left out, and so are fields named like secrets or cloning references
(:func:`~lhotse_triplets.export.common.is_private_key`). Read it back with
:func:`~lhotse_triplets.export.reading.read_shar` or
:func:`~lhotse_triplets.export.reading.iter_triplets`.

**Ids.** Lhotse's Shar writer names every tar member ``<cut id>.<ext>`` and its reader checks
each member name against the cut id, so the two cannot differ. A cut whose id is not a safe
file name (``../../x/ESCAPED``, 300 characters, ``{'x': 1}-t0``) is therefore stored under
:func:`~lhotse_triplets.paths.safe_name` of its id, its own id kept in
``custom["original_id"]`` (:func:`~lhotse_triplets.export.common.with_safe_id`);
:func:`~lhotse_triplets.export.reading.read_shar` gives it back. No member name is ever a path.

**Zero cuts** (all rejected or failed): ``OUT/shar`` holds one empty shard (``cuts`` with no
line, empty tars), which ``CutSet.from_shar`` and :func:`read_shar` open as zero cuts; no
``nemo_data.yaml`` is written (an earlier one is removed: a trainer pointed at no data should
fail at once), and the result says so (``details["empty"]``, ``details["note"]``, a warning).

Example::

    >>> result = export_shar(CutSet.from_jsonl_lazy("gated.jsonl.gz"), "data/en", shard_size=500)
    >>> result.paths
    {'shar': 'data/en/shar', 'nemo_config': 'data/en/nemo_data.yaml'}
"""

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lhotse.cut import Cut, MonoCut
from lhotse.utils import fastcopy

from lhotse_triplets import fields
from lhotse_triplets.cuts import cut_language
from lhotse_triplets.errors import ItemError
from lhotse_triplets.export import common
from lhotse_triplets.export.base import ExportOptions, ExportResult, exporter
from lhotse_triplets.export.common import (
    AtomicOutput,
    ItemGuard,
    RollingSharWriter,
    ShardRoller,
    check_choice,
    is_data_value,
    is_private_key,
    is_shard_file,
    kept_cuts,
    public_fields,
    question_for,
    require_answer,
    shard_paths,
    to_json_value,
    with_safe_id,
    write_empty_shard,
)
from lhotse_triplets.export.nemo_config import (
    NEMO_CONFIG_FILE,
    estimate_token_bins,
    sqa_lengths,
    write_nemo_config,
)
from lhotse_triplets.images import has_image, with_image_array

logger = logging.getLogger(__name__)

FORMAT = "shar"
STAGE = f"export_{FORMAT}"
#: The Shar directory inside the export directory.
SHAR_DIR = "shar"

#: Custom fields left out of the Shar: synthesis bookkeeping and per-language source texts.
DROPPED_FIELDS = frozenset({fields.SYNTHESIS_SECONDS, fields.TRANSLATIONS})

#: Fields that NeMo turns into text turns whenever they exist: dropped when empty.
_TURN_FIELDS = (fields.CONTEXT, fields.SYSTEM_PROMPT)

#: Fields Lhotse's Shar reader sets on every cut it reads (never written back).
_SHAR_READER_FIELDS = frozenset({"shard_origin", "shar_epoch"})

AUDIO_FORMATS = common.SHAR_AUDIO_FORMATS


class PrepareForShar:
    """Cut -> the cut as it is stored in Shar (picklable; the input cut is not modified).

    - ``question`` set (:func:`~lhotse_triplets.export.common.question_for`);
    - the image attached as its encoded bytes (1-D ``uint8`` array);
    - custom fields kept when useful and JSON-able (numpy scalars become Python numbers);
      :data:`~lhotse_triplets.fields.NEMO_RESERVED` keys, ``None`` values, empty
      context/system prompt and :data:`DROPPED_FIELDS` removed;
    - fields named like secrets or cloning references dropped (also from supervisions);
    - features dropped; audio resampled to ``sampling_rate`` when given;
    - an id that is not a safe file name stored as its safe name, the id kept in
      ``custom["original_id"]`` (:func:`~lhotse_triplets.export.common.with_safe_id`).

    :raises ItemError: for a cut with no audio, no answer, or an unreadable image.

    Example::

        >>> shar_cut = PrepareForShar(question="")(cut)
    """

    def __init__(
        self,
        question: str | None = None,
        sampling_rate: int | None = None,
        keep_reject_reason: bool = False,
    ) -> None:
        self.question = question
        self.sampling_rate = sampling_rate
        self.keep_reject_reason = keep_reject_reason
        self.dropped: dict[str, int] = {}

    def __call__(self, cut: Cut) -> Cut:
        if not isinstance(cut, MonoCut) or not cut.has_recording:
            raise ItemError("no audio (a MonoCut with a recording is needed)", cut_id=cut.id)
        answer = require_answer(cut)
        source = cut.custom or {}
        custom: dict[str, Any] = {}
        for key, value in source.items():
            if key == fields.IMAGE:
                continue  # attached below as encoded bytes
            reason = self._drop_reason(key, value)
            if reason is None:
                try:
                    custom[key] = to_json_value(value)
                    continue
                except TypeError:
                    reason = "not JSON"
            self.dropped[f"{key} ({reason})"] = self.dropped.get(f"{key} ({reason})", 0) + 1
        custom[fields.QUESTION] = question_for(source, self.question)
        custom[fields.ANSWER] = answer
        if has_image(cut):
            custom[fields.IMAGE] = source[fields.IMAGE]
        supervisions = [
            fastcopy(s, custom=public_fields(s.custom)) if s.custom else s for s in cut.supervisions
        ]
        out = fastcopy(cut, custom=custom, features=None, supervisions=supervisions)
        if has_image(out):
            out = with_image_array(out)
        if self.sampling_rate is not None and out.sampling_rate != self.sampling_rate:
            out = out.resample(self.sampling_rate)
        return with_safe_id(out)

    def _drop_reason(self, key: str, value: Any) -> str | None:
        if is_private_key(key):
            return "secret or cloning reference"
        if key in fields.NEMO_RESERVED:
            return "reserved by NeMo"
        if key in DROPPED_FIELDS or key in _SHAR_READER_FIELDS:
            return "not for training"
        if key == fields.REJECT_REASON and not self.keep_reject_reason:
            return "not for training"
        if key == fields.QUESTION:
            return None  # set in __call__ (an empty question is a valid choice)
        if value is None:
            return "None"
        if key in _TURN_FIELDS and isinstance(value, str) and not value.strip():
            return "empty"
        if is_data_value(value):
            return "data field"
        return None


@exporter(FORMAT)
def export_shar(cuts: Iterable[Cut], output_dir: Path, options: ExportOptions) -> ExportResult:
    """Lhotse Shar (audio and image bytes inside) + the NeMo sqa_as_conversation YAML beside it.

    Streams: cuts are read, prepared (:class:`PrepareForShar`) and written one at a time, so
    memory stays flat for any corpus size. ``OUT/shar`` is written next to its final place and
    moved there when complete, so a killed export never looks finished; ``OUT/nemo_data.yaml``
    is written only when cuts were.

    Options used: ``shard_size`` and ``shard_hours`` (a new shard starts when either would be
    passed; neither: one unnumbered shard), ``audio_format``, ``question``, ``include_rejected``
    (rejected cuts keep their ``reject_reason``), ``sampling_rate`` (``None``: keep),
    ``num_buckets``, ``overwrite``, ``on_failure``.

    :return: paths ``shar`` and ``nemo_config``; details ``shards`` (field -> shard paths).
    :raises ValueError: for an unsafe path or an unknown audio format.
    :raises FileExistsError: when ``OUT/shar`` holds files and ``overwrite`` is false, or holds
        anything but Shar shards.

    Example::

        >>> result = export_shar(cuts, "data/en", shard_size=500)
        >>> result.details["shards"]["cuts"][:1]
        ['data/en/shar/cuts.000000.jsonl.gz']
    """
    check_choice("audio_format", options.audio_format, AUDIO_FORMATS)
    shar_out = AtomicOutput(
        output_dir / SHAR_DIR,
        overwrite=options.overwrite,
        replaceable=is_shard_file,
        keep_unrelated=False,
        format=FORMAT,
    )
    config_out = AtomicOutput(
        output_dir / NEMO_CONFIG_FILE, overwrite=options.overwrite, is_file=True
    )
    result = ExportResult(FORMAT, paths={FORMAT: str(shar_out.path)})
    prepare = PrepareForShar(
        options.question, options.sampling_rate, keep_reject_reason=options.include_rejected
    )
    guard = ItemGuard(STAGE, result.counts, options.on_failure)
    lengths, rates = [], set()
    roller = ShardRoller(options.shard_size, options.shard_hours)
    shar_fields = {"recording": options.audio_format, fields.IMAGE: "numpy"}
    with shar_out as tmp:
        with RollingSharWriter(tmp, shar_fields, roller) as writer:
            for cut in kept_cuts(cuts, options.include_rejected, result.counts):
                with guard.item(cut.id) as outcome:
                    # SharWriter loads the audio before writing anything of the cut, so a
                    # failure here leaves the shards aligned.
                    shar_cut = prepare(cut)
                    writer.write(shar_cut)
                if outcome.ok:
                    result.counts.count(cut_language(cut), shar_cut.duration)
                    lengths.append(sqa_lengths(shar_cut))
                    rates.add(shar_cut.sampling_rate)
        if not result.counts.written:
            write_empty_shard(tmp, shar_fields, numbered=roller.limited)
        result.details["shards"] = shard_paths(tmp, shar_out.path)
    if prepare.dropped:
        logger.info("Fields left out of the Shar: %s", prepare.dropped)
    with config_out as tmp_config:
        if result.counts.written:
            write_nemo_config(
                shar_out.path,
                tmp_config,
                sample_rate=options.sampling_rate or max(rates),
                bucket_duration_bins=estimate_token_bins(lengths, options.num_buckets),
            )
            result.paths["nemo_config"] = str(config_out.path)
        else:
            result.say_empty("cuts", f"{shar_out.path} holds one empty shard, no NeMo config")
    return result
