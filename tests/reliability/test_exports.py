"""Exports that can be trusted: an empty export instead of a crash when nothing was kept,
``--overwrite`` that replaces only what the library wrote, no file or tar member named after an
id outside the export folder, no secret or cloning reference in any output byte, readers that
stay inside the export, and option mistakes reported before any work."""

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import soundfile as sf
from click.testing import CliRunner
from lhotse import CutSet, Recording
from lhotse.utils import fastcopy
from omegaconf import OmegaConf

import lhotse_triplets.testing.backends  # noqa: F401  (registers the dummy TTS for duplex)
from lhotse_triplets import fields
from lhotse_triplets.bin.export_cmds import export
from lhotse_triplets.config import ExportConfig
from lhotse_triplets.cuts import with_audio
from lhotse_triplets.errors import ItemError
from lhotse_triplets.export import (
    available_formats,
    check_export_options,
    conversation_image,
    detect_export,
    export_formats,
    get_exporter,
    open_export,
    read_shar,
)
from lhotse_triplets.export.common import record_path
from lhotse_triplets.images import attach_image
from lhotse_triplets.paths import safe_name
from lhotse_triplets.testing.backends import DummyTTS
from lhotse_triplets.testing.cuts import prompt_cut

#: Every built-in format, with the options it needs to run on the test cuts.
FORMATS = ["shar", "triplets", "nemo", "triplet_files", "hf", "duplex", "report"]
DUPLEX = {"duplex_tts": "dummy"}
#: What each format's entry in the export directory is.
ENTRIES = {
    "shar": "shar",
    "triplets": "triplets.jsonl",
    "nemo": "nemo",
    "triplet_files": "files",
    "hf": "hf",
    "duplex": "duplex",
    "report": "report",
}
#: Formats read back with ``open_export`` (entry -> reader name); ``duplex`` dialogues are not
#: triplets: read with ``read_shar``.
READABLE = {"shar": "shar", "nemo": "nemo", "files": "triplet_files", "hf": "hf"}

UNSAFE_CONVERSATIONS = ["../../x/ESCAPED", "y" * 300, str({"x": 1}), "/abs/olute"]
API_KEY = "sk-SECRET-4f1d9a7c2b"
REF_AUDIO = "/refs/private/anna-reference-7731.wav"
REF_TEXT = "Anna reads her private reference sentence 7731"
ANSWER_MARKER = "ANSWERMARK"


def png(color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("RGB", (8, 6), color).save(buf, format="PNG")
    return buf.getvalue()


def spoken_cuts(plan, media_dir: Path | None = None, **custom):
    """Cuts as the gate leaves them (dummy-TTS audio, an image, scores) for ``plan``:
    (conversation id, turn, language, voice, reject reason). Audio and images are held in
    memory, or written as files under ``media_dir`` (cuts that can be saved as a manifest)."""
    tts = DummyTTS()
    cuts = []
    for conversation_id, turn, language, voice, reject in plan:
        cut = prompt_cut(conversation_id, f"q{turn}", f"{ANSWER_MARKER} {turn}", turn, language)
        audio = tts.synthesize([f"q{turn}"], language=language, voice="v0")[0]
        buf = io.BytesIO()
        sf.write(buf, audio, tts.sampling_rate, format="WAV")
        recording_id = f"{conversation_id}-t{turn}-{language}-{voice}"
        image = png((10 * turn, 40, 90))
        if media_dir is None:
            recording = Recording.from_bytes(buf.getvalue(), recording_id=recording_id)
        else:
            path = media_dir / f"{safe_name(recording_id)}.wav"
            path.write_bytes(buf.getvalue())
            recording = Recording.from_file(path, recording_id=recording_id)
            image_path = media_dir / f"{safe_name(recording_id)}.png"
            image_path.write_bytes(image)
            image = image_path
        scores = {fields.MOS: 3.5, fields.SIMILARITY: 0.9, fields.REJECT_REASON: reject}
        cut = with_audio(cut, voice, recording, **scores, **custom)
        cuts.append(attach_image(cut, image))
    return cuts


#: English kept, German all rejected (the quick start's own outcome).
MIXED = [
    ("c1", 0, "en", "v0", None),
    ("c1", 1, "en", "v0", None),
    ("c1", 0, "de", "v1", "low_similarity"),
    ("c2", 0, "de", "v1", "high_error_rate"),
]
ALL_REJECTED = [(c, t, lang, v, "low_mos") for c, t, lang, v, _ in MIXED]


def export_all(cuts, out, **options):
    return export_formats(CutSet(cuts), out, formats=FORMATS, **DUPLEX, **options)


def read_back(out: Path) -> dict[str, list]:
    """entry -> the triplets ``open_export`` reads from it (the format detected); ``duplex``:
    the dialogues ``read_shar`` reads."""
    back = {e: list(open_export(out / e)) for e in READABLE if (out / e).exists()}
    if (out / "duplex").exists():
        back["duplex"] = list(read_shar(out / "duplex"))
    return back


# --- zero cuts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", [[], ALL_REJECTED], ids=["no_cuts", "all_rejected"])
def test_every_format_writes_an_empty_readable_export_and_says_so(tmp_path, plan):
    out = tmp_path / "export"
    results = export_all(spoken_cuts(plan), out)
    for name, result in results.items():
        assert result.counts.written == 0, name
        assert result.empty and result.details["note"].startswith("empty export"), name
        assert "note: empty export" in str(result), name
        assert (out / ENTRIES[name]).exists(), name
    assert results["shar"].counts.rejected == len(plan)
    assert not (out / "nemo_data.yaml").exists() and not (out / "nemo" / "nemo_data.yaml").exists()
    assert (out / "triplets.jsonl").read_text() == ""
    # Every reader opens the empty export: zero triplets, no error.
    assert {k: len(v) for k, v in read_back(out).items()} == dict.fromkeys([*READABLE, "duplex"], 0)
    assert {entry: detect_export(out / entry) for entry in READABLE} == READABLE
    assert list(CutSet.from_shar(in_dir=out / "shar")) == []  # Lhotse's own reader too
    assert list(CutSet.from_shar(in_dir=out / "duplex")) == []


def test_one_language_all_rejected_every_format(tmp_path):
    out = tmp_path / "export"
    results = export_all(spoken_cuts(MIXED), out, weights={"de": 2.0, "en": 1.0})
    for name, result in results.items():
        assert not result.empty, name
        per_conversation = name in ("nemo", "duplex")  # these count conversations, not clips
        assert result.counts.per_language == {"en": 1 if per_conversation else 2}, name
    cfg = OmegaConf.load(out / "nemo" / "nemo_data.yaml")
    assert [i.tags.language for i in cfg.input_cfg] == ["en"]  # no entry for German
    assert results["nemo"].details["unused_weights"] == ["de"]
    assert sorted(p.name for p in (out / "nemo").iterdir()) == ["en", "nemo_data.yaml"]
    assert (out / "files" / "failed_de.jsonl").is_file()
    assert not (out / "files" / "metadata_de.jsonl").exists()
    counts = {k: len(v) for k, v in read_back(out).items()}
    assert counts == {"shar": 2, "nemo": 2, "files": 2, "hf": 2, "duplex": 1}


@pytest.fixture(scope="module")
def stage_dirs(tmp_path_factory):
    """Stage directories (``cuts.000000.jsonl.gz``; audio in memory) of the two cases."""
    root = tmp_path_factory.mktemp("gate")
    dirs = {}
    for name, plan in (("mixed", MIXED), ("all_rejected", ALL_REJECTED)):
        (root / name).mkdir()
        (root / f"{name}_media").mkdir()
        cuts = spoken_cuts(plan, root / f"{name}_media")
        CutSet(cuts).to_file(root / name / "cuts.000000.jsonl.gz")
        dirs[name] = root / name
    return dirs


def invoke(*args):
    return CliRunner().invoke(export, [str(a) for a in args])


@pytest.mark.parametrize("case", ["mixed", "all_rejected"])
def test_cli_every_format_exits_0_with_a_clear_message(stage_dirs, tmp_path, case):
    for name in FORMATS:
        extra = ["duplex_tts=dummy"] if name == "duplex" else []
        result = invoke(name, stage_dirs[case], tmp_path / "out", *extra)
        assert result.exit_code == 0, (name, result.output, result.exception)
        assert f"{name}: written: " in result.output
        if case == "all_rejected":
            assert "note: empty export: no " in result.output, name
        else:
            assert "note:" not in result.output and "en=" in result.output, name
    cfg = tmp_path / "out" / "nemo" / "nemo_data.yaml"
    if case == "mixed":
        assert [i.tags.language for i in OmegaConf.load(cfg).input_cfg] == ["en"]
    else:
        assert not cfg.exists()
    kept = 2 if case == "mixed" else 0
    counts = {k: len(v) for k, v in read_back(tmp_path / "out").items()}
    assert counts == {"shar": kept, "nemo": kept, "files": kept, "hf": kept, "duplex": kept // 2}


# --- overwrite ---------------------------------------------------------------------------------

#: Per format: a folder the export itself creates inside its entry (where a user may add a file),
#: options of the first export, and what of it must be gone after the overwrite (globs).
OVERWRITE = {
    "nemo": ("en", ["shard_size=1"], ["*/manifest_*.jsonl", "*/audio_*.tar"]),
    "hf": ("data", ["hf_num_shards=2"], ["data/train-*-of-00002.parquet"]),
    "triplet_files": ("en", [], ["metadata_*.jsonl", "**/*.wav", "images/*"]),
    "report": ("plots", [], []),
}


def unrelated(tmp_path: Path, out: Path, entry: Path, inner: str | None) -> dict[Path, str]:
    """Files that no export wrote: next to OUT, inside OUT, inside the entry, in a folder of it."""
    files = {
        tmp_path / "beside.txt": "beside",
        out / "mine.txt": "mine",
        out / "my_folder" / "a.txt": "folder",
        entry / "notes.txt": "notes",
        entry / "my_dir" / "b.txt": "nested",
    }
    if inner:
        files[entry / inner / "keep.txt"] = "inner"
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def message(result) -> str:
    return f"{result.output} {result.exception}"


@pytest.mark.parametrize("name", list(OVERWRITE))
def test_overwrite_replaces_only_what_the_export_wrote(stage_dirs, tmp_path, name):
    out = tmp_path / "out"
    entry = out / ENTRIES[name]
    inner, first, stale = OVERWRITE[name]
    assert invoke(name, stage_dirs["mixed"], out, *first).exit_code == 0
    assert all(list(entry.glob(pattern)) for pattern in stale)
    mine = unrelated(tmp_path, out, entry, inner)
    refused = invoke(name, stage_dirs["all_rejected"], out)
    assert refused.exit_code != 0 and "overwrite" in message(refused)
    result = invoke(name, stage_dirs["all_rejected"], out, "--overwrite")
    assert result.exit_code == 0, message(result)
    assert all(path.read_text() == text for path, text in mine.items())
    assert not [p for pattern in stale for p in entry.glob(pattern)]  # the old export is gone
    if name == "report":
        assert "0 clips kept" in (entry / "report.md").read_text()
    else:
        assert list(open_export(entry)) == []  # the new, empty export reads back
    assert not list(out.glob(".*.partial"))


def test_overwrite_of_an_export_with_no_record_uses_its_layout_and_a_forged_record_is_harmless(
    stage_dirs, tmp_path
):
    out = tmp_path / "out"
    assert invoke("nemo", stage_dirs["mixed"], out, "shard_size=1").exit_code == 0
    record_path(out / "nemo").unlink()  # as written before export records existed
    mine = unrelated(tmp_path, out, out / "nemo", None)
    assert invoke("nemo", stage_dirs["mixed"], out, "--overwrite").exit_code == 0
    assert all(path.read_text() == text for path, text in mine.items())
    assert sorted(p.name for p in (out / "nemo" / "en").iterdir()) == [
        "audio_0.tar",
        "manifest_0.jsonl",
    ]
    # A record naming files outside the entry never makes the export touch them.
    victim = tmp_path / "victim.txt"
    victim.write_text("victim")
    record = json.loads(record_path(out / "nemo").read_text())
    record["files"] += ["../../victim.txt", str(victim), "../mine.txt"]
    record_path(out / "nemo").write_text(json.dumps(record))
    assert invoke("nemo", stage_dirs["mixed"], out, "--overwrite").exit_code == 0
    assert victim.read_text() == "victim" and (out / "mine.txt").read_text() == "mine"


@pytest.mark.parametrize("name", ["shar", "duplex"])
def test_shar_folders_refuse_unrelated_files_and_keep_everything(stage_dirs, tmp_path, name):
    out = tmp_path / "out"
    extra = ["duplex_tts=dummy"] if name == "duplex" else []
    assert invoke(name, stage_dirs["mixed"], out, *extra).exit_code == 0
    mine = unrelated(tmp_path, out, out / ENTRIES[name], None)
    shards = {p: p.read_bytes() for p in (out / ENTRIES[name]).glob("*.*.*")}
    result = invoke(name, stage_dirs["all_rejected"], out, "--overwrite", *extra)
    assert result.exit_code != 0
    assert "Refusing to overwrite" in message(result) and "notes.txt" in message(result)
    assert all(path.read_text() == text for path, text in mine.items())
    assert all(p.read_bytes() == data for p, data in shards.items())  # the old export intact
    # Unrelated files *next to* the Shar folder are kept by a successful overwrite.
    for path in (out / ENTRIES[name] / "notes.txt", out / ENTRIES[name] / "my_dir" / "b.txt"):
        path.unlink()
    (out / ENTRIES[name] / "my_dir").rmdir()
    assert invoke(name, stage_dirs["all_rejected"], out, "--overwrite", *extra).exit_code == 0
    assert all(p.read_text() == t for p, t in mine.items() if out / ENTRIES[name] not in p.parents)
    assert list(read_shar(out / ENTRIES[name])) == []


def test_an_entry_symlinked_outside_the_export_is_refused(stage_dirs, tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "nemo").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ValueError, match="^outside_root: export"):
        get_exporter("nemo")(gated_cuts(stage_dirs), out, overwrite=True)
    assert not list(elsewhere.iterdir()) and not list(tmp_path.glob(".*"))


def gated_cuts(stage_dirs) -> CutSet:
    return CutSet.from_file(stage_dirs["mixed"] / "cuts.000000.jsonl.gz")


# --- unsafe ids --------------------------------------------------------------------------------


def listing(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")} | {str(p) for p in root.rglob(".*")}


def tar_names(root: Path) -> list[str]:
    names = []
    for path in root.rglob("*.tar"):
        with tarfile.open(path) as tar:
            names += tar.getnames()
    return names


@pytest.fixture(scope="module")
def unsafe_export(tmp_path_factory):
    base = tmp_path_factory.mktemp("unsafe")
    plan = [(c, 0, "en", "v0", None) for c in UNSAFE_CONVERSATIONS]
    plan += [("../../x/ESCAPED", 1, "en", "v0", None), ("ok", 0, "en", "a/../../v", None)]
    cuts = spoken_cuts(plan)
    before = listing(base)
    out = base / "root" / "export"
    nemo_path = base / "root" / "nemo_path"
    results = export_all(cuts, out)
    results["nemo_path"] = get_exporter("nemo")(CutSet(cuts), nemo_path, image_mode="path")
    return base, out, nemo_path, cuts, results, before


def test_unsafe_ids_write_nothing_outside_the_export(unsafe_export):
    base, out, nemo_path, cuts, results, before = unsafe_export
    assert all(r.counts.failed == 0 for r in results.values())
    assert results["shar"].counts.written == len(cuts)
    new = listing(base) - before - {str(base / "root")}
    assert new and all(p.startswith((str(out), str(nemo_path))) for p in new), sorted(new)[:5]
    for path in new:
        assert all(len(part.encode()) <= 255 for part in Path(path).parts)
    names = tar_names(out) + tar_names(nemo_path)
    assert len(names) >= 4 * len(cuts)
    for name in names:
        assert ".." not in Path(name).parts and not name.startswith("/") and "/" not in name, name
        assert len(name.encode()) <= 255


def test_exports_with_unsafe_ids_read_back_with_their_ids(unsafe_export):
    _, out, nemo_path, cuts, _, _ = unsafe_export
    ids = sorted(c.id for c in cuts)
    assert "../../x/ESCAPED-t0-en-v0" in ids
    assert sorted(c.id for c in read_shar(out / "shar")) == ids
    for entry in ("shar", "nemo", "files", "hf"):
        assert sorted(t.metadata["id"] for t in open_export(out / entry)) == ids, entry
    triplets = [json.loads(line) for line in open(out / "triplets.jsonl", encoding="utf-8")]
    assert sorted(r["id"] for r in triplets) == ids
    with_image = list(open_export(nemo_path / "nemo"))
    assert sorted(t.metadata["id"] for t in with_image) == ids
    assert all(t.image is not None and t.image.size == (8, 6) for t in with_image)
    dialogues = {c.id for c in read_shar(out / "duplex")}
    assert "../../x/ESCAPED-en-v0" in dialogues and str({"x": 1}) + "-en-v0" in dialogues
    # Lhotse's own reader (NeMo's) opens the Shar: members named after the stored (safe) ids.
    raw = list(CutSet.from_shar(in_dir=out / "shar"))
    assert {c.id for c in raw} == {safe_name(i) for i in ids}
    assert {c.custom.get("original_id", c.id) for c in raw} == set(ids)


# --- secrets and cloning references ------------------------------------------------------------


def blobs(path: Path) -> list[tuple[str, bytes]]:
    """The bytes of ``path`` and of everything inside it (gzip, tar members, parquet values)."""
    data = path.read_bytes()
    out = [(str(path), data)]
    out += _inner(str(path), data)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        out.append((f"{path}:values", repr(pq.read_table(path).to_pylist()).encode()))
    return out


def _inner(name: str, data: bytes) -> list[tuple[str, bytes]]:
    if data[:2] == b"\x1f\x8b":
        inner = gzip.decompress(data)
        return [(f"{name}:gz", inner), *_inner(f"{name}:gz", inner)]
    if name.endswith(".tar"):
        out = []
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                content = tar.extractfile(member).read() if member.isfile() else b""
                out += [(f"{name}:{member.name}", content)]
                out += _inner(f"{name}:{member.name}", content)
        return out
    return []


def test_no_secret_or_cloning_reference_in_any_output_byte(tmp_path):
    private = {"api_key": API_KEY, "ref_audio": REF_AUDIO, "ref_text": REF_TEXT}
    cuts = spoken_cuts(MIXED[:2], **private)
    cuts = [
        fastcopy(c, supervisions=[fastcopy(c.supervisions[0], custom={"prompt_wav": REF_AUDIO})])
        for c in cuts
    ]
    settings = {
        "synthesize": {
            "tts": {
                "default": {
                    "name": "openai_speech",
                    "options": {
                        "api_key": API_KEY,
                        "references": {"anna": {"audio": REF_AUDIO, "text": REF_TEXT}},
                    },
                },
                "fr": {"name": "cosyvoice", "options": {"ref_audio": REF_AUDIO}},
            }
        },
        "rephrase": {"backend": {"options": {"token": API_KEY, "headers": {"Authorization": 1}}}},
    }
    out = tmp_path / "export"
    export_all(cuts, out, settings=settings)
    get_exporter("nemo")(CutSet(cuts), tmp_path / "paths", image_mode="path", settings=settings)
    found = {s: [] for s in (API_KEY, REF_AUDIO, REF_TEXT, ANSWER_MARKER)}
    files = [p for root in (out, tmp_path / "paths") for p in root.rglob("*") if p.is_file()]
    searched = []
    for path in files:
        for name, data in blobs(path):
            searched.append(name)
            for secret in found:
                if secret.encode() in data:
                    found[secret].append(name)
    assert not found[API_KEY] and not found[REF_AUDIO] and not found[REF_TEXT], found
    # The search sees inside compressed files, tars and parquet (the answers are found there).
    where = " ".join(found[ANSWER_MARKER])
    assert ".jsonl.gz:gz" in where and ".parquet:values" in where and "hf/arrow" in where
    assert any(".tar:" in name and name.endswith(".json") for name in searched)
    assert len(files) >= 20 and any(name.startswith(str(out / ".")) for name in searched)
    card = (out / "hf" / "README.md").read_text()
    assert "<redacted>" in card and "<reference sha1:" in card and "openai_speech" in card


# --- readers stay inside the export ------------------------------------------------------------


def test_conversation_image_refuses_paths_outside_the_export(tmp_path):
    root = tmp_path / "nemo"
    (root / "images").mkdir(parents=True)
    (root / "images" / "ok.png").write_bytes(png())
    outside = tmp_path / "outside.png"
    outside.write_bytes(png((1, 2, 3)))
    (root / "images" / "link.png").symlink_to(outside)
    (root / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    assert conversation_image({fields.IMAGE_PATH: "images/ok.png"}, root).size == (8, 6)
    for bad in ("../outside.png", str(outside), "images/link.png", "linkdir/outside.png"):
        with pytest.raises(ItemError, match=r"^outside_root: image_path"):
            conversation_image({fields.IMAGE_PATH: bad}, root)


def test_triplet_files_reader_refuses_rows_pointing_outside(tmp_path):
    (tmp_path / "files").mkdir()
    sf.write(tmp_path / "outside.wav", np.zeros(160, np.float32), 16000)
    row = {"id": "x", "audio": "../outside.wav", "answer": "a", "image": None}
    (tmp_path / "files" / "metadata_en.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(ItemError, match="outside_root: audio"):
        list(open_export(tmp_path / "files"))


# --- option mistakes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("formats", ["shar", "nemoo"]),
        ("image_mode", "inline"),
        ("audio_format", "ogg"),
        ("triplets_format", "tsv"),
        ("index_format", "parquet"),
        ("shard_size", 0),
        ("shard_size", -5),
        ("num_buckets", 0),
        ("hf_num_shards", 0),
        ("hf_max_shard_rows", 0),
        ("shard_hours", 0.0),
        ("sampling_rate", -16000),
        ("sampling_rate", 0),
        ("duplex_gap", -1.0),
        ("samples", -1),
        ("pad_multiple", 0),
        ("role_names", {"speaker": "User"}),
        ("weights", {"en": -1.0}),
        ("weights", {"en": float("nan")}),
    ],
)
def test_check_export_options_names_the_key_in_one_line(tmp_path, key, value):
    cfg = ExportConfig(**{key: value})
    with pytest.raises(ValueError) as err:
        check_export_options(cfg)
    message = str(err.value)
    assert message.startswith(f"export.{key}") and "\n" not in message, message
    with pytest.raises(ValueError, match=f"^export.{key}"):
        export_formats([], tmp_path / "out", **{key: value})
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_check_export_options_accepts_the_defaults_and_audio_formats_per_format():
    check_export_options(ExportConfig())
    check_export_options(ExportConfig(formats=available_formats(), sampling_rate=24000))
    check_export_options(ExportConfig(formats=["shar"], audio_format="opus"))
    both = ExportConfig(formats=["shar", "nemo"], audio_format="opus")
    assert _message(both).startswith("export.audio_format: unknown value 'opus' (format nemo")
    assert "known: duplex, hf, nemo" in _message(ExportConfig(formats=["nemoo"]))


def _message(cfg) -> str:
    with pytest.raises(ValueError) as err:
        check_export_options(cfg)
    return str(err.value)


def test_cli_reports_a_bad_option_before_reading_anything(stage_dirs, tmp_path):
    result = invoke("nemo", stage_dirs["mixed"], tmp_path / "out", "image_mode=inline")
    assert result.exit_code != 0
    assert "export.image_mode" in (str(result.exception) + result.output)
    assert not (tmp_path / "out").exists()
    assert os.listdir(tmp_path) == []
