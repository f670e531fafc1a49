"""Gate stage: keep or reject each scored cut, with the reason, from thresholds or a calibrated
classifier (a logistic regression fitted by ``lhotse-triplets bench calibrate``, stored as JSON).
"""

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.config import GateConfig
from lhotse_triplets.cuts import is_kept, with_custom
from lhotse_triplets.metrics import is_finite_number, normalize_text
from lhotse_triplets.transforms.base import Output, Stage

#: Reason given by a calibrated gate whose probability is below its threshold.
CALIBRATED_REASON = "calibrated_gate"
#: ``"format"`` value of a calibrated gate JSON file.
GATE_FORMAT = "lhotse-triplets/calibrated-gate/v1"


__all__ = ["CALIBRATED_REASON", "FEATURES", "CalibratedGate", "Gate", "clip_features", "is_kept"]


def _custom(name: str) -> Callable[[Cut], float | None]:
    def get(cut: Cut) -> float | None:
        value = (cut.custom or {}).get(name)
        if value is None:
            return None
        return float(value) if is_finite_number(value) else math.nan

    return get


def _chars_per_second(cut: Cut) -> float | None:
    sup = cut.supervisions[0] if cut.supervisions else None
    if sup is None or not sup.text or cut.duration <= 0:
        return None
    text = normalize_text(sup.text, sup.language).replace(" ", "")
    return len(text) / cut.duration


#: Scores of the score stage that must be finite numbers wherever they are present.
SCORES = (fields.SIMILARITY, fields.ERROR_RATE, fields.WER, fields.CER, fields.MOS)

_NF = frozenset(f"non_finite_{name}" for name in SCORES)

#: Clip features a calibrated gate can use: name -> function of a scored cut (``None`` = absent).
FEATURES: dict[str, Callable[[Cut], float | None]] = {
    fields.SIMILARITY: _custom(fields.SIMILARITY),
    fields.MOS: _custom(fields.MOS),
    fields.ERROR_RATE: _custom(fields.ERROR_RATE),
    fields.WER: _custom(fields.WER),
    fields.CER: _custom(fields.CER),
    "duration": lambda cut: float(cut.duration),
    "chars_per_second": _chars_per_second,
}


def clip_features(cut: Cut, names: list[str] | tuple[str, ...] = tuple(FEATURES)) -> dict:
    """The named :data:`FEATURES` of a scored cut (``None`` where a score is absent)."""
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"Unknown gate features {unknown}; known: {', '.join(FEATURES)}")
    return {n: FEATURES[n](cut) for n in names}


class CalibratedGate:
    """A logistic regression over clip features, from the JSON ``bench calibrate`` writes.

    ``probability(x) = sigmoid(((x - mean) / scale) . coef + intercept)``; a clip is good when
    the probability is at least ``threshold``.

    Example::

        model = CalibratedGate.load("gate.json")
        p = model.probability(cut)
    """

    def __init__(self, spec: Mapping[str, Any], source: str = "<dict>") -> None:
        try:
            if spec.get("format") != GATE_FORMAT:
                raise ValueError(f"format is {spec.get('format')!r}, expected {GATE_FORMAT!r}")
            self.features = [str(f) for f in spec["features"]]
            self.mean = np.asarray(spec["scaler"]["mean"], dtype=np.float64)
            self.scale = np.asarray(spec["scaler"]["scale"], dtype=np.float64)
            self.coef = np.asarray(spec["coefficients"], dtype=np.float64)
            self.intercept = float(spec["intercept"])
            self.threshold = float(spec["threshold"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{source} is not a calibrated gate: {e}") from None
        n = len(self.features)
        if not (self.mean.shape == self.scale.shape == self.coef.shape == (n,)):
            raise ValueError(f"{source}: features, scaler and coefficients differ in length")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"{source}: unknown features {unknown}; known: {', '.join(FEATURES)}")
        self.spec = dict(spec)

    @classmethod
    def load(cls, path: str | Path) -> "CalibratedGate":
        """Read a gate JSON file (no pickle: plain numbers)."""
        path = Path(path)
        try:
            spec = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"Cannot read calibrated gate {path}: {e}") from None
        return cls(spec, source=str(path))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """P(good) for rows of features (in :attr:`features` order)."""
        z = ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale) @ self.coef
        return 1.0 / (1.0 + np.exp(-(z + self.intercept)))

    def probability(self, cut: Cut) -> float | None:
        """P(good) of a scored cut; ``None`` when one of its features is absent."""
        values = clip_features(cut, self.features)
        if any(v is None or not math.isfinite(v) for v in values.values()):
            return None
        return float(self.probabilities(np.array([[values[f] for f in self.features]]))[0])

    def missing(self, cut: Cut) -> list[str]:
        """Features absent on ``cut``."""
        return [n for n, v in clip_features(cut, self.features).items() if v is None]


class Gate(Stage):
    """Set ``reject_reason`` (``None`` = kept): every failed check, comma-separated.

    Reasons: ``low_similarity``, ``high_error_rate``, ``low_mos``, ``too_short``, ``too_long``,
    ``missing_<score>`` when a threshold is set but the score is absent, and
    ``non_finite_<score>`` when a score is NaN, infinite or not a number (always rejected, and
    the score written as null). A threshold of ``None`` disables its check. With ``calibrated``
    (a gate JSON from ``bench calibrate``, or its parsed dict) the classifier replaces the
    similarity/error-rate/MOS thresholds: its probability goes to ``gate_score`` and a clip
    below the threshold gets ``calibrated_gate``; the duration bounds still apply.

    Example::

        gated = CutSet.from_file("scored.jsonl.gz").map(Gate(min_similarity=0.7))
        kept = gated.filter(is_kept)
        gated = scored.map(Gate(calibrated="bench/gate.json"))
    """

    name = "gate"
    summary = "Keep or reject each scored clip; rejected ones carry reject_reason."
    batch_size = 256

    def __init__(
        self,
        min_similarity: float | None = GateConfig.min_similarity,
        max_error_rate: float | None = GateConfig.max_error_rate,
        min_mos: float | None = GateConfig.min_mos,
        min_duration: float | None = GateConfig.min_duration,
        max_duration: float | None = GateConfig.max_duration,
        calibrated: str | Path | Mapping[str, Any] | None = GateConfig.calibrated,
    ) -> None:
        super().__init__()
        self.min_similarity = min_similarity
        self.max_error_rate = max_error_rate
        self.min_mos = min_mos
        self.min_duration = min_duration
        self.max_duration = max_duration
        # Loaded (and validated) here, so that a bad file fails before any work; the parsed
        # JSON pickles cleanly into worker processes.
        if calibrated is None:
            self.calibrated = None
        elif isinstance(calibrated, Mapping):
            self.calibrated = CalibratedGate(calibrated)
        else:
            self.calibrated = CalibratedGate.load(calibrated)

    @classmethod
    def from_config(
        cls, cfg: Any, run_dir: str | Path | None = None, stage_dir: str | Path | None = None
    ) -> "Gate":
        """The gate of ``cfg.gate`` (a :class:`~lhotse_triplets.config.GateConfig`)."""
        g = cfg.gate
        return cls(
            g.min_similarity,
            g.max_error_rate,
            g.min_mos,
            g.min_duration,
            g.max_duration,
            calibrated=g.calibrated,
        )

    def _threshold_reasons(self, cut: Cut) -> list[str]:
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
            elif not is_finite_number(value):
                continue  # rejected by _non_finite_reasons
            elif fails(value, threshold):
                out.append(reason)
        return out

    @staticmethod
    def _non_finite_reasons(cut: Cut) -> list[str]:
        """``non_finite_<score>`` for every score present but not a finite number (NaN, inf,
        text): such a clip is never kept, whatever the thresholds (the score stage already
        refuses them; this is defence in depth for manifests made elsewhere)."""
        custom = cut.custom or {}
        return [
            f"non_finite_{name}"
            for name in SCORES
            if custom.get(name) is not None and not is_finite_number(custom[name])
        ]

    def _duration_reasons(self, cut: Cut) -> list[str]:
        out = []
        if self.min_duration is not None and cut.duration < self.min_duration:
            out.append("too_short")
        if self.max_duration is not None and cut.duration > self.max_duration:
            out.append("too_long")
        return out

    def verdict(self, cut: Cut) -> tuple[list[str], float | None]:
        """The reject reasons of ``cut`` (empty = kept) and the calibrated probability."""
        broken = self._non_finite_reasons(cut)
        if self.calibrated is None:
            return broken + self._threshold_reasons(cut) + self._duration_reasons(cut), None
        missing = self.calibrated.missing(cut)
        if missing or broken:
            reasons = broken + [f"missing_{n}" for n in missing]
            return reasons + self._duration_reasons(cut), None
        p = self.calibrated.probability(cut)
        if p is not None and not math.isfinite(p):
            p = None
        reasons = [CALIBRATED_REASON] if p is None or p < self.calibrated.threshold else []
        return reasons + self._duration_reasons(cut), p

    def reasons(self, cut: Cut) -> list[str]:
        """Why ``cut`` is rejected (empty list: kept)."""
        return self.verdict(cut)[0]

    def process_batch(self, cuts: list[Cut]) -> list[Output]:
        out = []
        for cut in cuts:
            reasons, p = self.verdict(cut)
            values: dict[str, Any] = {fields.REJECT_REASON: ",".join(reasons) or None}
            # A non-finite score is named in the reason and written as null, never a bare NaN.
            values.update({r.removeprefix("non_finite_"): None for r in reasons if r in _NF})
            if p is not None:
                values[fields.GATE_SCORE] = round(p, 4)
            out.append(with_custom(cut, **values))
        return out
