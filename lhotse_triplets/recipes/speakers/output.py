"""A speaker set's split, medoid and files (see the package docstring for the layout).

Example::

    sets = build_speaker_sets(kept, excluded, valid_ratio=0.1, seed=0, distance="cosine")
    cuts = write_outputs(sets, excluded, Path("data/speakers"), language="en")
"""

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from lhotse import CutSet, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.cut import Cut
from lhotse.utils import fastcopy

from lhotse_triplets.audio import to_mono_float32
from lhotse_triplets.errors import reason_code
from lhotse_triplets.paths import safe_name
from lhotse_triplets.recipes.speakers import files
from lhotse_triplets.recipes.speakers.audio_list import Excluded
from lhotse_triplets.recipes.speakers.clips import KeptClip
from lhotse_triplets.recipes.speakers.medoid import Distance, distance_matrix, medoid
from lhotse_triplets.recipes.speakers.split import split_indices

logger = logging.getLogger(__name__)

CORPUS = "speakers"
SPLITS = ("train", "valid")
#: The fields of each ``speaker_info.json`` entry (index-tts-lora's), in order.
SPEAKER_INFO_FIELDS = (
    "speaker",
    "avg_duration",
    "sample_num",
    "total_duration_in_seconds",
    "total_duration_in_minutes",
    "total_duration_in_hours",
    "train_jsonl",
    "valid_jsonl",
    "medoid_condition",
)


@dataclass
class SpeakerSet:
    """One speaker's kept clips split into train/valid, their distances and medoid."""

    speaker: str
    train: list[KeptClip]
    valid: list[KeptClip]
    distances: np.ndarray
    medoid_index: int
    medoid_total: float
    excluded: Counter = field(default_factory=Counter)

    @property
    def clips(self) -> list[KeptClip]:
        """Train clips, then valid clips: the order of the distance matrix's rows."""
        return self.train + self.valid

    @property
    def medoid(self) -> KeptClip:
        return self.clips[self.medoid_index]

    @property
    def total_duration(self) -> float:
        return sum(c.duration for c in self.clips)

    @property
    def embeddings(self) -> np.ndarray:
        return np.stack([c.embedding for c in self.clips])

    def report_entry(self) -> dict[str, Any]:
        """What the report writer takes for this speaker."""
        m = self.medoid
        return {
            "speaker": self.speaker,
            "durations": [c.duration for c in self.clips],
            "train": len(self.train),
            "valid": len(self.valid),
            "excluded": dict(self.excluded),
            "medoid": {"audio": str(m.clip.path), "text": m.text, "index": self.medoid_index},
            "embeddings": self.embeddings,
        }


def build_speaker_sets(
    kept: Sequence[KeptClip],
    excluded: Sequence[Excluded],
    *,
    valid_ratio: float,
    seed: int,
    distance: Distance,
) -> list[SpeakerSet]:
    """One :class:`SpeakerSet` per speaker with a kept clip, in order of first appearance."""
    by_speaker: dict[str, list[KeptClip]] = {}
    for clip in kept:
        by_speaker.setdefault(clip.clip.speaker, []).append(clip)
    excluded_by_speaker = excluded_counts(excluded)
    for speaker in excluded_by_speaker.keys() - by_speaker.keys():
        logger.warning("Speaker %r: no clip kept (%s)", speaker, dict(excluded_by_speaker[speaker]))
    sets = []
    for speaker, clips in by_speaker.items():
        train, valid = split_indices(
            len(clips), valid_ratio=valid_ratio, seed=seed, speaker=speaker
        )
        ordered = [clips[i] for i in train + valid]
        distances = distance_matrix(np.stack([c.embedding for c in ordered]), distance)
        index, total = medoid(distances)
        sets.append(
            SpeakerSet(
                speaker,
                ordered[: len(train)],
                ordered[len(train) :],
                distances,
                index,
                total,
                excluded_by_speaker.get(speaker, Counter()),
            )
        )
    return sets


def excluded_counts(excluded: Iterable[Excluded]) -> dict[str, Counter]:
    """Excluded clips per speaker (those whose speaker is known) by reason code."""
    out: dict[str, Counter] = {}
    for e in excluded:
        if e.speaker is not None:
            out.setdefault(e.speaker, Counter())[reason_code(e.reason)] += 1
    return out


def write_outputs(
    sets: Sequence[SpeakerSet],
    excluded: Sequence[Excluded],
    output_dir: Path | None,
    *,
    language: str,
    extractor: Any = None,
) -> CutSet:
    """Write every file of the speaker set into ``output_dir``; return the cuts (in memory
    when ``output_dir`` is ``None``, and nothing is written)."""
    cuts = [cut for s in sets for cut in _cuts(s, language)]
    if output_dir is None:
        return CutSet.from_cuts(cuts)
    output_dir.mkdir(parents=True, exist_ok=True)
    info = [_write_speaker(s, output_dir, extractor) for s in sets]
    files.write_json(output_dir / "speaker_info.json", info)
    files.write_catalog(output_dir / "voices.yaml", _references(sets, output_dir, language))
    cuts_path = _write_manifests(cuts, output_dir)
    files.write_failed_log(
        output_dir / f"{CORPUS}_failed_all.jsonl",
        ((e.failure, {"line": e.line, "audio": e.audio, "speaker": e.speaker}) for e in excluded),
    )
    _write_report(sets, excluded, output_dir / "report")
    return CutSet.from_jsonl_lazy(cuts_path)


def speaker_dir(output_dir: Path, speaker: str) -> Path:
    """The folder of ``speaker``'s files."""
    return output_dir / safe_name(speaker)


def _write_speaker(s: SpeakerSet, output_dir: Path, extractor: Any) -> dict[str, Any]:
    """The files of one speaker; its ``speaker_info.json`` entry."""
    folder = speaker_dir(output_dir, s.speaker)
    jsonl = {
        split: files.write_jsonl(folder / f"metadata_{split}.jsonl", map(_metadata, clips))
        for split, clips in zip(SPLITS, (s.train, s.valid), strict=True)
    }
    files.write_npy(folder / "distance_matrix.npy", s.distances)
    m = s.medoid
    condition = m.embedding if extractor is None else _condition(extractor, m)
    condition_path = files.write_npy(folder / "medoid_condition.npy", condition)
    reference = files.copy_file(m.clip.path, folder / f"medoid{m.clip.path.suffix.lower()}")
    files.write_json(
        folder / "medoid_info.json",
        {
            "audio": str(m.clip.path),
            "text": m.text,
            "index": s.medoid_index,
            "total_distance": round(s.medoid_total, 6),
            "clip_id": m.clip.clip_id,
            "split": "train" if s.medoid_index < len(s.train) else "valid",
            "reference": reference.name,
        },
    )
    total = s.total_duration
    return {
        "speaker": s.speaker,
        "avg_duration": round(total / len(s.clips), 4),
        "sample_num": len(s.clips),
        "total_duration_in_seconds": round(total, 4),
        "total_duration_in_minutes": round(total / 60, 4),
        "total_duration_in_hours": round(total / 3600, 4),
        "train_jsonl": str(jsonl["train"].resolve()),
        "valid_jsonl": str(jsonl["valid"].resolve()),
        "medoid_condition": str(condition_path.resolve()),
    }


def _metadata(clip: KeptClip) -> dict[str, Any]:
    return {
        "audio": str(clip.clip.path),
        "text": clip.text,
        "duration": round(clip.duration, 4),
        **clip.extracted,
    }


def _condition(extractor: Any, clip: KeptClip) -> np.ndarray:
    """The IndexTTS conditioning of ``clip``: the file extracted for it, else computed."""
    if clip.extracted.get("condition"):
        return np.load(clip.extracted["condition"], allow_pickle=False)
    data, rate = sf.read(str(clip.clip.path), dtype="float32", always_2d=True)
    return np.asarray(extractor.condition_of(to_mono_float32(data.T), int(rate)))


def _references(
    sets: Iterable[SpeakerSet], output_dir: Path, language: str
) -> dict[str, dict[str, str]]:
    """Catalog entries: each speaker's medoid copy (relative to ``output_dir``) and transcript."""
    out = {}
    for s in sets:
        m = s.medoid
        folder = speaker_dir(output_dir, s.speaker).name
        audio = f"{folder}/medoid{m.clip.path.suffix.lower()}"
        out[files.voice_id(s.speaker)] = {"audio": audio, "text": m.text, "language": language}
    return out


def _cuts(s: SpeakerSet, language: str) -> list[Cut]:
    out = []
    for split, clips in zip(SPLITS, (s.train, s.valid), strict=True):
        for clip in clips:
            recording = clip.recording
            supervision = SupervisionSegment(
                id=clip.clip.clip_id,
                recording_id=recording.id,
                start=0.0,
                duration=recording.duration,
                channel=recording.channel_ids[0]
                if recording.num_channels == 1
                else recording.channel_ids,
                text=clip.text,
                language=language,
                speaker=s.speaker,
            )
            cut = recording.to_cut()
            out.append(fastcopy(cut, supervisions=[supervision], custom={"split": split}))
    return out


def _write_manifests(cuts: Sequence[Cut], output_dir: Path) -> Path:
    """Recordings and supervisions per split, and all cuts; the cuts' path."""
    for split in SPLITS:
        chosen = [c for c in cuts if c.custom["split"] == split]
        files.write_manifest(
            RecordingSet.from_recordings(c.recording for c in chosen),
            output_dir / f"{CORPUS}_recordings_{split}.jsonl.gz",
        )
        files.write_manifest(
            SupervisionSet.from_segments(s for c in chosen for s in c.supervisions),
            output_dir / f"{CORPUS}_supervisions_{split}.jsonl.gz",
        )
    return files.write_manifest(CutSet.from_cuts(cuts), output_dir / f"{CORPUS}_cuts_all.jsonl.gz")


def _write_report(
    sets: Sequence[SpeakerSet], excluded: Sequence[Excluded], report_dir: Path
) -> None:
    """The per-speaker report (markdown + PNG), when the report writer is available; speakers
    none of whose clips was kept are listed too."""
    try:
        from lhotse_triplets.recipes.speakers.report import write_speaker_report
    except ImportError as e:
        logger.warning("Speaker report not written (%s)", e)
        return
    entries = [s.report_entry() for s in sets]
    kept = {s.speaker for s in sets}
    for speaker, counts in excluded_counts(excluded).items():
        if speaker not in kept:
            entries.append(
                {
                    "speaker": speaker,
                    "durations": [],
                    "train": 0,
                    "valid": 0,
                    "excluded": dict(counts),
                    "medoid": None,
                    "embeddings": None,
                }
            )
    if entries:
        logger.info("Speaker report: %s", write_speaker_report(entries, report_dir))
