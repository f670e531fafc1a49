"""Shared by the NeMo tests: a SentencePiece tokenizer made offline, and NeMo's loader +
``SALMDataset`` over a generated data config."""

from pathlib import Path

from omegaconf import OmegaConf

from lhotse_triplets.export.nemo_config import DEFAULT_AUDIO_LOCATOR_TAG

LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

#: What NeMo's loader needs besides the generated config: a finite, ordered, in-process loader.
LOADER_OPTIONS = {
    "batch_size": 2,
    "num_workers": 0,
    "force_finite": True,
    "shuffle": False,
    "seed": 0,
    "shard_seed": 0,
}


def make_tokenizer(workdir: Path, texts: list[str]):
    """A SentencePiece tokenizer trained on ``texts`` (no download), audio locator included."""
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import (
        SentencePieceTokenizer,
        create_spt_model,
    )

    lines = ["system user assistant", *(line for t in texts for line in t.splitlines())]
    text = workdir / "text.txt"
    text.write_text("\n".join(lines * 3), encoding="utf-8")
    model, _ = create_spt_model(
        str(text),
        vocab_size=300,
        sample_size=-1,
        do_lower_case=False,
        output_dir=str(workdir / "spm"),
        pad=True,
        user_defined_symbols=[DEFAULT_AUDIO_LOCATOR_TAG, *LLAMA3_SPECIAL],
    )
    return SentencePieceTokenizer(model)


def read_with_nemo(config_path: Path, tokenizer, **options) -> list[dict]:
    """All batches NeMo's loader + SALMDataset produce from the config file, unchanged."""
    from nemo.collections.common.data.lhotse import get_lhotse_dataloader_from_config
    from nemo.collections.speechlm2.data import SALMDataset

    config = OmegaConf.merge(OmegaConf.load(config_path), LOADER_OPTIONS, options)
    loader = get_lhotse_dataloader_from_config(
        config, global_rank=0, world_size=1, dataset=SALMDataset(tokenizer), tokenizer=tokenizer
    )
    return list(loader)


def conversations(batches: list[dict]) -> dict[str, tuple]:
    """conversation id -> (batch, row) over all batches."""
    out = {}
    for batch in batches:
        assert batch is not None, "SALMDataset returned None: NeMo could not collate the batch"
        for row, conv in enumerate(batch["conversations"]):
            assert conv.id not in out, f"{conv.id} read twice"
            out[conv.id] = (batch, row)
    return out


def expected_answer_ids(tokenizer, turns: list[tuple[str, str]]) -> list[int]:
    """Token ids under the loss mask for a dialog of (role, text) turns in NeMo's llama3 format."""
    from nemo.collections.common.prompts import PromptFormatter

    formatter = PromptFormatter.resolve("llama3")(tokenizer)
    encoded = formatter.encode_dialog(
        [{"role": role, "slots": {"message": text}} for role, text in turns]
    )
    return encoded["input_ids"][encoded["mask"]].tolist()
