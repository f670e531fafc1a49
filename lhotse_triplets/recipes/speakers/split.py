"""The train/valid split of one speaker's clips: seeded, never empty on the train side.

index-tts-lora's own extractor shuffles without a seed and, under 10 clips, puts every clip into
``valid`` (``int(N * 0.1) == 0`` and ``lines[-0:]``). Here: ``valid = max(1, round(n * ratio))``
capped at ``n - 1`` once a speaker has two clips (one clip: train only), drawn by a NumPy
generator seeded with ``seed`` and the speaker's name, so a rerun gives the same split and
speakers do not share one permutation.

Example::

    >>> split_indices(5, valid_ratio=0.1, seed=0, speaker="anna")
    ([1, 2, 3, 4], [0])
"""

import hashlib
import math

import numpy as np


def num_valid(num_clips: int, valid_ratio: float) -> int:
    """How many of ``num_clips`` clips go to ``valid``.

    Example::

        >>> [num_valid(n, 0.1) for n in (0, 1, 2, 9, 15, 270)]
        [0, 0, 1, 1, 2, 27]
    """
    if num_clips < 2:
        return 0
    return min(num_clips - 1, max(1, math.floor(num_clips * valid_ratio + 0.5)))


def split_indices(
    num_clips: int, *, valid_ratio: float, seed: int, speaker: str
) -> tuple[list[int], list[int]]:
    """``(train, valid)``: the indices of ``num_clips`` clips in each split, in order.

    :param seed: a non-negative integer; with ``speaker`` it seeds the draw.
    """
    key = int.from_bytes(
        hashlib.sha256(speaker.encode("utf-8", "surrogatepass")).digest()[:8], "big"
    )
    rng = np.random.default_rng([seed, key])
    chosen = set(rng.permutation(num_clips)[: num_valid(num_clips, valid_ratio)].tolist())
    train = [i for i in range(num_clips) if i not in chosen]
    return train, sorted(chosen)
