"""The CLI as the README shows it: every command's --help, the stage commands over the run
config schema (KEY=VALUE), and every step from prepare to export on the dummy backends."""

import gzip
import re

import pytest
import yaml
from click.testing import CliRunner
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.bin.cli import cli
from lhotse_triplets.engine import read_cuts

DUMMY_SCORE = ["asr.name=dummy", "embed.name=dummy", "mos.name=dummy"]
TWO_DUMMY_VOICES = ["tts.default.name=dummy", "voices_per_prompt=2"]


def invoke(*args, ok: bool = True) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0, result.output
    return result.output


@pytest.fixture
def gated(tmp_path):
    """prepare -> rephrase (en, zh) -> synthesize (2 voices) -> score -> gate, from the CLI."""
    invoke("prepare", "sample", tmp_path / "p", "-n", 3)
    manifest = tmp_path / "p" / "llava_instruct_cuts_train.jsonl.gz"
    invoke("rephrase", manifest, tmp_path / "r", "languages=[en,zh]", "shard_size=2")
    invoke("synthesize", tmp_path / "r", tmp_path / "s", *TWO_DUMMY_VOICES)
    invoke("score", tmp_path / "s", tmp_path / "q", *DUMMY_SCORE)
    out = invoke("gate", tmp_path / "q", tmp_path / "g", "min_mos=2.0")
    assert "failed" in out
    return tmp_path / "g"


def test_unknown_config_key_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("synthesize:\n  voices_per_promt: 2\n")
    assert "voices_per_promt" in invoke("run", path, "-o", tmp_path / "o", ok=False)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["prepare"],
        ["prepare", "llava_instruct"],
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
        ["export", "triplet_files"],
        ["export", "triplet-files"],
        ["export", "hf"],
        ["export", "duplex"],
        ["export", "report"],
        ["bench"],
        ["bench", "run"],
        ["bench", "label"],
        ["bench", "calibrate"],
        ["bench", "select"],
        ["bench", "control"],
        ["voices"],
        ["run"],
    ],
)
def test_help_everywhere(command):
    assert "Usage:" in invoke(*command, "--help")


def test_stage_help_lists_the_keys_and_their_defaults():
    out = invoke("gate", "--help")
    assert "min_similarity: 0.6" in out and "max_duration: 30.0" in out
    assert "tts:" in invoke("synthesize", "--help")


def test_stage_commands_read_the_run_config_schema(tmp_path):
    invoke("prepare", "sample", tmp_path / "p", "-n", 1)
    manifest = tmp_path / "p" / "llava_instruct_cuts_train.jsonl.gz"
    # An unknown key is named, with the keys that exist.
    out = invoke("rephrase", manifest, tmp_path / "x", "min_similarty=0.5", ok=False)
    assert "min_similarty" in out and "min_similarity" in out
    assert "KEY=VALUE" in invoke("synthesize", manifest, tmp_path / "x", "novalue", ok=False)
    # A run config file gives the stage its section and the shared keys (languages).
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"languages": ["fr"], "rephrase": {"embed": None}}))
    invoke("rephrase", manifest, tmp_path / "r", "--config", config)
    assert {c.supervisions[0].language for c in read_cuts(tmp_path / "r")} == {"fr"}
    # Keys outside the stage's section are dotted from the top; section keys need no prefix.
    invoke("rephrase", manifest, tmp_path / "r2", "-c", config, "languages=[en,fr]", "embed=null")
    assert {c.supervisions[0].language for c in read_cuts(tmp_path / "r2")} == {"en", "fr"}


def test_cli_stage_by_stage(gated, tmp_path):
    n = sum(1 for _ in read_cuts(gated))
    kept = sum(1 for c in read_cuts(gated) if not c.custom.get(fields.REJECT_REASON))
    assert n == 2 * len(list(read_cuts(tmp_path / "r"))) > 0 and 0 < kept <= n
    # Rerunning a stage command resumes: nothing is redone, nothing duplicated.
    again = invoke("synthesize", tmp_path / "r", tmp_path / "s", *TWO_DUMMY_VOICES)
    assert re.search(r"\((\d+) of \1 shards already done\)", again), again
    assert sum(1 for _ in read_cuts(tmp_path / "s")) == n
    # The executor is chosen from the config, as in `run`.
    invoke("score", tmp_path / "s", tmp_path / "q2", *DUMMY_SCORE, "engine.num_workers=2")
    assert sorted(c.id for c in read_cuts(tmp_path / "q2")) == sorted(
        c.id for c in read_cuts(tmp_path / "q")
    )


def test_backend_options_reach_the_backend(tmp_path):
    invoke("prepare", "sample", tmp_path / "p", "-n", 1)
    manifest = tmp_path / "p" / "llava_instruct_cuts_train.jsonl.gz"
    invoke(
        "synthesize",
        manifest,
        tmp_path / "s",
        "tts.default.name=dummy",
        "tts.default.options.num_voices=2",
        "voices_per_prompt=5",
    )
    voices = {c.supervisions[0].speaker for c in read_cuts(tmp_path / "s")}
    assert voices == {"v0", "v1"}  # 5 asked, the engine was built with 2


def test_run_until_stops_after_a_stage(tmp_path):
    config = tmp_path / "dummy.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "prepare": {"recipe": "sample", "options": {"num_conversations": 2}},
                "synthesize": {"tts": {"default": {"name": "dummy"}}},
            }
        )
    )
    out = tmp_path / "run"
    invoke("run", config, "-o", out, "--until", "synthesize")
    assert (out / "synthesize").is_dir()
    assert not (out / "score").exists() and not (out / "export").exists()


def test_engine_flag_names_the_executor(tmp_path):
    """``--engine NAME`` is ``engine.name=NAME`` given first: checked before any work, and a
    later ``engine.name=`` override wins."""
    config = tmp_path / "dummy.yaml"
    config.write_text(yaml.safe_dump({"prepare": {"recipe": "sample"}}))
    bad = CliRunner().invoke(
        cli, ["run", str(config), "-o", str(tmp_path / "a"), "--engine", "nope"]
    )
    assert bad.exit_code == 1
    assert "engine.name: unknown engine 'nope'" in bad.output
    assert "(from override engine.name=nope)" in bad.output and not (tmp_path / "a").exists()
    out = tmp_path / "b"
    invoke("run", config, "-o", out, "--engine", "nope", "engine.name=local", "--until", "prepare")
    assert (out / "prompts").is_dir()


def test_every_export_from_the_cli(gated, tmp_path):
    kept = sum(1 for c in read_cuts(gated) if not c.custom.get(fields.REJECT_REASON))
    invoke("export", "shar", gated, tmp_path / "e")
    assert len(CutSet.from_shar(in_dir=tmp_path / "e" / "shar")) == kept > 0
    assert (tmp_path / "e" / "nemo_data.yaml").is_file()
    invoke("export", "triplets", gated, tmp_path / "t")
    assert len((tmp_path / "t" / "triplets.jsonl").read_text().splitlines()) == kept
    invoke("export", "triplets", gated, tmp_path / "t", "triplets_format=csv")
    assert len((tmp_path / "t" / "triplets.csv").read_text().splitlines()) == kept + 1
    invoke("export", "nemo", gated, tmp_path / "n", "weights.en=2")
    assert (
        yaml.safe_load((tmp_path / "n" / "nemo" / "nemo_data.yaml").read_text())["sample_rate"]
        == 16000
    )  # the synthesize stage's rate, as in `run`
    invoke("export", "nemo", gated, tmp_path / "n8", "synthesize.sampling_rate=8000")
    assert (
        yaml.safe_load((tmp_path / "n8" / "nemo" / "nemo_data.yaml").read_text())["sample_rate"]
        == 8000
    )
    langs = sorted(p.name for p in (tmp_path / "n" / "nemo").iterdir() if p.is_dir())
    assert langs == ["en", "zh"]
    invoke("export", "triplet-files", gated, tmp_path / "f")
    assert len(list((tmp_path / "f" / "files").glob("*/*/*.wav"))) == kept
    invoke("export", "hf", gated, tmp_path / "h")
    assert (tmp_path / "h" / "hf" / "README.md").is_file()
    invoke("export", "duplex", gated, tmp_path / "d", "duplex_tts=dummy")
    assert len(CutSet.from_shar(in_dir=tmp_path / "d" / "duplex")) > 0
    invoke("export", "report", gated, tmp_path / "rep")
    assert f"{kept} clips kept" in (tmp_path / "rep" / "report" / "report.md").read_text()


def test_export_shar_question_and_rejected_flags(tmp_path):
    invoke("prepare", "sample", tmp_path / "p", "-n", 2)
    invoke("rephrase", tmp_path / "p" / "llava_instruct_cuts_train.jsonl.gz", tmp_path / "r")
    invoke("synthesize", tmp_path / "r", tmp_path / "s", "tts.default.name=dummy")
    invoke("score", tmp_path / "s", tmp_path / "q", *DUMMY_SCORE)
    invoke("gate", tmp_path / "q", tmp_path / "g", "min_mos=4.9")  # dummy MOS ~2.4: all rejected
    n = sum(1 for _ in read_cuts(tmp_path / "g"))
    invoke("export", "shar", tmp_path / "g", tmp_path / "none")
    # Nothing kept: an empty (valid) export, no cut in it.
    shards = list((tmp_path / "none" / "shar").glob("cuts.*"))
    assert not any(gzip.decompress(p.read_bytes()).strip() for p in shards)
    invoke(
        "export", "shar", tmp_path / "g", tmp_path / "all", "include_rejected=true", "question=''"
    )
    shar = list(CutSet.from_shar(in_dir=tmp_path / "all" / "shar"))
    assert len(shar) == n > 0
    assert {c.custom[fields.QUESTION] for c in shar} == {""}


def test_bad_input_is_one_line_naming_it(gated, tmp_path):
    out = invoke("export", "nemo", gated, tmp_path / "x(1)", ok=False)
    assert out.startswith("Error: Export path") and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1
    out = invoke("export", "shar", gated, tmp_path / "e", "shard_size=many", ok=False)
    assert out.strip() == (
        "Error: export.shard_size: Value 'many' of type 'str' could not be converted to Integer "
        "(from override export.shard_size=many)"
    )


def test_library_errors_are_one_line_and_verbose_shows_them(tmp_path, monkeypatch):
    """A torn gzip manifest (EOFError: click alone prints only "Aborted!"), a bad argument, a
    permission error: one ``Error:`` line each, exit status 1; ``-v`` raises instead."""
    invoke("prepare", "sample", tmp_path / "p", "-n", 1)
    manifest = tmp_path / "p" / "llava_instruct_cuts_train.jsonl.gz"
    torn = tmp_path / "torn.jsonl.gz"
    torn.write_bytes(gzip.compress(manifest.read_bytes() * 20)[:-40])
    runner = CliRunner()
    result = runner.invoke(cli, ["rephrase", str(torn), str(tmp_path / "r")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert "Aborted" not in result.output
    result = runner.invoke(cli, ["-v", "rephrase", str(torn), str(tmp_path / "r2")])
    assert result.exit_code == 1 and result.exception is not None

    out = invoke("rephrase", tmp_path / "missing.jsonl.gz", tmp_path / "x", ok=False)
    assert len(out.strip().splitlines()) == 1 and "'IN'" in out and "missing" in out

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "r3"))

    monkeypatch.setattr("tempfile.mkstemp", denied)
    out = invoke("rephrase", manifest, tmp_path / "r3", ok=False)
    assert out.strip() == (
        f"Error: output directory {tmp_path / 'r3'}: cannot write there (Permission denied; "
        f"from -o {tmp_path / 'r3'})"
    )


def test_error_line_formats():
    import errno
    import zlib

    from lhotse_triplets.bin.cli import error_line

    assert error_line(ValueError("shard_size: must be >= 1\n  (got 0)")) == (
        "shard_size: must be >= 1; (got 0)"
    )
    assert error_line(OSError(errno.ENOSPC, "No space left on device", "/o/x")) == (
        "OSError: /o/x: No space left on device"
    )
    assert error_line(EOFError("Compressed file ended")) == "EOFError: Compressed file ended"
    assert error_line(zlib.error("Error -3")) == "error: Error -3"


def test_voices_rejects_unknown_language_codes():
    out = invoke("voices", "-e", "dummy", "-l", "english", ok=False)
    assert "english" in out and "ISO 639-1" in out
