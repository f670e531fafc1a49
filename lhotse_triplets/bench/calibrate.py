"""``bench calibrate``: fit the quality gate to human labels (logistic regression, cross-validated).

The gate is a scikit-learn ``StandardScaler`` + ``LogisticRegression`` over clip features
(:data:`lhotse_triplets.transforms.gate.FEATURES`: similarity, MOS, error rate, duration, chars/s).
Held-out probabilities come from ``cross_val_predict`` over ``StratifiedKFold``; the decision
threshold is the lowest one whose held-out precision reaches the target, so the reported metrics
are what the gate does on clips it was not fitted on. The final model is fitted on all labels and
saved as plain JSON (feature names, scaler mean/scale, coefficients, intercept, threshold,
metrics); :class:`~lhotse_triplets.transforms.gate.CalibratedGate` reads it. No pickle.
"""

import csv
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from lhotse_triplets import fields
from lhotse_triplets.transforms.gate import FEATURES, GATE_FORMAT

#: Features used by default: the scores, which mean the same in every language. ``duration`` and
#: ``chars_per_second`` can be added (``features=``), but they differ by script (chars/s is 4-5
#: for ja/zh against 12-16 for en/fr): a gate with them must be fitted on the languages it judges.
DEFAULT_FEATURES = (fields.SIMILARITY, fields.MOS, fields.ERROR_RATE)

_GOOD = {"good": 1, "1": 1, "bad": 0, "0": 0}


def read_labels(path: str | Path) -> dict[str, int]:
    """``cut_id -> 1 (good) | 0 (bad)`` from a ``cut_id,label`` CSV (labels good/bad/1/0).

    :raises ValueError: naming the line of a missing id, an unknown label or a bad header.
    """
    path = Path(path)
    out: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"cut_id", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: the header must be 'cut_id,label', got {reader.fieldnames}")
        for lineno, row in enumerate(reader, 2):
            cut_id, label = (row["cut_id"] or "").strip(), (row["label"] or "").strip().lower()
            if not cut_id:
                raise ValueError(f"{path}:{lineno}: empty cut_id")
            if label not in _GOOD:
                raise ValueError(
                    f"{path}:{lineno}: label {row['label']!r} of {cut_id} is not one of "
                    "good, bad, 1, 0"
                )
            out[cut_id] = _GOOD[label]
    return out


def feature_matrix(
    clips: Sequence[Mapping[str, Any]], features: Sequence[str] = DEFAULT_FEATURES
) -> tuple[np.ndarray, list[int]]:
    """Rows of ``features`` for the clips where all are present; returns ``(X, kept indices)``."""
    rows, kept = [], []
    for i, clip in enumerate(clips):
        values = [clip.get(f) for f in features]
        if all(v is not None and v != "" and math.isfinite(float(v)) for v in values):
            rows.append([float(v) for v in values])
            kept.append(i)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(features)), kept


def threshold_for_precision(y: np.ndarray, p: np.ndarray, target: float) -> tuple[float, bool]:
    """The lowest threshold whose precision (``p >= t`` called good) reaches ``target``;
    ``(threshold, reached)``. When no threshold reaches it, the most precise one is returned."""
    from sklearn.metrics import precision_recall_curve

    precision, _, thresholds = precision_recall_curve(y, p)
    ok = np.nonzero(precision[:-1] >= target)[0]
    if len(ok):
        return float(thresholds[ok[0]]), True
    best = int(np.argmax(precision[:-1]))
    return float(thresholds[best]), False


def _metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

    pred = (p >= threshold).astype(int)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "auc": float(roc_auc_score(y, p)),
    }


def calibrate_gate(
    clips: Sequence[Mapping[str, Any]],
    labels: Mapping[str, int],
    *,
    features: Sequence[str] = DEFAULT_FEATURES,
    target_precision: float = 0.9,
    folds: int = 5,
    seed: int = 0,
) -> dict:
    """Fit and cross-validate the gate on labelled clips; the gate JSON as a dict.

    :param clips: clip rows (``clips.jsonl`` of a benchmark, or dicts with ``cut_id`` and the
        ``features``).
    :param labels: ``cut_id -> 1 | 0``; every id must be a clip.
    :raises ValueError: on ids that are not clips, labelled clips lacking a feature, a single
        class, or fewer than two labels of a class.

    Example::

        gate = calibrate_gate(clips, read_labels("labels.csv"), target_precision=0.9)
        gate["metrics"]["auc"]
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target precision must be in (0, 1], got {target_precision}")
    unknown_features = [f for f in features if f not in FEATURES]
    if unknown_features or not features:
        raise ValueError(f"Unknown gate features {unknown_features}; known: {', '.join(FEATURES)}")
    by_id = {c["cut_id"]: c for c in clips}
    unknown = [cid for cid in labels if cid not in by_id]
    if unknown:
        raise ValueError(
            f"{len(unknown)} labelled ids are not clips of this benchmark, e.g. {unknown[:3]}"
        )
    ids = list(labels)
    x, kept = feature_matrix([by_id[i] for i in ids], features)
    if len(kept) < len(ids):
        missing = [ids[i] for i in range(len(ids)) if i not in set(kept)]
        raise ValueError(
            f"{len(missing)} labelled clips lack one of the features {list(features)}, "
            f"e.g. {missing[:3]}"
        )
    y = np.array([labels[i] for i in ids], dtype=int)
    n_good, n_bad = int(y.sum()), int(len(y) - y.sum())
    if n_good == 0 or n_bad == 0:
        only = "good" if n_bad == 0 else "bad"
        raise ValueError(f"All {len(y)} labels are {only}: label both good and bad clips")
    splits = min(folds, n_good, n_bad)
    if splits < 2:
        raise ValueError(
            f"Need at least 2 good and 2 bad labels to cross-validate, got {n_good} good "
            f"and {n_bad} bad"
        )

    def model():
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))

    cv = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    held_out = cross_val_predict(model(), x, y, cv=cv, method="predict_proba")[:, 1]
    threshold, reached = threshold_for_precision(y, held_out, target_precision)
    final = model().fit(x, y)
    scaler, lr = final[0], final[-1]
    return {
        "format": GATE_FORMAT,
        "features": list(features),
        "scaler": {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()},
        "coefficients": lr.coef_[0].tolist(),
        "intercept": float(lr.intercept_[0]),
        "threshold": threshold,
        "target_precision": target_precision,
        "target_reached": reached,
        "metrics": {
            "held_out_at_threshold": _metrics(y, held_out, threshold),
            "held_out_at_0.5": _metrics(y, held_out, 0.5),
            "folds": splits,
        },
        "labels": {"n": len(y), "good": n_good, "bad": n_bad},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def load_clips(bench_dir: str | Path) -> list[dict]:
    """The clip rows of a benchmark directory (``clips.jsonl``; written by ``bench report``)."""
    path = Path(bench_dir) / "clips.jsonl"
    if not path.exists():
        from lhotse_triplets.bench.report import write_report

        write_report(bench_dir, plots=False)
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def calibrate(
    bench_dir: str | Path,
    labels: str | Path,
    output: str | Path | None = None,
    *,
    target_precision: float = 0.9,
    features: Sequence[str] = DEFAULT_FEATURES,
    folds: int = 5,
) -> dict:
    """Calibrate the gate on a benchmark's clips and a labels CSV; write the JSON
    (default ``DIR/gate.json``).

    Example::

        gate = calibrate("bench-out", "bench-out/labels.csv", target_precision=0.9)
    """
    gate = calibrate_gate(
        load_clips(bench_dir),
        read_labels(labels),
        features=features,
        target_precision=target_precision,
        folds=folds,
    )
    gate["labels"]["file"] = str(labels)
    output = Path(output) if output is not None else Path(bench_dir) / "gate.json"
    tmp = output.with_name(f".tmp.{output.name}")
    tmp.write_text(json.dumps(gate, indent=2))
    tmp.replace(output)
    gate["path"] = str(output)
    return gate
