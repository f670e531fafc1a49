"""Backends that break their contract: each violation fails the affected item with its named
reason, every other item is kept with its OWN audio and scores, no NaN reaches a manifest, and a
hanging backend is cut off by ``engine.item_timeout`` while the other items go on.

The faults come from the ``faulty`` backends of :mod:`lhotse_triplets.testing.backends`, triggered
by a word in the text (``BAD`` unless told otherwise).
"""

import errno
import gzip
import json
import math
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.audio import make_recording, resample
from lhotse_triplets.backends import BackendSpec, build
from lhotse_triplets.config import load_config
from lhotse_triplets.cuts import with_language_text
from lhotse_triplets.engine import LocalExecutor, read_cuts, shard_cuts
from lhotse_triplets.errors import ItemError, read_failures, reason_code
from lhotse_triplets.pipeline import run_pipeline
from lhotse_triplets.testing.cuts import prompt_cut
from lhotse_triplets.transforms.base import ItemTimeout, limit_paused, time_limit
from lhotse_triplets.transforms.gate import Gate, is_kept
from lhotse_triplets.transforms.registry import build_stage
from lhotse_triplets.transforms.rephrase import Rephrase
from lhotse_triplets.transforms.score import Score
from lhotse_triplets.transforms.synthesize import Synthesize

TEXTS = ["Is the cube red?", "Is the BAD ball blue?", "How many spheres?", "Where is the cone?"]
ASR = build("asr", "dummy")


def language_cuts(texts=TEXTS, language="en", prefix="c"):
    return [
        with_language_text(prompt_cut(f"{prefix}{i}", text, "x"), language, text)
        for i, text in enumerate(texts)
    ]


def synthesize(tts_options, texts=TEXTS, audio_dir=None, timeout=None, language="en"):
    """Spoken cuts and failures of ``texts`` with one voice, in ONE batch (one TTS call)."""
    stage = Synthesize(
        {"default": BackendSpec("tts", "faulty", {"num_voices": 1, **tts_options})},
        voices_per_prompt=1,
        sampling_rate=16000,
        audio_dir=audio_dir,
        batch_size=len(texts),
    )
    stage.item_timeout = timeout
    failures = []
    cuts = language_cuts(texts, language)
    out = stage.apply(CutSet.from_cuts(cuts), on_failure=failures.append).to_eager()
    return list(out), failures, stage


def assert_own_audio(cuts):
    """Every clip decodes (dummy ASR) to its own prompt's text: no clip got another's audio."""
    for cut in cuts:
        assert ASR.transcribe([cut.load_audio()[0]])[0] == cut.supervisions[0].text, cut.id


def assert_no_nan(path: Path):
    """No bare NaN / Infinity in any manifest (or other text file) under ``path``."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for p in files:
        if p.suffix in (".flac", ".wav", ".png", ".tar", ".parquet", ".arrow"):
            continue
        data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        for token in (b"NaN", b"Infinity"):
            assert token not in data, f"{token!r} in {p}"


# --- synthesize: one output per text, each a finite non-silent mono float waveform -------------

TTS_FAULTS = {
    "short_count": "tts_output_count",
    "extra_count": "tts_output_count",
    "none": "tts_output_count",
    "nan": "non_finite_audio",
    "inf": "non_finite_audio",
    "int16": "audio_dtype",
    "stereo": "audio_shape",
    "silent": "silent_audio",
    "empty": "no_audio",
    "short": "no_audio",
    "raise": "RuntimeError",
}


@pytest.mark.parametrize("fault", sorted(TTS_FAULTS))
def test_tts_fault_fails_only_its_item_and_others_keep_their_own_audio(fault, tmp_path):
    out, failures, _ = synthesize({"fault": fault}, audio_dir=tmp_path)
    assert [(f.cut_id, reason_code(f.reason)) for f in failures] == [
        ("c1-t0-en-v0", TTS_FAULTS[fault])
    ]
    assert sorted(c.id for c in out) == ["c0-t0-en-v0", "c2-t0-en-v0", "c3-t0-en-v0"]
    assert_own_audio(out)
    # Nothing was written for the failed clip.
    assert sorted(p.name for p in tmp_path.rglob("*.flac")) == sorted(f"{c.id}.flac" for c in out)


def test_wrong_count_from_every_call_fails_every_item_never_misaligns():
    out, failures, _ = synthesize({"fault": "short_count", "trigger": None})
    assert not out
    assert len(failures) == len(TEXTS)
    assert {reason_code(f.reason) for f in failures} == {"tts_output_count"}
    assert "faulty returned 0 audio for 1 input" in failures[0].reason


def test_undeclared_sampling_rate_fails_every_item_before_writing(tmp_path):
    out, failures, _ = synthesize({"fault": "bad_rate"}, audio_dir=tmp_path)
    assert not out and len(failures) == len(TEXTS)
    assert {reason_code(f.reason) for f in failures} == {"bad_sampling_rate"}
    assert not list(tmp_path.rglob("*.flac"))


@pytest.mark.parametrize(
    ("text", "language", "code"),
    [
        ("\u200b\u200b\u200b", "en", "no_speakable_text"),
        ("\U0001f600\U0001f600", "en", "no_speakable_text"),
        ("Is it red?\x07", "en", "control_characters"),
        # A ja cut whose text stayed English (rephrase fell back after flagging it).
        ("What colour is the cube?", "ja", "wrong_script"),
    ],
)
def test_unspeakable_text_fails_before_any_tts_call(text, language, code):
    out, failures, stage = synthesize(
        {"fault": "raise", "trigger": None}, [text], None, None, language
    )
    assert not out and [reason_code(f.reason) for f in failures] == [code]
    assert failures[0].cut_id == f"c0-t0-{language}"
    assert all(tts.calls == 0 for tts in stage._backends.values())


def test_unsafe_ids_and_voices_stay_inside_the_audio_dir(tmp_path):
    audio_dir = tmp_path / "run" / "audio"
    audio_dir.parent.mkdir()
    before = set(tmp_path.rglob("*"))
    cut = with_language_text(prompt_cut("../../x/ESCAPED", "Is it red?", "x"), "en", "Is it red?")
    stage = Synthesize({"default": BackendSpec("tts", "dummy")}, audio_dir=audio_dir)
    spoken = stage(cut)
    assert spoken.id.startswith("../../x/ESCAPED-t0-en-")  # the id itself is unchanged
    written = set(tmp_path.rglob("*")) - before
    assert written and all(p.resolve().is_relative_to(audio_dir.resolve()) for p in written)
    assert Path(spoken.recording.sources[0].source).parent.parent.parent == audio_dir.resolve()
    assert_own_audio([spoken])


# --- the per-item time limit ----------------------------------------------------------------


def test_hanging_tts_is_cut_off_and_the_other_items_go_on(tmp_path):
    start = time.monotonic()
    out, failures, _ = synthesize({"fault": "hang"}, audio_dir=tmp_path, timeout=0.5)
    assert time.monotonic() - start < 10
    assert [(f.cut_id, f.reason) for f in failures] == [
        ("c1-t0-en", "timeout: synthesize took longer than 0.5 s")
    ]
    # The items after the one that timed out were spoken by a fresh backend, correctly.
    assert sorted(c.id for c in out) == ["c0-t0-en-v0", "c2-t0-en-v0", "c3-t0-en-v0"]
    assert_own_audio(out)


def test_hanging_scorer_is_cut_off(tmp_path):
    spoken, _, _ = synthesize({"fault": "short_count", "trigger": "NEVER"}, audio_dir=tmp_path)
    score = Score(mos=BackendSpec("mos", "faulty", {"fault": "hang"}), batch_size=4)
    score.item_timeout = 0.5
    failures = []
    out = score.apply(CutSet.from_cuts(spoken), on_failure=failures.append).to_eager()
    assert [f.reason for f in failures] == ["timeout: score took longer than 0.5 s"]
    assert len(out) == 3 and all(c.custom[fields.MOS] > 1 for c in out)


def test_no_limit_off_the_main_thread():
    # SIGALRM only reaches the main thread: elsewhere the item runs to its end (documented).
    result = {}

    def work():
        result["out"] = synthesize({"fault": "hang", "hang_seconds": 0.3}, timeout=0.05)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    out, failures, _ = result["out"]
    assert not failures and len(out) == len(TEXTS)


def test_time_limit_pauses_for_backend_building_and_restores_an_outer_timer():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 30.0)
    try:
        with time_limit(0.2):
            with limit_paused():
                time.sleep(0.3)  # e.g. a model loading: not the item's time
        with pytest.raises(ItemTimeout), time_limit(0.05):
            time.sleep(2)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25 < left <= 30 and not fired
        assert signal.getsignal(signal.SIGALRM) is not None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_build_stage_takes_the_limit_from_the_engine_config():
    cfg = load_config(None, ["engine.item_timeout=2.5"])
    assert build_stage("gate", cfg).item_timeout == 2.5
    assert build_stage("gate", load_config(None, ["engine.item_timeout=null"])).item_timeout is None


# --- score: one output per input, finite scores ------------------------------------------------

SCORE_FAULTS = [
    ("asr", "short_count", "asr_output_count"),
    ("asr", "extra_count", "asr_output_count"),
    ("asr", "not_text", "asr_output_type"),
    ("embed", "short_count", "embed_output_count"),
    ("embed", "nan", "non_finite_score"),
    ("mos", "short_count", "mos_output_count"),
    ("mos", "extra_count", "mos_output_count"),
    ("mos", "nan", "non_finite_score"),
    ("mos", "inf", "non_finite_score"),
    ("mos", "none", "non_finite_score"),
]


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    out, failures, _ = synthesize(
        {"fault": "short_count", "trigger": "NEVER"}, audio_dir=tmp_path_factory.mktemp("audio")
    )
    assert not failures
    return out


@pytest.mark.parametrize(("kind", "fault", "code"), SCORE_FAULTS)
def test_score_fault_fails_only_its_item(kind, fault, code, spoken, tmp_path):
    backends = {k: BackendSpec(k, "dummy") for k in ("asr", "embed", "mos")}
    backends[kind] = BackendSpec(kind, "faulty", {"fault": fault})
    failures = []
    out = Score(**backends, batch_size=4).apply(spoken, on_failure=failures.append).to_eager()
    assert [(f.cut_id, reason_code(f.reason)) for f in failures] == [("c1-t0-en-v0", code)]
    if code == "non_finite_score":
        name = fields.SIMILARITY if kind == "embed" else fields.MOS
        assert failures[0].reason.startswith(f"non_finite_score: {name}=")
    assert sorted(c.id for c in out) == ["c0-t0-en-v0", "c2-t0-en-v0", "c3-t0-en-v0"]
    for cut in out:  # each kept clip is scored against its own audio
        assert cut.custom[fields.ASR_TEXT] == cut.supervisions[0].text
        assert cut.custom[fields.WER] == 0 and cut.custom[fields.MOS] > 1
    out.to_file(tmp_path / "scored.jsonl.gz")
    assert_no_nan(tmp_path / "scored.jsonl.gz")


def test_gate_never_passes_a_non_finite_score(tmp_path):
    cut = prompt_cut("a", "Is it red?", "x")
    cuts = [
        cut.with_custom(fields.MOS, math.nan),
        cut.with_custom(fields.SIMILARITY, math.inf),
        cut.with_custom(fields.WER, "oops"),
        cut.with_custom(fields.MOS, 4.0),
    ]
    # Even with every threshold off, a NaN/inf/text score is rejected, named, and written null.
    gate = Gate(None, None, None, None, None)
    gated = [gate(c) for c in cuts]
    assert [c.custom[fields.REJECT_REASON] for c in gated] == [
        "non_finite_mos",
        "non_finite_similarity",
        "non_finite_wer",
        None,
    ]
    assert gated[0].custom[fields.MOS] is None
    strict = Gate(min_mos=2.0, max_error_rate=None, min_similarity=None, min_duration=None)
    assert strict(cuts[0]).custom[fields.REJECT_REASON] == "non_finite_mos"
    CutSet.from_cuts(gated).to_file(tmp_path / "gated.jsonl.gz")
    assert_no_nan(tmp_path / "gated.jsonl.gz")


def test_calibrated_gate_rejects_nan_features():
    spec = {
        "format": "lhotse-triplets/calibrated-gate/v1",
        "features": [fields.MOS],
        "scaler": {"mean": [3.0], "scale": [1.0]},
        "coefficients": [1.0],
        "intercept": 0.0,
        "threshold": 0.1,
    }
    cut = prompt_cut("a", "Is it red?", "x")
    gate = Gate(min_duration=None, max_duration=None, calibrated=spec)
    assert not is_kept(gate(cut.with_custom(fields.MOS, math.nan)))
    assert is_kept(gate(cut.with_custom(fields.MOS, 4.0)))


# --- rephrase: one rewrite per text --------------------------------------------------------------


@pytest.mark.parametrize("fault", ["short_count", "extra_count"])
def test_llm_wrong_count_falls_back_for_every_item_of_the_call(fault):
    cuts = CutSet.from_cuts(
        prompt_cut(f"c{i}", text, "x", translations={"fr": f"Question {i} en français ?"})
        for i, text in enumerate(TEXTS)
    )
    llm = BackendSpec("llm", "faulty", {"fault": fault})
    failures = []
    stage = Rephrase(["en", "fr", "de"], llm, batch_size=4, embed=None)
    out = {c.id: c for c in stage.apply(cuts, on_failure=failures.append)}
    rules = {c.id: c for c in Rephrase(["en", "fr"], embed=None).apply(cuts)}
    assert set(out) == set(rules)  # en and fr of every cut: from the rules, each its own text
    for cut_id, cut in out.items():
        assert cut.supervisions[0].text == rules[cut_id].supervisions[0].text
        assert cut.custom[fields.REPHRASED_BY] == "rules"
        [attempt] = cut.custom[fields.REPHRASE_REJECTED]
        assert reason_code(attempt["reasons"][0]) == "llm_output_count"
    # German: nothing to fall back to -> failed, naming the broken contract.
    assert len(failures) == len(TEXTS)
    assert all(
        reason_code(f.reason) == "no_text" and "llm_output_count" in f.reason for f in failures
    )


def test_meaning_check_embedder_with_wrong_count_fails_its_item():
    texts = ["What number of cubes are there?", "What number of BAD balls are there?"]
    cuts = CutSet.from_cuts(prompt_cut(f"c{i}", t, "x") for i, t in enumerate(texts))
    embed = BackendSpec("embed", "faulty", {"fault": "short_count"})
    failures = []
    out = Rephrase(["en"], embed=embed).apply(cuts, on_failure=failures.append).to_eager()
    assert [c.id for c in out] == ["c0-t0-en"]
    assert [(f.cut_id, reason_code(f.reason)) for f in failures] == [
        ("c1-t0", "embed_output_count")
    ]


# --- audio helpers: named reasons, never assertions ----------------------------------------------


def test_audio_helpers_raise_named_reasons(tmp_path, monkeypatch):
    good = np.full(1600, 0.1, dtype=np.float32)
    cases = [
        (lambda: make_recording(np.full(1600, np.nan, np.float32), 16000, "x"), "non_finite_audio"),
        (lambda: make_recording(good, 0, "x"), "bad_sampling_rate"),
        (lambda: make_recording(good, 16000, "x", tmp_path / "x.zzz", "zzz"), "audio_format"),
        (lambda: make_recording(np.stack([good, good]), 16000, "x"), "audio_shape"),
        (lambda: resample(good, -8000, 16000), "bad_sampling_rate"),
    ]
    for call, code in cases:
        with pytest.raises(ItemError) as info:
            call()
        assert reason_code(info.value.reason) == code
    # Silence is allowed in a recording (the bench's control set writes some).
    assert make_recording(np.zeros(1600, np.float32), 16000, "s").duration == 0.1

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(ItemError, match="audio_write: cannot write .*No space left"):
        make_recording(good, 16000, "x", tmp_path / "a" / "x.flac")
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


# --- through the whole pipeline --------------------------------------------------------------


def pipeline_config(tmp_path, rows, **overrides):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"r{i}",
                    "conversations": [
                        {"role": "user", "content": f"<image>\n{text}"},
                        {"role": "assistant", "content": "A cube."},
                    ],
                }
            )
            + "\n"
            for i, text in enumerate(rows)
        )
    )
    cfg = {
        "languages": ["en"],
        "prepare": {"recipe": "llava_instruct", "options": {"source": str(corpus)}},
        "rephrase": {"embed": None},
        "synthesize": {"voices_per_prompt": 1},
        "score": {"asr": {"name": "dummy"}, "embed": {"name": "dummy"}, "mos": {"name": "dummy"}},
        "gate": {"min_similarity": 0.9, "max_error_rate": 0.1, "min_mos": 2.0},
        "export": {"formats": ["shar"]},
        "shard_size": 2,
        **overrides,
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


def failed_reasons(out: Path) -> dict[str, str]:
    lines = (out / "failed.jsonl").read_text().splitlines()
    return {json.loads(x)["cut_id"].split("-")[0]: json.loads(x)["reason"] for x in lines}


def test_pipeline_wrong_tts_count_and_nan_mos(tmp_path):
    rows = ["Is the cube red?", "Is the BAD ball blue?", "How many spheres?", "Is it ODD?"]
    cfg = pipeline_config(
        tmp_path,
        rows,
        synthesize={
            "voices_per_prompt": 1,
            "batch_size": 4,
            "tts": {"default": {"name": "faulty", "options": {"num_voices": 1}}},
        },
        score={
            "asr": {"name": "dummy"},
            "embed": {"name": "dummy"},
            "mos": {"name": "faulty", "options": {"fault": "nan", "trigger": "ODD"}},
        },
    )
    out = tmp_path / "run"
    summary = run_pipeline(cfg, out, progress=False)
    reasons = failed_reasons(out)
    assert {k: reason_code(v) for k, v in reasons.items()} == {
        "r1": "tts_output_count",
        "r3": "non_finite_score",
    }
    kept = list(CutSet.from_shar(in_dir=out / "export" / "shar"))
    assert summary.kept == 2 and sorted(c.custom[fields.CONVERSATION_ID] for c in kept) == [
        "r0",
        "r2",
    ]
    assert_own_audio(kept)
    assert_no_nan(out)


def test_pipeline_hanging_tts_is_cut_off_by_item_timeout(tmp_path):
    rows = ["Is the cube red?", "Is the BAD ball blue?", "How many spheres?"]
    cfg = pipeline_config(
        tmp_path,
        rows,
        synthesize={"tts": {"default": {"name": "faulty", "options": {"fault": "hang"}}}},
        engine={"item_timeout": 1},
    )
    out = tmp_path / "run"
    start = time.monotonic()
    summary = run_pipeline(cfg, out, progress=False)
    assert time.monotonic() - start < 60
    assert failed_reasons(out) == {"r1": "timeout: synthesize took longer than 1 s"}
    kept = list(CutSet.from_shar(in_dir=out / "export" / "shar"))
    assert summary.kept == 2 and len(kept) == 2
    assert_own_audio(kept)


def test_worker_processes_apply_the_limit(tmp_path):
    # The local executor's spawned workers build the faulty backend by name and apply the limit
    # on their own main thread.
    cfg = load_config(
        None,
        [
            "synthesize.tts.default.name=faulty",
            "synthesize.tts.default.options={fault: hang}",
            "engine.item_timeout=1",
        ],
    )
    stage = build_stage("synthesize", cfg, tmp_path)
    shards = shard_cuts(CutSet.from_cuts(language_cuts()), tmp_path / "in", 2)
    report = LocalExecutor(num_workers=2, progress=False).run(stage, shards, tmp_path / "out")
    failures = read_failures(tmp_path / "out")
    assert [(f.cut_id, f.reason) for f in failures] == [
        ("c1-t0-en", "timeout: synthesize took longer than 1 s")
    ]
    kept = list(read_cuts(tmp_path / "out"))
    assert report.cuts_out == len(kept) == 3 * cfg.synthesize.voices_per_prompt
    assert_own_audio(kept)
