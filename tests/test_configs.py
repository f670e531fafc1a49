"""Every YAML config the project ships loads against the schema and names known backends."""

from pathlib import Path

import pytest
import yaml

from lhotse_triplets.backends import available
from lhotse_triplets.config import (
    ISO_639_1,
    ConfigError,
    PipelineConfig,
    load_config,
    to_yaml,
    validate_config,
)
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


@pytest.mark.parametrize("path", CONFIGS + BENCH_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_configs_pass_preflight(path, tmp_path, monkeypatch):
    """Names, options, voices and files of every shipped config check out (paths in them are
    relative to the repository root, where the commands run)."""
    from lhotse_triplets.config import BenchConfig
    from lhotse_triplets.preflight import preflight

    monkeypatch.chdir(ROOT)
    cfg = load_config(path, schema=BenchConfig if path in BENCH_CONFIGS else PipelineConfig)
    try:
        preflight(cfg, tmp_path / "out")
    except ImportError as e:  # an optional engine not installed here
        pytest.skip(str(e))
    assert not (tmp_path / "out").exists()  # checked, not created


def test_origins_name_file_override_or_default(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("shard_size: 0\nsynthesize: {voices: {en: [a, b]}}\n")
    with pytest.raises(ConfigError, match=rf"^shard_size: must be >= 1 \(got 0, from {path}\)$"):
        load_config(path)
    message = r"\(got 0, from override shard_size=0\)$"
    with pytest.raises(ConfigError, match=message):
        load_config(path, ["shard_size=5", "shard_size=0"])  # the last override setting it
    cfg = load_config(path, ["shard_size=5", "synthesize.voices.en=[c]"])
    origins = cfg._origins
    assert origins.of("shard_size") == "from override shard_size=5"
    assert origins.of("synthesize.voices.en[0]") == "from override synthesize.voices.en=[c]"
    assert origins.of("synthesize") == "from override synthesize.voices.en=[c]"
    assert origins.of("gate.min_mos") == "default value"
    assert load_config(path, ["shard_size=5"])._origins.of("synthesize.voices.en") == (
        f"from {path}"
    )


def test_every_problem_is_counted_and_the_first_named():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["shard_size=0", "engine.num_workers=0", "languages=[xx]"])
    assert str(e.value).startswith("shard_size: must be >= 1 (got 0, from override shard_size=0)")
    assert str(e.value).endswith("; 2 more: engine.num_workers, languages[0]")


def test_configs_made_in_code_are_checked_too():
    cfg = PipelineConfig(shard_size=0)
    with pytest.raises(ConfigError, match=r"^shard_size: must be >= 1 \(got 0\)$"):
        validate_config(cfg)
    validate_config(PipelineConfig())
    assert ISO_639_1 >= {"en", "fr", "de", "ja", "zh", "ko", "yo"} and len(ISO_639_1) == 184
    assert "xx" not in ISO_639_1 and "eng" not in ISO_639_1


def test_iso_list_matches_the_hubs():
    """The written-out ISO 639-1 list is the Hub's two-letter codes (``datasets``), less the
    deprecated ``bh``."""
    import importlib.util
    import json

    spec = importlib.util.find_spec("datasets")
    if spec is None:
        pytest.skip("datasets is not installed")
    path = Path(spec.origin).parent / "utils" / "resources" / "languages.json"
    hub = {code for code in json.loads(path.read_text()) if len(code) == 2}
    assert ISO_639_1 == hub - {"bh"}


def test_config_yaml_holds_no_secret_nor_reference(tmp_path):
    cfg = load_config(
        None,
        [
            "synthesize.tts.default.name=openai_speech",
            "synthesize.tts.default.options.api_key=sk-SECRET-123",
            "synthesize.tts.fr.name=cosyvoice",
            "synthesize.tts.fr.options.references.anna.audio=/refs/anna.wav",
            "synthesize.tts.fr.options.references.anna.text=Bonjour Anna ici",
            "score.asr.options.token=hf_TOKEN",
        ],
    )
    text = to_yaml(cfg)
    for secret in ("sk-SECRET-123", "/refs/anna.wav", "Bonjour Anna ici", "hf_TOKEN"):
        assert secret not in text
    assert "<redacted>" in text and "<reference sha1:" in text
    again = yaml.safe_load(text)
    assert again["synthesize"]["tts"]["default"]["options"]["api_key"] == "<redacted>"
    assert again["shard_size"] == cfg.shard_size  # the rest is as it was
