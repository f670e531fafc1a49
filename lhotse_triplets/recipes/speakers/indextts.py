"""Optional IndexTTS features of a speaker set: DVAE codes, mels and conditioning latents.

index-tts-lora fine-tunes IndexTTS 1.5 from per-clip ``.npy`` files that its extractor writes
with IndexTTS's own modules; this module computes the same files through the same modules, so
the ``codes``/``mels``/``condition`` columns of ``metadata_*.jsonl`` and ``medoid_condition.npy``
are what its training reads:

- ``mels``: log-magnitude mel spectrogram, ``(1, 100, frames)`` float32 (24 kHz, ``n_fft`` 1024,
  hop 256, window 1024, ``frames = 1 + samples // 256``), parameters from the config's
  ``dataset.mel``;
- ``codes``: ``DiscreteVAE.get_codebook_indices(mel)``, ``(1, frames / 4)`` int64;
- ``condition``: ``UnifiedVoice.get_conditioning(mel, [frames])``, ``(32, model_dim)`` float32.

The layouts are those of index-tts-lora's ``tools/extract_codec.py`` (batch axis kept on codes and
mels; its ``indextts/data_utils.py`` squeezes it).

**Install.** The DVAE (``indextts.vqvae``) exists only in IndexTTS 1.x; IndexTTS 2 (the
repository's head, also used by the ``index_tts`` TTS backend) dropped it, so this needs the
1.5 package (:data:`INSTALL`) and a checkpoints folder holding ``config.yaml``, ``dvae.pth`` and
``gpt.pth`` (:data:`DOWNLOAD`; ``bigvgan_generator.pth`` is not used, nothing is synthesised).
The checkpoint names are read from ``config.yaml`` (``dvae_checkpoint``, ``gpt_checkpoint``).

**The mel without torchaudio.** IndexTTS computes it with ``torchaudio.transforms.MelSpectrogram``
(``indextts/utils/feature_extractors.py: MelSpectrogramFeatures``: ``power=1``, ``center=True``
with reflect padding, periodic Hann window, HTK mel scale without filter normalisation, then
``log(clamp(x, 1e-7))``). This library does not use torchaudio, so the same spectrogram is
computed with librosa (a dependency of ``indextts``) with those settings written out:
``htk=True, norm=None, power=1.0, center=True, pad_mode="reflect"``. Both build the same
triangular filters on the same FFT bins, so the numbers agree to float rounding.

Upstream files read (github.com/index-tts/index-tts at tag ``v1.5.0``): ``indextts/infer.py``
(``IndexTTS.__init__``: ``OmegaConf.load(cfg_path)``, ``UnifiedVoice(**cfg.gpt)``,
``load_checkpoint(model, os.path.join(model_dir, cfg.gpt_checkpoint))``; the reference mel
``MelSpectrogramFeatures()(audio)`` after resampling to 24 kHz), ``indextts/utils/checkpoint.py``
(``load_checkpoint``), ``indextts/vqvae/xtts_dvae.py`` (``DiscreteVAE``,
``get_codebook_indices``), ``indextts/gpt/model.py`` (``UnifiedVoice.get_conditioning``),
``checkpoints/config.yaml``; github.com/asr-pub/index-tts-lora: ``tools/extract_codec.py``
(``AudioProcessor``, ``ConditionExtractor``, file names ``<name>_codes.npy``/``_mel.npy``/
``_condition.npy``), ``indextts/data_utils.py`` (what training loads),
``finetune_models/config.yaml``.

Example::

    extractor = IndexTTSExtractor(Path("checkpoints"), device="cuda:0")
    paths = extractor.extract(audio, 16000, Path("out/anna/features"), "clip_001")
    # {"codes": ".../clip_001_codes.npy", "mels": ".../clip_001_mel.npy",
    #  "condition": ".../clip_001_condition.npy"}
"""

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from lhotse_triplets.audio import resample
from lhotse_triplets.errors import ItemError
from lhotse_triplets.paths import safe_name
from lhotse_triplets.recipes.speakers.report import write_atomic

#: How to install the ``indextts`` package that still has the DVAE (IndexTTS 1.5).
INSTALL = 'pip install "git+https://github.com/index-tts/index-tts@v1.5.0"'
#: How to fill a checkpoints folder with what extraction reads.
DOWNLOAD = (
    "huggingface-cli download IndexTeam/IndexTTS-1.5 config.yaml dvae.pth gpt.pth --local-dir DIR"
)
CONFIG_NAME = "config.yaml"
#: Checkpoint file names used when ``config.yaml`` does not name them (IndexTTS 1.5's).
DEFAULT_CHECKPOINTS = {"dvae_checkpoint": "dvae.pth", "gpt_checkpoint": "gpt.pth"}
#: ``MelSpectrogramFeatures``' defaults, overridden by the config's ``dataset.mel``.
MEL_DEFAULTS: dict[str, Any] = {
    "sample_rate": 24000,
    "n_fft": 1024,
    "hop_length": 256,
    "win_length": None,
    "n_mels": 100,
    "mel_fmin": 0.0,
    "mel_fmax": None,
    "normalize": False,
    "padding": "center",
}
#: Floor of the mel magnitudes before the log (``indextts.utils.common.safe_log``).
LOG_FLOOR = 1e-7
#: Suffixes of the per-clip files (index-tts-lora's names), by metadata key.
SUFFIXES = {"codes": "_codes.npy", "mels": "_mel.npy", "condition": "_condition.npy"}

_NEEDS = f"the checkpoints folder must hold {CONFIG_NAME}, dvae.pth and gpt.pth ({DOWNLOAD})"


def _import_indextts() -> SimpleNamespace:
    """IndexTTS 1.5's modules (and torch, librosa), or ``ImportError`` naming the install."""
    try:
        import librosa
        import torch
        from indextts.gpt.model import UnifiedVoice
        from indextts.utils.checkpoint import load_checkpoint
        from indextts.vqvae.xtts_dvae import DiscreteVAE
    except ImportError as e:
        raise ImportError(
            f"IndexTTS extraction needs IndexTTS 1.5's indextts package ({e}): {INSTALL}; {_NEEDS}"
        ) from e
    return SimpleNamespace(
        torch=torch,
        librosa=librosa,
        DiscreteVAE=DiscreteVAE,
        UnifiedVoice=UnifiedVoice,
        load_checkpoint=load_checkpoint,
    )


def _required(folder: Path, name: str) -> Path:
    """``folder/name``, or a one-line ``FileNotFoundError`` naming it."""
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"IndexTTS checkpoint file missing: {path}; {_NEEDS}")
    return path


def log_mel(audio: np.ndarray, config: Mapping[str, Any], librosa: Any = None) -> np.ndarray:
    """IndexTTS's log-mel spectrogram of a waveform already at ``config["sample_rate"]``:
    ``(n_mels, frames)`` float32 (see the module's note on torchaudio).

    :param config: the config's ``dataset.mel`` (keys of :data:`MEL_DEFAULTS`).
    """
    if librosa is None:
        import librosa
    config = {**MEL_DEFAULTS, **config}
    n_fft = int(config["n_fft"])
    win_length = int(config["win_length"] or n_fft)
    hop_length = int(config["hop_length"])
    if config["padding"] not in ("center", "same"):
        raise ValueError(
            f"IndexTTS mel padding must be 'center' or 'same'; got {config['padding']!r}"
        )
    if config["padding"] == "same":
        pad = (win_length - hop_length) // 2
        audio = np.pad(audio, (pad, pad), mode="reflect")
    mel = librosa.feature.melspectrogram(
        y=np.ascontiguousarray(audio, dtype=np.float32),
        sr=int(config["sample_rate"]),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window="hann",
        center=config["padding"] == "center",
        pad_mode="reflect",
        power=1.0,
        n_mels=int(config["n_mels"]),
        fmin=float(config["mel_fmin"] or 0.0),
        fmax=None if config["mel_fmax"] is None else float(config["mel_fmax"]),
        htk=True,
        norm=None,
    )
    if config["normalize"]:  # torchaudio's normalized=True: divide by the window's L2 norm
        mel = mel / np.sqrt(np.sum(librosa.filters.get_window("hann", win_length) ** 2))
    return np.log(np.maximum(mel, LOG_FLOOR)).astype(np.float32)


class IndexTTSExtractor:
    """DVAE codes, mels and conditioning latents of clips through IndexTTS 1.5's own modules.

    :param checkpoints: the checkpoints folder (``config.yaml``, ``dvae.pth``, ``gpt.pth``).
    :param device: torch device, e.g. ``"cpu"`` or ``"cuda:0"``.
    :raises ImportError: ``indextts`` (1.5), torch or librosa missing; names the install.
    :raises FileNotFoundError: a file of the checkpoints folder missing (one line naming it).
    :raises ValueError: a config without ``vqvae``/``gpt``, or a checkpoint that does not load.
    """

    def __init__(self, checkpoints: Path, device: str = "cpu") -> None:
        from omegaconf import OmegaConf

        self._lib = _import_indextts()
        self.checkpoints = Path(checkpoints)
        self.device = device
        config_path = _required(self.checkpoints, CONFIG_NAME)
        config = OmegaConf.to_container(OmegaConf.load(config_path), resolve=True)
        if not isinstance(config, dict) or not all(k in config for k in ("vqvae", "gpt")):
            raise ValueError(f"IndexTTS config {config_path} lacks a 'vqvae' or 'gpt' section")
        paths = {
            key: _required(self.checkpoints, str(config.get(key) or default))
            for key, default in DEFAULT_CHECKPOINTS.items()
        }
        self.mel_config = {**MEL_DEFAULTS, **(config.get("dataset") or {}).get("mel", {})}
        #: the rate clips are resampled to before the mel (24 kHz for IndexTTS 1.5)
        self.sampling_rate = int(self.mel_config["sample_rate"])
        self.dvae = self._load(self._lib.DiscreteVAE(**config["vqvae"]), paths["dvae_checkpoint"])
        self.gpt = self._load(self._lib.UnifiedVoice(**config["gpt"]), paths["gpt_checkpoint"])

    def _load(self, model: Any, path: Path) -> Any:
        try:
            self._lib.load_checkpoint(model, str(path))
        except Exception as e:  # a torch/pickle error, or weights that do not fit the config
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"cannot load IndexTTS checkpoint {path}: {detail}") from e
        return model.to(self.device).eval()

    def mel_of(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:
        """The clip's IndexTTS mel, ``(1, n_mels, frames)`` float32, after resampling.

        :raises ItemError: ``bad_sampling_rate``; ``indextts_too_short`` when shorter than one
            FFT window.
        """
        audio = resample(audio, sampling_rate, self.sampling_rate)
        if audio.size <= int(self.mel_config["n_fft"]) // 2:
            raise ItemError(
                f"indextts_too_short: {audio.size / self.sampling_rate:.3f} s of audio is "
                f"shorter than one mel window"
            )
        return log_mel(audio, self.mel_config, self._lib.librosa)[None]

    def _run(self, mel: np.ndarray, codes: bool) -> tuple[np.ndarray | None, np.ndarray]:
        """(DVAE codes or ``None``, conditioning latent) of one mel; ``ItemError`` on failure."""
        torch = self._lib.torch
        try:
            with torch.inference_mode():
                tensor = torch.from_numpy(mel).to(self.device)
                lengths = torch.tensor([mel.shape[-1]], device=self.device)
                condition = self.gpt.get_conditioning(tensor, lengths)
                indices = self.dvae.get_codebook_indices(tensor) if codes else None
        except Exception as e:  # a model error on this clip: recorded, the run goes on
            raise ItemError(f"indextts_extract: {type(e).__name__}: {e}") from e
        condition = condition.detach().float().cpu().numpy()
        condition = condition[0] if condition.ndim == 3 else condition
        if indices is not None:
            indices = indices.detach().cpu().numpy().astype(np.int64)
        return indices, condition.astype(np.float32)

    def condition_of(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:
        """The clip's IndexTTS conditioning latent, ``(32, model_dim)`` float32.

        :raises ItemError: see :meth:`mel_of`; ``indextts_extract`` when the model fails.
        """
        return self._run(self.mel_of(audio, sampling_rate), codes=False)[1]

    def extract(
        self, audio: np.ndarray, sampling_rate: int, out_dir: Path, stem: str
    ) -> dict[str, str]:
        """Write ``<stem>_codes.npy``, ``<stem>_mel.npy`` and ``<stem>_condition.npy`` into
        ``out_dir`` (``stem`` through :func:`~lhotse_triplets.paths.safe_name`); return their
        absolute paths by metadata key (``codes``, ``mels``, ``condition``).

        :raises ItemError: see :meth:`condition_of`; ``indextts_write`` when a file cannot be
            written (each file is written to a temporary name and renamed into place).
        """
        mels = self.mel_of(audio, sampling_rate)
        codes, condition = self._run(mels, codes=True)
        arrays = {"codes": codes, "mels": mels, "condition": condition}
        out_dir = Path(out_dir).absolute()
        name = safe_name(stem)
        out = {}
        for key, suffix in SUFFIXES.items():
            path = out_dir / f"{name}{suffix}"
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
                write_atomic(path, lambda tmp, a=arrays[key]: _save_npy(tmp, a))
            except OSError as e:
                raise ItemError(f"indextts_write: cannot write {path}: {e.strerror or e}") from e
            out[key] = str(path)
        return out


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would add ".npy" to the name
        np.save(f, array)
