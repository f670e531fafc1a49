"""The checks every clip of a speaker set passes before it is kept; a failing clip is excluded
with a reason (``"<code>: <detail>"``), never silently.

- ``missing_audio``: no file at the path;
- ``unreadable_audio``: soundfile (or Lhotse) cannot read it, or it holds NaN/infinite samples;
- ``empty_transcript``: no transcript (and none filled in by ASR with ``transcribe``);
- ``too_short`` / ``too_long``: shorter than ``min_duration`` / longer than ``max_duration``
  seconds (index-tts-lora's training drops clips outside 1..20 s);
- ``silent``: RMS below :data:`SILENT_RMS` (-60 dBFS);
- ``clipped``: at least :data:`CLIPPED_FRACTION` of the samples (and :data:`CLIPPED_MIN_SAMPLES`)
  at full scale (``|x| >=`` :data:`CLIP_LEVEL`);
- ``transcript_mismatch`` (with an ASR backend): the ASR transcript's error rate against the
  listed one (WER; CER for languages written without spaces) above ``max_error_rate``.

Example::

    audio = load_clip(clip, min_duration=1.0, max_duration=20.0)  # ItemError("too_short: ...")
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import Recording

from lhotse_triplets.audio import to_mono_float32
from lhotse_triplets.errors import ItemError
from lhotse_triplets.metrics import error_rate

#: Absolute sample value that counts as full scale.
CLIP_LEVEL = 0.999
#: Share of full-scale samples from which a clip counts as clipped...
CLIPPED_FRACTION = 0.0005
#: ...and the fewest full-scale samples that do (one peak-normalised sample is no clipping).
CLIPPED_MIN_SAMPLES = 3
#: RMS under which a clip counts as silent (-60 dBFS).
SILENT_RMS = 1e-3


@dataclass
class LoadedClip:
    """A clip's audio (mono float32) and its Lhotse recording."""

    audio: np.ndarray
    sampling_rate: int
    recording: Recording

    @property
    def duration(self) -> float:
        return self.audio.size / self.sampling_rate


def load_clip(
    path: Path, recording_id: str, *, min_duration: float, max_duration: float
) -> LoadedClip:
    """Read ``path`` and check it: readable, of an allowed duration, not silent, not clipped.

    :raises ItemError: ``missing_audio``, ``unreadable_audio``, ``too_short``, ``too_long``,
        ``silent`` or ``clipped``.
    """
    if not path.is_file():
        raise ItemError(f"missing_audio: no file at {str(path)!r}")
    try:
        info = sf.info(str(path))
        duration = info.frames / info.samplerate
    except Exception as e:  # noqa: BLE001 - any decoder error means the same to the user
        raise ItemError(f"unreadable_audio: {path.name}: {_one_line(e)}") from None
    check_duration(duration, min_duration, max_duration)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        recording = Recording.from_file(path, recording_id=recording_id)
    except Exception as e:  # noqa: BLE001
        raise ItemError(f"unreadable_audio: {path.name}: {_one_line(e)}") from None
    audio = to_mono_float32(data.T)
    if not np.isfinite(audio).all():
        bad = int((~np.isfinite(audio)).sum())
        raise ItemError(f"unreadable_audio: {path.name} has {bad} NaN or infinite samples")
    check_level(audio, data)
    return LoadedClip(audio, int(rate), recording)


def check_duration(duration: float, min_duration: float, max_duration: float) -> None:
    """``too_short`` / ``too_long`` when ``duration`` (s) lies outside the allowed range."""
    if duration < min_duration:
        raise ItemError(f"too_short: {duration:.2f} s < {min_duration:g} s")
    if duration > max_duration:
        raise ItemError(f"too_long: {duration:.2f} s > {max_duration:g} s")


def check_level(audio: np.ndarray, channels: np.ndarray | None = None) -> None:
    """``silent`` when the RMS of ``audio`` is under :data:`SILENT_RMS`; ``clipped`` when too
    many samples (of any channel of ``channels``, default ``audio``) sit at full scale."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    if rms < SILENT_RMS:
        raise ItemError(f"silent: RMS {20 * np.log10(max(rms, 1e-12)):.0f} dBFS < -60 dBFS")
    samples = audio if channels is None else channels
    full = int(np.count_nonzero(np.abs(samples) >= CLIP_LEVEL))
    if full >= max(CLIPPED_MIN_SAMPLES, CLIPPED_FRACTION * samples.size):
        share = 100 * full / samples.size
        raise ItemError(f"clipped: {full} samples ({share:.2f}%) at full scale")


def check_transcript(text: str) -> None:
    """``empty_transcript`` when ``text`` has nothing but white space."""
    if not text.strip():
        raise ItemError("empty_transcript: the clip has no transcript")


def transcript_mismatch(
    text: str, heard: str, language: str, max_error_rate: float
) -> ItemError | None:
    """``transcript_mismatch`` when ASR heard something too far from ``text``, else ``None``."""
    rate, _ = error_rate(text, heard, language)
    if rate <= max_error_rate:
        return None
    return ItemError(
        f"transcript_mismatch: error rate {rate:.2f} > {max_error_rate:g} "
        f"(ASR heard {heard[:80]!r})"
    )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200] or type(error).__name__
