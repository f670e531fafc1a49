"""What every speaker backend checks in its input clips, and the batching helpers they share.

A clip that cannot be embedded raises :class:`~lhotse_triplets.errors.ItemError` naming the clip
(its index in the call) and a reason code: ``too_short`` (empty, or shorter than the backend's
``min_seconds``), ``silent`` (peak under :data:`SILENT_PEAK`), ``non_finite_audio``, ``not_mono``.
Callers that want to keep the other clips of a batch embed clip by clip on that error.
"""

from collections.abc import Iterator, Sequence

import numpy as np

from lhotse_triplets.errors import ItemError

#: Peak amplitude under which a clip counts as digitally silent.
SILENT_PEAK = 1e-4


def checked_clips(
    audios: Sequence[np.ndarray], *, sampling_rate: int, min_seconds: float, engine: str
) -> list[np.ndarray]:
    """``audios`` as 1-D float32 arrays; :class:`ItemError` for the first clip that is not mono,
    not finite, too short or silent; ``TypeError`` when given one array instead of a list."""
    if isinstance(audios, np.ndarray) and audios.ndim == 1:
        raise TypeError("embed takes a list of clips, got a single 1-D array")
    clips = []
    for index, audio in enumerate(audios):
        clip = np.asarray(audio, dtype=np.float32)
        if clip.ndim != 1:
            raise ItemError(f"not_mono: clip {index} has shape {clip.shape}; {engine} takes 1-D")
        bad = int(np.count_nonzero(~np.isfinite(clip)))
        if bad:
            raise ItemError(f"non_finite_audio: clip {index} has {bad} NaN or infinite samples")
        seconds = clip.size / sampling_rate
        if seconds < min_seconds:
            raise ItemError(
                f"too_short: clip {index} lasts {seconds:.2f} s ({clip.size} samples at "
                f"{sampling_rate} Hz); {engine} needs at least {min_seconds:g} s"
            )
        peak = float(np.max(np.abs(clip)))
        if peak < SILENT_PEAK:
            raise ItemError(f"silent: clip {index} peaks at {peak:.1e}")
        clips.append(clip)
    return clips


def length_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices of the clips in batches of ``batch_size``, sorted by length (least padding)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for start in range(0, len(order), max(1, int(batch_size))):
        yield order[start : start + max(1, int(batch_size))]


def check_rows(vectors: np.ndarray, engine: str) -> None:
    """``ItemError`` (``embedding_failed``) when a row of ``vectors`` is zero or not finite."""
    norms = np.linalg.norm(vectors, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if bad.size:
        raise ItemError(f"embedding_failed: {engine} gave clip {int(bad[0])} a zero embedding")
