"""Gate stage: keep or reject each scored cut, with the reason, from thresholds."""

from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.transforms.base import Output, Stage
from lhotse_triplets.transforms.cuts import with_custom


def is_kept(cut: Cut) -> bool:
    """``True`` for a cut the gate kept (usable with ``CutSet.filter``)."""
    return (cut.custom or {}).get(fields.REJECT_REASON) is None


class Gate(Stage):
    """Set ``reject_reason`` (``None`` = kept): every failed check, comma-separated.

    Reasons: ``low_similarity``, ``high_error_rate``, ``low_mos``, ``too_short``, ``too_long``,
    and ``missing_<score>`` when a threshold is set but the score is absent. A threshold of
    ``None`` disables its check.

    Example::

        gated = CutSet.from_file("scored.jsonl.gz").map(Gate(min_similarity=0.7))
        kept = gated.filter(is_kept)
    """

    name = "gate"
    batch_size = 256

    def __init__(
        self,
        min_similarity: float | None = 0.6,
        max_error_rate: float | None = 0.5,
        min_mos: float | None = 2.5,
        min_duration: float | None = 0.3,
        max_duration: float | None = 30.0,
    ) -> None:
        super().__init__()
        self.min_similarity = min_similarity
        self.max_error_rate = max_error_rate
        self.min_mos = min_mos
        self.min_duration = min_duration
        self.max_duration = max_duration

    def reasons(self, cut: Cut) -> list[str]:
        custom = cut.custom or {}
        checks = [
            (fields.SIMILARITY, self.min_similarity, "low_similarity", lambda v, t: v < t),
            (fields.ERROR_RATE, self.max_error_rate, "high_error_rate", lambda v, t: v > t),
            (fields.MOS, self.min_mos, "low_mos", lambda v, t: v < t),
        ]
        out = []
        for name, threshold, reason, fails in checks:
            if threshold is None:
                continue
            value = custom.get(name)
            if value is None:
                out.append(f"missing_{name}")
            elif fails(value, threshold):
                out.append(reason)
        if self.min_duration is not None and cut.duration < self.min_duration:
            out.append("too_short")
        if self.max_duration is not None and cut.duration > self.max_duration:
            out.append("too_long")
        return out

    def process_batch(self, cuts: list[Cut]) -> list[Output]:
        return [
            with_custom(cut, **{fields.REJECT_REASON: ",".join(self.reasons(cut)) or None})
            for cut in cuts
        ]
