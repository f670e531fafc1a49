#!/usr/bin/env python
"""Run NeMo's own dataloader (+ speechlm2 ``SALMDataset``) over our exports, with the generated
YAML configs unchanged, and print a batch. Trains nothing.

    python examples/nemo_loader.py quickstart-out/export/nemo_data.yaml       # Shar (sqa)
    python examples/nemo_loader.py quickstart-out/export/nemo/nemo_data.yaml  # conversations

A real trainer passes its LLM's tokenizer; to stay offline this script trains a tiny
SentencePiece tokenizer on the texts of the export (the audio locator tag included).
"""

import argparse
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from lhotse_triplets.export import conversation_image, open_export
from lhotse_triplets.export.nemo_config import DEFAULT_AUDIO_LOCATOR_TAG

LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def offline_tokenizer(config, workdir: Path):
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import (
        SentencePieceTokenizer,
        create_spt_model,
    )

    entry = config.input_cfg[0]
    data = entry.get("shar_path") or str(Path(entry.manifest_filepath).parent.parent)
    texts = ["system user assistant Answer the spoken request about the image."]
    for _, _, _, target, meta in open_export(data):
        texts += [target, meta.get("prompt_text") or ""]
    (workdir / "text.txt").write_text("\n".join(texts * 3), encoding="utf-8")
    model, _ = create_spt_model(
        str(workdir / "text.txt"),
        vocab_size=256,
        sample_size=-1,
        do_lower_case=False,
        output_dir=str(workdir),
        pad=True,
        user_defined_symbols=[DEFAULT_AUDIO_LOCATOR_TAG, *LLAMA3_SPECIAL],
    )
    return SentencePieceTokenizer(model)


def main(config_path: Path) -> None:
    from nemo.collections.common.data.lhotse import get_lhotse_dataloader_from_config
    from nemo.collections.speechlm2.data import SALMDataset

    config = OmegaConf.load(config_path)
    # What a trainer adds: batching; finite + in-process so this script ends.
    options = {
        "batch_size": 2,
        "num_workers": 0,
        "force_finite": True,
        "shuffle": False,
        "seed": 0,
        "shard_seed": 0,
    }
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = offline_tokenizer(config, Path(tmp))
        loader = get_lhotse_dataloader_from_config(
            OmegaConf.merge(config, options),
            global_rank=0,
            world_size=1,
            dataset=SALMDataset(tokenizer),
            tokenizer=tokenizer,
        )
        batch = next(iter(loader))
    print(f"batch keys: {sorted(batch)}")
    print(f"audios {tuple(batch['audios'].shape)}, input_ids {tuple(batch['input_ids'].shape)}")
    root = Path(config_path).parent
    for row, conv in enumerate(batch["conversations"]):
        print(f"{conv.id}:")
        for turn in conv.turns:
            value = getattr(turn, "value", None) or f"<audio {turn.cut.duration:.2f} s>"
            print(f"  {turn.role:9s} {type(turn).__name__:9s} {value[:60]!r}")
        image = conversation_image(conv.custom, root)
        target = tokenizer.ids_to_text(batch["input_ids"][row][batch["loss_mask"][row]].tolist())
        print(f"  image: {image.size if image else None}; loss on: {target[:60]!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, help="a nemo_data.yaml written by the export")
    main(parser.parse_args().config)
