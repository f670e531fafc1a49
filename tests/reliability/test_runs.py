"""Runs that go wrong: a torn shard, a changed configuration on rerun, failed items retried, a
stage whose every item fails, an unwritable or full output directory, nothing kept. Every case
ends with one line (no traceback), ``summary.json`` and ``failed.jsonl``, and the right exit
status; the dummy backends keep it fast."""

import errno
import json
import logging
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from lhotse import CutSet

from lhotse_triplets.backends.registry import register
from lhotse_triplets.bin.cli import cli
from lhotse_triplets.config import load_config
from lhotse_triplets.engine import RunError, read_cuts
from lhotse_triplets.errors import ItemError
from lhotse_triplets.pipeline import run_pipeline, step_settings
from lhotse_triplets.testing.backends import DummyTTS
from lhotse_triplets.testing.configs import DUMMY_RUN
from lhotse_triplets.testing.cuts import dummy_prompt_cuts

CONFIG = DUMMY_RUN


def write_config(tmp_path: Path, **changes) -> Path:
    path = tmp_path / f"config-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **changes}))
    return path


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def error_lines(output: str) -> list[str]:
    assert "Traceback" not in output and "Aborted!" not in output, output
    return [line for line in output.splitlines() if line.startswith("Error")]


def triplets(out: Path) -> list[str]:
    return (out / "export" / "triplets.jsonl").read_text().splitlines()


def gate_cuts(out: Path) -> list[tuple[str, str]]:
    return [(c.id, c.supervisions[0].text) for c in read_cuts(out / "gate")]


def num_shards(out: Path) -> int:
    return len(list((out / "prompts").glob("cuts.*.jsonl.gz")))


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.fixture
def finished(tmp_path) -> Path:
    """An uninterrupted run (3 prompt shards)."""
    out = tmp_path / "run"
    code, output = invoke("run", write_config(tmp_path), "-o", out)
    assert code == 0, output
    return out


# --- torn shards ---------------------------------------------------------------------------------


def test_torn_shards_are_redone_naming_the_file(finished, tmp_path, caplog):
    out = finished
    before_triplets, before_gate = triplets(out), gate_cuts(out)
    truncated = out / "synthesize" / "cuts.000001.jsonl.gz"
    truncated.write_bytes(truncated.read_bytes()[:-30])  # end of file lost
    corrupt = out / "prompts" / "cuts.000002.jsonl.gz"
    data = bytearray(corrupt.read_bytes())
    data[-6] ^= 0xFF  # the gzip trailer's CRC no longer matches
    corrupt.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        code, output = invoke("run", write_config(tmp_path), "-o", out)
    assert code == 0 and not error_lines(output), output
    assert f"{truncated} is torn" in caplog.text
    assert f"{corrupt} is torn" in caplog.text
    assert gate_cuts(out) == before_gate
    assert triplets(out) == before_triplets


def test_a_torn_stage_input_is_one_line_naming_it(tmp_path):
    manifest = tmp_path / "in.jsonl.gz"
    CutSet.from_cuts(dummy_prompt_cuts(40)).to_file(manifest)
    manifest.write_bytes(manifest.read_bytes()[:-40])
    code, output = invoke("rephrase", manifest, tmp_path / "r", "embed.name=dummy")
    assert code == 1
    [line] = error_lines(output)
    assert line.startswith(f"Error: cannot read {manifest} to its end: ")


# --- a changed configuration ---------------------------------------------------------------------


def test_changed_config_is_refused_naming_the_keys(finished, tmp_path):
    out = finished
    config_before = (out / "config.yaml").read_text()
    code, output = invoke("run", write_config(tmp_path), "-o", out, "gate.min_mos=4.5")
    assert code == 1
    [line] = error_lines(output)
    assert "gate.min_mos: 2.0 -> 4.5" in line and "--force-recompute gate" in line
    assert (out / "config.yaml").read_text() == config_before  # nothing rewritten
    # An earlier step's change is named too, and forcing a later step is not enough.
    changed = write_config(
        tmp_path, prepare={"recipe": "sample", "options": {"num_conversations": 4}}
    )
    code, output = invoke(
        "run", changed, "-o", out, "gate.min_mos=4.5", "--force-recompute", "gate"
    )
    [line] = error_lines(output)
    assert "prepare.options.num_conversations: 6 -> 4" in line and "gate.min_mos" in line
    assert "--force-recompute prepare" in line
    # engine.* changes no output: the rerun resumes.
    code, output = invoke("run", write_config(tmp_path), "-o", out, "engine.stop_after_failures=3")
    assert code == 0, output
    assert all(row["resumed_shards"] == num_shards(out) == 3 for row in summary_of(out)["stages"])


def test_force_recompute_redoes_that_step_and_later_ones(finished, tmp_path):
    out = finished
    kept_before = summary_of(out)["kept"]
    audio_before = sorted(out.rglob("*.flac"))
    code, output = invoke(
        "run", write_config(tmp_path), "-o", out, "gate.min_mos=4.5", "--force-recompute", "gate"
    )
    assert code == 0, output
    summary = summary_of(out)
    resumed = {row["stage"]: row["resumed_shards"] for row in summary["stages"]}
    assert resumed == {"rephrase": 3, "synthesize": 3, "score": 3, "gate": 0}
    assert (
        kept_before > 0 and summary["kept"] == 0 and summary["rejected"] == {"low_mos": kept_before}
    )
    assert sorted(out.rglob("*.flac")) == audio_before  # synthesize was not redone
    # The new keys are now those of the run: the same command resumes everything.
    code, output = invoke("run", write_config(tmp_path), "-o", out, "gate.min_mos=4.5")
    assert code == 0, output
    assert all(row["resumed_shards"] == num_shards(out) == 3 for row in summary_of(out)["stages"])
    # Forcing synthesize removes the audio it wrote (and only that), then makes it again.
    (out / "audio" / "notes.txt").write_text("mine")
    run_pipeline(
        load_config(write_config(tmp_path), ["gate.min_mos=4.5"]),
        out,
        progress=False,
        force_recompute="synthesize",
    )
    assert (out / "audio" / "notes.txt").read_text() == "mine"
    assert sorted(out.rglob("*.flac")) == audio_before
    assert [row["resumed_shards"] for row in summary_of(out)["stages"]] == [3, 0, 0, 0]


def test_secrets_do_not_count_and_references_do():
    base = step_settings(load_config(overrides=["synthesize.tts.default.options.api_key=sk-1"]))
    other = step_settings(load_config(overrides=["synthesize.tts.default.options.api_key=sk-2"]))
    assert base == other
    assert "sk-1" not in json.dumps(base)
    ref = step_settings(load_config(overrides=["synthesize.tts.default.options.ref_audio=a.wav"]))
    ref2 = step_settings(load_config(overrides=["synthesize.tts.default.options.ref_audio=b.wav"]))
    assert ref["synthesize"] != ref2["synthesize"] and "a.wav" not in json.dumps(ref)
    assert ref["gate"] == ref2["gate"]


def test_the_content_of_files_a_step_reads_counts(tmp_path):
    gate_file = tmp_path / "gate.json"
    gate_file.write_text('{"threshold": 0.5}')
    cfg = load_config(overrides=[f"gate.calibrated={gate_file}"])
    before = step_settings(cfg)
    gate_file.write_text('{"threshold": 0.7}')  # same path, new calibration
    after = step_settings(cfg)
    assert before["gate"] != after["gate"] and before["synthesize"] == after["synthesize"]
    assert "gate.calibrated (content)" in before["gate"]


def test_a_stage_command_refuses_a_changed_config_and_force_redoes_it(finished, tmp_path):
    out = tmp_path / "gate-again"
    score = finished / "score"
    code, output = invoke("gate", score, out, "min_mos=2.0")
    assert code == 0, output
    code, output = invoke("gate", score, out, "min_mos=2.0")  # unchanged: resumes
    assert code == 0 and "3 of 3 shards already done" in output, output
    code, output = invoke("gate", score, out, "min_mos=4.5")
    assert code == 1
    [line] = error_lines(output)
    assert "gate.min_mos: 2.0 -> 4.5" in line and "--force-recompute" in line
    (out / "notes.txt").write_text("mine")
    code, output = invoke("gate", score, out, "min_mos=4.5", "--force-recompute")
    assert code == 0 and "0 of 3 shards already done" in output, output
    assert (out / "notes.txt").read_text() == "mine"
    assert len(list(read_cuts(out))) == len(list(read_cuts(score)))


# --- failed items retried -------------------------------------------------------------------------


@register("tts", "flaky_test")
class FlakyTTS(DummyTTS):
    """The dummy TTS, failing on texts about the cyan cube (one shard) while ``broken``."""

    broken = True

    def synthesize(self, texts, *, language, voice):
        if FlakyTTS.broken and any("cyan" in t for t in texts):
            raise ItemError("flaky: backend hiccup")
        return super().synthesize(texts, language=language, voice=voice)


@register("tts", "broken_test")
class BrokenTTS(DummyTTS):
    """Fails every item while ``broken`` (a backend that cannot work)."""

    broken = True

    def synthesize(self, texts, *, language, voice):
        if BrokenTTS.broken:
            raise ItemError("broken_backend: connection refused")
        return super().synthesize(texts, language=language, voice=voice)


@pytest.fixture
def repaired():
    FlakyTTS.broken = BrokenTTS.broken = True
    yield
    FlakyTTS.broken = BrokenTTS.broken = True


def test_retry_failed_redoes_only_the_shards_with_failures(tmp_path, repaired):
    path = write_config(
        tmp_path, synthesize={"tts": {"default": {"name": "flaky_test"}}, "voices_per_prompt": 2}
    )
    out = tmp_path / "run"
    first = run_pipeline(load_config(path), out, progress=False)
    failed_shards = {
        p.name for p in (out / "synthesize").glob("failed.*.jsonl") if p.read_text().strip()
    }
    assert first.failed == {"synthesize: flaky: backend hiccup": 4}  # 2 languages x 2 voices
    assert failed_shards == {"failed.000001.jsonl"}
    assert all(line.startswith("synthesize: flaky") for line in first.failed)
    FlakyTTS.broken = False
    again = run_pipeline(load_config(path), out, progress=False)  # resumes: still failed
    assert again.failed == first.failed and again.kept == first.kept
    retried = run_pipeline(load_config(path), out, progress=False, retry_failed=True)
    assert not retried.failed and retried.kept == first.kept + sum(first.failed.values())
    n = num_shards(out)
    resumed = n - len(failed_shards)
    assert [row["resumed_shards"] for row in retried.stages] == [n, resumed, resumed, resumed]
    ids = [c.id for c in read_cuts(out / "gate")]
    assert len(ids) == len(set(ids)) == retried.kept
    assert (out / "failed.jsonl").read_text() == ""
    # The CLI flag does the same (nothing left to retry now).
    code, output = invoke("run", path, "-o", out, "--retry-failed")
    assert code == 0, output


# --- stages that cannot work ------------------------------------------------------------------


def test_a_backend_failing_every_item_stops_the_run(tmp_path, repaired):
    path = write_config(
        tmp_path,
        prepare={"recipe": "sample", "options": {"num_conversations": 30}},
        synthesize={"tts": {"default": {"name": "broken_test"}}, "voices_per_prompt": 2},
        engine={"stop_after_failures": 8},
    )
    out = tmp_path / "run"
    code, output = invoke("run", path, "-o", out)
    assert code == 1
    [line] = error_lines(output)
    match = re.match(
        r"Error: synthesize stopped: its first (\d+) items all failed "
        r"\(engine.stop_after_failures=8\); most common: (\d+) x broken_backend: connection "
        r"refused\. Fix the cause and rerun",
        line,
    )
    assert match and match[1] == match[2] and 8 <= int(match[1]) < 20, line
    assert "STOPPED in synthesize" in output  # the summary is printed too
    summary = summary_of(out)
    assert summary["stopped"]["step"] == "synthesize" and summary["kept"] == 0
    failed = (out / "failed.jsonl").read_text().splitlines()
    # Stopped early: far fewer than the 4 x 30-odd clips were tried.
    assert 8 <= len(failed) < 20
    # Fixed, the rerun redoes the stopped shards (nothing stays marked done with no output).
    BrokenTTS.broken = False
    code, output = invoke("run", path, "-o", out)
    assert code == 0, output
    assert summary_of(out)["kept"] > 100 and not summary_of(out)["failed"]


def test_every_item_failing_without_early_stop_exits_nonzero(tmp_path, repaired):
    path = write_config(
        tmp_path,
        synthesize={"tts": {"default": {"name": "broken_test"}}},
        engine={"stop_after_failures": None},
    )
    out = tmp_path / "run"
    with pytest.raises(RunError, match="synthesize: every item failed"):
        run_pipeline(load_config(path), out, progress=False)
    code, output = invoke("run", path, "-o", out)
    assert code == 1
    [line] = error_lines(output)
    assert "synthesize: every item failed" in line and "nothing to export" in line
    summary = summary_of(out)
    assert summary["stopped"]["step"] == "synthesize"
    assert len((out / "failed.jsonl").read_text().splitlines()) == sum(summary["failed"].values())
    assert not (out / "export").exists()


def test_everything_rejected_by_the_gate_is_not_an_error(tmp_path):
    out = tmp_path / "run"
    path = write_config(tmp_path, export={"formats": ["triplets"]})
    code, output = invoke("run", path, "-o", out, "gate.min_mos=4.9")
    assert code == 0, output
    summary = summary_of(out)
    assert summary["kept"] == 0 and summary["rejected_cuts"] > 0 and summary["stopped"] is None
    assert "kept: 0" in output


def test_shard_size_zero_is_refused(tmp_path):
    with pytest.raises(ValueError, match="shard_size"):
        run_pipeline(load_config(write_config(tmp_path), ["shard_size=0"]), tmp_path / "o")


# --- unwritable and full output directories -------------------------------------------------------


@pytest.mark.parametrize(
    "code, reason", [(errno.EACCES, "Permission denied"), (errno.ENOSPC, "No space left on device")]
)
def test_unwritable_shard_is_one_line_and_the_summary_is_kept(tmp_path, monkeypatch, code, reason):
    from lhotse_triplets.engine import base

    real = base.FailureLog

    class Unwritable(real):
        def __enter__(self):
            if self.path.parent.name == "score":
                raise OSError(code, reason, str(self.path))
            return super().__enter__()

    monkeypatch.setattr(base, "FailureLog", Unwritable)
    out = tmp_path / "run"
    exit_code, output = invoke("run", write_config(tmp_path), "-o", out)
    assert exit_code == 1
    [line] = error_lines(output)
    assert line == f"Error: score: cannot write {out}/score/.tmp.failed.000000.jsonl: {reason}"
    assert summary_of(out)["stopped"] == {"step": "score", "reason": line[len("Error: ") :]}
    assert (out / "failed.jsonl").exists()
    assert not list(out.rglob(".tmp.*"))


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=360k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line(tmp_path, small_disk):
    out = small_disk / "run"
    code, output = invoke("run", write_config(tmp_path), "-o", out)
    assert code == 1, output
    [line] = error_lines(output)
    assert line.startswith("Error: ") and "No space left on device" in line, line
    # The summary is written where the disk allows, never half-written.
    if (out / "summary.json").exists():
        assert summary_of(out)["stopped"]["reason"] == line[len("Error: ") :]
