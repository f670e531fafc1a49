"""The whole pipeline and the CLI on the sample corpus with the dummy backends (fast)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.bin.cli import cli
from lhotse_triplets.config import load_config
from lhotse_triplets.engine import read_cuts
from lhotse_triplets.pipeline import run_pipeline

DUMMY = {
    "languages": ["en", "fr", "ja"],
    "prepare": {"recipe": "sample", "options": {"num_conversations": 5}},
    "synthesize": {"tts": {"default": {"name": "dummy"}}, "voices_per_prompt": 2},
    "score": {"asr": {"name": "dummy"}, "embed": {"name": "dummy"}, "mos": {"name": "dummy"}},
    "gate": {"min_similarity": 0.9, "max_error_rate": 0.1, "min_mos": 2.0},
    "export": {"formats": ["shar", "triplets", "nemo_config"]},
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


def test_unknown_config_key_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("synthesize:\n  voices_per_promt: 2\n")
    result = CliRunner().invoke(cli, ["run", str(path), "-o", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "voices_per_promt" in result.output


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["prepare"],
        ["prepare", "llava-instruct"],
        ["prepare", "sample"],
        ["rephrase"],
        ["synthesize"],
        ["score"],
        ["gate"],
        ["export"],
        ["export", "shar"],
        ["export", "triplets"],
        ["export", "nemo"],
        ["export", "triplet-files"],
        ["export", "hf"],
        ["export", "duplex"],
        ["export", "report"],
        ["bench"],
        ["bench", "run"],
        ["bench", "label"],
        ["bench", "calibrate"],
        ["bench", "select"],
        ["voices"],
        ["run"],
    ],
)
def test_help_everywhere(command):
    result = CliRunner().invoke(cli, command + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_cli_stage_by_stage(tmp_path):
    runner = CliRunner()

    def ok(*args):
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    ok("prepare", "sample", tmp_path / "p", "-n", 3)
    manifest = tmp_path / "p" / "llava_instruct_cuts_train.jsonl.gz"
    ok("rephrase", manifest, tmp_path / "r", "-l", "en,zh", "--shard-size", 2)
    ok("synthesize", tmp_path / "r", tmp_path / "s", "-t", "default=dummy", "-n", 2)
    ok(
        "score",
        tmp_path / "s",
        tmp_path / "q",
        "--asr",
        "dummy",
        "--embed",
        "dummy",
        "--mos",
        "dummy",
    )
    out = ok("gate", tmp_path / "q", tmp_path / "g", "--min-mos", 2.0)
    assert "failed" in out
    ok("export", "shar", tmp_path / "g", tmp_path / "e")
    ok("export", "triplets", tmp_path / "g", tmp_path / "t.csv")
    n = sum(1 for _ in read_cuts(tmp_path / "g"))
    assert len(CutSet.from_shar(in_dir=tmp_path / "e" / "shar")) == n > 0
    assert len((tmp_path / "t.csv").read_text().splitlines()) == n + 1
    # Every export format the README lists, from the CLI, on the same gated cuts.
    kept = sum(1 for c in read_cuts(tmp_path / "g") if not c.custom.get(fields.REJECT_REASON))
    ok("export", "nemo", tmp_path / "g", tmp_path / "n", "-w", "en=2")
    assert (tmp_path / "n" / "nemo_data.yaml").is_file()
    assert sorted(p.name for p in (tmp_path / "n").iterdir() if p.is_dir()) == ["en", "zh"]
    ok("export", "triplet-files", tmp_path / "g", tmp_path / "f")
    assert len(list((tmp_path / "f").glob("*/*/*.wav"))) == kept
    ok("export", "hf", tmp_path / "g", tmp_path / "h")
    assert (tmp_path / "h" / "README.md").is_file()
    ok("export", "duplex", tmp_path / "g", tmp_path / "d", "--tts", "dummy")
    assert CutSet.from_shar(in_dir=tmp_path / "d")
    ok("export", "report", tmp_path / "g", tmp_path / "rep")
    assert f"{kept} clips kept" in (tmp_path / "rep" / "report.md").read_text()
    # Rerunning a stage command resumes: nothing is redone, nothing duplicated.
    again = ok("synthesize", tmp_path / "r", tmp_path / "s", "-t", "default=dummy", "-n", 2)
    assert "already done" in again
    assert sum(1 for _ in read_cuts(tmp_path / "s")) == n


def test_backend_options_reach_the_backend(tmp_path):
    runner = CliRunner()
    runner.invoke(
        cli, ["prepare", "sample", str(tmp_path / "p"), "-n", "1"], catch_exceptions=False
    )
    manifest = tmp_path / "p" / "llava_instruct_cuts_train.jsonl.gz"
    result = runner.invoke(
        cli,
        [
            "synthesize",
            str(manifest),
            str(tmp_path / "s"),
            "-t",
            "default=dummy",
            "-O",
            "num_voices=2",
            "-n",
            "5",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    voices = {c.supervisions[0].speaker for c in read_cuts(tmp_path / "s")}
    assert voices == {"v0", "v1"}  # 5 asked, the engine was built with 2
    bad = runner.invoke(cli, ["synthesize", str(manifest), str(tmp_path / "x"), "-O", "novalue"])
    assert bad.exit_code != 0 and "KEY=VALUE" in bad.output


def test_run_until_stops_after_a_stage(config_path, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["run", str(config_path), "-o", str(out), "--until", "synthesize"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert (out / "synthesize").is_dir()
    assert not (out / "score").exists() and not (out / "export").exists()


def test_export_shar_question_and_rejected_flags(tmp_path):
    runner = CliRunner()

    def ok(*args):
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    ok("prepare", "sample", tmp_path / "p", "-n", 2)
    ok("rephrase", tmp_path / "p" / "llava_instruct_cuts_train.jsonl.gz", tmp_path / "r")
    ok("synthesize", tmp_path / "r", tmp_path / "s", "-t", "default=dummy")
    ok(
        "score",
        tmp_path / "s",
        tmp_path / "q",
        "--asr",
        "dummy",
        "--embed",
        "dummy",
        "--mos",
        "dummy",
    )
    ok("gate", tmp_path / "q", tmp_path / "g", "--min-mos", 4.9)  # dummy MOS ~2.4: all rejected
    n = sum(1 for _ in read_cuts(tmp_path / "g"))
    ok("export", "shar", tmp_path / "g", tmp_path / "none")
    assert not list((tmp_path / "none" / "shar").glob("cuts.*"))
    ok("export", "shar", tmp_path / "g", tmp_path / "all", "--include-rejected", "--question", "")
    shar = list(CutSet.from_shar(in_dir=tmp_path / "all" / "shar"))
    assert len(shar) == n > 0
    assert {c.custom[fields.QUESTION] for c in shar} == {""}
