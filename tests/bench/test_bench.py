"""bench run / report / select on dummy engines (fast), and the selection in the pipeline."""

import csv
import json
from collections import Counter

import pytest
import yaml
from click.testing import CliRunner

from lhotse_triplets import fields
from lhotse_triplets.bench.prompts import clean_prompt, load_prompts
from lhotse_triplets.bench.report import collect_clips, write_report
from lhotse_triplets.bench.run import rotate_voices, run_bench
from lhotse_triplets.bench.select import select_engines
from lhotse_triplets.bin.cli import cli
from lhotse_triplets.config import BenchEngineConfig, load_config
from lhotse_triplets.engine import read_cuts
from lhotse_triplets.selection import read_selection
from lhotse_triplets.testing import REFERENCE_DATA
from lhotse_triplets.transforms.synthesize import Synthesize

from .conftest import dummy_bench_config


def test_load_prompts_both_formats(prompt_dir):
    en = load_prompts(prompt_dir / "tts_inputs_en.jsonl", "en", limit=4)
    assert en[0] == ("000000", "How many cubes, 0?") and len(en) == 4
    fr = load_prompts(prompt_dir / "fr.jsonl", "fr")
    assert fr[-1] == ("q5", "Combien de cubes, 5 ?")
    assert clean_prompt("<image>\nWhat <IMAGE> is it?") == "What is it?"


def test_load_prompts_errors_name_the_line(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"uid": "1", "text": "a"}\n{"uid": "2"}\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2: needs"):
        load_prompts(bad, "en")
    bad.write_text('{"uid": "1", "lang": "de", "text": "a"}\n')
    with pytest.raises(ValueError, match="lang is 'de', expected 'en'"):
        load_prompts(bad, "en")


@pytest.mark.skipif(not REFERENCE_DATA.is_dir(), reason="no reference data")
def test_reference_prompt_sets_have_60_clean_prompts_per_language():
    for lang in ("en", "fr", "de", "ja", "zh"):
        prompts = load_prompts(REFERENCE_DATA / "tts_inputs" / f"tts_inputs_{lang}.jsonl", lang, 60)
        assert len(prompts) == 60 and len({p for p, _ in prompts}) == 60
        assert not any("<image>" in t or not t for _, t in prompts)


def test_rotate_voices_cycles():
    assert rotate_voices(4, ["a", "b", "c"], 1) == [["a"], ["b"], ["c"], ["a"]]
    assert rotate_voices(2, ["a", "b", "c"], 2) == [["a", "b"], ["b", "c"]]
    assert rotate_voices(2, ["a", "b"], 0) == [["a", "b"], ["a", "b"]]


def test_bench_run_tables_resume_and_extend(tmp_path, prompt_dir):
    out = tmp_path / "bench"
    cfg = dummy_bench_config(prompt_dir)
    result = run_bench(cfg, out, progress=False)
    assert {c["cell"] for c in result.cells} == {"loud/en", "loud/fr", "quiet/en", "quiet/fr"}
    clips, failures = collect_clips(out)
    assert len(clips) == 24 and failures == []
    # Voices rotate: each of loud's 3 voices speaks 2 of the 6 English prompts.
    loud_en = [c for c in clips if c["engine"] == "loud" and c["language"] == "en"]
    assert Counter(c["voice"] for c in loud_en) == {"v0": 2, "v1": 2, "v2": 2}
    assert all(c["cut_id"] == f"loud-en-{c['prompt_id']}-{c['voice']}" for c in loud_en)
    row = loud_en[0]
    assert row["similarity"] == 1.0 and row["good"] == 1 and row["rtf"] is not None
    assert row["chars_per_second"] == pytest.approx(
        len("howmanycubes0") / row["duration"], abs=0.01
    )
    # Tables: best first, the quiet engine rejected for low MOS.
    with (out / "tables" / "en_engines.csv").open() as f:
        engines = list(csv.DictReader(f))
    assert [e["engine"] for e in engines] == ["loud", "quiet"]
    assert float(engines[0]["good_ratio"]) == 1.0 and float(engines[1]["good_ratio"]) == 0.0
    md = (out / "tables" / "fr.md").read_text()
    assert "per engine × voice" in md and "| loud     | v0" in md
    assert (out / "plots" / "good_ratio.png").stat().st_size > 5000
    assert (out / "plots" / "similarity_vs_mos.png").stat().st_size > 5000

    # Rerun: everything resumes, nothing is redone.
    again = run_bench(cfg, out, progress=False)
    assert all(c["resumed_shards"] > 0 and c["in"] == 6 for c in again.cells)
    # Extend with a third engine: only its cells run.
    cfg.engines.append(
        BenchEngineConfig("dummy", {"num_voices": 1}, label="solo", languages=["en"])
    )
    extended = run_bench(cfg, out, progress=False)
    fresh = [c for c in extended.cells if c["resumed_shards"] == 0]
    assert {c["cell"] for c in fresh} == {"solo/en"}
    assert len(collect_clips(out)[0]) == 30
    # Changing an existing cell's prompts is refused.
    cfg.prompts_per_language = 3
    with pytest.raises(ValueError, match="another grid"):
        run_bench(cfg, out, progress=False)


def test_bench_failures_are_recorded_and_count_against_the_engine(tmp_path, prompt_dir):
    with (prompt_dir / "tts_inputs_en.jsonl").open("a") as f:
        f.write(json.dumps({"uid": "999", "lang": "en", "text": "please FAIL here"}) + "\n")
    cfg = dummy_bench_config(prompt_dir, prompts_per_language=7, languages=["en"])
    run_bench(cfg, tmp_path / "b", progress=False)
    clips, failures = collect_clips(tmp_path / "b")
    assert {(f["engine"], f["prompt_id"], f["stage"]) for f in failures} == {
        ("loud", "loud-en-999", "synthesize"),
        ("quiet", "loud-en-999".replace("loud", "quiet"), "synthesize"),
    }
    assert all("asked to fail" in f["reason"] for f in failures)
    info = write_report(tmp_path / "b", plots=False)
    loud = info["tables"]["en"]["engines"][0]
    assert (loud["good"], loud["clips"], loud["failed"]) == (6, 6, 1)
    assert loud["good_ratio"] == pytest.approx(6 / 7)


def test_bench_rejects_unknown_voice_and_language(tmp_path, prompt_dir):
    cfg = dummy_bench_config(prompt_dir)
    cfg.engines[0].voices = {"en": ["v0", "nope"]}
    with pytest.raises(ValueError, match=r"no voices \['nope'\] for 'en'"):
        run_bench(cfg, tmp_path / "b", progress=False)
    cfg = dummy_bench_config(prompt_dir)
    cfg.engines[0].options = {"languages": ["en"]}
    cfg.engines[0].languages = ["fr"]
    with pytest.raises(ValueError, match=r"does not speak \['fr'\]"):
        run_bench(cfg, tmp_path / "c", progress=False)


def test_select_best_engine_and_voices_and_synthesize_reads_it(tmp_path, prompt_dir):
    out = tmp_path / "bench"
    run_bench(dummy_bench_config(prompt_dir), out, progress=False, report=False)
    selection = select_engines(out, tmp_path / "selection.yaml", top_k=2)
    en = selection["languages"]["en"]
    assert en["label"] == "loud" and en["engine"] == "dummy"
    assert en["options"] == {"num_voices": 3} and len(en["voices"]) == 2
    assert en["good_ratio"] == 1.0 and en["runner_up"]["engine"] == "quiet"
    saved = yaml.safe_load((tmp_path / "selection.yaml").read_text())
    assert saved["languages"]["en"] == en and saved["languages"]["fr"]["label"] == "loud"

    choices = read_selection(tmp_path / "selection.yaml")
    stage = Synthesize(None, selection=tmp_path / "selection.yaml")
    assert stage.tts["en"].name == "dummy" and stage.tts["en"].options == {"num_voices": 3}
    assert stage.voices["en"] == choices["en"].voices


def test_select_breaks_ties_by_mos(tmp_path, prompt_dir):
    # Both engines rejected by nothing: equal good ratio, the louder one has the higher MOS.
    cfg = dummy_bench_config(prompt_dir, languages=["en"])
    cfg.gate.min_mos = None
    run_bench(cfg, tmp_path / "b", progress=False, report=False)
    en = select_engines(tmp_path / "b")["languages"]["en"]
    assert en["label"] == "loud" and en["runner_up"]["good_ratio"] == en["good_ratio"]


def test_select_min_voices_prefers_engines_with_enough_voices(tmp_path, prompt_dir):
    cfg = dummy_bench_config(prompt_dir, languages=["en"], prompts_per_language=6)
    cfg.engines[0].options["num_voices"] = 1  # the better engine ("loud") has one voice
    run_bench(cfg, tmp_path / "b", progress=False, report=False)
    assert select_engines(tmp_path / "b")["languages"]["en"]["label"] == "loud"
    en = select_engines(tmp_path / "b", min_voices=2)["languages"]["en"]
    assert en["label"] == "quiet" and en["voices_benchmarked"] == 2
    assert en["runner_up"]["engine"] == "loud"
    # No engine has enough voices: the best one still wins.
    assert select_engines(tmp_path / "b", min_voices=5)["languages"]["en"]["label"] == "loud"


def test_read_selection_errors_name_the_entry(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("languages:\n  en: {voices: [a]}\n")
    with pytest.raises(ValueError, match="languages.en needs an 'engine'"):
        read_selection(path)
    path.write_text("engines: {}\n")
    with pytest.raises(ValueError, match="needs a 'languages:' mapping"):
        read_selection(path)


def test_pipeline_uses_the_selection(tmp_path):
    from lhotse_triplets.pipeline import run_pipeline

    selection = tmp_path / "selection.yaml"
    selection.write_text(
        yaml.safe_dump(
            {
                "languages": {
                    "en": {"engine": "dummy", "options": {"num_voices": 4}, "voices": ["v3"]},
                    "fr": {"engine": "dummy", "voices": ["v1", "v2"]},
                }
            }
        )
    )
    cfg = load_config(
        overrides=[
            "languages=[en,fr]",
            "prepare.options.num_conversations=2",
            "synthesize.tts.default.name=espeak",  # replaced by the selection for en and fr
            f"synthesize.selection={selection}",
            "synthesize.voices_per_prompt=2",
            "score.asr.name=dummy",
            "score.embed.name=dummy",
            "score.mos.name=dummy",
            "export.formats=[triplets]",
        ]
    )
    run_pipeline(cfg, tmp_path / "run", progress=False, until="synthesize")
    cuts = list(read_cuts(tmp_path / "run" / "synthesize"))
    assert cuts
    voices = {(c.supervisions[0].language, c.supervisions[0].speaker) for c in cuts}
    assert {v for lang, v in voices if lang == "en"} == {"v3"}
    assert {v for lang, v in voices if lang == "fr"} == {"v1", "v2"}
    assert {c.custom[fields.TTS_MODEL] for c in cuts} == {"dummy"}


def test_cli_run_report_select(tmp_path, prompt_dir):
    config = tmp_path / "bench.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "languages": ["en"],
                "prompt_dir": str(prompt_dir),
                "prompts_per_language": 3,
                "engines": [{"name": "dummy"}],
                "score": {k: {"name": "dummy"} for k in ("asr", "embed", "mos")},
                "gate": {"min_mos": 2.0},
            }
        )
    )
    runner = CliRunner()
    res = runner.invoke(cli, ["bench", "run", str(config), "-o", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "### en" in res.output and "clips: 3   good: 3" in res.output
    res = runner.invoke(cli, ["bench", "report", str(tmp_path / "b"), "--no-plots"])
    assert res.exit_code == 0 and "| dummy    | 1.000" in res.output
    res = runner.invoke(
        cli, ["bench", "select", str(tmp_path / "b"), "-o", str(tmp_path / "s.yaml")]
    )
    assert res.exit_code == 0, res.output
    assert "en: dummy  good ratio 1.000" in res.output
    assert read_selection(tmp_path / "s.yaml")["en"].engine == "dummy"
    res = runner.invoke(cli, ["bench", "run", str(config), "-o", str(tmp_path / "c"), "engines=[]"])
    assert res.exit_code != 0 and "lists no engines" in res.output
    for cmd in ("run", "report", "label", "calibrate", "select"):
        assert runner.invoke(cli, ["bench", cmd, "--help"]).exit_code == 0


def test_cli_synthesize_with_selection(tmp_path):
    from lhotse import CutSet

    from lhotse_triplets.testing.cuts import dummy_prompt_cuts
    from lhotse_triplets.transforms.rephrase import Rephrase

    cuts = Rephrase(["en"]).apply(dummy_prompt_cuts(3)).to_eager()
    CutSet.from_cuts(cuts).to_file(tmp_path / "in.jsonl.gz")
    (tmp_path / "s.yaml").write_text("languages:\n  en: {engine: dummy, voices: [v4]}\n")
    res = CliRunner().invoke(
        cli,
        [
            "synthesize",
            str(tmp_path / "in.jsonl.gz"),
            str(tmp_path / "out"),
            f"selection={tmp_path / 's.yaml'}",
        ],
    )
    assert res.exit_code == 0, res.output
    out = list(read_cuts(tmp_path / "out"))
    assert len(out) == 3 and {c.supervisions[0].speaker for c in out} == {"v4"}
    (tmp_path / "bad.yaml").write_text("languages:\n  en: {voices: [v4]}\n")
    res = CliRunner().invoke(
        cli,
        [
            "synthesize",
            str(tmp_path / "in.jsonl.gz"),
            str(tmp_path / "o2"),
            f"selection={tmp_path / 'bad.yaml'}",
        ],
    )
    assert res.exit_code != 0 and "languages.en needs an 'engine'" in res.output
