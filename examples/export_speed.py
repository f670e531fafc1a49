#!/usr/bin/env python
"""Time and size of every export format on 600 dummy-TTS dialogue cuts (run from the repo root):

python examples/export_speed.py
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

from lhotse import CutSet
from lhotse.utils import fastcopy

import lhotse_triplets.testing.backends  # noqa: F401  (the dummy TTS for duplex)
from lhotse_triplets.export import available_formats, export_formats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.export.dialogues import dialogue_cuts  # noqa: E402


def size(paths: list[Path]) -> int:
    """Bytes in the files and folders ``paths``."""
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    return sum(f.stat().st_size for f in files)


with tempfile.TemporaryDirectory() as tmp:
    src = Path(tmp) / "src"
    src.mkdir()
    base = dialogue_cuts(src)
    cuts = CutSet(
        [
            fastcopy(c, id=f"{c.id}-r{i}", custom={**c.custom, "conversation_id": f"c{i}-{j}"})
            for i in range(100)
            for j, c in enumerate(base)
        ]
    )
    kept = sum(c.duration for c in cuts if c.custom["reject_reason"] is None)
    print(
        f"{len(cuts)} cuts, {kept:.0f} s of kept audio\n\n| format | time | size |\n|---|---|---|"
    )
    out = Path(tmp) / "out"
    out.mkdir()
    for fmt in available_formats():
        before = set(out.iterdir())
        start = time.perf_counter()
        export_formats(cuts, out, formats=[fmt], duplex_tts="dummy")
        seconds = time.perf_counter() - start
        written = sorted(set(out.iterdir()) - before)  # the format's own entries
        print(f"| {fmt} | {seconds:.2f} s | {size(written) / 1e6:.2f} MB |")
    shutil.rmtree(out)
