"""What the PyTorch engines share: model outputs as float32 numpy.

Their device comes from :func:`lhotse_triplets.backends._threads.torch_device` (a GPU when torch
sees one; on the CPU, torch's threads held to this worker's limit).
"""

from collections.abc import Iterable
from typing import Any

import numpy as np


def as_float32(audio: Any) -> np.ndarray:
    """A torch tensor or array (any shape with one non-trivial axis) as 1-D float32 numpy."""
    if hasattr(audio, "detach"):
        audio = audio.detach().to("cpu").float().numpy()
    return np.asarray(audio, dtype=np.float32).reshape(-1)


def joined(chunks: Iterable[Any]) -> np.ndarray:
    """Audio chunks (e.g. one per sentence) as one 1-D float32 array."""
    parts = [as_float32(c) for c in chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
