"""Config mistakes: each is one ``Error: ...`` line naming the key and where its value came from
(the YAML file or a ``KEY=VALUE`` override), exit status != 0, within a second or two, and no
work done (the output directory holds nothing; the recipe never ran)."""

import contextlib
import errno
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lhotse_triplets.bin.cli import cli

#: A run on the dummy backends that works as it is: every case below breaks one thing.
GOOD = {
    "languages": ["en", "fr"],
    "prepare": {"recipe": "sample", "options": {"num_conversations": 2}},
    "rephrase": {"backend": {"name": "rules"}, "embed": None},
    "synthesize": {"tts": {"default": {"name": "dummy"}}},
    "score": {"asr": {"name": "dummy"}, "embed": {"name": "dummy"}, "mos": {"name": "dummy"}},
    "export": {"formats": ["shar", "triplets"]},
    "shard_size": 10,
}
#: Seconds a refused run may take (it must not start the work).
FAST = 2.0

OVERRIDE = "override"
FILE = "file"


def _merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


# (id, overrides, YAML changes, the key the error names, where it must say the value came from)
CASES = [
    ("unknown_language", ["languages=[en,xx]"], {}, "languages[1]", OVERRIDE),
    ("language_in_list", [], {"languages": ["en", "fr", "english"]}, "languages[2]", FILE),
    ("language_case", ["languages=[EN]"], {}, "languages[0]", OVERRIDE),
    ("voices_per_prompt_0", ["synthesize.voices_per_prompt=0"], {}, "voices_per_prompt", OVERRIDE),
    ("voices_per_prompt_neg", [], {"synthesize": {"voices_per_prompt": -2}}, "voices_per", FILE),
    (
        "negative_rate",
        ["synthesize.sampling_rate=-16000"],
        {},
        "synthesize.sampling_rate",
        OVERRIDE,
    ),
    ("audio_format", ["synthesize.audio_format=mp3"], {}, "synthesize.audio_format", OVERRIDE),
    ("unknown_voice", ["synthesize.voices.en=[v0,nobody]"], {}, "synthesize.voices.en", OVERRIDE),
    (
        "missing_translations",
        ["rephrase.translation_files=[no/such.jsonl]"],
        {},
        "rephrase.translation_files[0]",
        OVERRIDE,
    ),
    ("shard_size_0", ["shard_size=0"], {}, "shard_size", OVERRIDE),
    ("shard_size_neg", [], {"shard_size": -1}, "shard_size", FILE),
    ("export_format", ["export.formats=[shar,parquet]"], {}, "export.formats[1]", OVERRIDE),
    ("image_mode", [], {"export": {"image_mode": "bogus"}}, "export.image_mode", FILE),
    ("export_shard_size", ["export.shard_size=0"], {}, "export.shard_size", OVERRIDE),
    ("num_buckets", ["export.num_buckets=0"], {}, "export.num_buckets", OVERRIDE),
    ("hf_rows", ["export.hf_max_shard_rows=0"], {}, "export.hf_max_shard_rows", OVERRIDE),
    ("unknown_key", ["synthesize.voices_per_promt=2"], {}, "voices_per_promt", OVERRIDE),
    ("unknown_key_file", [], {"gate": {"min_moss": 3}}, "gate.min_moss", FILE),
    ("wrong_type", ["shard_size=many"], {}, "shard_size", OVERRIDE),
    ("wrong_type_list", [], {"languages": "en"}, "languages", FILE),
    ("backend_name", ["synthesize.tts.default.name=espeakk"], {}, "tts.default.name", OVERRIDE),
    ("asr_name", [], {"score": {"asr": {"name": "whisperx"}}}, "score.asr.name", FILE),
    (
        "backend_option_dummy",
        ["synthesize.tts.default.options.colour=red"],
        {},
        "synthesize.tts.default.options",
        OVERRIDE,
    ),
    (
        "backend_option_espeak",
        ["synthesize.tts.default.name=espeak", "synthesize.tts.default.options.colour=red"],
        {},
        "synthesize.tts.default.options",
        OVERRIDE,
    ),
    ("mos_option", [], {"score": {"mos": {"options": {"colour": 1}}}}, "score.mos.options", FILE),
    ("missing_selection", ["synthesize.selection=no.yaml"], {}, "synthesize.selection", OVERRIDE),
    ("missing_calibrated", [], {"gate": {"calibrated": "no.json"}}, "gate.calibrated", FILE),
    ("num_workers_0", ["engine.num_workers=0"], {}, "engine.num_workers", OVERRIDE),
    ("threads_0", ["engine.threads_per_worker=0"], {}, "engine.threads_per_worker", OVERRIDE),
    ("executor", ["engine.name=slurm"], {}, "engine.name", OVERRIDE),
    ("executor_option", ["engine.options.address=x"], {}, "engine.options", OVERRIDE),
    ("streaming_local", ["engine.streaming=true"], {}, "engine.streaming", OVERRIDE),
    ("num_gpus", ["score.asr.num_gpus=-1"], {}, "score.asr.num_gpus", OVERRIDE),
    ("num_cpus", ["synthesize.tts.default.num_cpus=0"], {}, "tts.default.num_cpus", OVERRIDE),
    ("concurrency_0", ["score.concurrency=0"], {}, "score.concurrency", OVERRIDE),
    ("item_timeout", ["engine.item_timeout=-5"], {}, "engine.item_timeout", OVERRIDE),
    ("item_timeout_nan", [], {"engine": {"item_timeout": float("nan")}}, "item_timeout", FILE),
    ("stop_after_0", ["engine.stop_after_failures=0"], {}, "stop_after_failures", OVERRIDE),
    ("min_mos_range", ["gate.min_mos=7"], {}, "gate.min_mos", OVERRIDE),
    ("durations", [], {"gate": {"min_duration": 40}}, "gate.min_duration", FILE),
    ("similarity_range", ["rephrase.min_similarity=2"], {}, "rephrase.min_similarity", OVERRIDE),
    ("batch_size_0", ["synthesize.batch_size=0"], {}, "synthesize.batch_size", OVERRIDE),
    ("fallback", ["rephrase.fallback=bogus"], {}, "rephrase.fallback", OVERRIDE),
    ("recipe", ["prepare.recipe=nope"], {}, "prepare.recipe", OVERRIDE),
    ("recipe_option", [], {"prepare": {"options": {"colour": 1}}}, "prepare.options", FILE),
    ("tts_language", ["synthesize.tts.default.options.languages=[en]"], {}, "languages[1]", FILE),
    ("duplex_tts", ["export.duplex_tts=nope"], {}, "export.duplex_tts", OVERRIDE),
]


@pytest.fixture(scope="module")
def runner():
    runner = CliRunner()
    # Import the commands' modules and registries once, so that each case is timed alone.
    with tempfile.TemporaryDirectory() as tmp:
        config = _write(Path(tmp), {"synthesize": {"voices": {"en": ["nobody"]}}})
        runner.invoke(cli, ["run", config, "-o", f"{tmp}/o"])
    return runner


def _write(folder: Path, changes: dict | None = None, text: str | None = None) -> str:
    path = folder / "run.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(_merged(GOOD, changes or {})))
    return str(path)


def refused(runner, args, out: Path) -> str:
    """Run the CLI; check exit != 0, one ``Error:`` line, no traceback, no work, fast."""
    start = time.perf_counter()
    result = runner.invoke(cli, [str(a) for a in args])
    seconds = time.perf_counter() - start
    text = result.output.strip()
    assert result.exit_code not in (0, None), text
    assert len(text.splitlines()) == 1 and text.startswith("Error: "), text
    assert "Traceback" not in text
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists() or not [p for p in out.rglob("*") if p.name != "audio"], "work done"
    assert seconds < FAST, f"{seconds:.1f} s"
    return text


@pytest.mark.parametrize(
    "overrides,changes,key,origin", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_config_mistake_is_one_line_before_any_work(
    runner, tmp_path, overrides, changes, key, origin
):
    config = _write(tmp_path, changes)
    text = refused(runner, ["run", config, "-o", tmp_path / "out", *overrides], tmp_path / "out")
    assert key in text
    if origin == OVERRIDE:
        assert f"from override {overrides[-1]}" in text
    else:
        assert f"from {config}" in text


def test_there_are_enough_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("where", [FILE, OVERRIDE])
def test_blame_names_the_file_or_the_override(runner, tmp_path, where):
    """The same bad value, given in the file or as an override, is blamed on where it was."""
    if where == FILE:
        config = _write(tmp_path, {"synthesize": {"voices_per_prompt": 0}})
        args = []
    else:
        config = _write(tmp_path, {"synthesize": {"voices_per_prompt": 2}})
        args = ["synthesize.voices_per_prompt=0"]
    text = refused(runner, ["run", config, "-o", tmp_path / "out", *args], tmp_path / "out")
    origin = f"from {config}" if where == FILE else "from override synthesize.voices_per_prompt=0"
    assert text == f"Error: synthesize.voices_per_prompt: must be >= 1 (got 0, {origin})"


def test_yaml_syntax_error_names_file_and_line(runner, tmp_path):
    config = _write(tmp_path, text="languages: [en, fr]\nsynthesize:\n  voices_per_prompt: [1,\n")
    text = refused(runner, ["run", config, "-o", tmp_path / "out"], tmp_path / "out")
    assert f"{config}:4:" in text and "YAML syntax error" in text


def test_yaml_that_is_not_a_mapping(runner, tmp_path):
    config = _write(tmp_path, text="- en\n- fr\n")
    text = refused(runner, ["run", config, "-o", tmp_path / "out"], tmp_path / "out")
    assert config in text and "mapping" in text


def test_missing_config_file(runner, tmp_path):
    text = refused(
        runner, ["run", tmp_path / "nope.yaml", "-o", tmp_path / "out"], tmp_path / "out"
    )
    assert "CONFIG" in text and "nope.yaml" in text


def test_override_without_equals(runner, tmp_path):
    config = _write(tmp_path)
    text = refused(runner, ["run", config, "-o", tmp_path / "out", "shard_size"], tmp_path / "out")
    assert "'shard_size'" in text and "KEY=VALUE" in text


def test_bad_calibrated_gate_file(runner, tmp_path):
    (tmp_path / "gate.json").write_text("{not json")
    config = _write(tmp_path, {"gate": {"calibrated": str(tmp_path / "gate.json")}})
    text = refused(runner, ["run", config, "-o", tmp_path / "out"], tmp_path / "out")
    assert "gate.calibrated" in text and f"from {config}" in text


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


@pytest.mark.parametrize(
    "options,reason",
    [("ro,size=64k", "Read-only file system"), ("size=64k,nr_inodes=1", "No space left")],
    ids=["read_only", "full"],
)
def test_unwritable_audio_dir_on_tmpfs(runner, tmp_path, options, reason):
    out = tmp_path / "out"
    with tmpfs(out / "audio", options):
        text = refused(runner, ["run", _write(tmp_path), "-o", out], out)
    assert f"{out}/audio" in text and reason in text and f"from -o {out}" in text


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOSPC], ids=["permission", "disk_full"])
def test_unwritable_audio_dir_simulated(runner, tmp_path, monkeypatch, code):
    """As root no mode bit stops a write: the OS error is simulated for ``audio/``."""
    out = tmp_path / "out"
    (out / "audio").mkdir(parents=True)
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # noqa: A002 - tempfile's name
        if dir is not None and Path(dir).name == "audio":
            raise OSError(code, os.strerror(code), str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    text = refused(runner, ["run", _write(tmp_path), "-o", out], out)
    assert f"{out}/audio" in text and os.strerror(code) in text
    assert not list((out / "audio").iterdir())


@pytest.mark.parametrize(
    "args",
    [["synthesize.voices_per_prompt=0"], ["languages=[en,xx]"]],
    ids=["voices_per_prompt", "language"],
)
def test_subprocess_exit_status_and_one_line(tmp_path, args):
    config = _write(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lhotse_triplets.bin.cli",
            "run",
            config,
            "-o",
            tmp_path / "o",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "from override" in lines[0]
    assert not (tmp_path / "o").exists()


def test_verbose_shows_the_traceback(tmp_path):
    config = _write(tmp_path)
    result = CliRunner().invoke(
        cli, ["-v", "run", config, "-o", str(tmp_path / "o"), "shard_size=0"]
    )
    assert result.exit_code != 0 and isinstance(result.exception, ValueError)
    assert "shard_size" in str(result.exception)


def test_bench_config_mistakes(runner, tmp_path):
    bench = {
        "languages": ["en"],
        "prompt_dir": str(tmp_path),
        "engines": [{"name": "dummy"}],
        "score": {"asr": {"name": "dummy"}, "embed": {"name": "dummy"}, "mos": {"name": "dummy"}},
    }
    (tmp_path / "en.jsonl").write_text(json.dumps({"sid": "a", "text": "Hello there."}) + "\n")
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(bench))
    out = tmp_path / "out"
    for args, key in [
        (["prompts_per_language=0"], "prompts_per_language"),
        (["languages=[en,xx]"], "languages[1]"),
        (["engines=[{name: nope}]"], "engines[0].name"),
        (["engines=[{name: dummy, voices: {en: [nobody]}}]"], "engines[0].voices.en"),
        (["engines=[{name: dummy, options: {colour: red}}]"], "engines[0].options"),
        (["prompt_dir=" + str(tmp_path / "none")], "prompt_dir"),
        (["shard_size=0"], "shard_size"),
    ]:
        text = refused(runner, ["bench", "run", path, "-o", out, *args], out)
        assert key in text and f"from override {args[0]}" in text
