"""Synthesize stage: speak each language cut with N voices of the language's TTS engine."""

import time
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lhotse import Recording
from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.audio import (
    check_duration,
    check_sampling_rate,
    check_waveform,
    make_recording,
    resample,
)
from lhotse_triplets.backends.registry import BackendSpec
from lhotse_triplets.config import SynthesizeConfig
from lhotse_triplets.cuts import with_audio
from lhotse_triplets.errors import ItemError
from lhotse_triplets.paths import inside, safe_name
from lhotse_triplets.text import unspeakable_reason
from lhotse_triplets.transforms.base import Output, Stage, one_each

DEFAULT = "default"


def pick_voices(cut_id: str, voices: Sequence[str], n: int) -> list[str]:
    """``n`` voices for a cut, chosen deterministically (a rotation keyed by the cut id)."""
    if not voices:
        return []
    if n >= len(voices):
        return list(voices)
    start = zlib.crc32(cut_id.encode("utf-8")) % len(voices)
    return [voices[(start + k) % len(voices)] for k in range(n)]


class Synthesize(Stage):
    """One cut per voice (id ``{cut.id}-{voice}``) with the spoken prompt as its recording.

    A text that cannot be spoken (:func:`~lhotse_triplets.text.unspeakable_reason`:
    ``control_characters``, ``no_speakable_text``, ``wrong_script``) fails before any TTS call.
    Every TTS call is checked against the backend contract: one output per text (else the texts
    are spoken one by one and a text that still gets none or several fails with
    ``tts_output_count``), and each output a finite, non-silent, 1-D float waveform at the
    backend's declared positive ``sampling_rate`` (``audio_shape``, ``audio_dtype``,
    ``non_finite_audio``, ``silent_audio``, ``no_audio``, ``bad_sampling_rate``; see
    :mod:`lhotse_triplets.audio`). A clip is never matched with another text's audio.

    :param tts: language -> TTS backend spec; the key ``"default"`` serves other languages.
    :param voices_per_prompt: voices per prompt (deterministic choice, see :func:`pick_voices`).
    :param voices: optional language -> voice list (default: the backend's own voices).
    :param sampling_rate: output rate; audio is resampled to it.
    :param audio_dir: where audio files go (``<lang>/<voice>/<id>.flac``, each part a safe file
        name, see :meth:`audio_path`); ``None`` keeps the
        audio in memory (fine for small in-process runs, not for manifests on disk).
    :param selection: a ``selection.yaml`` from ``lhotse-triplets bench select``: for each
        language it lists, its engine (with options) and voices replace ``tts`` and ``voices``.

    Example::

        synth = Synthesize({"default": BackendSpec("tts", "espeak")}, voices_per_prompt=2,
                           audio_dir="audio")
        spoken = synth.apply(language_cuts)
    """

    name = "synthesize"
    summary = "Speak each language cut with N voices (one cut per voice, audio under OUT/audio)."

    def __init__(
        self,
        tts: Mapping[str, BackendSpec] | None,
        voices_per_prompt: int = SynthesizeConfig.voices_per_prompt,
        voices: Mapping[str, Sequence[str]] | None = None,
        sampling_rate: int = SynthesizeConfig.sampling_rate,
        audio_dir: str | Path | None = None,
        audio_format: str = SynthesizeConfig.audio_format,
        batch_size: int = SynthesizeConfig.batch_size,
        selection: str | Path | None = SynthesizeConfig.selection,
    ) -> None:
        super().__init__()
        self.tts = dict(tts or {})
        self.voices_per_prompt = voices_per_prompt
        self.voices = {k: list(v) for k, v in (voices or {}).items()}
        if selection is not None:
            from lhotse_triplets.selection import read_selection

            for language, choice in read_selection(selection).items():
                self.tts[language] = BackendSpec("tts", choice.engine, dict(choice.options))
                self.voices[language] = list(choice.voices)
        if not self.tts:
            raise ValueError("Synthesize needs at least one TTS backend (e.g. {'default': ...})")
        self.sampling_rate = sampling_rate
        # Absolute, so that manifests can be read from any working directory.
        self.audio_dir = str(Path(audio_dir).resolve()) if audio_dir is not None else None
        self.audio_format = audio_format
        self.batch_size = batch_size

    @classmethod
    def from_config(
        cls, cfg: Any, run_dir: str | Path | None = None, stage_dir: str | Path | None = None
    ) -> "Synthesize":
        """The synthesizer of ``cfg.synthesize``; audio goes to ``run_dir/audio`` (in memory
        without ``run_dir``)."""
        s = cfg.synthesize
        return cls(
            {lang: b.spec("tts") for lang, b in s.tts.items()},
            voices_per_prompt=s.voices_per_prompt,
            voices=s.voices,
            sampling_rate=s.sampling_rate,
            audio_dir=Path(run_dir) / "audio" if run_dir is not None else None,
            audio_format=s.audio_format,
            batch_size=s.batch_size,
            selection=s.selection,
        )

    def spec_for(self, language: str) -> BackendSpec:
        spec = self.tts.get(language, self.tts.get(DEFAULT))
        if spec is None:
            raise ItemError(
                f"no_tts_engine: no TTS engine configured for language {language!r} "
                f"(configured: {', '.join(sorted(self.tts))})"
            )
        return spec

    def _build(self, spec: BackendSpec):
        # Languages that name the same engine and options share one instance.
        return self.backend(f"tts:{spec.name}:{sorted(spec.options.items())}", spec)

    def engine(self, language: str):
        spec = self.spec_for(language)
        return spec, self._build(spec)

    def setup(self) -> None:
        for spec in self.tts.values():
            self._build(spec)

    def voices_for(self, language: str) -> list[str]:
        spec, tts = self.engine(language)
        available = tts.voices(language)
        wanted = self.voices.get(language)
        if wanted:
            unknown = [v for v in wanted if v not in available]
            if unknown:
                raise ValueError(
                    f"Voices {unknown} are not offered by TTS engine {spec.name!r} for "
                    f"{language!r}; available: {', '.join(available)}"
                )
            return list(wanted)
        return available

    def pick(self, cut: Cut, language: str) -> list[str]:
        """The voices that speak ``cut`` (default: :func:`pick_voices` over the language's)."""
        return pick_voices(cut.id, self.voices_for(language), self.voices_per_prompt)

    def process_batch(self, cuts: list[Cut]) -> list[Output]:
        out: list[Output] = []
        jobs: dict[tuple, list[Cut]] = defaultdict(list)
        for cut in cuts:
            language = cut.supervisions[0].language
            try:
                unspeakable = unspeakable_reason(cut.supervisions[0].text or "", language)
                if unspeakable is not None:
                    raise ItemError(unspeakable)
                voices = self.pick(cut, language)
            except ItemError as e:
                out.append(self.failure(cut, e))
                continue
            if not voices:
                out.append(self.failure(cut, f"no_voice: TTS engine has no voice for {language!r}"))
            for voice in voices:
                jobs[(language, voice)].append(cut)
        for (language, voice), group in jobs.items():
            out.extend(self._speak(group, language, voice))
        return out

    def audio_path(self, cut_id: str, language: str, voice: str) -> Path | None:
        """Where the clip ``cut_id`` goes: ``audio_dir/<lang>/<voice>/<id>.<format>``, each part
        made a safe file name (:func:`~lhotse_triplets.paths.safe_name`) and the whole checked to
        lie inside ``audio_dir`` (``None`` when audio stays in memory)."""
        if self.audio_dir is None:
            return None
        name = f"{safe_name(cut_id)}.{safe_name(self.audio_format)}"
        path = Path(self.audio_dir) / safe_name(language) / safe_name(voice) / name
        return inside(path, self.audio_dir, what="audio file")

    def _speak(self, cuts: list[Cut], language: str, voice: str) -> list[Output]:
        """One spoken cut (or failure) per cut and this voice; a call that breaks the backend's
        contract (an exception, a wrong number of outputs) is retried text by text."""
        spec, tts = self.engine(language)
        start = time.perf_counter()
        try:
            texts = [c.supervisions[0].text for c in cuts]
            audios = tts.synthesize(texts, language=language, voice=voice)
            audios = one_each(audios, len(cuts), "tts", spec.name, "audio")
        except (ImportError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:
            if len(cuts) == 1:
                return [self.failure(f"{cuts[0].id}-{voice}", e)]
            return [o for c in cuts for o in self._speak([c], language, voice)]
        seconds = (time.perf_counter() - start) / max(1, len(cuts))
        out: list[Output] = []
        for cut, audio in zip(cuts, audios, strict=True):
            new_id = f"{cut.id}-{voice}"
            try:
                rec = self._recording(audio, tts, spec.name, new_id, language, voice)
            except ItemError as e:
                out.append(self.failure(new_id, e))
                continue
            extra = {fields.TTS_MODEL: spec.name, fields.SYNTHESIS_SECONDS: round(seconds, 4)}
            out.append(with_audio(cut, voice, rec, **extra))
        return out

    def _recording(
        self, audio: Any, tts: Any, engine: str, new_id: str, language: str, voice: str
    ) -> Recording:
        """The clip of one TTS output, after checking the audio contract
        (:func:`~lhotse_triplets.audio.check_waveform`) and the declared sampling rate."""
        what = f"TTS {engine}"
        rate = check_sampling_rate(getattr(tts, "sampling_rate", None), what)
        audio = resample(check_waveform(audio, what), rate, self.sampling_rate)
        audio = check_duration(audio, self.sampling_rate, what)
        path = self.audio_path(new_id, language, voice)
        return make_recording(audio, self.sampling_rate, new_id, path, self.audio_format)
