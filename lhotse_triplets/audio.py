"""Small audio helpers: resampling, encoding (soundfile + soxr; no torchaudio), and the audio
contract every TTS backend's output is checked against before it is kept.

Every problem with one clip is an :class:`~lhotse_triplets.errors.ItemError` whose reason starts
with a code (``"<code>: <detail>"``), so the item is recorded in ``failed.jsonl`` and the run goes
on:

- ``audio_shape``: not a 1-D (mono) waveform (e.g. stereo ``(2, N)``);
- ``audio_dtype``: not floating point (int16 PCM would be clipped to -1/0/1, never rescaled);
- ``non_finite_audio``: NaN or infinite samples;
- ``no_audio``: empty, or shorter than :data:`MIN_SECONDS`;
- ``silent_audio``: peak amplitude below :data:`SILENT_PEAK`;
- ``bad_sampling_rate``: a sampling rate that is not a positive integer;
- ``audio_format`` / ``audio_write``: a format soundfile cannot write, a file that cannot be
  written (permissions, full disk).

Example::

    audio = check_waveform(tts_output, "TTS kokoro")   # ItemError("non_finite_audio: ...")
    rec = make_recording(audio, 24000, "clip-1", "out/audio/en/af/clip-1.flac")
"""

import contextlib
import io
import numbers
from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import Recording

from lhotse_triplets.errors import ItemError

#: Peak amplitude under which a clip counts as silent.
SILENT_PEAK = 1e-3
#: Shortest clip kept, in seconds.
MIN_SECONDS = 0.05


def to_mono_float32(audio: np.ndarray) -> np.ndarray:
    """A 1-D float32 array from a mono/multi-channel waveform (channels averaged)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=0) if audio.shape[0] < audio.shape[1] else audio.mean(axis=1)
    return np.ascontiguousarray(audio.reshape(-1))


def check_sampling_rate(rate: object, what: str = "audio") -> int:
    """``rate`` as an ``int``; ``ItemError("bad_sampling_rate: ...")`` unless a positive integer.

    Example::

        >>> check_sampling_rate(16000)
        16000
        >>> check_sampling_rate(0, "TTS x")
        Traceback (most recent call last):
        ItemError: bad_sampling_rate: TTS x declares a sampling rate of 0
    """
    if isinstance(rate, bool) or not isinstance(rate, numbers.Integral) or int(rate) <= 0:
        raise ItemError(f"bad_sampling_rate: {what} declares a sampling rate of {rate!r}")
    return int(rate)


def check_waveform(audio: object, what: str = "audio", min_peak: float = SILENT_PEAK) -> np.ndarray:
    """``audio`` as a contiguous 1-D float32 array, after checking the audio contract: 1-D,
    floating point, every sample finite, not empty, not silent (see the module's reason codes).

    :param what: who produced it, for the reason (``"TTS kokoro"``).
    :param min_peak: peak amplitude under which the clip is ``silent_audio`` (0: allow silence).
    """
    array = np.asarray(audio)
    if array.ndim != 1:
        raise ItemError(f"audio_shape: {what} returned shape {array.shape}; expected 1-D mono")
    if not np.issubdtype(array.dtype, np.floating):
        raise ItemError(
            f"audio_dtype: {what} returned {array.dtype} samples; expected float in [-1, 1]"
        )
    if array.size == 0:
        raise ItemError(f"no_audio: {what} returned an empty waveform")
    finite = np.isfinite(array)
    if not finite.all():
        nan = int(np.isnan(array).sum())
        inf = array.size - nan - int(finite.sum())
        raise ItemError(
            f"non_finite_audio: {what} returned {nan} NaN and {inf} infinite samples "
            f"of {array.size}"
        )
    peak = float(np.max(np.abs(array)))
    if peak < min_peak:
        raise ItemError(f"silent_audio: {what} returned silence (peak {peak:.2g} < {min_peak})")
    return np.ascontiguousarray(array, dtype=np.float32)


def check_duration(audio: np.ndarray, sampling_rate: int, what: str = "audio") -> np.ndarray:
    """``audio``, or ``ItemError("no_audio: ...")`` when shorter than :data:`MIN_SECONDS`."""
    if audio.size < sampling_rate * MIN_SECONDS:
        raise ItemError(
            f"no_audio: {what} returned {audio.size / sampling_rate:.3f} s of audio "
            f"(< {MIN_SECONDS} s)"
        )
    return audio


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample a waveform to 1-D float32 (soxr, high quality; channels averaged).

    :raises ItemError: ``bad_sampling_rate`` when a rate is not a positive integer.
    """
    source_rate = check_sampling_rate(source_rate, "the source audio")
    target_rate = check_sampling_rate(target_rate, "the target")
    audio = to_mono_float32(audio)
    if source_rate == target_rate or audio.size == 0:
        return audio
    import soxr

    return soxr.resample(audio, source_rate, target_rate).astype(np.float32)


def encode(audio: np.ndarray, sampling_rate: int, audio_format: str = "flac") -> bytes:
    """Encode a float waveform (clipped to [-1, 1]) as FLAC/WAV bytes, 16-bit PCM.

    :raises ItemError: ``audio_format`` when soundfile cannot write ``audio_format``.
    """
    buf = io.BytesIO()
    try:
        sf.write(
            buf,
            np.clip(audio, -1.0, 1.0),
            sampling_rate,
            format=audio_format.upper(),
            subtype="PCM_16",
        )
    except (TypeError, ValueError, sf.LibsndfileError) as e:
        raise ItemError(f"audio_format: cannot encode {audio_format!r} audio: {e}") from None
    return buf.getvalue()


def make_recording(
    audio: np.ndarray,
    sampling_rate: int,
    recording_id: str,
    path: str | Path | None = None,
    audio_format: str = "flac",
) -> Recording:
    """A Recording of ``audio``: written to ``path`` when given, else kept in memory.

    The file is written to a hidden temporary name and renamed into place (never half-written).

    :raises ItemError: the audio contract (:func:`check_waveform`, silence allowed;
        :func:`check_sampling_rate`), ``audio_format``, or ``audio_write`` when the file cannot
        be written.
    """
    what = f"recording {recording_id}"
    sampling_rate = check_sampling_rate(sampling_rate, what)
    data = encode(check_waveform(audio, what, min_peak=0.0), sampling_rate, audio_format)
    if path is None:
        return Recording.from_bytes(data, recording_id)
    path = Path(path)
    tmp = path.with_name(f".tmp.{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ItemError(f"audio_write: cannot write {path}: {e.strerror or e}") from None
    return Recording.from_file(path, recording_id=recording_id)


def load_cut_audio(cut, sampling_rate: int) -> np.ndarray:
    """The cut's audio as 1-D float32 at ``sampling_rate``."""
    return resample(cut.load_audio(), cut.sampling_rate, sampling_rate)
