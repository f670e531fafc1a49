"""The whole pipeline and the CLI on the sample corpus with the dummy backends (fast)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.config import load_config
from lhotse_triplets.engine import read_cuts
from lhotse_triplets.pipeline import run_pipeline

DUMMY = {
    "languages": ["en", "fr", "ja"],
    "prepare": {"recipe": "sample", "options": {"num_conversations": 5}},
    "synthesize": {"tts": {"default": {"name": "dummy"}}, "voices_per_prompt": 2},
    "score": {"asr": {"name": "dummy"}, "embed": {"name": "dummy"}, "mos": {"name": "dummy"}},
    "gate": {"min_similarity": 0.9, "max_error_rate": 0.1, "min_mos": 2.0},
    "export": {"formats": ["shar", "triplets"]},
    "shard_size": 3,
}


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "dummy.yaml"
    path.write_text(yaml.safe_dump(DUMMY))
    return path


def test_run_end_to_end(config_path, tmp_path):
    out = tmp_path / "run"
    summary = run_pipeline(load_config(config_path), out, progress=False)
    prompts = list(read_cuts(out / "prompts"))
    assert summary.prompts == len(prompts) > 5  # some conversations have two user turns
    expected = len(prompts) * 3 * 2  # languages x voices
    assert summary.kept == expected and not summary.failed and not summary.rejected
    assert set(summary.hours) == {"en", "fr", "ja"}
    assert sum(v["cuts"] for lang in summary.hours.values() for v in lang.values()) == expected
    shar = CutSet.from_shar(in_dir=out / "export" / "shar")
    by_id = {c.id: c for c in shar}
    assert len(by_id) == expected
    sources = {c.id: c for c in prompts}
    for cut_id, cut in by_id.items():
        prompt_id = cut_id.rsplit("-", 2)[0]
        assert cut.custom[fields.ANSWER] == sources[prompt_id].custom[fields.ANSWER]
    lines = (out / "export" / "triplets.jsonl").read_text().splitlines()
    assert len(lines) == expected
    assert (out / "export" / "nemo_data.yaml").is_file()
    assert json.loads((out / "summary.json").read_text())["kept"] == expected
    assert "kept: " + str(expected) in str(summary)
    # Where every spoken text came from is counted (the dummy rephraser's rewrites all pass).
    assert sum(summary.rephrase["text_from"].values()) == len(prompts) * 3
    assert "rephrase: text from" in str(summary)
    # The reading-side example a trainer starts from works on the export.
    example = Path(__file__).resolve().parents[1] / "examples" / "read_triplets.py"
    shown = subprocess.run(
        [sys.executable, str(example), str(out / "export" / "shar")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "image (320, 240)" in shown and "target:" in shown


def test_rerun_resumes_and_bad_items_are_recorded(config_path, tmp_path):
    out = tmp_path / "run"
    cfg = load_config(config_path, ["languages=[en,fr,de]"])
    first = run_pipeline(cfg, out, progress=False)
    second = run_pipeline(cfg, out, progress=False)
    assert all(s["resumed_shards"] > 0 for s in second.stages)
    assert second.kept == first.kept
    ids = [c.id for c in read_cuts(out / "gate")]
    assert len(ids) == len(set(ids))


def test_failures_land_in_failed_jsonl(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    rows = [
        {
            "id": "good",
            "conversations": [
                {"role": "user", "content": "<image>\nWhat is it?"},
                {"role": "assistant", "content": "A cube."},
            ],
        },
        {
            "id": "empty",
            "conversations": [
                {"role": "user", "content": "<image>"},
                {"role": "assistant", "content": "A cube."},
            ],
        },
        {
            "id": "fail",
            "conversations": [
                {"role": "user", "content": "Please FAIL now"},
                {"role": "assistant", "content": "No."},
            ],
        },
    ]
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    cfg = dict(
        DUMMY,
        languages=["en"],
        prepare={"recipe": "llava_instruct", "options": {"source": str(corpus)}},
    )
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    summary = run_pipeline(load_config(path), out, progress=False)
    failed = [json.loads(line) for line in (out / "failed.jsonl").read_text().splitlines()]
    stages = {f["cut_id"].split("-")[0]: f["stage"] for f in failed}
    assert stages == {"empty": "prepare", "line": "prepare", "fail": "synthesize"}
    assert summary.kept == 2  # "good" in 2 voices
    assert [
        c.custom[fields.CONVERSATION_ID] for c in CutSet.from_shar(in_dir=out / "export" / "shar")
    ] == ["good", "good"]
