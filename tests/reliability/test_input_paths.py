"""Input paths confined to their declared roots (images to ``image_dir``, reference audio to its
references file's folder), with an explicit opt-out; ids made into safe file names wherever a
file is named after one (embedded images, bench clips); a missing local corpus never taken for a
hub dataset id."""

import io
import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner

from lhotse_triplets import fields
from lhotse_triplets.backends.tts.references import load_references
from lhotse_triplets.bench.run import Cell, check_clip_paths, run_bench
from lhotse_triplets.bin.cli import cli
from lhotse_triplets.config import (
    BackendConfig,
    BenchConfig,
    BenchEngineConfig,
    GateConfig,
    ScoreConfig,
    load_config,
)
from lhotse_triplets.engine import read_cuts
from lhotse_triplets.errors import read_failures, reason_code
from lhotse_triplets.images import load_image_bytes
from lhotse_triplets.paths import safe_name
from lhotse_triplets.pipeline import run_pipeline
from lhotse_triplets.recipes import prepare_llava_instruct
from tests.reliability.bad_corpus import SECRET, png, row, tree, turns


@pytest.fixture
def escaping(tmp_path):
    """An image_dir with one good image and four ways out to ``outside/secret.png``."""
    images = tmp_path / "corpus" / "images"
    outside = tmp_path / "outside"
    images.mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.png").write_bytes(png((1, 2, 3), text=SECRET))
    (images / "good.png").write_bytes(png())
    (images / "link_out.png").symlink_to(outside / "secret.png")
    (images / "linkdir").symlink_to(outside, target_is_directory=True)
    rows = [
        row("good"),
        row("dotdot", image="../../outside/secret.png"),
        row("absolute", image=str(outside / "secret.png")),
        row("symlink", image="link_out.png"),
        row("symlinked-dir", image="linkdir/secret.png"),
    ]
    jsonl = tmp_path / "corpus" / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return jsonl, images, outside


ESCAPING_IDS = {"dotdot-t0", "absolute-t0", "symlink-t0", "symlinked-dir-t0"}


def _codes(out: Path) -> dict[str, str]:
    return {f.cut_id: reason_code(f.reason) for f in read_failures(out)}


def test_images_are_confined_to_image_dir_unless_allowed(escaping, tmp_path):
    jsonl, images, outside = escaping
    before = tree(tmp_path)
    out = tmp_path / "out"
    cuts = prepare_llava_instruct(jsonl, out, image_dir=images)
    assert [c.id for c in cuts] == ["good-t0"]
    assert _codes(out) == dict.fromkeys(ESCAPING_IDS, "outside_root")
    reason = next(f.reason for f in read_failures(out) if f.cut_id == "symlink-t0")
    assert f"resolves to {outside / 'secret.png'}" in reason and "--allow-outside" in reason
    changed = {p for p, v in tree(tmp_path).items() if before.get(p) != v}
    assert all(Path(p).is_relative_to(out) for p in changed), changed

    # the opt-out reads them (the secret's own bytes)
    allowed = prepare_llava_instruct(
        jsonl, tmp_path / "allowed", image_dir=images, allow_outside=True
    )
    by_id = {c.id: c for c in allowed}
    assert set(by_id) == {"good-t0", *ESCAPING_IDS}
    assert all(SECRET in load_image_bytes(by_id[i]) for i in ESCAPING_IDS)


def test_absolute_image_without_image_dir_needs_allow_outside(escaping, tmp_path):
    jsonl, _, outside = escaping
    rows = [row("abs", image=str(outside / "secret.png")), row("rel", image="good.png")]
    source = tmp_path / "noimagedir.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    cuts = prepare_llava_instruct(source, out)
    assert [c.id for c in cuts] == ["rel-t0"]  # text only, as without image_dir before
    assert _codes(out) == {"abs-t0": "outside_root"}
    (cut, _) = prepare_llava_instruct(source, tmp_path / "allowed", allow_outside=True)
    assert SECRET in load_image_bytes(cut)


def test_cli_allow_outside_and_text_caps(escaping, tmp_path):
    jsonl, images, _ = escaping
    runner = CliRunner()
    shown = runner.invoke(cli, ["prepare", "llava-instruct", "--help"]).output
    for flag in ("--allow-outside", "--max-prompt-chars", "--max-answer-chars"):
        assert flag in shown
    base = ["prepare", "llava-instruct", str(jsonl), "--image-dir", str(images)]
    result = runner.invoke(cli, [*base[:3], str(tmp_path / "a"), *base[3:], "--allow-outside"])
    assert result.exit_code == 0, result.output
    assert "Prepared 5 cuts" in result.stdout
    result = runner.invoke(
        cli, [*base[:3], str(tmp_path / "b"), *base[3:], "--max-prompt-chars", "10"]
    )
    assert result.exit_code == 0, result.output
    assert set(_codes(tmp_path / "b").values()) == {"outside_root", "prompt_too_long"}
    long_row = row("long", "<image>\n" + "Why? " * 400)
    long_row["conversations"][1]["value"] = "x" * 30000
    source = tmp_path / "long.jsonl"
    source.write_text(json.dumps(long_row) + "\n")
    args = ["prepare", "llava-instruct", str(source), str(tmp_path / "c"), "--image-dir"]
    result = runner.invoke(cli, [*args, str(images)])
    assert _codes(tmp_path / "c") == {"long-t0": "prompt_too_long"}
    uncapped = [*args, str(images), "--max-prompt-chars", "none", "--max-answer-chars", "NONE"]
    result = runner.invoke(cli, uncapped)
    assert result.exit_code == 0, result.output
    assert "Prepared 1 cuts" in result.stdout
    result = runner.invoke(cli, [*args, str(images), "--max-prompt-chars", "many"])
    assert result.exit_code != 0 and "'many' is not a valid integer" in result.output


def test_run_takes_allow_outside_and_caps_from_prepare_options(escaping, tmp_path):
    jsonl, images, _ = escaping
    config = {
        "languages": ["en"],
        "prepare": {
            "recipe": "llava_instruct",
            "options": {
                "source": str(jsonl),
                "image_dir": str(images),
                "allow_outside": True,
                "max_prompt_chars": 500,
            },
        },
        "synthesize": {"tts": {"default": {"name": "dummy"}}},
        "score": {"asr": {"name": "dummy"}, "embed": {"name": "dummy"}, "mos": {"name": "dummy"}},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    run_pipeline(load_config(path), tmp_path / "run", progress=False, until="prepare")
    prepared = tmp_path / "run" / "prepare"
    assert len(list(read_cuts(prepared / "llava_instruct_cuts_train.jsonl.gz"))) == 5
    marker = json.loads((prepared / ".llava_instruct_train.completed").read_text())
    assert marker["allow_outside"] is True and marker["max_prompt_chars"] == 500


def test_text_only_preparation_keeps_placeholders_out(tmp_path):
    rows = [row("three", "Compare <image>, <image> and <image>.")]
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps(rows[0]) + "\n")
    (cut,) = prepare_llava_instruct(source)  # no image_dir: no image, nothing to mismatch
    assert fields.IMAGE not in cut.custom
    assert cut.custom[fields.PLACEHOLDERS] == ["<image>"] * 3


def _png_bytes(size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("RGB", size, (10, 200, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_embedded_images_are_named_safely_and_verified(tmp_path):
    datasets = pytest.importorskip("datasets")
    good = _png_bytes()
    ids = ["../../x/ESCAPED", "a/b", "x" * 300, "..", "plain", "truncated", "garbage"]
    images = [good] * 5 + [good[: len(good) // 2], b"not an image"]
    data = {
        "id": ids,
        "conversations": [turns("<image>\nWhat colour?", "Green.") for _ in ids],
        "image": [{"bytes": b, "path": None} for b in images],
    }
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "conversations": datasets.List(
                {"from": datasets.Value("string"), "value": datasets.Value("string")}
            ),
            "image": datasets.Image(),
        }
    )
    parquet = tmp_path / "data.parquet"
    datasets.Dataset.from_dict(data, features=features).to_parquet(str(parquet))
    before = tree(tmp_path)
    out = tmp_path / "out"
    cuts = {c.id: c for c in prepare_llava_instruct(parquet, out)}
    assert set(cuts) == {f"{i}-t0" for i in ids[:5]}
    assert _codes(out) == {"truncated-t0": "unreadable_image", "garbage-t0": "unreadable_image"}
    written = sorted(p.name for p in (out / "images").iterdir())
    assert written == sorted(f"{safe_name(i)}.png" for i in ids[:5])
    assert all(len(name.encode()) < 200 for name in written)
    changed = {p for p, v in tree(tmp_path).items() if before.get(p) != v}
    assert all(Path(p).is_relative_to(out) for p in changed), changed
    assert load_image_bytes(cuts["../../x/ESCAPED-t0"]) == good
    assert cuts["a/b-t0"].custom[fields.CONVERSATION_ID] == "a/b"  # the id is kept


@pytest.mark.parametrize(
    "source",
    [
        "data/missing.jsonl",
        "missing.jsonl.gz",
        "corpus.json",
        "shards/train.parquet",
        "x.arrow",
        "a/b/c",
        "./relative",
        "../up",
        "~/no-such-corpus",
        "/abs/path",
        "existing/name",  # its parent folder exists here
    ],
)
def test_missing_local_corpus_is_not_a_hub_id(source, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing").mkdir()

    def no_hub(*args, **kwargs):
        raise AssertionError(f"{source} was taken for a hub id")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    with pytest.raises(FileNotFoundError, match="No such corpus file or folder: " + source):
        prepare_llava_instruct(source, tmp_path / "out")
    result = CliRunner().invoke(cli, ["prepare", "llava-instruct", source, "out"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: FileNotFoundError: No such corpus file or folder: {source}"
    )
    assert "Traceback" not in result.output


def test_hub_ids_still_go_to_the_hub(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.chdir(tmp_path)
    calls = []

    def fake(path, name=None, **kwargs):
        calls.append(path)
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    with pytest.raises(ConnectionError):
        prepare_llava_instruct("mvp-lab/LLaVA-OneVision-1.5-Instruct-Data", config="CLEVR")
    assert calls == ["mvp-lab/LLaVA-OneVision-1.5-Instruct-Data"]


# --- cloning references ---------------------------------------------------------------------------


def _wav(path: Path) -> Path:
    sf.write(path, np.zeros(1600, dtype=np.float32), 16000)
    return path


@pytest.fixture
def references(tmp_path):
    voices = tmp_path / "voices"
    outside = tmp_path / "elsewhere"
    voices.mkdir()
    outside.mkdir()
    _wav(voices / "anna.wav")
    _wav(outside / "secret.wav")
    (voices / "link.wav").symlink_to(outside / "secret.wav")
    return voices, outside


def _catalog(folder: Path, audio: str, suffix="yaml", **top) -> Path:
    data = {**top, "references": {"r": {"audio": audio, "text": "Hello.", "language": "en"}}}
    path = folder / f"refs.{suffix}"
    path.write_text(json.dumps(data) if suffix == "json" else yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("audio", ["../elsewhere/secret.wav", "ABS", "link.wav", "~/x.wav"])
def test_reference_audio_listed_in_a_file_stays_in_its_folder(references, audio):
    voices, outside = references
    audio = str(outside / "secret.wav") if audio == "ABS" else audio
    with pytest.raises(ValueError, match=r"Reference 'r': outside_root: reference audio"):
        load_references(_catalog(voices, audio))
    if audio.startswith("~"):
        return
    allowed = load_references(_catalog(voices, audio), allow_outside=True)
    assert allowed["r"].audio == str((outside / "secret.wav").resolve())
    in_file = load_references(_catalog(voices, audio, "json", allow_outside=True))
    assert in_file["r"].audio == str((outside / "secret.wav").resolve())


def test_reference_audio_inside_its_folder_and_inline_references(references, monkeypatch):
    voices, outside = references
    assert load_references(_catalog(voices, "anna.wav"))["r"].audio == str(voices / "anna.wav")
    assert load_references(_catalog(voices, str(voices / "anna.wav"), "json"))["r"].audio == str(
        voices / "anna.wav"
    )
    # inline (the user's own config): resolved against the working directory, not confined
    monkeypatch.chdir(voices)
    inline = {"r": {"audio": "../elsewhere/secret.wav", "text": "Hi.", "language": "en"}}
    assert load_references(inline)["r"].audio == str(outside / "secret.wav")
    with pytest.raises(ValueError, match="cannot be resolved"):
        load_references(_catalog(voices, "bad\u0000.wav"))


# --- bench prompt ids -----------------------------------------------------------------------------


def test_bench_prompt_ids_never_leave_the_output_dir(tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    sids = ["../../x/ESCAPED", "a b/c", "s" * 300, "plain"]
    (prompts / "en.jsonl").write_text(
        "".join(
            json.dumps({"sid": s, "text": f"How many cubes, {i}?"}) + "\n"
            for i, s in enumerate(sids)
        )
    )
    dummy = BackendConfig("dummy")
    cfg = BenchConfig(
        languages=["en"],
        prompt_dir=str(prompts),
        engines=[BenchEngineConfig("dummy", {"num_voices": 1}, label="d")],
        score=ScoreConfig(asr=dummy, embed=dummy, mos=dummy),
        gate=GateConfig(min_mos=0.0),
    )
    before = tree(tmp_path)
    out = tmp_path / "bench"
    run_bench(cfg, out, progress=False, report=False)
    changed = {p for p, v in tree(tmp_path).items() if before.get(p) != v}
    assert all(Path(p).is_relative_to(out) for p in changed), changed
    clips = list(read_cuts(out / "score" / "d" / "en"))
    assert sorted(c.custom[fields.CONVERSATION_ID] for c in clips) == sorted(sids)
    assert {c.id for c in clips} == {f"d-en-{safe_name(s)}-v0" for s in sids}
    for clip in clips:
        assert Path(clip.recording.sources[0].source).resolve().is_relative_to(out.resolve())


def test_bench_refuses_a_clip_path_outside_its_directory(tmp_path):
    cell = Cell("d", "en", None, ["../../../../x"], {"d-en-p": ["../../../../x"]})
    with pytest.raises(ValueError, match="bench cell d/en: outside_root: bench clip"):
        check_clip_paths(cell, tmp_path / "bench", "flac")
    check_clip_paths(Cell("d", "en", None, ["v0"], {"d-en-p": ["v0"]}), tmp_path, "flac")
