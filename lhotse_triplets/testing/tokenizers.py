"""Small tokenizers made offline for tests: a SentencePiece model and a Hugging Face folder.

Example::

    >>> spm = make_sentencepiece(tmp_path, ["How many cubes?", "Three."])
    >>> hf = make_hf_tokenizer(tmp_path, ["How many cubes?", "Three."])
"""

from collections.abc import Sequence
from pathlib import Path

#: Lines mixed into every training text so that common words exist in the vocabulary.
_BASE = ["the user and the assistant talk about music and sports", "hello how are you today"]


def make_sentencepiece(workdir: Path, texts: Sequence[str], vocab_size: int = 120) -> Path:
    """A SentencePiece BPE model trained on ``texts`` (with a pad id); returns the ``.model``."""
    import sentencepiece

    workdir.mkdir(parents=True, exist_ok=True)
    corpus = workdir / "spm_corpus.txt"
    corpus.write_text("\n".join([*_BASE, *texts] * 3), encoding="utf-8")
    prefix = workdir / "spm"
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="bpe",
        pad_id=3,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def make_hf_tokenizer(workdir: Path, texts: Sequence[str], vocab_size: int = 200) -> Path:
    """A Hugging Face fast tokenizer folder (word-level BPE) trained on ``texts``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<unk>", "</s>"])
    tok.train_from_iterator([*_BASE, *texts], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>"
    )
    folder = workdir / "hf_tokenizer"
    fast.save_pretrained(folder)
    return folder
