"""Score stage: ASR transcript, similarity to the prompt, WER/CER and MOS as custom fields.

Each backend must give one output per input (else ``asr_output_count``, ``embed_output_count``,
``mos_output_count``, after the batch is retried item by item) and every score must be a finite
number (else the clip fails with ``non_finite_score: mos=nan``): no ``NaN`` is ever written.
"""

import math
from pathlib import Path
from typing import Any

from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.audio import load_cut_audio
from lhotse_triplets.backends.registry import BackendSpec
from lhotse_triplets.config import ScoreConfig
from lhotse_triplets.cuts import with_custom
from lhotse_triplets.errors import ItemError
from lhotse_triplets.metrics import cosine, error_rate, non_finite, uses_cer
from lhotse_triplets.transforms.base import Output, Stage, one_each


class Score(Stage):
    """Score each spoken prompt; any of the three backends may be ``None`` (skipped).

    Sets ``asr_text``, ``wer``, ``cer``, ``error_rate`` (CER for ja/zh, WER otherwise),
    ``similarity`` (cosine of prompt and transcript embeddings) and ``mos``.

    Example::

        score = Score(asr=BackendSpec("asr", "faster_whisper"),
                      embed=BackendSpec("embed", "use_multilingual"),
                      mos=BackendSpec("mos", "distillmos"))
        scored = score.apply(spoken_cuts)
    """

    name = "score"
    summary = "ASR transcript, similarity, WER/CER and MOS of each clip, as custom fields."

    def __init__(
        self,
        asr: BackendSpec | None = None,
        embed: BackendSpec | None = None,
        mos: BackendSpec | None = None,
        batch_size: int = ScoreConfig.batch_size,
    ) -> None:
        super().__init__()
        if embed is not None and asr is None:
            raise ValueError("Similarity needs a transcript: set an asr backend with embed")
        self.asr, self.embed, self.mos = asr, embed, mos
        self.batch_size = batch_size

    @classmethod
    def from_config(
        cls, cfg: Any, run_dir: str | Path | None = None, stage_dir: str | Path | None = None
    ) -> "Score":
        """The scorer of ``cfg.score`` (a :class:`~lhotse_triplets.config.ScoreConfig`)."""
        q = cfg.score
        return cls(
            asr=q.asr.spec("asr") if q.asr else None,
            embed=q.embed.spec("embed") if q.embed else None,
            mos=q.mos.spec("mos") if q.mos else None,
            batch_size=q.batch_size,
        )

    def setup(self) -> None:
        for key, spec in (("asr", self.asr), ("embed", self.embed), ("mos", self.mos)):
            if spec is not None:
                self.backend(key, spec)

    def process_batch(self, cuts: list[Cut]) -> list[Output]:
        updates: list[dict[str, Any]] = [{} for _ in cuts]
        audios: dict[int, list] = {}
        if self.asr is not None:
            hyps = self._transcribe(cuts, updates, audios)
            if self.embed is not None:
                self._similarity(cuts, hyps, updates)
        if self.mos is not None:
            mos = self.backend("mos", self.mos)
            batch = audios.get(mos.sampling_rate) or [
                load_cut_audio(c, mos.sampling_rate) for c in cuts
            ]
            values = one_each(mos.predict(batch), len(cuts), "mos", self.mos.name, "scores")
            for upd, value in zip(updates, values, strict=True):
                upd[fields.MOS] = _rounded(value)
        out: list[Output] = []
        for cut, upd in zip(cuts, updates, strict=True):
            bad = non_finite({k: v for k, v in upd.items() if k != fields.ASR_TEXT})
            if bad is not None:
                out.append(self.failure(cut, f"non_finite_score: {bad}"))
            else:
                out.append(with_custom(cut, **upd))
        return out

    def _transcribe(self, cuts: list[Cut], updates: list[dict], audios: dict) -> list[str]:
        asr = self.backend("asr", self.asr)
        audios[asr.sampling_rate] = [load_cut_audio(c, asr.sampling_rate) for c in cuts]
        hyps = one_each(
            asr.transcribe(
                audios[asr.sampling_rate], languages=[c.supervisions[0].language for c in cuts]
            ),
            len(cuts),
            "asr",
            self.asr.name,
            "transcripts",
        )
        for cut, hyp, upd in zip(cuts, hyps, updates, strict=True):
            if not isinstance(hyp, str):
                raise ItemError(
                    f"asr_output_type: {self.asr.name} returned a {type(hyp).__name__}, not text"
                )
            language = cut.supervisions[0].language
            wer, cer = error_rate(cut.supervisions[0].text, hyp, language)
            upd.update(
                {
                    fields.ASR_TEXT: hyp,
                    fields.WER: _rounded(wer),
                    fields.CER: _rounded(cer),
                    fields.ERROR_RATE: _rounded(cer if uses_cer(language) else wer),
                }
            )
        return hyps

    def _similarity(self, cuts: list[Cut], hyps: list[str], updates: list[dict]) -> None:
        embedder = self.backend("embed", self.embed)
        n, name = len(cuts), self.embed.name
        refs = one_each(
            embedder.encode([c.supervisions[0].text for c in cuts]), n, "embed", name, "vectors"
        )
        hyp_vecs = one_each(
            embedder.encode([h if h.strip() else " " for h in hyps]), n, "embed", name, "vectors"
        )
        for upd, ref, hyp_vec, hyp in zip(updates, refs, hyp_vecs, hyps, strict=True):
            sim = cosine(ref, hyp_vec) if hyp.strip() else 0.0
            upd[fields.SIMILARITY] = _rounded(sim)


def _rounded(value: Any) -> Any:
    """A score rounded to 4 decimals; a value that is not a finite number stays as it is (the
    cut then fails with ``non_finite_score``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return round(number, 4) if math.isfinite(number) else number
