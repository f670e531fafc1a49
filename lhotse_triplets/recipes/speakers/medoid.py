"""The medoid of a speaker's clips: the clip with the least total distance to all the others,
over a vectorised distance matrix of their speaker embeddings.

Example::

    >>> d = distance_matrix(np.eye(3, dtype=np.float32)[[0, 0, 1]], "cosine")
    >>> medoid(d)
    (0, 1.0)
"""

from typing import Literal

import numpy as np
from scipy.spatial.distance import cdist

Distance = Literal["cosine", "euclidean"]
DISTANCES = ("cosine", "euclidean")


def distance_matrix(embeddings: np.ndarray, distance: Distance = "cosine") -> np.ndarray:
    """The ``(N, N)`` float32 distances between the rows of ``embeddings``, 0 on the diagonal.

    ``cosine``: ``1 - E @ E.T`` of the L2-normalised rows (0..2); ``euclidean``: ``cdist``.
    """
    vectors = np.asarray(embeddings, dtype=np.float64)
    if distance == "cosine":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.maximum(norms, 1e-12)
        out = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
    elif distance == "euclidean":
        out = cdist(vectors, vectors, "euclidean")
    else:
        raise ValueError(f"Unknown distance {distance!r}; known: {', '.join(DISTANCES)}")
    np.fill_diagonal(out, 0.0)
    return out.astype(np.float32)


def medoid(distances: np.ndarray) -> tuple[int, float]:
    """``(index, total distance)`` of the row with the least total distance (first on ties)."""
    totals = np.asarray(distances, dtype=np.float64).sum(axis=1)
    index = int(np.argmin(totals))
    return index, float(totals[index])
