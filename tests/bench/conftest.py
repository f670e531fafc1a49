import json

import pytest

from lhotse_triplets.config import (
    BackendConfig,
    BenchConfig,
    BenchEngineConfig,
    GateConfig,
    ScoreConfig,
)


def write_prompts(directory, n: int = 6) -> None:
    """English prompts in the tts_inputs format, French ones in the {sid, text} format."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "tts_inputs_en.jsonl").open("w") as f:
        for i in range(n):
            item = {"uid": f"{i:06d}", "lang": "en", "text": f"<image>\nHow many cubes, {i}?"}
            f.write(json.dumps(item) + "\n")
    with (directory / "fr.jsonl").open("w") as f:
        for i in range(n):
            f.write(json.dumps({"sid": f"q{i}", "text": f"Combien de cubes, {i} ?"}) + "\n")


def dummy_bench_config(prompt_dir, **kwargs) -> BenchConfig:
    """Two dummy engines: ``loud`` (kept by the gate) and ``quiet`` (low dummy MOS)."""
    dummy = BackendConfig("dummy")
    defaults = dict(
        languages=["en", "fr"],
        prompt_dir=str(prompt_dir),
        prompts_per_language=6,
        voices_per_prompt=1,
        engines=[
            BenchEngineConfig("dummy", {"num_voices": 3}, label="loud"),
            BenchEngineConfig("dummy", {"num_voices": 2, "amplitude": 0.02}, label="quiet"),
        ],
        score=ScoreConfig(asr=dummy, embed=dummy, mos=dummy),
        gate=GateConfig(min_mos=2.0),
        shard_size=4,
    )
    defaults.update(kwargs)
    return BenchConfig(**defaults)


@pytest.fixture
def prompt_dir(tmp_path):
    d = tmp_path / "prompts"
    write_prompts(d)
    return d
