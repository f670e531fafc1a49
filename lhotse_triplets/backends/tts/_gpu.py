"""What the PyTorch engines share: a default device, and model outputs as float32 numpy."""

from collections.abc import Iterable
from typing import Any

import numpy as np


def default_device(device: str | None) -> str:
    """``device``, or ``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    if device:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def as_float32(audio: Any) -> np.ndarray:
    """A torch tensor or array (any shape with one non-trivial axis) as 1-D float32 numpy."""
    if hasattr(audio, "detach"):
        audio = audio.detach().to("cpu").float().numpy()
    return np.asarray(audio, dtype=np.float32).reshape(-1)


def joined(chunks: Iterable[Any]) -> np.ndarray:
    """Audio chunks (e.g. one per sentence) as one 1-D float32 array."""
    parts = [as_float32(c) for c in chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
