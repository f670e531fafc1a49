"""Score stage: ASR transcript, similarity to the prompt, WER/CER and MOS as custom fields."""

from pathlib import Path
from typing import Any

from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.audio import load_cut_audio
from lhotse_triplets.backends.registry import BackendSpec
from lhotse_triplets.config import ScoreConfig
from lhotse_triplets.cuts import with_custom
from lhotse_triplets.metrics import cosine, error_rate, uses_cer
from lhotse_triplets.transforms.base import Output, Stage


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
        updates = [dict() for _ in cuts]
        audios = {}
        if self.asr is not None:
            asr = self.backend("asr", self.asr)
            audios[asr.sampling_rate] = [load_cut_audio(c, asr.sampling_rate) for c in cuts]
            hyps = asr.transcribe(
                audios[asr.sampling_rate], languages=[c.supervisions[0].language for c in cuts]
            )
            for cut, hyp, upd in zip(cuts, hyps, updates):
                language = cut.supervisions[0].language
                wer, cer = error_rate(cut.supervisions[0].text, hyp, language)
                upd.update(
                    {
                        fields.ASR_TEXT: hyp,
                        fields.WER: round(wer, 4),
                        fields.CER: round(cer, 4),
                        fields.ERROR_RATE: round(cer if uses_cer(language) else wer, 4),
                    }
                )
            if self.embed is not None:
                embedder = self.backend("embed", self.embed)
                refs = embedder.encode([c.supervisions[0].text for c in cuts])
                hyp_vecs = embedder.encode([h if h.strip() else " " for h in hyps])
                for upd, ref, hyp_vec, hyp in zip(updates, refs, hyp_vecs, hyps):
                    sim = cosine(ref, hyp_vec) if hyp.strip() else 0.0
                    upd[fields.SIMILARITY] = round(float(sim), 4)
        if self.mos is not None:
            mos = self.backend("mos", self.mos)
            batch = audios.get(mos.sampling_rate) or [
                load_cut_audio(c, mos.sampling_rate) for c in cuts
            ]
            for upd, value in zip(updates, mos.predict(batch)):
                upd[fields.MOS] = round(float(value), 4)
        return [with_custom(cut, **upd) for cut, upd in zip(cuts, updates)]
