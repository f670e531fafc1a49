"""Synthesize stage: speak each language cut with N voices of the language's TTS engine."""

import time
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.audio import make_recording, resample
from lhotse_triplets.backends.registry import BackendSpec
from lhotse_triplets.config import SynthesizeConfig
from lhotse_triplets.cuts import with_audio
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.transforms.base import Output, Stage

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

    :param tts: language -> TTS backend spec; the key ``"default"`` serves other languages.
    :param voices_per_prompt: voices per prompt (deterministic choice, see :func:`pick_voices`).
    :param voices: optional language -> voice list (default: the backend's own voices).
    :param sampling_rate: output rate; audio is resampled to it.
    :param audio_dir: where audio files go (``<lang>/<voice>/<id>.flac``); ``None`` keeps the
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
                f"no TTS engine configured for language {language!r} "
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
                voices = self.pick(cut, language)
            except ItemError as e:
                out.append(self.failure(cut, e))
                continue
            if not voices:
                out.append(self.failure(cut, f"TTS engine has no voice for {language!r}"))
            for voice in voices:
                jobs[(language, voice)].append(cut)
        for (language, voice), group in jobs.items():
            out.extend(self._speak(group, language, voice))
        return out

    def _speak(self, cuts: list[Cut], language: str, voice: str) -> list[Output]:
        spec, tts = self.engine(language)
        start = time.perf_counter()
        try:
            audios = tts.synthesize(
                [c.supervisions[0].text for c in cuts], language=language, voice=voice
            )
        except (ImportError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:
            if len(cuts) == 1:
                return [self.failure(f"{cuts[0].id}-{voice}", e)]
            return [o for c in cuts for o in self._speak([c], language, voice)]
        seconds = (time.perf_counter() - start) / max(1, len(cuts))
        out: list[Output] = []
        for cut, audio in zip(cuts, audios):
            new_id = f"{cut.id}-{voice}"
            audio = resample(audio, tts.sampling_rate, self.sampling_rate)
            if audio.size < self.sampling_rate * 0.05:
                out.append(Failure(new_id, self.name, f"TTS {spec.name} returned no audio"))
                continue
            path = None
            if self.audio_dir is not None:
                path = Path(self.audio_dir) / language / voice / f"{new_id}.{self.audio_format}"
            rec = make_recording(audio, self.sampling_rate, new_id, path, self.audio_format)
            out.append(
                with_audio(
                    cut,
                    voice,
                    rec,
                    **{fields.TTS_MODEL: spec.name, fields.SYNTHESIS_SECONDS: round(seconds, 4)},
                )
            )
        return out
