"""Time to prepare a speaker set (``prepare speakers``) on this machine, and what it gives.

Speaks ``--clips`` real prompts (``../shared/reference-data/tts_inputs/tts_inputs_en.jsonl``)
with ``--speakers`` espeak-ng variants (one synthetic speaker each, round robin), writes the
audio list in index-tts-lora's shape (``path<TAB>transcript<TAB>speaker``), then times
:func:`~lhotse_triplets.recipes.prepare_speaker_set` with the default encoder (Resemblyzer) and
prints, per speaker: clips kept / excluded, train / valid, minutes, and whether the medoid is one
of the speaker's own clips.

Run (about a minute on 2 CPU cores)::

    .venv/bin/python benchmarks/speaker_set.py --clips 300
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import soundfile as sf
from tabulate import tabulate

from lhotse_triplets.backends import build
from lhotse_triplets.recipes import prepare_speaker_set

PROMPTS = Path(__file__).resolve().parents[2] / "shared/reference-data/tts_inputs"
VARIANTS = ["m1", "f2", "m3", "f4", "m7"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--speakers", type=int, default=3)
    parser.add_argument("--embedder", default="resemblyzer")
    args = parser.parse_args()
    lines = (PROMPTS / "tts_inputs_en.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"].replace("<image>", "").strip() for line in lines]
    tts = build("tts", "espeak")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        start = time.perf_counter()
        for i in range(args.clips):
            voice = VARIANTS[i % args.speakers]
            [audio] = tts.synthesize([texts[i % len(texts)]], language="en", voice=voice)
            path = root / "audio" / voice / f"{i:05d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, audio, tts.sampling_rate)
            rows.append(f"audio/{voice}/{path.name}\t{texts[i % len(texts)]}\t{voice}")
        synth = time.perf_counter() - start
        (root / "list.txt").write_text("\n".join(rows) + "\n")
        start = time.perf_counter()
        prepare_speaker_set(root / "list.txt", root / "out", embedder=args.embedder)
        prepare = time.perf_counter() - start
        info = json.loads((root / "out" / "speaker_info.json").read_text())
        failed = [
            json.loads(line)
            for line in (root / "out" / "speakers_failed_all.jsonl").read_text().splitlines()
        ]
        table = []
        for entry in info:
            medoid = json.loads((root / "out" / entry["speaker"] / "medoid_info.json").read_text())
            train = (root / "out" / entry["speaker"] / "metadata_train.jsonl").read_text()
            valid = (root / "out" / entry["speaker"] / "metadata_valid.jsonl").read_text()
            table.append(
                {
                    "speaker": entry["speaker"],
                    "clips": entry["sample_num"],
                    "excluded": ", ".join(
                        f["reason"].split(":")[0]
                        for f in failed
                        if f.get("speaker") == entry["speaker"]
                    )
                    or "-",
                    "train": len(train.splitlines()),
                    "valid": len(valid.splitlines()),
                    "minutes": entry["total_duration_in_minutes"],
                    "medoid is own clip": f"/{entry['speaker']}/" in medoid["audio"],
                }
            )
    print(tabulate(table, headers="keys", tablefmt="github"))
    print(
        f"\n{args.clips} clips ({args.speakers} speakers): synthesis {synth:.1f} s (not part of "
        f"the recipe); prepare speakers with {args.embedder}: {prepare:.1f} s "
        f"({1000 * prepare / args.clips:.0f} ms per clip)"
    )


if __name__ == "__main__":
    main()
