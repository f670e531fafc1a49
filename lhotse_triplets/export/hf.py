"""Hugging Face ``datasets`` export: ``Audio`` + ``Image`` features, ``save_to_disk`` and
parquet shards, with a dataset card.

::

    OUT/hf/README.md                         dataset card: counts per language/voice, settings
    OUT/hf/data/train-00000-of-00002.parquet parquet shards (``load_dataset("parquet", ...)``)
    OUT/hf/arrow/                            ``Dataset.save_to_disk`` (``load_from_disk``)

Columns: ``id``, ``image`` (Image), ``audio`` (Audio, FLAC bytes), ``target_text`` (the answer,
verbatim), ``prompt_text``, ``language``, ``voice``, ``tts_model``, ``conversation_id``,
``turn``, ``duration``, the scores and ``data_source``.

Decoding ``audio`` with ``datasets`` >= 4 needs ``torchcodec``; without it, read the bytes::

    ds = load_from_disk("OUT/hf/arrow").cast_column("audio", Audio(decode=False))
    samples, sr = soundfile.read(io.BytesIO(ds[0]["audio"]["bytes"]))

(:func:`~lhotse_triplets.export.reading.open_export` does exactly that.)

The card's "Generation settings" pass through :func:`~lhotse_triplets.redact.redact`: option
values named like secrets (``api_key``, ``token``...) read ``<redacted>`` and cloning
references (paths, transcripts) a digest; a row's audio ``path`` is
:func:`~lhotse_triplets.paths.safe_name` of its id (the ``id`` column holds the id as it is).

**Zero rows** (every clip rejected or failed): the dataset has its columns and no row:
``arrow/`` (one empty shard, ``load_from_disk`` opens it), one empty parquet file (pyarrow opens
it; ``datasets.load_dataset("parquet")`` refuses a dataset with no row, a ``datasets`` limit)
and the card, saying 0 examples; the result says so (``details["empty"]``, a warning).

Example::

    >>> result = export_hf(cuts, "data", settings={"tts": "kokoro"})
    >>> datasets.load_from_disk(result.details["arrow"])
"""

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.cuts import cut_language, cut_text, cut_voice
from lhotse_triplets.export.base import ExportOptions, ExportResult, exporter
from lhotse_triplets.export.common import (
    DURATION,
    ID,
    PROMPT_TEXT,
    AtomicOutput,
    ExportCounts,
    ItemGuard,
    audio_samples,
    encode_audio,
    export_file,
    json_fields,
    kept_cuts,
    layout,
    require_answer,
    to_json_value,
)
from lhotse_triplets.images import has_image, load_image_bytes
from lhotse_triplets.paths import safe_name
from lhotse_triplets.redact import redact

FORMAT = "hf"
STAGE = f"export_{FORMAT}"
#: The dataset folder inside the export directory.
HF_DIR = "hf"
TARGET_TEXT = "target_text"
#: A row's audio rate, taken out before the row is written.
_RATE = "_sampling_rate"
#: Custom fields copied into a row as they are.
_CUSTOM_COLUMNS = (
    fields.TTS_MODEL,
    fields.CONVERSATION_ID,
    fields.TURN,
    fields.DATA_SOURCE,
    fields.ASR_TEXT,
    *fields.SCORES,
)


def features(sampling_rate: int | None, audio_storage: bool = False) -> Any:
    """The ``datasets.Features`` of the export.

    :param sampling_rate: the ``Audio`` feature's rate (``None``: each file's own).
    :param audio_storage: ``audio`` as its Arrow storage (``{"bytes", "path"}`` struct) instead
        of ``Audio``: ``datasets`` >= 4 needs ``torchcodec`` to *encode* an ``Audio`` value even
        from bytes, so rows are written with the storage type and the column is then cast to
        ``Audio`` (an Arrow-level cast, no encoding).

    Example::

        >>> features(16000)["audio"]
        Audio(sampling_rate=16000, ...)
    """
    from datasets import Audio, Features, Image, Value

    audio = Audio(sampling_rate=sampling_rate)
    if audio_storage:
        audio = {"bytes": Value("binary"), "path": Value("string")}
    columns = {
        ID: Value("string"),
        "image": Image(),
        "audio": audio,
        TARGET_TEXT: Value("string"),
        PROMPT_TEXT: Value("string"),
        fields.LANGUAGE: Value("string"),
        fields.VOICE: Value("string"),
        fields.TTS_MODEL: Value("string"),
        fields.CONVERSATION_ID: Value("string"),
        fields.TURN: Value("int32"),
        DURATION: Value("float32"),
        fields.DATA_SOURCE: Value("string"),
        fields.ASR_TEXT: Value("string"),
    }
    columns.update({name: Value("float32") for name in fields.SCORES})
    return Features(columns)


@exporter(FORMAT)
def export_hf(cuts: Iterable[Cut], output_dir: Path, options: ExportOptions) -> ExportResult:
    """Hugging Face dataset: Audio + Image features, save_to_disk, parquet shards, card.

    Writes ``OUT/hf/`` atomically (see the module docstring). Options used: ``sampling_rate``
    (``None``: keep), ``hf_num_shards`` (default: one per ``hf_max_shard_rows`` rows),
    ``settings`` (listed in the card), ``include_rejected``, ``overwrite``, ``on_failure``.

    :return: paths ``hf``; details ``arrow``, ``parquet_files``, ``card`` and ``per_voice``
        ((language, voice) -> examples).
    :raises ValueError: for an unsafe path. :raises FileExistsError: see ``overwrite``.

    Example::

        >>> export_hf(cuts, "data").details["parquet_files"][0]
        'data/hf/data/train-00000-of-00001.parquet'
    """
    from datasets import Dataset

    target = AtomicOutput(
        output_dir / HF_DIR,
        overwrite=options.overwrite,
        replaceable=layout("README.md", "arrow", "data"),
        format=FORMAT,
    )
    out = target.path
    result = ExportResult(FORMAT, paths={FORMAT: str(out)})
    per_voice: dict[tuple[str, str], int] = {}
    rates: set[int] = set()
    guard = ItemGuard(STAGE, result.counts, options.on_failure)

    def rows() -> Iterator[dict[str, Any]]:
        for cut in kept_cuts(cuts, options.include_rejected, result.counts):
            with guard.item(cut.id) as outcome:
                row = _row(cut, options.sampling_rate)
            if outcome.ok:
                key = (row[fields.LANGUAGE], row[fields.VOICE])
                per_voice[key] = per_voice.get(key, 0) + 1
                rates.add(row.pop(_RATE))
                result.counts.count(row[fields.LANGUAGE], row[DURATION])
                yield row

    rate = options.sampling_rate
    with target as tmp, tempfile.TemporaryDirectory(dir=tmp) as cache:
        storage = features(rate, audio_storage=True)
        try:
            ds = Dataset.from_generator(rows, features=storage, cache_dir=cache, split="train")
        except ValueError:
            if result.counts.written:
                raise
            ds = Dataset.from_dict({name: [] for name in storage}, features=storage)
        ds = ds.cast(features(rate))
        ds.save_to_disk(str(export_file(tmp, "arrow")), num_shards=1 if not len(ds) else None)
        parquet = _write_parquet(ds, export_file(tmp, "data"), options)
        card = dataset_card(result.counts, per_voice, options.settings, rate or sorted(rates))
        export_file(tmp, "README.md").write_text(card, encoding="utf-8")
        del ds
        shutil.rmtree(cache, ignore_errors=True)
    if not result.counts.written:
        result.say_empty("rows", "the dataset has its columns and no row")
    result.details.update(
        arrow=str(out / "arrow"),
        parquet_files=[str(out / "data" / p.name) for p in parquet],
        card=str(out / "README.md"),
        per_voice=per_voice,
    )
    return result


def _write_parquet(ds: Any, directory: Path, options: ExportOptions) -> list[Path]:
    """``train-NNNNN-of-NNNNN.parquet`` shards of ``ds`` (one with no row for an empty one)."""
    directory.mkdir()
    n = len(ds)
    shards = options.hf_num_shards or max(1, -(-n // options.hf_max_shard_rows))
    shards = shards if n else 1
    paths = []
    for i in range(shards):
        path = directory / f"train-{i:05d}-of-{shards:05d}.parquet"
        ds.shard(shards, i, contiguous=True).to_parquet(str(path))
        paths.append(path)
    return paths


def _row(cut: Cut, sampling_rate: int | None) -> dict[str, Any]:
    answer = require_answer(cut)
    audio, sr = audio_samples(cut, sampling_rate)
    row: dict[str, Any] = dict.fromkeys(_CUSTOM_COLUMNS)
    row.update(json_fields(cut.custom or {}, _CUSTOM_COLUMNS))
    row.update(
        {
            ID: cut.id,
            "image": {"bytes": load_image_bytes(cut), "path": None} if has_image(cut) else None,
            "audio": {"bytes": encode_audio(audio, sr, "flac"), "path": _audio_name(cut)},
            TARGET_TEXT: answer,
            PROMPT_TEXT: cut_text(cut),
            fields.LANGUAGE: cut_language(cut),
            fields.VOICE: cut_voice(cut),
            DURATION: len(audio) / sr,
            _RATE: sr,
        }
    )
    if row[fields.CONVERSATION_ID] is not None:
        row[fields.CONVERSATION_ID] = str(row[fields.CONVERSATION_ID])
    return row


def dataset_card(
    counts: ExportCounts,
    per_voice: dict[tuple[str, str], int],
    settings: dict[str, Any],
    sampling_rate: int | Sequence[int],
) -> str:
    """The dataset card (``README.md``): YAML header for the Hub, counts, settings, usage.

    :param settings: listed under "Generation settings", secrets and cloning references
        hidden (:func:`~lhotse_triplets.redact.redact`).
    :param sampling_rate: the audio rate, or the rates found in the audio.

    Example::

        >>> print(dataset_card(result.counts, result.details["per_voice"], {}, 16000))
    """
    import yaml

    header = {
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": "train", "path": "data/train-*.parquet"}],
            }
        ],
        "language": sorted(counts.per_language),
        "task_categories": ["automatic-speech-recognition", "visual-question-answering"],
    }
    rates = [sampling_rate] if isinstance(sampling_rate, int) else list(sampling_rate)
    rate = f"{'/'.join(str(r) for r in rates) or '-'} Hz FLAC"
    lines = ["---", yaml.safe_dump(header, sort_keys=False).strip(), "---", ""]
    lines += [
        "# Spoken image-question triplets",
        "",
        "(image, spoken prompt) -> target text, made by lhotse-triplets: each row is one user turn"
        " of an image+text instruction corpus spoken by a TTS voice, quality-checked (ASR, "
        "similarity, MOS) and kept by the gate. `target_text` is the assistant answer, verbatim.",
        "",
        f"{counts.written} examples, {counts.seconds / 3600:.4f} hours of audio ({rate}); "
        f"{counts.rejected} rejected and {counts.failed} failed clips not included.",
        "",
        "| language | voice | examples |",
        "|---|---|---|",
    ]
    lines += [f"| {lang} | {voice} | {n} |" for (lang, voice), n in sorted(per_voice.items())]
    lines += ["", "## Generation settings", "", "```yaml"]
    lines += [
        yaml.safe_dump(
            _plain(redact(settings)) if settings else {}, sort_keys=False, allow_unicode=True
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


def _plain(value: Any) -> Any:
    """``value`` as YAML-safe plain data (values that are not JSON shown as text)."""
    try:
        return to_json_value(value)
    except TypeError:
        return json.loads(json.dumps(value, default=str))


def _audio_name(cut: Cut) -> str:
    """The file name of a row's audio (kept by ``datasets`` as the audio ``path``)."""
    return f"{safe_name(cut.id)}.flac"
