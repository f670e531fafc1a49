"""DistillMOS: reference-free speech quality (MOS 1..5) from a small CNN-transformer whose
weights ship in the ``distillmos`` wheel.

Install with ``pip install --no-deps distillmos xls-r-sqa`` (their declared dependency on
torchaudio would pull a CUDA build). ``distillmos`` imports torchaudio at module level without
using it for inference; when torchaudio cannot be imported, a stub stands in for it during that
import only.

Scores are the model's own: it sees each clip in 7.68 s windows (shorter clips are zero-padded,
longer ones cut into overlapping windows whose scores are averaged). Windows of all clips in a
call are scored in batches of ``batch_size``. Clips that are empty or digitally silent (peak below
``min_peak``) score :data:`SILENT_MOS` without running the model: the model itself gives silence
about 2, which is not a useful quality signal.
"""

import contextlib
import importlib.machinery
import io
import sys
import types
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from lhotse_triplets.backends._threads import torch_device
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register

#: Score given to empty or digitally silent clips: the bottom of the MOS scale.
SILENT_MOS = 1.0


def _import_distillmos() -> types.ModuleType:
    """Import distillmos, with a stub for torchaudio if the real one cannot be imported.

    The stub lives in ``sys.modules`` only while distillmos is imported: transformers and
    sentence-transformers probe for torchaudio and must keep seeing it as absent.
    """
    if "distillmos" in sys.modules:
        return sys.modules["distillmos"]
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError):  # absent, or the CUDA wheel on a machine without CUDA
        stub = types.ModuleType("torchaudio")
        stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
        sys.modules["torchaudio"] = stub
        try:
            import distillmos
        finally:
            if sys.modules.get("torchaudio") is stub:
                del sys.modules["torchaudio"]
        return distillmos
    import distillmos

    return distillmos


@register("mos", "distillmos")
class DistillMOS(PicklesByOptions):
    """Reference-free MOS of 16 kHz mono float32 clips with DistillMOS.

    :param device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    :param batch_size: 7.68 s windows per forward pass.
    :param threads: torch intra-op threads on CPU (process-wide); default (``None``): this
        worker's limit (``engine.threads_per_worker``), or every usable CPU outside an executor.
    :param min_peak: clips whose peak amplitude is below this score :data:`SILENT_MOS`.

    Example::

        mos = build("mos", "distillmos")
        scores = mos.predict([audio_16k])   # e.g. [4.3]
    """

    requires: ClassVar[list[tuple[str, str]]] = [
        ("torch", "torch"),
        ("distillmos", "distillmos"),
        ("xls_r_sqa", "xls-r-sqa"),
    ]
    sampling_rate = 16000

    def __init__(
        self,
        device: str = "auto",
        batch_size: int = 8,
        threads: int | None = None,
        min_peak: float = 1e-3,
    ) -> None:
        self._options = {
            "device": device,
            "batch_size": batch_size,
            "threads": threads,
            "min_peak": min_peak,
        }
        distillmos = _import_distillmos()
        self.device = torch_device(device, threads)
        self.batch_size = max(1, int(batch_size))
        self.min_peak = min_peak
        with contextlib.redirect_stdout(io.StringIO()):  # it prints where it loaded weights from
            model = distillmos.ConvTransformerSQAModel()
        # Windows are cut here (as the model would) so that windows of many clips share a batch.
        model.segmenting_in_forward = False
        self._model = model.eval().to(self.device)
        self._window = distillmos.sqa.SEQ_LEN
        self._hop = distillmos.sqa.MAX_HOP_LEN

    def _windows(self, audio: np.ndarray) -> np.ndarray:
        """The model's own segmentation: zero-pad to one window, or overlapping windows spread
        evenly over the clip (at most ``MAX_HOP_LEN`` apart)."""
        overlength = len(audio) - self._window
        if overlength <= 0:
            return np.pad(audio, (0, -overlength))[None]
        hops = int(np.ceil(overlength / self._hop)) + 1
        starts = [int(c * overlength) for c in np.linspace(0, 1, hops)]
        return np.stack([audio[s : s + self._window] for s in starts])

    def predict(self, audios: Sequence[np.ndarray]) -> list[float]:
        """One MOS (1..5) per clip; :data:`SILENT_MOS` for empty or silent clips."""
        import torch

        scores = [SILENT_MOS] * len(audios)
        windows, owners = [], []
        for index, audio in enumerate(audios):
            audio = np.nan_to_num(np.asarray(audio, dtype=np.float32))
            if audio.ndim != 1:
                raise ValueError(f"Expected mono 1-D audio, got shape {audio.shape}")
            if audio.size == 0 or np.max(np.abs(audio)) < self.min_peak:
                continue
            clip_windows = self._windows(audio)
            windows.append(clip_windows)
            owners += [index] * len(clip_windows)
        if not windows:
            return scores
        windows = np.concatenate(windows)
        window_scores = []
        with torch.inference_mode():
            for start in range(0, len(windows), self.batch_size):
                batch = torch.from_numpy(windows[start : start + self.batch_size]).to(self.device)
                window_scores.append(self._model(batch).reshape(-1).float().cpu().numpy())
        window_scores = np.concatenate(window_scores)
        owners = np.asarray(owners)
        for index in np.unique(owners):
            scores[index] = float(window_scores[owners == index].mean())
        return scores
