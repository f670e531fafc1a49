"""Text tokenizers from a local path, for counting and laying out tokens (``curriculum``, the
``ttt`` export): a Hugging Face tokenizer folder or a SentencePiece model (what NeMo's
``SentencePieceTokenizer`` reads). Nothing is downloaded.

Example::

    >>> tok = load_tokenizer("models/llama-3.2-1b")     # a folder with tokenizer.json
    >>> tok = load_tokenizer("tokenizer.model")          # a (NeMo) SentencePiece model
    >>> tok.encode("Hello there"), tok.pad_id
    ([9906, 1070], 128004)
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lhotse.utils import Pathlike


@dataclass
class TextTokenizer:
    """A loaded tokenizer: ``encode`` (no special tokens added), ``pad_id``, where it came from.

    Picklable (it re-loads from ``path`` in a new process), so a stage or worker can hold it.
    """

    path: str
    kind: str  # "huggingface" | "sentencepiece"
    pad_id: int
    vocab_size: int

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``, without BOS/EOS."""
        model = self._model()
        if self.kind == "sentencepiece":
            return list(model.encode(text))
        return list(model.encode(text, add_special_tokens=False))

    def count(self, text: str) -> int:
        """How many tokens ``text`` is."""
        return len(self.encode(text))

    def _model(self) -> Any:
        model = self.__dict__.get("_loaded")
        if model is None:
            model = self.__dict__["_loaded"] = _load(self.path, self.kind)
        return model

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_loaded"}

    @property
    def name(self) -> str:
        """A short label: the file or folder name."""
        return Path(self.path).name


def load_tokenizer(path: Pathlike) -> TextTokenizer:
    """The tokenizer at ``path``: a ``*.model`` file (SentencePiece, as NeMo's tokenizers are
    saved) or a folder ``transformers.AutoTokenizer`` loads offline.

    :raises FileNotFoundError: when ``path`` does not exist.
    :raises ValueError: when nothing there is a tokenizer (the reason says what was tried).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"tokenizer {str(p)!r}: no such file or folder")
    kind = "sentencepiece" if p.is_file() else "huggingface"
    if (
        p.is_dir()
        and not any((p / n).exists() for n in _HF_FILES)
        and (p / "tokenizer.model").is_file()
    ):
        p, kind = p / "tokenizer.model", "sentencepiece"
    model = _load(str(p), kind)
    if kind == "sentencepiece":
        pad = model.pad_id()
        pad = pad if pad >= 0 else max(model.unk_id(), 0)
        return TextTokenizer(str(p), kind, pad, model.get_piece_size())
    pad = model.pad_token_id
    if pad is None:
        pad = model.eos_token_id if model.eos_token_id is not None else 0
    return TextTokenizer(str(p), kind, int(pad), len(model))


_HF_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")


def _load(path: str, kind: str) -> Any:
    if kind == "sentencepiece":
        import sentencepiece

        try:
            return sentencepiece.SentencePieceProcessor(model_file=path)
        except (OSError, RuntimeError) as e:
            raise ValueError(f"tokenizer {path!r}: not a SentencePiece model ({e})") from None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(
            f"tokenizer {path!r}: no Hugging Face tokenizer there (tokenizer.json or "
            f"tokenizer_config.json) and not a SentencePiece *.model file ({e})"
        ) from None
