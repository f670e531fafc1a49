"""A control set whose truth is known: clean clips vs noisy, silent, truncated and mismatched
copies, spoken by espeak-ng and scored by the real Whisper base / USE / DistillMOS. A gate
calibrated on half of the prompts must separate the other half."""

import shutil

import numpy as np
import pytest
from lhotse import CutSet

from lhotse_triplets.backends import BackendSpec
from lhotse_triplets.bench.calibrate import calibrate_gate
from lhotse_triplets.bench.control import VARIANTS, build_control_set
from lhotse_triplets.bench.prompts import load_prompts
from lhotse_triplets.cuts import make_prompt_cut
from lhotse_triplets.testing import REFERENCE_DATA
from lhotse_triplets.transforms.gate import Gate, clip_features
from lhotse_triplets.transforms.score import Score
from lhotse_triplets.transforms.synthesize import Synthesize

NUM_PROMPTS = 10


def test_control_set_variants(tmp_path):
    from lhotse_triplets.testing.cuts import dummy_prompt_cuts
    from lhotse_triplets.transforms.rephrase import Rephrase

    language_cuts = Rephrase(["en"]).apply(dummy_prompt_cuts(2))
    spoken = Synthesize({"default": BackendSpec("tts", "dummy")}, audio_dir=tmp_path / "a")
    cuts, labels = build_control_set(list(spoken.apply(language_cuts)), tmp_path / "c")
    assert len(cuts) == 10 and sum(labels.values()) == 2
    by_id = {c.id: c for c in cuts}
    clean = by_id[next(k for k in labels if k.endswith("-clean"))]
    base = clean.id[: -len("-clean")]
    assert np.all(by_id[f"{base}-silence"].load_audio() == 0)
    assert by_id[f"{base}-truncated"].duration == pytest.approx(0.4 * clean.duration, abs=0.01)
    assert by_id[f"{base}-other_prompt"].supervisions[0].text == clean.supervisions[0].text
    assert by_id[f"{base}-other_prompt"].duration != clean.duration


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_calibrated_gate_separates_held_out_control_clips(tmp_path):
    path = REFERENCE_DATA / "tts_inputs" / "tts_inputs_en.jsonl"
    if not path.is_file():
        pytest.skip(f"no reference data at {path}")
    prompts = load_prompts(path, "en", limit=NUM_PROMPTS)
    cuts = CutSet.from_cuts(make_prompt_cut(f"p{pid}-en", t, "en", {}) for pid, t in prompts)
    failures = []
    spoken = Synthesize(
        {"default": BackendSpec("tts", "espeak")}, voices_per_prompt=1, audio_dir=tmp_path / "a"
    ).apply(cuts, on_failure=failures.append)
    control, truth = build_control_set(list(spoken), tmp_path / "control")
    assert not failures and len(control) == NUM_PROMPTS * len(VARIANTS)
    scorer = Score(
        BackendSpec("asr", "faster_whisper", {"model": "base"}),
        BackendSpec("embed", "use_multilingual"),
        BackendSpec("mos", "distillmos"),
        batch_size=10,
    )
    scored = list(scorer.apply(CutSet.from_cuts(control), on_failure=failures.append))
    assert not failures and len(scored) == len(control)

    # Label the clips of the even prompts; hold out the odd ones.
    prompt_ids = [f"p{pid}-en" for pid, _ in prompts]
    train_prompts = set(prompt_ids[::2])

    def prompt_of(cut):
        return next(p for p in prompt_ids if cut.id.startswith(p + "-"))

    train = [c for c in scored if prompt_of(c) in train_prompts]
    held_out = [c for c in scored if prompt_of(c) not in train_prompts]
    rows = [{"cut_id": c.id, **clip_features(c)} for c in train]
    spec = calibrate_gate(rows, {c.id: truth[c.id] for c in train}, target_precision=0.9)

    from sklearn.metrics import roc_auc_score

    gate = Gate(calibrated=spec)
    gated = [gate(c) for c in held_out]
    y = [truth[c.id] for c in gated]
    p = [c.custom["gate_score"] for c in gated]
    auc = roc_auc_score(y, p)
    kept = {c.id for c in gated if c.custom["reject_reason"] is None}
    by_variant = {
        v: float(np.mean([c.custom["similarity"] for c in held_out if c.id.endswith(v)]))
        for v in VARIANTS
    }
    print(
        f"\ncontrol set: {len(train)} labelled, {len(held_out)} held out; held-out AUC {auc:.3f}; "
        f"cross-validated AUC {spec['metrics']['held_out_at_threshold']['auc']:.3f}; "
        f"kept {len(kept)} (clean {sum(y)}); mean similarity by variant {by_variant}"
    )
    assert auc >= 0.95
    # At the chosen threshold, what the gate keeps is (almost all) clean.
    assert sum(truth[k] for k in kept) >= 0.8 * len(kept) and kept


def test_control_bench_cli_then_calibrate(tmp_path, prompt_dir):
    from click.testing import CliRunner

    from lhotse_triplets.bench.run import run_bench
    from lhotse_triplets.bin.cli import cli

    from .conftest import dummy_bench_config

    run_bench(dummy_bench_config(prompt_dir), tmp_path / "b", progress=False, report=False)
    runner = CliRunner()
    args = ["bench", "control", str(tmp_path / "b"), "-o", str(tmp_path / "c"), "-e", "loud"]
    res = runner.invoke(cli, [*args, "-l", "en", "-n", "4"])
    assert res.exit_code == 0, res.output
    assert "labels: " in res.output and "(4 good, 16 bad)" in res.output
    res = runner.invoke(cli, ["bench", "calibrate", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "labels: 20 (4 good, 16 bad), 4-fold" in res.output
    res = runner.invoke(cli, [*args, "-l", "de"])
    assert res.exit_code != 0 and "no synthesized clips of loud/de" in res.output
