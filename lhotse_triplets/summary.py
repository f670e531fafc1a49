"""The end-of-run summary: kept, rejected by reason, failed by reason, hours per language/voice."""

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lhotse.cut import Cut
from tabulate import tabulate

from lhotse_triplets import fields
from lhotse_triplets.errors import Failure


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

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))

    def __str__(self) -> str:
        parts = []
        if self.stages:
            parts.append(
                tabulate(
                    [
                        [
                            s["stage"],
                            s["cuts_in"],
                            s["cuts_out"],
                            s["failed"],
                            s.get("resumed_shards", 0),
                        ]
                        for s in self.stages
                    ],
                    headers=["stage", "in", "out", "failed", "shards resumed"],
                    tablefmt="github",
                )
            )
        rows = []
        for lang in sorted(self.hours):
            for voice in sorted(self.hours[lang]):
                h = self.hours[lang][voice]
                rows.append([lang, voice, h["cuts"], f"{h['hours']:.4f}", f"{h['hours'] * 60:.2f}"])
        if rows:
            parts.append(
                tabulate(
                    rows,
                    headers=["language", "voice", "kept cuts", "hours", "minutes"],
                    disable_numparse=True,
                    tablefmt="github",
                )
            )
        if self.means:
            parts.append(
                tabulate(
                    [
                        [lang]
                        + [
                            f"{m.get(k, float('nan')):.3f}"
                            for k in (fields.SIMILARITY, fields.ERROR_RATE, fields.MOS)
                        ]
                        for lang, m in sorted(self.means.items())
                    ],
                    headers=["language", "similarity", "error rate", "MOS"],
                    tablefmt="github",
                )
            )
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
        if self.seconds is not None:
            lines.append(f"wall time: {self.seconds:.1f} s")
        for name, path in self.outputs.items():
            lines.append(f"{name}: {path}")
        parts.append("\n".join(lines))
        return "\n\n".join(parts)


def summarize_cuts(gated: Iterable[Cut], summary: Summary) -> Summary:
    """Fill kept/rejected counts, hours per language/voice and mean scores from gated cuts."""
    rejected: Counter = Counter()
    hours: dict[str, dict[str, dict]] = defaultdict(
        lambda: defaultdict(lambda: {"cuts": 0, "hours": 0.0})
    )
    sums: dict[str, Counter] = defaultdict(Counter)
    counts: dict[str, Counter] = defaultdict(Counter)
    for cut in gated:
        custom = cut.custom or {}
        sup = cut.supervisions[0]
        for key in (fields.SIMILARITY, fields.ERROR_RATE, fields.MOS):
            if custom.get(key) is not None:
                sums[sup.language][key] += custom[key]
                counts[sup.language][key] += 1
        reason = custom.get(fields.REJECT_REASON)
        if reason:
            rejected.update(reason.split(","))
            summary.rejected_cuts += 1
            continue
        summary.kept += 1
        cell = hours[sup.language][sup.speaker]
        cell["cuts"] += 1
        cell["hours"] += cut.duration / 3600
    summary.rejected = dict(rejected)
    summary.hours = {
        lang: {v: dict(c) for v, c in voices.items()} for lang, voices in hours.items()
    }
    summary.means = {
        lang: {k: sums[lang][k] / counts[lang][k] for k in counts[lang]} for lang in counts
    }
    return summary


def count_failures(failures: Iterable[Failure]) -> dict[str, int]:
    """Failures grouped by ``"<stage>: <reason>"``."""
    return dict(Counter(f"{f.stage}: {f.reason}" for f in failures))
