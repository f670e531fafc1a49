#!/usr/bin/env python
"""Read an export the way training code does: (image, audio, target text) from the Shar.

    python examples/read_triplets.py quickstart-out/export/shar          # plain Python
    python examples/read_triplets.py quickstart-out/export/shar --nemo   # NeMo's own dataloader

The second form builds NeMo's Lhotse dataloader from the generated ``nemo_data.yaml`` (type
``sqa_as_conversation``) and prints the first conversation it yields, image included.
"""

import argparse
import io
from pathlib import Path

from lhotse_triplets.export import iter_triplets


def plain(shar_dir: Path, limit: int) -> None:
    for k, (image, audio, sr, answer, meta) in enumerate(iter_triplets(shar_dir)):
        if k >= limit:
            break
        size, seconds = (image.size if image else None), audio.shape[-1] / sr
        print(
            f"{meta['id']}: image {size}, audio {seconds:.2f} s @ {sr} Hz, "
            f"{meta['language']}/{meta['voice']}"
        )
        print(f"  spoken: {meta['prompt_text']!r}\n  target: {answer[:80]!r}")


def nemo(shar_dir: Path) -> None:
    from nemo.collections.common.data.lhotse import get_lhotse_dataloader_from_config
    from omegaconf import OmegaConf
    from PIL import Image

    from lhotse_triplets.images import load_image_bytes

    config = OmegaConf.load(shar_dir.parent / "nemo_data.yaml")
    config = OmegaConf.merge(
        config,
        {
            "batch_size": 2,
            "num_workers": 0,
            "force_finite": True,
            "shuffle": False,
            "shard_seed": 0,
            "seed": 0,
        },
    )

    class Identity:  # the trainer's dataset would tokenize here (e.g. speechlm2.SALMDataset)
        def __getitem__(self, conversations):
            return conversations

    loader = get_lhotse_dataloader_from_config(
        config, global_rank=0, world_size=1, dataset=Identity()
    )
    conversation = next(iter(loader))[0]
    print(conversation.id)
    for turn in conversation.turns:
        print(f"  {turn.role}: {type(turn).__name__} {getattr(turn, 'value', '')[:70]!r}")
    image = Image.open(io.BytesIO(load_image_bytes(conversation)))
    print(f"  image from custom: {image.size}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("shar_dir", type=Path)
    parser.add_argument("--nemo", action="store_true", help="read through NeMo's dataloader")
    parser.add_argument("--limit", type=int, default=3)
    args = parser.parse_args()
    nemo(args.shar_dir) if args.nemo else plain(args.shar_dir, args.limit)
