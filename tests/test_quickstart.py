"""The quick-start config on a few prompts with the real offline models (slow)."""

import json

import pytest
from click.testing import CliRunner
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.bin.cli import cli
from lhotse_triplets.config import load_config
from lhotse_triplets.summary import Summary


@pytest.mark.slow
def test_quickstart_config_with_real_models(quickstart_run, tmp_path):
    # The README's quick-start command, on 2 conversations instead of 6 (tests/conftest.py).
    run_dir, output = quickstart_run
    assert "kept:" in output and "| language" in output
    cfg = load_config("configs/quickstart.yaml")
    summary = Summary(**json.loads((run_dir / "summary.json").read_text()))
    n_prompts = summary.prompts
    assert n_prompts >= 2
    gated = summary.kept + summary.rejected_cuts
    assert gated == n_prompts * len(cfg.languages)
    assert set(summary.means) == set(cfg.languages)
    for language, means in summary.means.items():
        assert 0.0 <= means[fields.SIMILARITY] <= 1.0, (language, means)
        assert means[fields.ERROR_RATE] >= 0.0, (language, means)
        assert 1.0 <= means[fields.MOS] <= 5.0, (language, means)
    # Kokoro's English is what Whisper base understands best: it must come through clean.
    en = summary.means["en"]
    assert en[fields.SIMILARITY] > 0.8 and en[fields.ERROR_RATE] < 0.2, en
    assert summary.kept > 0
    shar = list(CutSet.from_shar(in_dir=run_dir / "export" / "shar"))
    assert len(shar) == summary.kept
    for cut in shar:
        assert cut.custom[fields.ANSWER]
        assert cut.load_audio().shape[1] / cut.sampling_rate == pytest.approx(
            cut.duration, abs=0.01
        )
    # Every export of the quick start validates, and so do the other formats of its gated cuts
    # (the checks themselves, and broken copies of each, are in tests/validate).
    result = CliRunner().invoke(cli, ["validate", str(run_dir), "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(t["kind"] for t in report["targets"]) == ["nemo", "shar", "triplets"]
    more = tmp_path / "more"
    for fmt, options in [
        ("hf", []),
        ("triplet_files", []),
        ("ttt", []),
        ("duplex", ["duplex_tts=kokoro"]),
    ]:
        args = ["export", fmt, str(run_dir / "gate"), str(more), *options]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["validate", str(more), "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    kinds = sorted(t["kind"] for t in json.loads(result.stdout)["targets"])
    assert kinds == ["duplex", "hf", "triplet_files", "ttt"]
