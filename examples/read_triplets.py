#!/usr/bin/env python
"""Read an export the way training code does: (image, audio, target text) from the Shar.

    python examples/read_triplets.py quickstart-out/export/shar

Plain Python, no NeMo. ``examples/nemo_loader.py`` reads the same export through NeMo's own
dataloader and ``SALMDataset`` with the generated ``nemo_data.yaml``.
"""

import argparse
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("shar_dir", type=Path)
    parser.add_argument("--limit", type=int, default=3)
    args = parser.parse_args()
    plain(args.shar_dir, args.limit)
