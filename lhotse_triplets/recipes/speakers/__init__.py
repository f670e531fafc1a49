"""Speaker sets for TTS fine-tuning and voice cloning, in index-tts-lora's format.

About the data: index-tts-lora (LoRA fine-tuning of IndexTTS) trains on about 30 minutes of one
speaker (e.g. 270 clips: 244 train / 26 valid), starting from an *audio list*: one clip per
line, ``path<TAB>transcript`` (``|`` accepted; split on the first separator), optionally a third
column naming the speaker (see :mod:`.audio_list`). This recipe checks every clip
(:mod:`.checks`), splits each speaker's clips into train/valid (seeded, :mod:`.split`), embeds
them with a speaker encoder (a ``speaker`` backend) and picks the medoid clip (:mod:`.medoid`):
the clip most typical of the speaker, registered as the speaker's cloning reference.

It writes, in ``output_dir``:

- per speaker, in ``<safe_name(speaker)>/``: ``metadata_train.jsonl`` and
  ``metadata_valid.jsonl`` (``{"audio": <abs path>, "text", "duration"}`` per clip, plus
  ``codes``/``mels``/``condition`` with the IndexTTS extractor), ``distance_matrix.npy`` (rows in
  the order of the train lines, then the valid lines), ``medoid_condition.npy`` (the medoid's
  embedding, or its IndexTTS conditioning), ``medoid_info.json`` and ``medoid.<ext>`` (a copy of
  the medoid clip, the cloning reference);
- ``speaker_info.json``: one entry per speaker (rewritten by every run, never appended);
- ``voices.yaml``: a voice catalog with each speaker's medoid as a cloning reference
  (``lhotse-triplets voices -c OUT/voices.yaml``; ``references: OUT/voices.yaml`` for a cloning
  engine);
- Lhotse manifests: ``speakers_recordings_<split>.jsonl.gz`` and
  ``speakers_supervisions_<split>.jsonl.gz`` (``speaker`` and ``text`` set), and
  ``speakers_cuts_all.jsonl.gz`` (``custom["split"]``);
- ``speakers_failed_all.jsonl``: one line per excluded clip (cut id, reason, line, audio,
  speaker), and ``report/`` (markdown + PNG per speaker).

Every file is written whole through a temporary file, so a rerun replaces it safely.

Example::

    prepare_speaker_set("clips.tsv", "data/anna", speaker="anna", embedder="dummy")
"""

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from lhotse import CutSet
from lhotse.utils import Pathlike
from tqdm.auto import tqdm

from lhotse_triplets.backends.registry import build
from lhotse_triplets.config import language_problem
from lhotse_triplets.errors import reason_code
from lhotse_triplets.recipes.registry import recipe
from lhotse_triplets.recipes.speakers.audio_list import (
    Excluded,
    ListedClip,
    read_audio_list,
)
from lhotse_triplets.recipes.speakers.clips import ClipProcessor, KeptClip
from lhotse_triplets.recipes.speakers.medoid import DISTANCES, distance_matrix, medoid
from lhotse_triplets.recipes.speakers.output import (
    CORPUS,
    SpeakerSet,
    build_speaker_sets,
    write_outputs,
)

logger = logging.getLogger(__name__)


@recipe(CORPUS)
def prepare_speaker_set(
    audio_list: Pathlike,
    output_dir: Pathlike | None = None,
    *,
    speaker: str | None = None,
    speaker_from_folder: bool = False,
    valid_ratio: float = 0.1,
    seed: int = 0,
    language: str = "en",
    embedder: str = "resemblyzer",
    embedder_options: list[str] | None = None,
    distance: Literal["cosine", "euclidean"] = "cosine",
    min_duration: float = 1.0,
    max_duration: float = 20.0,
    asr: str | None = None,
    max_error_rate: float = 0.5,
    transcribe: bool = False,
    indextts_checkpoints: Pathlike | None = None,
    indextts_device: str = "cpu",
    allow_outside: bool = False,
) -> CutSet:
    """Speaker sets for TTS fine-tuning and cloning (index-tts-lora format) from an audio list.

    :param audio_list: the audio list, one clip per line: ``path<TAB>transcript[<TAB>speaker]``
        or ``path|transcript``; relative paths are read relative to its folder.
    :param output_dir: where the speaker folders, ``speaker_info.json``, ``voices.yaml``, the
        manifests and the report go. ``None`` (Python only): the cuts are returned in memory and
        nothing is written.
    :param speaker: the speaker of every clip.
    :param speaker_from_folder: each clip's speaker is the name of its folder.
    :param valid_ratio: share of each speaker's clips in ``valid`` (at least 1 once a speaker has
        2 clips; the train set is never empty).
    :param seed: seed of the train/valid split (with the speaker's name).
    :param language: ISO 639-1 code of the transcripts (and of the cloning references).
    :param embedder: the speaker encoder (a ``speaker`` backend) that picks the medoid.
    :param embedder_options: options of the speaker encoder, ``key=value`` (the value read as
        YAML; repeat the option), e.g. ``device=cuda``. In Python a mapping works too.
    :param distance: distance between speaker embeddings for the medoid.
    :param min_duration: shortest clip kept, in seconds (``too_short``).
    :param max_duration: longest clip kept, in seconds (``too_long``).
    :param asr: an ASR backend checking each transcript (``transcript_mismatch`` above
        ``max_error_rate``).
    :param max_error_rate: highest ASR error rate (WER; CER for languages written without
        spaces) of a kept clip.
    :param transcribe: fill in missing transcripts with the ASR backend (needs ``asr``).
    :param indextts_checkpoints: IndexTTS checkpoint folder: also extract codes, mels and
        conditioning per clip (needs IndexTTS installed).
    :param indextts_device: device of the IndexTTS extraction (``cpu``, ``cuda``).
    :param allow_outside: read audio paths that resolve outside the audio list's folder; by
        default such a clip is excluded (``outside_root``).
    :return: one cut per kept clip (lazy when written to ``output_dir``), ``custom["split"]``
        saying ``train`` or ``valid``.

    Example::

        >>> cuts = prepare_speaker_set("clips.tsv", "data/speakers", speaker_from_folder=True)
    """
    _check_options(speaker, speaker_from_folder, valid_ratio, seed, language, distance)
    _check_ranges(min_duration, max_duration, max_error_rate, transcribe, asr)
    if indextts_checkpoints is not None and output_dir is None:
        raise ValueError("--indextts-checkpoints needs an output directory for its files")
    out = Path(output_dir) if output_dir is not None else None
    processor = ClipProcessor(
        build("speaker", embedder, **_options(embedder_options)),
        language=language,
        min_duration=min_duration,
        max_duration=max_duration,
        asr=build("asr", asr) if asr is not None else None,
        max_error_rate=max_error_rate,
        transcribe=transcribe,
        extractor=_extractor(indextts_checkpoints, indextts_device),
        output_dir=out,
    )
    listed = list(
        read_audio_list(
            audio_list,
            speaker=speaker,
            speaker_from_folder=speaker_from_folder,
            allow_outside=allow_outside,
        )
    )
    clips = [c for c in listed if isinstance(c, ListedClip)]
    excluded = [c for c in listed if isinstance(c, Excluded)]
    with tqdm(total=len(clips), desc="Preparing speaker set", unit="clip") as progress:
        kept, failed = processor.run(clips, on_done=progress.update)
    excluded = sorted(excluded + failed, key=lambda e: e.line)
    sets = build_speaker_sets(kept, excluded, valid_ratio=valid_ratio, seed=seed, distance=distance)
    cuts = write_outputs(
        sets,
        excluded,
        out,
        language=language,
        extractor=processor.extractor,
    )
    _log_summary(sets, excluded)
    return cuts


def _check_options(
    speaker: str | None,
    speaker_from_folder: bool,
    valid_ratio: float,
    seed: int,
    language: str,
    distance: str,
) -> None:
    """One-line ``ValueError`` for an option that cannot work."""
    if speaker is not None and speaker_from_folder:
        raise ValueError("give either --speaker NAME or --speaker-from-folder, not both")
    if speaker is not None and not speaker.strip():
        raise ValueError("--speaker must name the speaker (got an empty name)")
    if not 0 < valid_ratio < 1:
        raise ValueError(f"--valid-ratio must lie between 0 and 1 (exclusive), got {valid_ratio}")
    if seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed}")
    if (problem := language_problem(language)) is not None:
        raise ValueError(f"--language {language!r}: {problem}")
    if distance not in DISTANCES:
        raise ValueError(f"--distance {distance!r}: known: {', '.join(DISTANCES)}")


def _check_ranges(
    min_duration: float,
    max_duration: float,
    max_error_rate: float,
    transcribe: bool,
    asr: str | None,
) -> None:
    if not 0 <= min_duration < max_duration:
        raise ValueError(
            f"--min-duration ({min_duration}) must be >= 0 and below --max-duration "
            f"({max_duration})"
        )
    if max_error_rate < 0:
        raise ValueError(f"--max-error-rate must be >= 0, got {max_error_rate}")
    if transcribe and asr is None:
        raise ValueError("--transcribe needs an ASR backend (--asr NAME)")


def _options(options: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """Backend options from a mapping or ``key=value`` strings (values read as YAML)."""
    if options is None:
        return {}
    if isinstance(options, Mapping):
        return dict(options)
    out = {}
    for option in options:
        key, equals, value = str(option).partition("=")
        if not equals or not key.strip():
            raise ValueError(f"--embedder-options {option!r}: expected key=value")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _extractor(checkpoints: Pathlike | None, device: str) -> Any:
    """The IndexTTS extractor when ``checkpoints`` is given (``ImportError`` naming the install
    when IndexTTS is missing)."""
    if checkpoints is None:
        return None
    if not Path(checkpoints).is_dir():
        raise NotADirectoryError(f"--indextts-checkpoints is not a folder: {checkpoints}")
    from lhotse_triplets.recipes.speakers.indextts import IndexTTSExtractor

    return IndexTTSExtractor(Path(checkpoints), device=device)


def _log_summary(sets: Sequence[SpeakerSet], excluded: Sequence[Excluded]) -> None:
    """The end-of-run line: speakers, clips kept and excluded by reason, minutes per speaker."""
    reasons = Counter(reason_code(e.reason) for e in excluded)
    kept = sum(len(s.clips) for s in sets)
    minutes = ", ".join(f"{s.speaker} {s.total_duration / 60:.1f}" for s in sets)
    logger.info(
        "Speaker set: %d speakers, %d clips kept, %d excluded%s; minutes per speaker: %s",
        len(sets),
        kept,
        len(excluded),
        f" ({', '.join(f'{n} {code}' for code, n in reasons.most_common())})" if reasons else "",
        minutes or "-",
    )


__all__ = [
    "CORPUS",
    "KeptClip",
    "SpeakerSet",
    "distance_matrix",
    "medoid",
    "prepare_speaker_set",
    "read_audio_list",
]
