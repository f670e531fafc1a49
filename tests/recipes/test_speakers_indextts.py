"""Contract test of the optional IndexTTS extractor against IndexTTS 1.5's documented API.

The ``indextts`` modules are replaced by small fakes with the names, signatures and shapes of
github.com/index-tts/index-tts (tag v1.5.0): ``indextts.vqvae.xtts_dvae.DiscreteVAE(**cfg.vqvae)``
with ``get_codebook_indices(mel (B, 100, T)) -> (B, T / 4)`` (two stride-2 convolutions),
``indextts.gpt.model.UnifiedVoice(**cfg.gpt)`` with ``get_conditioning(mel, cond_mel_lengths)
-> (B, 32, model_dim)``, ``indextts.utils.checkpoint.load_checkpoint(model, model_pth)``.
"""

import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("librosa")

from lhotse_triplets.errors import ItemError  # noqa: E402
from lhotse_triplets.recipes.speakers import indextts as module  # noqa: E402
from lhotse_triplets.recipes.speakers.indextts import IndexTTSExtractor, log_mel  # noqa: E402

MODEL_DIM = 24
CONFIG = f"""\
dataset:
    bpe_model: bpe.model
    sample_rate: 24000
    mel:
        sample_rate: 24000
        n_fft: 1024
        hop_length: 256
        win_length: 1024
        n_mels: 100
        mel_fmin: 0
        normalize: false
gpt:
    model_dim: {MODEL_DIM}
    layers: 2
    heads: 2
    condition_type: "conformer_perceiver"
    condition_module:
        output_size: 16
        attention_heads: 2
vqvae:
    channels: 100
    num_tokens: 8192
    hidden_dim: 8
    codebook_dim: 8
    num_layers: 2
    positional_dims: 1
dvae_checkpoint: dvae.pth
gpt_checkpoint: gpt.pth
bigvgan_checkpoint: bigvgan_generator.pth
"""


class Calls:
    """What the fake modules were asked to do."""

    def __init__(self) -> None:
        self.loaded: list[tuple[str, str]] = []
        self.built: dict[str, dict] = {}
        self.mels: list[np.ndarray] = []
        self.fail_conditioning = False


def _fake_indextts(monkeypatch, calls: Calls) -> None:
    class DiscreteVAE(torch.nn.Module):
        def __init__(self, positional_dims=2, num_tokens=512, codebook_dim=512, num_layers=3,
                     num_resnet_blocks=0, hidden_dim=64, channels=3, stride=2, kernel_size=4,
                     **kwargs):  # fmt: skip
            super().__init__()
            calls.built["dvae"] = {"channels": channels, "num_layers": num_layers, **kwargs}
            self.channels, self.num_layers, self.stride = channels, num_layers, stride
            self.num_tokens = num_tokens

        def get_codebook_indices(self, images):
            assert images.ndim == 3 and images.shape[1] == self.channels, images.shape
            frames = images.shape[-1]
            for _ in range(self.num_layers):  # Conv1d(k=3, stride=2, padding=1) per layer
                frames = math.ceil(frames / self.stride)
            energy = images.mean(dim=1)[:, :: self.stride**self.num_layers][:, :frames]
            return (energy.abs() * 1000).long() % self.num_tokens

    class UnifiedVoice(torch.nn.Module):
        def __init__(self, layers=8, model_dim=512, heads=8, condition_num_latent=32,
                     condition_type="perceiver", condition_module=None, **kwargs):  # fmt: skip
            super().__init__()
            calls.built["gpt"] = {"model_dim": model_dim, "condition_module": condition_module}
            self.model_dim, self.latents = model_dim, condition_num_latent
            self.proj = torch.nn.Linear(100, model_dim)

        def get_conditioning(self, speech_conditioning_input, cond_mel_lengths=None):
            if calls.fail_conditioning:
                raise RuntimeError("CUDA out of memory")
            mel = speech_conditioning_input
            assert mel.ndim == 3 and mel.shape[1] == 100, mel.shape
            assert cond_mel_lengths.tolist() == [mel.shape[-1]]
            calls.mels.append(mel.cpu().numpy())
            pooled = self.proj(mel.mean(dim=-1))  # (B, model_dim)
            return pooled[:, None, :].repeat(1, self.latents, 1)  # (B, 32, model_dim)

    def load_checkpoint(model, model_pth):
        assert Path(model_pth).is_file()
        calls.loaded.append((type(model).__name__, Path(model_pth).name))
        return {}

    fakes = {
        "indextts": types.ModuleType("indextts"),
        "indextts.vqvae": types.ModuleType("indextts.vqvae"),
        "indextts.vqvae.xtts_dvae": types.ModuleType("indextts.vqvae.xtts_dvae"),
        "indextts.gpt": types.ModuleType("indextts.gpt"),
        "indextts.gpt.model": types.ModuleType("indextts.gpt.model"),
        "indextts.utils": types.ModuleType("indextts.utils"),
        "indextts.utils.checkpoint": types.ModuleType("indextts.utils.checkpoint"),
    }
    fakes["indextts.vqvae.xtts_dvae"].DiscreteVAE = DiscreteVAE
    fakes["indextts.gpt.model"].UnifiedVoice = UnifiedVoice
    fakes["indextts.utils.checkpoint"].load_checkpoint = load_checkpoint
    for name, fake in fakes.items():
        monkeypatch.setitem(sys.modules, name, fake)


@pytest.fixture
def calls(monkeypatch) -> Calls:
    calls = Calls()
    _fake_indextts(monkeypatch, calls)
    return calls


def _checkpoints(folder: Path, config: str = CONFIG, files=("dvae.pth", "gpt.pth")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(config)
    for name in files:
        (folder / name).write_bytes(b"weights")
    return folder


def _tone(hz: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_extract_writes_codes_mels_condition(tmp_path: Path, calls: Calls) -> None:
    extractor = IndexTTSExtractor(_checkpoints(tmp_path / "ckpt"), device="cpu")
    assert calls.loaded == [("DiscreteVAE", "dvae.pth"), ("UnifiedVoice", "gpt.pth")]
    assert calls.built["dvae"]["channels"] == 100
    assert calls.built["gpt"]["condition_module"]["output_size"] == 16
    assert extractor.sampling_rate == 24000

    # 2 s at 16 kHz -> 48000 samples at 24 kHz -> 1 + 48000 // 256 = 188 frames (center)
    paths = extractor.extract(_tone(440, 2.0, 16000), 16000, tmp_path / "feats", "clip_001")

    out = (tmp_path / "feats").absolute()
    assert paths == {
        "codes": str(out / "clip_001_codes.npy"),
        "mels": str(out / "clip_001_mel.npy"),
        "condition": str(out / "clip_001_condition.npy"),
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(p).name for p in paths.values())
    mels, codes, condition = (np.load(paths[k]) for k in ("mels", "codes", "condition"))
    assert mels.shape == (1, 100, 188) and mels.dtype == np.float32
    assert codes.shape == (1, 47) and codes.dtype == np.int64  # ceil(188 / 4)
    assert condition.shape == (32, MODEL_DIM) and condition.dtype == np.float32
    # the models saw exactly the mel that was saved
    np.testing.assert_array_equal(calls.mels[-1], mels)
    # condition_of gives the same latent without writing anything
    again = extractor.condition_of(_tone(440, 2.0, 16000), 16000)
    np.testing.assert_allclose(again, condition, rtol=1e-6)
    other = extractor.condition_of(_tone(3000, 2.0, 16000), 16000)
    assert not np.allclose(other, condition)


def test_mel_is_indextts_htk_mel(tmp_path: Path) -> None:
    """IndexTTS's torchaudio mel: HTK scale, no filter norm, magnitude, log floor 1e-7."""
    mel = log_mel(_tone(4000, 1.0, 24000), {})
    assert mel.shape == (100, 1 + 24000 // 256)
    # HTK: 4 kHz is mel 2146 of 0..3270 over 102 points -> band 65 (Slaney would give 68)
    assert int(np.argmax(mel[:, 40])) == 65
    assert log_mel(np.zeros(24000, np.float32), {}).max() == pytest.approx(np.log(1e-7))
    loud = log_mel(2 * _tone(4000, 1.0, 24000), {})  # power 1: doubling adds log 2
    assert loud[65, 40] - mel[65, 40] == pytest.approx(np.log(2), abs=1e-4)


def test_missing_indextts_names_the_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "indextts", None)
    with pytest.raises(ImportError) as error:
        IndexTTSExtractor(_checkpoints(tmp_path / "ckpt"))
    message = str(error.value)
    assert "pip install" in message and "github.com/index-tts/index-tts@v1.5.0" in message
    assert "config.yaml" in message and "dvae.pth" in message and "gpt.pth" in message
    assert "\n" not in message


def test_indextts2_without_dvae_names_the_install(tmp_path: Path, calls, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "indextts.vqvae.xtts_dvae", None)  # IndexTTS 2 has no DVAE
    with pytest.raises(ImportError, match=r"IndexTTS 1\.5.*indextts\.vqvae"):
        IndexTTSExtractor(_checkpoints(tmp_path / "ckpt"))


@pytest.mark.parametrize(
    ("files", "config", "missing"),
    [
        (("dvae.pth",), CONFIG, "gpt.pth"),
        (("gpt.pth",), CONFIG, "dvae.pth"),
        (("dvae.pth", "gpt.pth"), CONFIG.replace("gpt.pth", "gpt_lora.pth"), "gpt_lora.pth"),
    ],
    ids=["gpt", "dvae", "named_in_config"],
)
def test_missing_checkpoint_file_is_named(tmp_path: Path, calls, files, config, missing) -> None:
    folder = _checkpoints(tmp_path / "ckpt", config, files)
    with pytest.raises(FileNotFoundError) as error:
        IndexTTSExtractor(folder)
    message = str(error.value)
    assert str(folder / missing) in message and "\n" not in message
    assert calls.loaded == []  # nothing is loaded before every file is there


def test_missing_config_is_named(tmp_path: Path, calls) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty/config\.yaml"):
        IndexTTSExtractor(folder)


def test_broken_checkpoint_is_one_line(tmp_path: Path, calls, monkeypatch) -> None:
    def broken(model, model_pth):
        raise RuntimeError("Error(s) in loading state_dict:\n\tMissing key(s): conv.weight")

    monkeypatch.setattr(sys.modules["indextts.utils.checkpoint"], "load_checkpoint", broken)
    with pytest.raises(ValueError, match=r"^cannot load IndexTTS checkpoint .*dvae\.pth: Error"):
        IndexTTSExtractor(_checkpoints(tmp_path / "ckpt"))


def test_bad_clips_are_item_errors(tmp_path: Path, calls) -> None:
    extractor = IndexTTSExtractor(_checkpoints(tmp_path / "ckpt"))
    with pytest.raises(ItemError, match="^indextts_too_short: "):
        extractor.extract(np.zeros(100, np.float32), 24000, tmp_path / "f", "tiny")
    with pytest.raises(ItemError, match="^bad_sampling_rate: "):
        extractor.condition_of(_tone(200, 1.0, 24000), 0)
    calls.fail_conditioning = True
    with pytest.raises(ItemError, match="^indextts_extract: RuntimeError: CUDA out of memory"):
        extractor.extract(_tone(200, 1.0, 24000), 24000, tmp_path / "f", "oom")
    assert not (tmp_path / "f").exists() or not list((tmp_path / "f").iterdir())


def test_unsafe_stem_stays_inside_out_dir(tmp_path: Path, calls) -> None:
    extractor = IndexTTSExtractor(_checkpoints(tmp_path / "ckpt"))
    paths = extractor.extract(_tone(200, 1.0, 24000), 24000, tmp_path / "f", "../../escape")
    for path in paths.values():
        assert Path(path).parent == (tmp_path / "f").absolute()
        assert Path(path).is_file()


def test_unwritable_out_dir_is_an_item_error(tmp_path: Path, calls, monkeypatch) -> None:
    import errno

    extractor = IndexTTSExtractor(_checkpoints(tmp_path / "ckpt"))

    def full(path, array):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module, "_save_npy", full)
    with pytest.raises(ItemError, match=r"^indextts_write: cannot write .*_codes\.npy: No space"):
        extractor.extract(_tone(200, 1.0, 24000), 24000, tmp_path / "f", "clip")
    assert not list((tmp_path / "f").glob(".tmp.*"))
