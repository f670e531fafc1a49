"""Hugging Face ``datasets`` export: ``Audio`` + ``Image`` features, ``save_to_disk`` and
parquet shards, with a dataset card.

::

    OUT/README.md                         dataset card: counts per language/voice, settings
    OUT/data/train-00000-of-00002.parquet parquet shards (``load_dataset("parquet", ...)``)
    OUT/arrow/                            ``Dataset.save_to_disk`` (``load_from_disk``)

Columns: ``id``, ``image`` (Image), ``audio`` (Audio, FLAC bytes), ``target_text`` (the answer,
verbatim), ``prompt_text``, ``language``, ``voice``, ``tts_model``, ``conversation_id``,
``turn``, ``duration``, the scores and ``data_source``.

Decoding ``audio`` with ``datasets`` >= 4 needs ``torchcodec``; without it, read the bytes::

    ds = load_from_disk("OUT/arrow").cast_column("audio", Audio(decode=False))
    samples, sr = soundfile.read(io.BytesIO(ds[0]["audio"]["bytes"]))

(:func:`~lhotse_triplets.export.reading.open_export` does exactly that.)

Example::

    >>> result = export_hf(cuts, "data/hf", settings={"tts": "kokoro"})
    >>> datasets.load_from_disk(result.arrow_dir)
"""

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lhotse.cut import Cut
from lhotse.utils import Pathlike

from lhotse_triplets import fields
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.export.common import (
    AtomicDir,
    ExportCounts,
    OnFailure,
    audio_samples,
    cut_language,
    cut_text,
    cut_voice,
    encode_audio,
    failure_reason,
    log_failure,
)
from lhotse_triplets.export.shar import is_rejected, to_json_value
from lhotse_triplets.images import has_image, load_image_bytes

STAGE = "export_hf"
TARGET_TEXT = "target_text"
_SCORES = (
    fields.SIMILARITY,
    fields.WER,
    fields.CER,
    fields.ERROR_RATE,
    fields.MOS,
    fields.GATE_SCORE,
)


@dataclass
class HFExport:
    """What :func:`export_hf` wrote."""

    output_dir: Path
    arrow_dir: Path
    parquet_files: list[Path] = field(default_factory=list)
    card: Path | None = None
    counts: ExportCounts = field(default_factory=ExportCounts)
    #: (language, voice) -> examples.
    per_voice: dict[tuple[str, str], int] = field(default_factory=dict)


def features(sampling_rate: int, audio_storage: bool = False) -> Any:
    """The ``datasets.Features`` of the export.

    :param audio_storage: ``audio`` as its Arrow storage (``{"bytes", "path"}`` struct) instead
        of ``Audio``: ``datasets`` >= 4 needs ``torchcodec`` to *encode* an ``Audio`` value even
        from bytes, so rows are written with the storage type and the column is then cast to
        ``Audio`` (an Arrow-level cast, no encoding).
    """
    from datasets import Audio, Features, Image, Value

    audio = Audio(sampling_rate=sampling_rate)
    if audio_storage:
        audio = {"bytes": Value("binary"), "path": Value("string")}
    columns = {
        "id": Value("string"),
        "image": Image(),
        "audio": audio,
        TARGET_TEXT: Value("string"),
        "prompt_text": Value("string"),
        "language": Value("string"),
        "voice": Value("string"),
        fields.TTS_MODEL: Value("string"),
        fields.CONVERSATION_ID: Value("string"),
        fields.TURN: Value("int32"),
        "duration": Value("float32"),
        fields.DATA_SOURCE: Value("string"),
        fields.ASR_TEXT: Value("string"),
    }
    columns.update({name: Value("float32") for name in _SCORES})
    return Features(columns)


def export_hf(
    cuts: Iterable[Cut],
    output_dir: Pathlike,
    *,
    sampling_rate: int = 16000,
    num_shards: int | None = None,
    max_shard_rows: int = 10000,
    settings: dict[str, Any] | None = None,
    include_rejected: bool = False,
    overwrite: bool = False,
    on_failure: OnFailure | None = None,
) -> HFExport:
    """Write kept cuts as a Hugging Face dataset (arrow + parquet shards + card).

    :param num_shards: parquet shards (default: ``ceil(rows / max_shard_rows)``).
    :param settings: generation settings listed in the card (e.g. the pipeline config).
    :param on_failure: called per cut that cannot be exported (default: log a warning).
    :raises ValueError: for an unsafe path. :raises FileExistsError: see ``overwrite``.

    Example::

        >>> export_hf(cuts, "data/hf").parquet_files[0].name
        'train-00000-of-00001.parquet'
    """
    from datasets import Dataset

    on_failure = on_failure or log_failure
    atomic = AtomicDir(output_dir, overwrite=overwrite)
    out = atomic.output_dir
    result = HFExport(output_dir=out, arrow_dir=out / "arrow")

    def rows() -> Iterator[dict[str, Any]]:
        for cut in cuts:
            if is_rejected(cut) and not include_rejected:
                result.counts.rejected += 1
                continue
            try:
                row = _row(cut, sampling_rate)
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as e:
                result.counts.failed += 1
                on_failure(Failure(cut.id, STAGE, failure_reason(e)))
                continue
            key = (row["language"], row["voice"])
            result.per_voice[key] = result.per_voice.get(key, 0) + 1
            result.counts.count(row["language"], row["duration"])
            yield row

    with atomic as tmp, tempfile.TemporaryDirectory(dir=tmp.parent) as cache:
        ds = Dataset.from_generator(
            rows,
            features=features(sampling_rate, audio_storage=True),
            cache_dir=cache,
            split="train",
        ).cast(features(sampling_rate))
        n = len(ds)
        ds.save_to_disk(str(tmp / "arrow"))
        shards = num_shards or max(1, -(-n // max_shard_rows))
        (tmp / "data").mkdir()
        for i in range(shards if n else 0):
            name = f"train-{i:05d}-of-{shards:05d}.parquet"
            ds.shard(shards, i, contiguous=True).to_parquet(str(tmp / "data" / name))
            result.parquet_files.append(out / "data" / name)
        (tmp / "README.md").write_text(
            dataset_card(result, settings or {}, sampling_rate), encoding="utf-8"
        )
        del ds
        shutil.rmtree(cache, ignore_errors=True)
    result.card = out / "README.md"
    return result


def _row(cut: Cut, sampling_rate: int) -> dict[str, Any]:
    custom = cut.custom or {}
    answer = custom.get(fields.ANSWER)
    if not isinstance(answer, str):
        raise ItemError(f"no '{fields.ANSWER}' text", cut.id)
    audio, sr = audio_samples(cut, sampling_rate)
    row: dict[str, Any] = {
        "id": cut.id,
        "image": {"bytes": load_image_bytes(cut), "path": None} if has_image(cut) else None,
        "audio": {"bytes": encode_audio(audio, sr, "flac"), "path": f"{cut.id}.flac"},
        TARGET_TEXT: answer,
        "prompt_text": cut_text(cut),
        "language": cut_language(cut),
        "voice": cut_voice(cut),
        "duration": len(audio) / sr,
    }
    for name in (
        fields.TTS_MODEL,
        fields.CONVERSATION_ID,
        fields.TURN,
        fields.DATA_SOURCE,
        fields.ASR_TEXT,
        *_SCORES,
    ):
        value = custom.get(name)
        row[name] = to_json_value(value) if value is not None else None
    if row[fields.CONVERSATION_ID] is not None:
        row[fields.CONVERSATION_ID] = str(row[fields.CONVERSATION_ID])
    return row


def dataset_card(result: HFExport, settings: dict[str, Any], sampling_rate: int) -> str:
    """The dataset card (``README.md``): YAML header for the Hub, counts, settings, usage."""
    import yaml

    header = {
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": "train", "path": "data/train-*.parquet"}],
            }
        ],
        "language": sorted(result.counts.per_language),
        "task_categories": ["automatic-speech-recognition", "visual-question-answering"],
    }
    lines = ["---", yaml.safe_dump(header, sort_keys=False).strip(), "---", ""]
    lines += [
        "# Spoken image-question triplets",
        "",
        "(image, spoken prompt) -> target text, made by lhotse-triplets: each row is one user turn"
        " of an image+text instruction corpus spoken by a TTS voice, quality-checked (ASR, "
        "similarity, MOS) and kept by the gate. `target_text` is the assistant answer, verbatim.",
        "",
        f"{result.counts.written} examples, {result.counts.seconds / 3600:.4f} hours of audio "
        f"({sampling_rate} Hz FLAC); {result.counts.rejected} rejected and "
        f"{result.counts.failed} failed clips not included.",
        "",
        "| language | voice | examples |",
        "|---|---|---|",
    ]
    lines += [
        f"| {lang} | {voice} | {n} |" for (lang, voice), n in sorted(result.per_voice.items())
    ]
    lines += ["", "## Generation settings", "", "```yaml"]
    lines += [
        yaml.safe_dump(
            to_json_value(settings) if settings else {}, sort_keys=False, allow_unicode=True
        ).strip(),
        "```",
        "",
    ]
    lines += [
        "## Usage",
        "",
        "```python",
        "import io, soundfile",
        "from datasets import Audio, load_dataset",
        'ds = load_dataset("parquet", data_files="data/train-*.parquet", split="train")',
        'ds = ds.cast_column("audio", Audio(decode=False))  # no torchcodec needed',
        'audio, sr = soundfile.read(io.BytesIO(ds[0]["audio"]["bytes"]))',
        'image, target = ds[0]["image"], ds[0]["target_text"]',
        "```",
        "",
    ]
    return "\n".join(lines)
