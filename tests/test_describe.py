"""``describe`` of a run folder gives the run summary's numbers; ``describe --json`` too."""

import json

from click.testing import CliRunner

from lhotse_triplets.bin.describe_cmds import describe as describe_cmd
from lhotse_triplets.describe import describe
from tests.browse.test_records import make_run


def test_describe_of_a_run_equals_its_summary(tmp_path):
    run = make_run(tmp_path)
    (run / "failed.jsonl").write_text(
        '{"cut_id": "x-t0", "stage": "synthesize", "reason": "tts_failed: boom"}\n'
    )  # a failure as the run would log it; the summary counts the same way
    summary = json.loads((run / "summary.json").read_text())
    summary["failed"] = {"synthesize: tts_failed: boom": 1}
    d = describe(run)
    assert d.rejected_cuts > 0 and d.kept > 0
    assert d.kept == summary["kept"] and d.rejected_cuts == summary["rejected_cuts"]
    assert d.rejected == summary["rejected"] and d.failed == summary["failed"]
    for lang, voices in summary["hours"].items():
        for voice, h in voices.items():
            assert d.hours[lang][voice]["cuts"] == h["cuts"]
            assert abs(d.hours[lang][voice]["hours"] - h["hours"]) < 1e-9
    assert set(d.hours) == set(summary["hours"])
    assert set(d.durations) == {"p5", "p25", "p50", "p75", "p95"} and "mos" in d.scores
    assert "kept" in str(d) and "language" in str(d)

    result = CliRunner().invoke(describe_cmd, [str(run), "--json"])
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.output)
    assert numbers["kept"] == summary["kept"] and numbers["rejected"] == summary["rejected"]
    assert CliRunner().invoke(describe_cmd, ["--help"]).exit_code == 0
