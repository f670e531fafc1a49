"""Small audio helpers: resampling and encoding (soundfile + soxr; no torchaudio)."""

import io
from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import Recording


def to_mono_float32(audio: np.ndarray) -> np.ndarray:
    """A 1-D float32 array from a mono/multi-channel waveform (channels averaged)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=0) if audio.shape[0] < audio.shape[1] else audio.mean(axis=1)
    return np.ascontiguousarray(audio.reshape(-1))


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample a 1-D waveform (soxr, high quality)."""
    audio = to_mono_float32(audio)
    if source_rate == target_rate or audio.size == 0:
        return audio
    import soxr

    return soxr.resample(audio, source_rate, target_rate).astype(np.float32)


def encode(audio: np.ndarray, sampling_rate: int, audio_format: str = "flac") -> bytes:
    """Encode a float waveform (clipped to [-1, 1]) as FLAC/WAV bytes, 16-bit PCM."""
    buf = io.BytesIO()
    sf.write(
        buf, np.clip(audio, -1.0, 1.0), sampling_rate, format=audio_format.upper(), subtype="PCM_16"
    )
    return buf.getvalue()


def make_recording(
    audio: np.ndarray,
    sampling_rate: int,
    recording_id: str,
    path: str | Path | None = None,
    audio_format: str = "flac",
) -> Recording:
    """A Recording of ``audio``: written to ``path`` when given, else kept in memory."""
    data = encode(audio, sampling_rate, audio_format)
    if path is None:
        return Recording.from_bytes(data, recording_id)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp.{path.name}")
    tmp.write_bytes(data)
    tmp.replace(path)
    return Recording.from_file(path, recording_id=recording_id)


def load_cut_audio(cut, sampling_rate: int) -> np.ndarray:
    """The cut's audio as 1-D float32 at ``sampling_rate``."""
    return resample(cut.load_audio(), cut.sampling_rate, sampling_rate)
