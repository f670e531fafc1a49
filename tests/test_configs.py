"""Every YAML config the project ships loads against the schema and names known backends."""

from pathlib import Path

import pytest

from lhotse_triplets.backends import available
from lhotse_triplets.config import load_config
from lhotse_triplets.engine import available_executors
from lhotse_triplets.export import available_formats
from lhotse_triplets.recipes import RECIPES

ROOT = Path(__file__).resolve().parents[1]
#: TTS benchmark grids (configs/bench*.yaml) follow BenchConfig, not the pipeline schema.
BENCH_CONFIGS = sorted(ROOT.glob("configs/bench*.yaml"))
CONFIGS = [
    p
    for p in sorted(ROOT.glob("configs/*.yaml")) + sorted(ROOT.glob("recipes/*/config.yaml"))
    if p not in BENCH_CONFIGS
]


def test_there_are_configs():
    assert any(p.name == "quickstart.yaml" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_is_valid(path):
    cfg = load_config(path)
    assert cfg.prepare.recipe in RECIPES
    assert set(cfg.export.formats) <= set(available_formats())
    assert cfg.engine.name in available_executors()
    assert cfg.rephrase.backend.name in available("llm")
    assert all(b.name in available("tts") for b in cfg.synthesize.tts.values())
    for kind in ("asr", "embed", "mos"):
        backend = getattr(cfg.score, kind)
        assert backend is None or backend.name in available(kind)


@pytest.mark.parametrize("path", BENCH_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_bench_config_is_valid(path):
    from lhotse_triplets.config import BenchConfig

    cfg = load_config(path, schema=BenchConfig)
    assert cfg.engine.name in available_executors()
    assert cfg.engines and all(e.name in available("tts") for e in cfg.engines)
    for kind in ("asr", "embed", "mos"):
        backend = getattr(cfg.score, kind)
        assert backend is None or backend.name in available(kind)


def test_overrides_and_bad_values_are_reported():
    cfg = load_config(CONFIGS[0], ["synthesize.voices_per_prompt=3", "languages=[en]"])
    assert cfg.synthesize.voices_per_prompt == 3 and cfg.languages == ["en"]
    with pytest.raises(ValueError, match="voices_per_prompt"):
        load_config(CONFIGS[0], ["synthesize.voices_per_prompt=many"])
    with pytest.raises(ValueError, match="english"):
        load_config(CONFIGS[0], ["languages=[english]"])
