"""Resemblyzer: the GE2E speaker encoder (a 3-layer LSTM over 40 mel bands, 256-d embeddings)
whose weights (``pretrained.pt``, 17 MB) ship in the ``resemblyzer`` wheel, so it runs offline.

Install: ``pip install 'lhotse-triplets[speaker]'`` then ``pip install --no-deps resemblyzer``
(its declared dependencies are the ``webrtcvad`` sdist, which needs a C compiler and whose module
``webrtcvad-wheels`` provides, and the obsolete ``typing`` backport); ``scripts/setup.sh`` does
both.

Each clip goes through Resemblyzer's own ``preprocess_wav`` (volume raised to -30 dBFS, silences
longer than ~0.2 s cut with the WebRTC voice activity detector), is cut into 1.6 s windows
(``embed_utterance``: 1.3 windows per second, the last zero-padded) and its embedding is the
normalised mean of its windows' embeddings. Windows of all clips in a call share forward passes,
which gives the same embeddings as ``VoiceEncoder.embed_utterance`` clip by clip, faster.
"""

import contextlib
import importlib.util
import io
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from lhotse_triplets.backends._threads import torch_device
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.backends.speaker._clips import check_rows, checked_clips
from lhotse_triplets.errors import ItemError
from lhotse_triplets.metrics import unit_rows

INSTALL = "pip install 'lhotse-triplets[speaker]' && pip install --no-deps resemblyzer==0.1.4"

#: ``embed_utterance``'s defaults: windows per second, and the share of a window the last one
#: must cover to be kept.
_RATE, _MIN_COVERAGE = 1.3, 0.75


@register("speaker", "resemblyzer")
class ResemblyzerSpeaker(PicklesByOptions):
    """Speaker embeddings of 16 kHz mono clips with Resemblyzer's packaged GE2E encoder:
    ``(N, 256)`` float32, L2-normalised.

    :param device: ``"cpu"`` (default), ``"cuda"`` or ``"auto"``.
    :param batch_size: 1.6 s windows per forward pass.
    :param threads: torch intra-op threads on CPU (process-wide); default (``None``): this
        worker's limit (``engine.threads_per_worker``), or every usable CPU outside an executor.
    :param trim_silences: cut long silences with the voice activity detector (Resemblyzer's
        ``preprocess_wav``); a clip in which it finds no speech raises ``no_speech``.
    :param min_seconds: shorter clips raise ``too_short`` (the encoder sees 1.6 s windows).

    Example::

        speaker = build("speaker", "resemblyzer")
        vectors = speaker.embed([clip_a_16k, clip_b_16k])   # (2, 256)
        similarity = float(vectors[0] @ vectors[1])
    """

    requires: ClassVar[list[tuple[str, str]]] = [
        ("torch", "torch"),
        ("librosa", "librosa"),
        ("webrtcvad", "webrtcvad-wheels"),
    ]
    sampling_rate = 16000
    dimension = 256

    def __init__(
        self,
        device: str = "cpu",
        batch_size: int = 64,
        threads: int | None = None,
        trim_silences: bool = True,
        min_seconds: float = 0.5,
    ) -> None:
        self._options = {
            "device": device,
            "batch_size": batch_size,
            "threads": threads,
            "trim_silences": trim_silences,
            "min_seconds": min_seconds,
        }
        if importlib.util.find_spec("resemblyzer") is None:
            raise ImportError(f"ResemblyzerSpeaker (resemblyzer) needs resemblyzer: {INSTALL}")
        from resemblyzer import VoiceEncoder

        self.device = torch_device(device, threads)
        self.batch_size = max(1, int(batch_size))
        self.trim_silences = trim_silences
        self.min_seconds = min_seconds
        with contextlib.redirect_stdout(io.StringIO()):
            self._encoder = VoiceEncoder(device=self.device, verbose=False).eval()

    def _windows(self, index: int, clip: np.ndarray) -> np.ndarray:
        """The mel windows of one clip, as ``embed_utterance`` cuts them."""
        from resemblyzer import audio, hparams, preprocess_wav

        clip = np.clip(clip, -1.0, 1.0)
        if self.trim_silences:
            wav = preprocess_wav(clip, source_sr=self.sampling_rate)
        else:
            wav = audio.normalize_volume(clip, hparams.audio_norm_target_dBFS, increase_only=True)
        if wav.size < self.sampling_rate * 0.1:
            raise ItemError(
                f"no_speech: clip {index}: the voice activity detector kept "
                f"{wav.size / self.sampling_rate:.2f} s of {clip.size / self.sampling_rate:.2f} s"
            )
        wav_slices, mel_slices = self._encoder.compute_partial_slices(
            len(wav), _RATE, _MIN_COVERAGE
        )
        if wav_slices[-1].stop >= len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
        mel = audio.wav_to_mel_spectrogram(wav)
        return np.stack([mel[s] for s in mel_slices])

    def embed(self, audios: Sequence[np.ndarray]) -> np.ndarray:
        """One L2-normalised 256-d row per clip (16 kHz mono float32).

        :raises ItemError: naming the first clip that is too short, silent, not finite or has
            no speech (``too_short``, ``silent``, ``non_finite_audio``, ``no_speech``).
        """
        import torch

        clips = checked_clips(
            audios,
            sampling_rate=self.sampling_rate,
            min_seconds=self.min_seconds,
            engine="resemblyzer",
        )
        if not clips:
            return np.zeros((0, self.dimension), dtype=np.float32)
        windows = [self._windows(index, clip) for index, clip in enumerate(clips)]
        owners = np.repeat(np.arange(len(clips)), [len(w) for w in windows])
        windows = np.concatenate(windows)
        partials = []
        with torch.inference_mode():
            for start in range(0, len(windows), self.batch_size):
                batch = torch.from_numpy(windows[start : start + self.batch_size])
                partials.append(self._encoder(batch.to(self.device)).float().cpu().numpy())
        sums = np.zeros((len(clips), self.dimension), dtype=np.float64)
        np.add.at(sums, owners, np.nan_to_num(np.concatenate(partials)))
        check_rows(sums, "resemblyzer")
        return unit_rows(sums)
