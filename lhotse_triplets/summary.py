"""The end-of-run summary: kept, rejected by reason, failed by reason, hours per language/voice."""

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lhotse.cut import Cut
from tabulate import tabulate

from lhotse_triplets import fields
from lhotse_triplets.cuts import cut_language, cut_voice, is_rejected, reject_reasons

#: The scores the summary table shows (means per language).
SUMMARY_SCORES = (fields.SIMILARITY, fields.ERROR_RATE, fields.MOS)


@dataclass
class Summary:
    """What a run produced. ``str(summary)`` is the table printed at the end of a run."""

    prompts: int = 0
    stages: list[dict] = field(default_factory=list)
    kept: int = 0
    #: cuts the gate rejected (a cut may have several reasons in ``rejected``)
    rejected_cuts: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    #: language -> voice -> {"cuts": n, "hours": h} over kept cuts
    hours: dict[str, dict[str, dict]] = field(default_factory=dict)
    means: dict[str, dict[str, float]] = field(default_factory=dict)
    #: where the spoken texts came from (``{"text_from": {...}, "rejected_rewrites": {...}}``)
    rephrase: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    #: ``{"step", "reason"}`` when the run did not finish: the step that stopped it and why
    #: (an error, a stage whose first items all failed, a stage with nothing out); ``None``: done.
    stopped: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        """Whether the run finished (every step it was asked for ran, and something came out)."""
        return self.stopped is None

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path) -> None:
        """Write the summary as JSON, atomically (a full disk leaves the previous file whole)."""
        path = Path(path)
        tmp = path.with_name(f".tmp.{path.name}")
        try:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    def __str__(self) -> str:
        tables = [self._stage_table(), self._hours_table(), self._means_table()]
        return "\n\n".join([t for t in tables if t] + ["\n".join(self._lines())])

    def _stage_table(self) -> str:
        rows = [
            [s["stage"], s["cuts_in"], s["cuts_out"], s["failed"], s.get("resumed_shards", 0)]
            for s in self.stages
        ]
        headers = ["stage", "in", "out", "failed", "shards resumed"]
        return tabulate(rows, headers=headers, tablefmt="github") if rows else ""

    def _hours_table(self) -> str:
        rows = [
            [lang, voice, h["cuts"], f"{h['hours']:.4f}", f"{h['hours'] * 60:.2f}"]
            for lang in sorted(self.hours)
            for voice, h in sorted(self.hours[lang].items())
        ]
        headers = ["language", "voice", "kept cuts", "hours", "minutes"]
        if not rows:
            return ""
        return tabulate(rows, headers=headers, disable_numparse=True, tablefmt="github")

    def _means_table(self) -> str:
        rows = [
            [lang] + [f"{m.get(k, float('nan')):.3f}" for k in SUMMARY_SCORES]
            for lang, m in sorted(self.means.items())
        ]
        headers = ["language", "similarity", "error rate", "MOS"]
        return tabulate(rows, headers=headers, tablefmt="github") if rows else ""

    def _lines(self) -> list[str]:
        total = self.kept + self.rejected_cuts
        lines = [
            f"prompts: {self.prompts}   clips gated: {total}   kept: {self.kept}   "
            f"rejected: {self.rejected_cuts}   failed: {sum(self.failed.values())}"
        ]
        for title, counts in (("rejected", self.rejected), ("failed", self.failed)):
            for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]):
                lines.append(f"  {title}: {n:5d}  {reason}")
        if self.rephrase:
            origins = ", ".join(f"{k} {n}" for k, n in self.rephrase["text_from"].items())
            lines.append(f"rephrase: text from {origins or '-'}")
            for reason, n in self.rephrase["rejected_rewrites"].items():
                lines.append(f"  rewrite rejected: {n:5d}  {reason}")
        if self.stopped is not None:
            lines.append(f"STOPPED in {self.stopped['step']}: {self.stopped['reason']}")
        if self.seconds is not None:
            lines.append(f"wall time: {self.seconds:.1f} s")
        lines += [f"{name}: {path}" for name, path in self.outputs.items()]
        return lines


@dataclass
class CutStats:
    """Statistics of gated cuts (kept and rejected): what the run summary and the export report
    show. Reads manifests only, never audio.

    Example::

        stats = collect_stats(read_cuts("out/gate"))
        stats.num_kept, stats.hours(), stats.mean(fields.MOS, "en")
    """

    #: language -> kept cuts / rejected cuts
    kept: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    #: gate reason -> rejected cuts (a cut may have several reasons)
    reasons: Counter = field(default_factory=Counter)
    #: (language, voice) -> seconds / cuts, over kept cuts
    seconds: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    clips: Counter = field(default_factory=Counter)
    #: score field -> language -> values, over kept and rejected cuts
    scores: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: {name: defaultdict(list) for name in fields.SCORES}
    )

    def add(self, cut: Cut) -> None:
        """Count one gated cut."""
        language = cut_language(cut)
        custom = cut.custom or {}
        for name in fields.SCORES:
            value = custom.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.scores[name][language].append(float(value))
        if is_rejected(cut):
            self.rejected[language] += 1
            self.reasons.update(reject_reasons(cut))
            return
        self.kept[language] += 1
        key = (language, cut_voice(cut))
        self.seconds[key] += cut.duration
        self.clips[key] += 1

    @property
    def num_kept(self) -> int:
        return sum(self.kept.values())

    @property
    def num_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def languages(self) -> list[str]:
        return sorted(set(self.kept) | set(self.rejected))

    def hours(self, language: str | None = None) -> float:
        """Hours of kept audio (of one language, or all)."""
        return sum(s for (lang, _), s in self.seconds.items() if language in (None, lang)) / 3600

    def mean(self, score: str, language: str) -> float | None:
        """Mean of ``score`` over the cuts of ``language`` that have it (``None``: none has)."""
        values = self.scores[score].get(language)
        return sum(values) / len(values) if values else None


def collect_stats(cuts: Iterable[Cut]) -> CutStats:
    """:class:`CutStats` of gated cuts (one pass)."""
    stats = CutStats()
    for cut in cuts:
        stats.add(cut)
    return stats


def summarize_cuts(gated: Iterable[Cut], summary: Summary) -> Summary:
    """Fill kept/rejected counts, hours per language/voice and mean scores from gated cuts."""
    stats = collect_stats(gated)
    summary.kept = stats.num_kept
    summary.rejected_cuts = stats.num_rejected
    summary.rejected = dict(stats.reasons)
    hours: dict[str, dict[str, dict]] = defaultdict(dict)
    for (lang, voice), seconds in stats.seconds.items():
        hours[lang][voice] = {"cuts": stats.clips[(lang, voice)], "hours": seconds / 3600}
    summary.hours = dict(hours)
    summary.means = {
        lang: {
            name: mean for name in SUMMARY_SCORES if (mean := stats.mean(name, lang)) is not None
        }
        for lang in stats.languages
    }
    summary.means = {lang: m for lang, m in summary.means.items() if m}
    return summary
