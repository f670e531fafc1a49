import pickle

import numpy as np
import pytest
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.backends import BackendSpec
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.testing.cuts import dummy_prompt_cuts, prompt_cut
from lhotse_triplets.transforms.gate import Gate, is_kept
from lhotse_triplets.transforms.rephrase import Rephrase
from lhotse_triplets.transforms.score import Score
from lhotse_triplets.transforms.synthesize import Synthesize, pick_voices

DUMMY_TTS = {"default": BackendSpec("tts", "dummy")}


def scorer():
    return Score(
        BackendSpec("asr", "dummy"), BackendSpec("embed", "dummy"), BackendSpec("mos", "dummy")
    )


def test_rephrase_expands_languages_and_keeps_answer():
    cuts = dummy_prompt_cuts(3, languages=["fr"])
    failures = []
    out = Rephrase(["en", "fr", "de"]).apply(cuts, on_failure=failures.append).to_eager()
    assert sorted(c.id for c in out) == sorted(
        f"{c.id}-{lang}" for c in cuts for lang in ("en", "fr")
    )
    for cut in out:
        src = cuts[cut.id.rsplit("-", 1)[0]]
        assert cut.custom[fields.ANSWER] == src.custom[fields.ANSWER]
        assert cut.supervisions[0].language == cut.id.rsplit("-", 1)[1]
    # German has no supplied translation: recorded, not silently dropped.
    assert len(failures) == 3 and all("no de text" in f.reason for f in failures)
    assert {f.stage for f in failures} == {"rephrase"}


def test_rephrase_does_not_mutate_input():
    cut = prompt_cut("a", "Provide a one-sentence caption for the provided image.", "A cube.")
    before = cut.to_dict()
    out = Rephrase(["en"])(cut)
    assert cut.to_dict() == before
    assert out.supervisions[0].text == "Can you describe this picture in one sentence?"
    assert out.custom[fields.USER_TEXT] == "Provide a one-sentence caption for the provided image."


def test_pick_voices_is_deterministic_and_spread():
    voices = ["a", "b", "c", "d", "e"]
    assert pick_voices("x-t0-en", voices, 2) == pick_voices("x-t0-en", voices, 2)
    assert len(set(pick_voices("x", voices, 3))) == 3
    assert pick_voices("x", voices, 9) == voices
    firsts = {pick_voices(f"{i:06d}-t0-en", voices, 1)[0] for i in range(50)}
    assert len(firsts) >= 4


def test_synthesize_ids_audio_and_failures(tmp_path):
    cuts = Rephrase(["en"]).apply(dummy_prompt_cuts(3)).to_eager()
    bad = Rephrase(["en"])(prompt_cut("bad", "please FAIL here", "x"))
    failures = []
    synth = Synthesize(DUMMY_TTS, voices_per_prompt=2, sampling_rate=16000, audio_dir=tmp_path)
    out = synth.apply(CutSet.from_cuts(list(cuts) + [bad]), on_failure=failures.append).to_eager()
    assert len(out) == 6
    assert [f.cut_id for f in failures] == [
        f"bad-t0-en-{v}" for v in pick_voices("bad-t0-en", [f"v{i}" for i in range(5)], 2)
    ]
    for cut in out:
        lang_id, voice = cut.id.rsplit("-", 1)
        assert cut.supervisions[0].speaker == voice
        assert cut.custom[fields.TTS_MODEL] == "dummy"
        assert (tmp_path / "en" / voice / f"{cut.id}.flac").is_file()
        audio = cut.load_audio()
        assert audio.shape[1] == pytest.approx(cut.duration * 16000, abs=1)
        assert cut.supervisions[0].duration == cut.duration


def test_synthesize_in_memory_resampled():
    cut = Rephrase(["en"])(prompt_cut("a", "Hi there", "x"))
    out = Synthesize(DUMMY_TTS, sampling_rate=8000).apply(CutSet.from_cuts([cut])).to_eager()
    assert out[0].sampling_rate == 8000 and out[0].load_audio().shape[1] > 0


def test_unknown_voice_and_engine_are_clear():
    with pytest.raises(ValueError, match="known tts backends: .*dummy"):
        Synthesize({"default": BackendSpec("tts", "nope")}).setup()
    synth = Synthesize(DUMMY_TTS, voices={"en": ["zz"]})
    with pytest.raises(ValueError, match="Voices \\['zz'\\].*available: v0"):
        synth.voices_for("en")


def test_score_roundtrip_and_gate(tmp_path):
    cuts = Rephrase(["en"]).apply(dummy_prompt_cuts(2)).to_eager()
    spoken = Synthesize(DUMMY_TTS, audio_dir=tmp_path).apply(cuts).to_eager()
    scored = scorer().apply(spoken).to_eager()
    for cut in scored:
        assert cut.custom[fields.ASR_TEXT] == cut.supervisions[0].text
        assert cut.custom[fields.WER] == 0 and cut.custom[fields.ERROR_RATE] == 0
        assert cut.custom[fields.SIMILARITY] == pytest.approx(1.0, abs=1e-3)
        assert cut.custom[fields.MOS] > 2
    gated = scored.map(Gate(min_similarity=0.9, max_error_rate=0.1, min_mos=2.0))
    assert all(is_kept(c) for c in gated)
    strict = scored.map(Gate(min_mos=4.9))
    assert {c.custom[fields.REJECT_REASON] for c in strict} == {"low_mos"}


def test_gate_reasons_and_missing_scores():
    cut = prompt_cut("a", "x", "y").with_custom(fields.SIMILARITY, 0.1)
    reasons = Gate(
        min_similarity=0.5, max_error_rate=0.5, min_mos=None, min_duration=0.3, max_duration=None
    ).reasons(cut)
    assert reasons == ["low_similarity", "missing_error_rate", "too_short"]


def test_eager_and_lazy_agree(tmp_path):
    cuts = dummy_prompt_cuts(4)
    path = tmp_path / "cuts.jsonl.gz"
    cuts.to_file(path)
    lazy = CutSet.from_jsonl_lazy(path)
    rephrase = Rephrase(["en", "fr"])
    eager_out = rephrase.apply(cuts).to_eager()
    lazy_out = rephrase.apply(lazy)
    assert lazy_out.is_lazy
    assert [c.to_dict() for c in eager_out] == [c.to_dict() for c in lazy_out]
    gate = Gate(min_similarity=None, max_error_rate=None, min_mos=None, min_duration=None)
    assert [c.to_dict() for c in cuts.map(gate)] == [c.to_dict() for c in lazy.map(gate)]


def test_stages_pickle_before_and_after_use(tmp_path):
    synth = Synthesize(DUMMY_TTS, audio_dir=tmp_path)
    synth.setup()
    clone = pickle.loads(pickle.dumps(synth))
    assert clone._backends == {}
    cut = Rephrase(["en"])(prompt_cut("a", "Hello", "x"))
    assert clone(cut).id == "a-t0-en-" + pick_voices("a-t0-en", [f"v{i}" for i in range(5)], 1)[0]


def test_call_raises_item_error_naming_the_cut():
    with pytest.raises(ItemError, match="a-t0"):
        Rephrase(["de"])(prompt_cut("a", "Hello", "x"))


def test_dummy_asr_breaks_on_noise():
    from lhotse_triplets.backends import build

    tts, asr = build("tts", "dummy"), build("asr", "dummy")
    audio = tts.synthesize(["hello world"], language="en", voice="v0")[0]
    noisy = audio + np.random.default_rng(0).normal(0, 1.0, audio.shape).astype(np.float32)
    assert asr.transcribe([audio])[0] == "hello world"
    assert asr.transcribe([noisy])[0] != "hello world"


def test_failure_record_shape():
    f = Failure("id", "score", "boom")
    assert f.to_dict() == {"cut_id": "id", "stage": "score", "reason": "boom"}


def test_audio_paths_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cut = Rephrase(["en"])(prompt_cut("a", "Hi", "x"))
    out = Synthesize(DUMMY_TTS, audio_dir="audio")(cut)
    source = out.recording.sources[0].source
    assert source.startswith(str(tmp_path)) and source.endswith(".flac")
