"""Rephrasing with a local chat model through Hugging Face ``transformers``.

The real path is an instruction-tuned model such as ``Qwen/Qwen2.5-7B-Instruct`` on a GPU (bf16),
or any chat model, local folder or GGUF file (``gguf_file=``, needs ``pip install gguf``). The
prompt goes through the model's chat template (a plain few-shot prompt for base models without
one); decoding is greedy and batched with left padding, bounded by ``max_new_tokens``.

Example::

    llm = build("llm", "transformers", model="Qwen/Qwen2.5-7B-Instruct", batch_size=16)
    llm.rephrase(["The large ball is what color?"], language="fr", source_language="en")
"""

from collections.abc import Sequence
from typing import Any, ClassVar

from lhotse_triplets.backends._threads import torch_device
from lhotse_triplets.backends.base import PicklesByOptions
from lhotse_triplets.backends.llm.prompt import (
    build_messages,
    fingerprint,
    parse_reply,
    plain_prompt,
)
from lhotse_triplets.backends.registry import register


@register("llm", "transformers")
class TransformersRephraser(PicklesByOptions):
    """Spoken-style rewrites and translations from a local causal LM.

    :param model: hub id or local folder (default ``Qwen/Qwen2.5-7B-Instruct``).
    :param gguf_file: a GGUF file inside ``model`` (dequantised by transformers on load).
    :param device: ``cuda``/``cpu``/...; default CUDA when available.
    :param dtype: ``bfloat16``/``float16``/``float32``; default bf16 on CUDA, else float32.
    :param batch_size: prompts per ``generate`` call.
    :param max_new_tokens: bound on the length of a rewrite.
    :param threads: torch intra-op threads on CPU (process-wide); default (``None``): this
        worker's limit (``engine.threads_per_worker``), or every usable CPU outside an executor.
    """

    requires: ClassVar[list[tuple[str, str]]] = [
        ("transformers", "transformers"),
        ("torch", "torch"),
    ]

    def __init__(
        self,
        model: str = "Qwen/Qwen2.5-7B-Instruct",
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 96,
        system_prompt: str | None = None,
        trust_remote_code: bool = False,
        threads: int | None = None,
    ) -> None:
        self._options = dict(
            model=model,
            gguf_file=gguf_file,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            system_prompt=system_prompt,
            trust_remote_code=trust_remote_code,
            threads=threads,
        )
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.device = torch_device(device, threads)
        if dtype is None:
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.batch_size = max(1, int(batch_size))
        self.max_new_tokens = int(max_new_tokens)
        self.system_prompt = system_prompt
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        self.tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
        self.tokenizer.padding_side = "left"  # generation continues at the right end
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            model, dtype=getattr(torch, dtype), **kwargs
        ).to(self.device)
        self.model.eval()
        self.has_chat_template = bool(getattr(self.tokenizer, "chat_template", None))

    def prompt(
        self, text: str, language: str, source_language: str, context: str | None = None
    ) -> str:
        """The exact prompt string the model gets for one text."""
        messages = build_messages(text, language, source_language, context, self.system_prompt)
        if self.has_chat_template:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        return plain_prompt(messages)

    def generate(self, prompts: list[str]) -> list[str]:
        """Greedy continuations of ``prompts`` (batched, left-padded); special tokens dropped."""
        torch = self._torch
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            enc = self.tokenizer(
                chunk, return_tensors="pt", padding=True, add_special_tokens=False
            ).to(self.device)
            with torch.inference_mode():
                generated = self.model.generate(
                    **enc,
                    do_sample=False,
                    max_new_tokens=self.max_new_tokens,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new_tokens = generated[:, enc["input_ids"].shape[1] :]
            out.extend(self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return out

    def rephrase(
        self,
        texts: Sequence[str],
        *,
        language: str,
        source_language: str,
        contexts: Sequence[str | None] = (),
        translations: Sequence[dict | None] = (),
    ) -> list[str]:
        contexts = list(contexts) or [None] * len(texts)
        prompts = [self.prompt(t, language, source_language, c) for t, c in zip(texts, contexts)]
        replies = self.generate(prompts)
        if not self.has_chat_template:  # a base model goes on with the next few-shot lines
            replies = [r.strip().split("\n")[0].replace("</text>", "") for r in replies]
        return [parse_reply(r) for r in replies]

    def fingerprint(self) -> str:
        o = self._options
        return fingerprint(
            "transformers",
            model=o["model"],
            gguf_file=o["gguf_file"],
            max_new_tokens=self.max_new_tokens,
            system_prompt=self.system_prompt,
        )
