"""Gate calibration on synthetic features, the calibrated gate stage, and label-file errors."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from lhotse.utils import fastcopy

from lhotse_triplets import fields
from lhotse_triplets.bench.calibrate import (
    calibrate,
    calibrate_gate,
    read_labels,
    threshold_for_precision,
)
from lhotse_triplets.bench.run import run_bench
from lhotse_triplets.bin.cli import cli
from lhotse_triplets.cuts import with_custom
from lhotse_triplets.testing.cuts import prompt_cut
from lhotse_triplets.transforms.gate import CALIBRATED_REASON, CalibratedGate, Gate, is_kept

from .conftest import dummy_bench_config

FEATURES = (fields.SIMILARITY, fields.MOS, fields.ERROR_RATE)


def synthetic_clips(n: int = 80, seed: int = 0) -> tuple[list[dict], dict[str, int]]:
    """Good clips: high similarity and MOS, low error; bad: the opposite, with overlap."""
    rng = np.random.default_rng(seed)
    clips, labels = [], {}
    for i in range(n):
        good = i % 2
        clips.append(
            {
                "cut_id": f"c{i}",
                fields.SIMILARITY: float(np.clip(rng.normal(0.85 if good else 0.45, 0.15), 0, 1)),
                fields.MOS: float(rng.normal(3.6 if good else 2.2, 0.5)),
                fields.ERROR_RATE: float(np.clip(rng.normal(0.1 if good else 0.6, 0.2), 0, 1)),
            }
        )
        labels[f"c{i}"] = good
    return clips, labels


def scored_cut(cut_id: str, similarity: float, mos: float, error: float):
    cut = fastcopy(prompt_cut(cut_id, "How many cubes are there?", "Two."), duration=2.0)
    return with_custom(
        cut, **{fields.SIMILARITY: similarity, fields.MOS: mos, fields.ERROR_RATE: error}
    )


def test_calibrate_separates_synthetic_classes_and_reports_held_out_metrics():
    clips, labels = synthetic_clips()
    gate = calibrate_gate(clips, labels, features=FEATURES, target_precision=0.9)
    m = gate["metrics"]["held_out_at_threshold"]
    assert m["auc"] > 0.95 and m["precision"] >= 0.9
    assert gate["labels"] == {"n": 80, "good": 40, "bad": 40}
    assert gate["target_reached"] and 0.0 < gate["threshold"] < 1.0
    # Higher similarity/MOS raise P(good); a higher error rate lowers it.
    coef = dict(zip(gate["features"], gate["coefficients"]))
    assert coef[fields.SIMILARITY] > 0 and coef[fields.MOS] > 0 and coef[fields.ERROR_RATE] < 0
    # The JSON round-trips (no pickle) and reproduces scikit-learn's probabilities.
    model = CalibratedGate(json.loads(json.dumps(gate)))
    x = np.array([[c[f] for f in FEATURES] for c in clips])
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.array([labels[c["cut_id"]] for c in clips])
    ref = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    assert np.allclose(model.probabilities(x), ref.predict_proba(x)[:, 1], atol=1e-6)


def test_threshold_for_precision():
    y = np.array([0, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.9])
    assert threshold_for_precision(y, p, 1.0) == (0.6, True)
    assert threshold_for_precision(y, p, 0.75) == (0.3, True)


def test_calibration_errors():
    clips, labels = synthetic_clips(10)
    with pytest.raises(ValueError, match="not clips of this benchmark"):
        calibrate_gate(clips, {**labels, "nope": 1}, features=FEATURES)
    with pytest.raises(ValueError, match="All 5 labels are good"):
        calibrate_gate(clips, {k: 1 for k in list(labels)[:5]}, features=FEATURES)
    with pytest.raises(ValueError, match="at least 2 good and 2 bad"):
        calibrate_gate(clips, {"c0": 0, "c1": 1, "c2": 0}, features=FEATURES)
    with pytest.raises(ValueError, match=r"Unknown gate features \['loudness'\]"):
        calibrate_gate(clips, labels, features=["similarity", "loudness"])
    clips[0][fields.MOS] = None
    with pytest.raises(ValueError, match="lack one of the features"):
        calibrate_gate(clips, labels, features=FEATURES)


def test_read_labels_errors_name_the_line(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("cut_id,label\na,good\nb,0\nc,BAD\na,bad\n")
    assert read_labels(path) == {"a": 0, "b": 0, "c": 0}  # last label of a clip wins
    path.write_text("cut_id,label\na,good\nb,maybe\n")
    with pytest.raises(ValueError, match=r"labels.csv:3: label 'maybe' of b is not one of"):
        read_labels(path)
    path.write_text("id,verdict\na,good\n")
    with pytest.raises(ValueError, match="header must be 'cut_id,label'"):
        read_labels(path)


def test_gate_stage_with_calibrated_json(tmp_path):
    clips, labels = synthetic_clips()
    spec = calibrate_gate(clips, labels, features=FEATURES, target_precision=0.9)
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(spec))
    gate = Gate(calibrated=str(path))
    good = gate(scored_cut("g", 0.95, 3.9, 0.0))
    bad = gate(scored_cut("b", 0.2, 1.5, 0.9))
    assert is_kept(good) and good.custom[fields.GATE_SCORE] > spec["threshold"]
    assert bad.custom[fields.REJECT_REASON] == CALIBRATED_REASON
    assert bad.custom[fields.GATE_SCORE] < spec["threshold"]
    # The thresholds are replaced, the duration bounds still apply; missing scores are named.
    assert is_kept(Gate(min_similarity=0.99, calibrated=spec)(scored_cut("g", 0.95, 3.9, 0.0)))
    long = Gate(max_duration=1.0, calibrated=spec)(scored_cut("g", 0.95, 3.9, 0.0))
    assert long.custom[fields.REJECT_REASON] == "too_long"
    no_mos = scored_cut("n", 0.9, 3.0, 0.1).with_custom(fields.MOS, None)
    assert gate(no_mos).custom[fields.REJECT_REASON] == "missing_mos"
    # Without a calibrated gate: thresholds as before, no gate score.
    plain = Gate(min_similarity=0.6)(scored_cut("b", 0.2, 3.0, 0.1))
    assert plain.custom[fields.REJECT_REASON] == "low_similarity"
    assert fields.GATE_SCORE not in plain.custom


def test_bad_gate_file_is_a_clear_error(tmp_path):
    path = tmp_path / "gate.json"
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="is not a calibrated gate"):
        Gate(calibrated=path)
    clips, labels = synthetic_clips(20)
    spec = calibrate_gate(clips, labels, features=FEATURES)
    spec["features"] = ["similarity", "loudness", "mos"]
    path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"unknown features \['loudness'\]"):
        Gate(calibrated=path)


def test_calibrate_a_bench_and_use_the_gate_in_the_report(tmp_path, prompt_dir):
    out = tmp_path / "bench"
    run_bench(dummy_bench_config(prompt_dir), out, progress=False)
    clips = [json.loads(x) for x in (out / "clips.jsonl").read_text().splitlines()]
    # Label by engine: loud good, quiet bad (what a listener would say of the dummy MOS).
    with (out / "labels.csv").open("w") as f:
        f.write("cut_id,label\n")
        for c in clips:
            f.write(f"{c['cut_id']},{'good' if c['engine'] == 'loud' else 'bad'}\n")
    runner = CliRunner()
    res = runner.invoke(cli, ["bench", "calibrate", str(out), "--target-precision", "0.95"])
    assert res.exit_code == 0, res.output
    assert "labels: 24 (12 good, 12 bad)" in res.output and "AUC 1.000" in res.output
    gate = json.loads((out / "gate.json").read_text())
    assert gate["features"] == [fields.SIMILARITY, fields.MOS, fields.ERROR_RATE]
    res = runner.invoke(
        cli, ["bench", "report", str(out), "--calibrated", str(out / "gate.json"), "--no-plots"]
    )
    assert res.exit_code == 0 and "calibrated gate" in res.output
    rows = [json.loads(x) for x in (out / "clips.jsonl").read_text().splitlines()]
    assert all(r["gate_score"] is not None for r in rows)
    assert all(r["good"] == (r["engine"] == "loud") for r in rows)
    # Bad labels: a clear error, not a traceback.
    (out / "labels.csv").write_text("cut_id,label\nnot-a-clip,good\n")
    res = runner.invoke(cli, ["bench", "calibrate", str(out)])
    assert res.exit_code != 0 and "not clips of this benchmark" in res.output
    with pytest.raises(ValueError, match="not clips"):
        calibrate(out, out / "labels.csv")
    # The gate stage's command takes the JSON.
    res = runner.invoke(
        cli,
        [
            "gate",
            str(out / "score" / "quiet" / "en"),
            str(tmp_path / "gated"),
            f"calibrated={out / 'gate.json'}",
        ],
    )
    assert res.exit_code == 0, res.output
    from lhotse_triplets.engine import read_cuts

    gated = list(read_cuts(tmp_path / "gated"))
    assert len(gated) == 6
    assert {c.custom[fields.REJECT_REASON] for c in gated} == {CALIBRATED_REASON}


def test_pipeline_gate_uses_the_calibrated_json(tmp_path):
    from lhotse_triplets.config import load_config
    from lhotse_triplets.engine import read_cuts
    from lhotse_triplets.pipeline import run_pipeline
    from lhotse_triplets.transforms.gate import GATE_FORMAT

    spec = {
        "format": GATE_FORMAT,
        "features": [fields.MOS],
        "scaler": {"mean": [0.0], "scale": [1.0]},
        "coefficients": [1.0],
        "intercept": -2.0,  # P(good) = sigmoid(mos - 2)
        "threshold": 0.9,  # needs MOS > 4.2: the dummy voices reach ~2.4
    }
    (tmp_path / "gate.json").write_text(json.dumps(spec))
    cfg = load_config(
        overrides=[
            "languages=[en]",
            "prepare.options.num_conversations=2",
            "synthesize.tts.default.name=dummy",
            "score.asr.name=dummy",
            "score.embed.name=dummy",
            "score.mos.name=dummy",
            f"gate.calibrated={tmp_path / 'gate.json'}",
            "export.formats=[triplets]",
        ]
    )
    summary = run_pipeline(cfg, tmp_path / "run", progress=False, until="gate")
    gated = list(read_cuts(tmp_path / "run" / "gate"))
    assert gated and summary.kept == 0 and summary.rejected == {CALIBRATED_REASON: len(gated)}
    for cut in gated:
        p = 1 / (1 + np.exp(-(cut.custom[fields.MOS] - 2.0)))
        assert cut.custom[fields.GATE_SCORE] == pytest.approx(p, abs=1e-4)
