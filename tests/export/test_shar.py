"""Shar export: what a trainer reads back must be what went in (answer, audio, image)."""

import gzip
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet, MonoCut, Recording, fastcopy
from omegaconf import OmegaConf
from PIL import Image as PILImage
from PIL import ImageDraw

from lhotse_triplets import fields
from lhotse_triplets.audio import resample
from lhotse_triplets.cuts import make_prompt_cut, with_audio
from lhotse_triplets.errors import Failure
from lhotse_triplets.export import DEFAULT_QUESTION, export_shar, iter_triplets, read_shar
from lhotse_triplets.export.nemo_config import (
    DEFAULT_AUDIO_LOCATOR_TAG,
    INPUT_TYPE,
    write_nemo_config,
)
from lhotse_triplets.export.shar import DROPPED_FIELDS
from lhotse_triplets.images import load_image_bytes

SAMPLING_RATE = 16000

#: (conversation id, turn, language, voice, spoken prompt, answer, reject reason)
SPECS = [
    (
        "clevr_000001",
        0,
        "en",
        "en-us",
        "How many red cubes are there?",
        "There are **two** red cubes.\n\n- one is large\n- one is small",
        None,
    ),
    (
        "clevr_000001",
        1,
        "fr",
        "fr",
        "De quelle couleur est la grande sphère ?",
        "La grande sphère est « bleue ».\nÇa fait 3 objets — voilà.",
        None,
    ),
    (
        "clevr_000002",
        0,
        "en",
        "en-gb",
        "Is the cylinder metallic?",
        "Yes: it's metallic (shiny).\n\n```\nanswer = yes\n```",
        None,
    ),
    (
        "clevr_000002",
        1,
        "fr",
        "fr",
        "Combien y a-t-il d'objets ?",
        "Il y a 5 objets : 2 cubes, 3 sphères.",
        "wer 0.80 > 0.50",
    ),
]


def speak(text: str, language: str) -> np.ndarray:
    """``text`` spoken by espeak-ng at 16 kHz (a short tone when espeak-ng is missing)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        t = np.arange(int(0.5 * SAMPLING_RATE)) / SAMPLING_RATE
        return (0.3 * np.sin(2 * np.pi * (220 + 20 * len(text)) * t)).astype(np.float32)
    wav = subprocess.run(
        [espeak, "-v", language, "--stdout", text], capture_output=True, check=True
    ).stdout
    audio, sr = sf.read(io.BytesIO(wav), dtype="float32")
    return resample(audio, sr, SAMPLING_RATE)


def draw_image(path: Path, seed: int) -> Path:
    """A small CLEVR-like scene, saved as PNG or JPEG by ``path``'s extension."""
    img = PILImage.new("RGB", (64, 48), (200, 200, 200))
    draw = ImageDraw.Draw(img)
    draw.rectangle([4 + seed, 8, 24 + seed, 28], fill=(200, 30 + 40 * seed, 30))
    draw.ellipse([34, 10 + seed, 58, 34 + seed], fill=(30, 30, 200))
    img.save(path)
    return path


def triplet_cut(
    workdir: Path,
    conversation_id: str,
    turn: int,
    language: str,
    voice: str,
    prompt: str,
    answer: str,
    reject_reason: str | None = None,
    in_memory_audio: bool = False,
    image_ext: str = "png",
) -> MonoCut:
    """A cut as it leaves synthesis + scoring + gating: real audio, image, scores."""
    cut_id = f"{conversation_id}-t{turn}-{language}-{voice}"
    audio = speak(prompt, language)
    buf = io.BytesIO()
    sf.write(buf, audio, SAMPLING_RATE, format="FLAC", subtype="PCM_16")
    if in_memory_audio:
        recording = Recording.from_bytes(buf.getvalue(), recording_id=cut_id)
    else:
        path = workdir / f"{cut_id}.flac"
        path.write_bytes(buf.getvalue())
        recording = Recording.from_file(path, recording_id=cut_id)
    image = workdir / f"{conversation_id}.{image_ext}"
    if not image.exists():
        draw_image(image, seed=int(conversation_id[-1]))
    custom = {
        fields.CONVERSATION_ID: conversation_id,
        fields.TURN: turn,
        fields.USER_TEXT: prompt,
        fields.PLACEHOLDERS: ["<image>"],
        fields.ANSWER: answer,
        fields.DATA_SOURCE: "CLEVR",
        fields.HISTORY: [{"role": "user", "text": "Look at this."}] if turn else [],
        fields.TRANSLATIONS: {"de": "Übersetzung"},
        fields.TTS_MODEL: "espeak",
        fields.SYNTHESIS_SECONDS: 0.01,
        fields.ASR_TEXT: prompt.lower(),
        fields.SIMILARITY: 0.93,
        fields.WER: 0.1,
        fields.CER: 0.05,
        fields.ERROR_RATE: 0.1,
        fields.MOS: 3.9,
        fields.GATE_SCORE: 0.87,
        fields.REJECT_REASON: reject_reason,
    }
    return spoken_cut(recording, prompt, language, voice, custom, image)


def spoken_cut(
    recording: Recording, text: str, language: str, voice: str, custom: dict, image: Path
) -> MonoCut:
    """A cut as synthesis makes it (id = the recording's), with an image attached."""
    prompt = make_prompt_cut(recording.id, text, language, custom)
    return with_audio(prompt, voice, recording).attach_image(fields.IMAGE, str(image))


def make_triplet_cuts(workdir: Path, specs=SPECS) -> list[MonoCut]:
    """One cut per spec; the second one's audio is held in memory, the third's image is JPEG."""
    return [
        triplet_cut(workdir, *spec, in_memory_audio=(i == 1), image_ext="jpg" if i == 2 else "png")
        for i, spec in enumerate(specs)
    ]


def kept(cuts: list[MonoCut]) -> list[MonoCut]:
    return [c for c in cuts if c.custom[fields.REJECT_REASON] is None]


@pytest.fixture(scope="module")
def source_cuts(tmp_path_factory) -> list[MonoCut]:
    return make_triplet_cuts(tmp_path_factory.mktemp("src"))


def shar_of(export_dir: Path, cuts, **options) -> Path:
    """Export ``cuts`` as Shar into ``export_dir``; the Shar directory."""
    return Path(export_shar(CutSet(cuts), export_dir, **options).paths["shar"])


@pytest.fixture(scope="module")
def exported(source_cuts, tmp_path_factory):
    result = export_shar(CutSet(source_cuts), tmp_path_factory.mktemp("export"), shard_size=2)
    return Path(result.paths["shar"]), result


def test_export_writes_shards_with_image_inside(exported, source_cuts):
    out, result = exported
    assert out.name == "shar" and result.format == "shar"
    paths = result.details["shards"]
    assert set(paths) == {"cuts", "recording", fields.IMAGE}
    assert [Path(p).name for p in paths["cuts"]] == ["cuts.000000.jsonl.gz", "cuts.000001.jsonl.gz"]
    assert all(Path(p).is_file() for ps in paths.values() for p in ps)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        Path(p).name for ps in paths.values() for p in ps
    )
    assert not list(out.parent.glob(".*partial"))
    # The NeMo config beside the Shar (never inside it), and nothing else in the export dir.
    assert result.paths == {"shar": str(out), "nemo_config": str(out.parent / "nemo_data.yaml")}
    assert sorted(p.name for p in out.parent.iterdir()) == [
        ".shar.written.json",  # the record of the files the export wrote (for --overwrite)
        "nemo_data.yaml",
        "shar",
    ]
    counts = result.counts
    assert (counts.written, counts.rejected, counts.failed) == (3, 1, 0)
    assert counts.per_language == {"en": 2, "fr": 1}
    assert counts.seconds == pytest.approx(sum(c.duration for c in kept(source_cuts)))


def test_exported_nemo_config_points_at_the_shar_with_buckets(exported):
    out, result = exported
    cfg = OmegaConf.to_container(OmegaConf.load(result.paths["nemo_config"]))
    assert cfg["sample_rate"] == SAMPLING_RATE
    assert cfg["input_cfg"] == [
        {
            "type": INPUT_TYPE,
            "shar_path": str(out.resolve()),
            "audio_locator_tag": DEFAULT_AUDIO_LOCATOR_TAG,
            "weight": 1.0,
        }
    ]
    assert cfg["use_bucketing"] and cfg["num_buckets"] == len(cfg["bucket_duration_bins"]) + 1


def test_no_cuts_no_nemo_config_and_a_stale_one_is_removed(source_cuts, tmp_path):
    export_shar(CutSet(source_cuts), tmp_path)
    assert (tmp_path / "nemo_data.yaml").is_file()
    rejected = [c for c in source_cuts if c.custom[fields.REJECT_REASON]]
    result = export_shar(CutSet(rejected), tmp_path, overwrite=True)
    assert result.counts.written == 0 and result.counts.rejected == 1
    assert "nemo_config" not in result.paths
    assert not (tmp_path / "nemo_data.yaml").exists()
    # One empty shard: Lhotse's own reader opens it as zero cuts.
    assert sorted(p.name for p in (tmp_path / "shar").iterdir()) == [
        "cuts.000000.jsonl.gz",
        "image.000000.tar",
        "recording.000000.tar",
    ]
    assert list(CutSet.from_shar(in_dir=tmp_path / "shar")) == [] and result.empty
    assert "empty export" in result.details["note"] and "note: empty export" in str(result)


def test_shar_reads_back_ids_answers_audio_image(exported, source_cuts):
    out, _ = exported
    expected = {c.id: c for c in kept(source_cuts)}
    back = {c.id: c for c in CutSet.from_shar(in_dir=out)}
    assert sorted(back) == sorted(expected)
    for cut_id, cut in back.items():
        src = expected[cut_id]
        assert cut.custom[fields.ANSWER] == src.custom[fields.ANSWER]  # verbatim
        assert "\n" in cut.custom[fields.ANSWER]
        assert cut.supervisions[0].text == src.supervisions[0].text
        assert cut.supervisions[0].language == src.supervisions[0].language
        assert cut.supervisions[0].speaker == src.supervisions[0].speaker
        assert cut.sampling_rate == SAMPLING_RATE
        a, b = cut.load_audio(), src.load_audio()
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-3)
        image = cut.load_custom(fields.IMAGE)
        assert image.dtype == np.uint8 and image.ndim == 1
        assert image.tobytes() == load_image_bytes(src)  # the source file's own bytes
        assert (
            image.tobytes()
            == Path(
                src.custom[fields.IMAGE].storage_path, src.custom[fields.IMAGE].storage_key
            ).read_bytes()
        )


def test_shar_custom_fields_are_clean(exported):
    out, _ = exported
    for cut in CutSet.from_shar(in_dir=out):
        custom = cut.custom
        assert custom[fields.QUESTION] == DEFAULT_QUESTION
        assert not set(custom) & fields.NEMO_RESERVED
        assert not set(custom) & DROPPED_FIELDS
        assert fields.REJECT_REASON not in custom
        assert isinstance(custom[fields.SIMILARITY], float)
        assert custom[fields.MOS] == pytest.approx(3.9)
        assert custom[fields.CONVERSATION_ID].startswith("clevr_")
        assert isinstance(custom[fields.HISTORY], list)
    # The manifests themselves are plain JSON (no binary blobs).
    for shard in sorted(out.glob("cuts.*.jsonl.gz")):
        with gzip.open(shard, "rt") as f:
            for line in f:
                d = json.loads(line)
                assert d["custom"][fields.IMAGE]["storage_type"] == "shar"


def test_rejected_cuts_are_not_exported_unless_asked(source_cuts, tmp_path):
    rejected_id = next(c.id for c in source_cuts if c.custom[fields.REJECT_REASON])
    assert rejected_id not in CutSet.from_shar(in_dir=shar_of(tmp_path / "kept", source_cuts)).ids
    shar = shar_of(tmp_path / "all", source_cuts, include_rejected=True)
    back = {c.id: c for c in CutSet.from_shar(in_dir=shar)}
    assert len(back) == len(source_cuts)
    assert back[rejected_id].custom[fields.REJECT_REASON] == "wer 0.80 > 0.50"


@pytest.mark.parametrize("bad", ["shar(1)", "shar[en]", "a<b"])
def test_paths_nemo_would_rewrite_are_refused(source_cuts, tmp_path, bad):
    target = tmp_path / bad / "export"
    with pytest.raises(ValueError, match="NeMo rewrites") as err:
        export_shar(CutSet(source_cuts), target)
    assert bad in str(err.value)
    assert not (tmp_path / bad).exists()


def test_an_export_inside_a_shar_directory_is_refused(exported, source_cuts):
    out, _ = exported
    with pytest.raises(ValueError, match="Shar directory"):
        export_shar(CutSet(source_cuts), out)
    assert all(p.name.split(".")[0] in ("cuts", "recording", "image") for p in out.iterdir())


def test_export_from_lazy_cutset_streams(source_cuts, tmp_path):
    # In-memory audio cannot go into a JSONL manifest: keep the file-backed cuts.
    source_cuts = [c for c in source_cuts if c.recording.sources[0].type == "file"]
    manifest = tmp_path / "gated.jsonl.gz"
    CutSet(source_cuts).to_file(manifest)
    lazy = CutSet.from_jsonl_lazy(manifest)
    assert lazy.is_lazy
    partial = tmp_path / "lazy" / ".shar.partial"
    seen: list[str] = []

    def stream() -> Iterator[MonoCut]:
        for i, cut in enumerate(lazy):
            if i >= 2:  # shards of the earlier cuts are already on disk: written incrementally
                assert len(list(partial.glob("cuts.*.jsonl.gz"))) >= i - 1
            seen.append(cut.id)
            yield cut

    out = Path(export_shar(stream(), tmp_path / "lazy", shard_size=1).paths["shar"])
    eager_out = shar_of(tmp_path / "eager", source_cuts, shard_size=1)
    lazy_back = [(c.id, c.custom[fields.ANSWER]) for c in CutSet.from_shar(in_dir=out)]
    eager_back = [(c.id, c.custom[fields.ANSWER]) for c in CutSet.from_shar(in_dir=eager_out)]
    assert lazy_back == eager_back
    assert len(lazy_back) == len(kept(source_cuts))
    assert seen == [c.id for c in source_cuts]


def test_input_cuts_are_not_modified(source_cuts, tmp_path):
    before = [c.to_dict() for c in source_cuts]
    export_shar(CutSet(source_cuts), tmp_path)
    assert [c.to_dict() for c in source_cuts] == before


def test_question_caller_then_cut_then_default(source_cuts, tmp_path):
    own = source_cuts[0].with_custom(fields.QUESTION, "Listen, then answer.")
    cuts = CutSet([own, source_cuts[1]])
    questions = {c.id: c.custom[fields.QUESTION] for c in read_shar(shar_of(tmp_path / "d", cuts))}
    assert questions == {own.id: "Listen, then answer.", source_cuts[1].id: DEFAULT_QUESTION}
    empty = shar_of(tmp_path / "empty", cuts, question="")
    assert {c.custom[fields.QUESTION] for c in read_shar(empty)} == {""}


def test_reserved_empty_and_non_json_fields_are_dropped(source_cuts, tmp_path):
    cut = source_cuts[0]
    custom = dict(cut.custom)
    custom.update(
        {
            "input_ids": [1, 2, 3],
            "mask": [True],
            fields.CONTEXT: "",
            fields.SYSTEM_PROMPT: None,
            "blob": object(),
            "shape": np.int64(3),
            fields.SIMILARITY: np.float32(0.5),
        }
    )
    (back,) = list(read_shar(shar_of(tmp_path, [fastcopy(cut, custom=custom)])))
    for key in ("input_ids", "mask", fields.CONTEXT, fields.SYSTEM_PROMPT, "blob"):
        assert key not in back.custom
    assert back.custom["shape"] == 3
    assert back.custom[fields.SIMILARITY] == 0.5 and type(back.custom[fields.SIMILARITY]) is float


def test_failing_cut_is_reported_and_skipped(source_cuts, tmp_path):
    broken = source_cuts[0].with_custom(fields.ANSWER, None)
    failures: list[Failure] = []
    result = export_shar(CutSet([broken, source_cuts[1]]), tmp_path, on_failure=failures.append)
    assert [(f.cut_id, f.stage) for f in failures] == [(broken.id, "export_shar")]
    assert "answer" in failures[0].reason
    assert (result.counts.written, result.counts.failed) == (1, 1)
    assert list(read_shar(tmp_path / "shar").ids) == [source_cuts[1].id]


def test_existing_export_needs_overwrite_and_leaves_no_stale_shards(source_cuts, tmp_path):
    out = shar_of(tmp_path, source_cuts, shard_size=1)
    (tmp_path / "mine.txt").write_text("not the export's")  # other entries are left alone
    assert len(list(out.glob("cuts.*"))) == 3
    with pytest.raises(FileExistsError, match="overwrite"):
        export_shar(CutSet(source_cuts), tmp_path)
    export_shar(CutSet(source_cuts[:1]), tmp_path, shard_size=1, overwrite=True)
    assert len(list(out.glob("cuts.*"))) == 1
    assert list(read_shar(out).ids) == [source_cuts[0].id]
    assert (tmp_path / "mine.txt").read_text() == "not the export's"


def test_overwrite_refuses_a_shar_dir_holding_other_files(source_cuts, tmp_path):
    out = shar_of(tmp_path, source_cuts[:1])
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        export_shar(CutSet(source_cuts), tmp_path, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and read_shar(out).ids
    with pytest.raises(ValueError, match="audio_format"):
        export_shar(CutSet(source_cuts), tmp_path / "x", audio_format="aac")


def test_unknown_option_is_named(source_cuts, tmp_path):
    with pytest.raises(ValueError, match="shard_sise") as err:
        export_shar(CutSet(source_cuts), tmp_path, shard_sise=2)
    assert "shard_size" in str(err.value)  # the known options are listed
    assert not list(tmp_path.iterdir())


def test_resample_on_export(source_cuts, tmp_path):
    result = export_shar(CutSet(source_cuts[:1]), tmp_path, sampling_rate=8000)
    (cut,) = list(read_shar(result.paths["shar"]))
    assert cut.sampling_rate == 8000
    assert cut.load_audio().shape[1] == pytest.approx(source_cuts[0].num_samples / 2, abs=2)
    assert OmegaConf.load(result.paths["nemo_config"]).sample_rate == 8000


def test_iter_triplets_gives_what_a_trainer_needs(exported, source_cuts):
    out, _ = exported
    expected = {c.id: c for c in kept(source_cuts)}
    n = 0
    for image, audio, sampling_rate, target, meta in iter_triplets(out):
        src = expected[meta["id"]]
        assert target == src.custom[fields.ANSWER]
        assert sampling_rate == SAMPLING_RATE
        assert audio.ndim == 1 and audio.dtype == np.float32
        np.testing.assert_allclose(audio, src.load_audio()[0], atol=1e-3)
        src_image = PILImage.open(io.BytesIO(load_image_bytes(src)))
        assert image.size == src_image.size
        assert np.array_equal(np.asarray(image), np.asarray(src_image))
        assert meta["language"] == src.supervisions[0].language
        assert meta["voice"] == src.supervisions[0].speaker
        assert meta["prompt_text"] == src.supervisions[0].text
        assert meta[fields.QUESTION] == DEFAULT_QUESTION
        assert meta[fields.WER] == pytest.approx(0.1)
        json.dumps(meta)  # plain JSON
        n += 1
    assert n == len(expected)


def test_read_shar_refuses_a_directory_without_shards(tmp_path):
    with pytest.raises(FileNotFoundError, match="cuts"):
        read_shar(tmp_path)


def test_reexport_of_a_shar_keeps_the_image(exported, tmp_path):
    out, _ = exported
    again_dir = shar_of(tmp_path, read_shar(out))
    first = {c.id: c.load_custom(fields.IMAGE).tobytes() for c in read_shar(out)}
    again = {c.id: c.load_custom(fields.IMAGE).tobytes() for c in read_shar(again_dir)}
    assert again == first
    assert all(
        "shard_origin" not in c.custom
        for c in CutSet.from_jsonl_lazy(sorted(again_dir.glob("cuts.*"))[0])
    )


def test_nemo_config_points_at_the_shar(exported, tmp_path):
    out, _ = exported
    path = write_nemo_config(out, tmp_path / "nemo_data.yaml")
    assert OmegaConf.to_container(OmegaConf.load(path)) == {
        "sample_rate": 16000,
        "prompt_format": "llama3",
        "token_equivalent_duration": 0.08,
        "input_cfg": [
            {
                "type": "sqa_as_conversation",
                "shar_path": str(out.resolve()),
                "audio_locator_tag": DEFAULT_AUDIO_LOCATOR_TAG,
                "weight": 1.0,
            }
        ],
    }
    # Default location: next to the Shar directory, never inside it.
    assert write_nemo_config(out) == out.parent / "shar.nemo.yaml"
    with pytest.raises(ValueError, match="inside the Shar directory"):
        write_nemo_config(out, out / "nemo.yaml")
    assert not (out / "nemo.yaml").exists()
    (out.parent / "shar.nemo.yaml").unlink()


def test_nemo_config_for_several_shars_and_bad_inputs(exported, tmp_path):
    out, _ = exported
    path = write_nemo_config([out, out], tmp_path / "mix.yaml", weight=[2.0, 1.0])
    cfg = OmegaConf.load(path)
    assert [i.weight for i in cfg.input_cfg] == [2.0, 1.0]
    with pytest.raises(ValueError, match="weights"):
        write_nemo_config([out, out], tmp_path / "mix.yaml", weight=[1.0])
    with pytest.raises(FileNotFoundError, match="cuts"):
        write_nemo_config(tmp_path, tmp_path.parent / "x.yaml")


def test_shards_by_hours(source_cuts, tmp_path):
    durations = [c.duration for c in kept(source_cuts)]
    limit = (durations[0] + durations[1]) * 1.01  # the first two fit, the third does not
    result = export_shar(
        CutSet(source_cuts), tmp_path / "h", shard_size=None, shard_hours=limit / 3600
    )
    paths = result.details["shards"]
    assert [Path(p).name for p in paths["cuts"]] == ["cuts.000000.jsonl.gz", "cuts.000001.jsonl.gz"]
    shards = [[c.id for c in CutSet.from_jsonl_lazy(p)] for p in paths["cuts"]]
    assert shards == [[c.id for c in kept(source_cuts)][:2], [kept(source_cuts)[2].id]]
    back = CutSet.from_shar(in_dir=result.paths["shar"])
    assert sorted(c.id for c in back) == sorted(c.id for c in kept(source_cuts))
    # Both limits: whichever comes first.
    result = export_shar(
        CutSet(source_cuts), tmp_path / "both", shard_size=1, shard_hours=limit / 3600
    )
    assert len(result.details["shards"]["cuts"]) == 3
    # No limit at all: one unnumbered shard.
    result = export_shar(CutSet(source_cuts), tmp_path / "one", shard_size=None)
    assert [Path(p).name for p in result.details["shards"]["cuts"]] == ["cuts.jsonl.gz"]
    assert len(read_shar(result.paths["shar"]).to_eager()) == 3
    with pytest.raises(ValueError, match="hours"):
        export_shar(CutSet(source_cuts), tmp_path / "bad", shard_hours=0)
