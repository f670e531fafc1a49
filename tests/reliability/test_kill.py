"""kill -9 at seeded points of a real ``lhotse-triplets run`` (a subprocess on the dummy backends,
several shards per stage), then a rerun to completion: the exports are identical to those of an
uninterrupted run, no cut is duplicated, no temporary file is left.

Kill moments are chosen from a seed: the run directory is polled and the process group is killed
when the k-th new file of one step's folder (prepare, prompts, rephrase, synthesize, audio, score,
gate, export), or the k-th temporary ``.tmp.*`` file (inside a shard or audio write), appears; k
is drawn over what an uninterrupted run writes there. About two minutes.
"""

import gzip
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from lhotse_triplets import fields

from .test_runs import CONFIG as RUN_CONFIG

pytestmark = pytest.mark.slow

SEED = 10
KILLS = 10
#: The run of ``test_runs`` with more conversations (6 prompt shards per stage).
CONFIG = {**RUN_CONFIG, "prepare": {"recipe": "sample", "options": {"num_conversations": 12}}}
TMP = ".tmp."
#: The run's folders, in the order the steps write them.
STEP_FOLDERS = ("prepare", "prompts", "rephrase", "synthesize", "audio", "score", "gate", "export")


def command(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "lhotse_triplets.bin.cli", "run", str(config), "-o", str(out)]


def files_under(root: Path) -> set[str]:
    return {os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names}


def kinds(out: Path, path: str) -> list[str]:
    """What a new file counts as: its top folder in the run (``synthesize``, ``audio``...), and
    ``tmp`` for a temporary file."""
    top = Path(path).relative_to(out).parts[0]
    return [top, TMP] if os.path.basename(path).startswith(TMP) else [top]


def watch(config: Path, out: Path, kill_at: tuple[str, int] | None = None) -> tuple[bool, Counter]:
    """Run ``run`` and watch ``out``; SIGKILL its process group when the k-th new file of a
    kind appears (``kill_at = (kind, k)``). Return (killed, new files seen per kind)."""
    log = (out.parent / f"{out.name}.log").open("ab")
    proc = subprocess.Popen(command(config, out), stdout=log, stderr=log, start_new_session=True)
    seen: set[str] = set()
    counts: Counter = Counter()
    try:
        while proc.poll() is None:
            for path in sorted(files_under(out) - seen):
                seen.add(path)
                counts.update(kinds(out, path))
                if kill_at and kill_at[0] in kinds(out, path) and counts[kill_at[0]] == kill_at[1]:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return True, counts
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    assert proc.returncode == 0, (out.parent / f"{out.name}.log").read_text()[-3000:]
    return False, counts


def finish(config: Path, out: Path) -> None:
    done = subprocess.run(command(config, out), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def shar_state(shar: Path, run: str) -> dict:
    """Cuts (timing fields dropped, run paths neutral) and tar members (name -> content digest)."""
    cuts = []
    for path in sorted(shar.glob("cuts.*.jsonl.gz")):
        for line in gzip.decompress(path.read_bytes()).decode().splitlines():
            cut = json.loads(line.replace(run, "RUN"))
            cut.get("custom", {}).pop(fields.SYNTHESIS_SECONDS, None)
            cuts.append(cut)
    members = {}
    for path in sorted(shar.glob("*.tar")):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                members[f"{path.name}/{member.name}"] = digest(tar.extractfile(member).read())
    return {"cuts": cuts, "members": members}


def state(out: Path) -> dict:
    """What a user relies on after a run: exports, audio, counts."""
    run = str(out)
    summary = json.loads((out / "summary.json").read_text())
    audio = {
        str(p.relative_to(out)): digest(p.read_bytes())
        for p in sorted((out / "audio").rglob("*"))
        if p.is_file()
    }
    return {
        "triplets": (out / "export" / "triplets.jsonl").read_text().replace(run, "RUN"),
        "shar": shar_state(out / "export" / "shar", run),
        "audio": audio,
        "counts": {k: summary[k] for k in ("prompts", "kept", "rejected", "failed", "hours")},
        "stages": [
            {k: v for k, v in s.items() if k != "resumed_shards"} for s in summary["stages"]
        ],
    }


def gate_ids(out: Path) -> list[str]:
    ids = []
    for path in sorted((out / "gate").glob("cuts.*.jsonl.gz")):
        ids += [json.loads(line)["id"] for line in gzip.decompress(path.read_bytes()).splitlines()]
    return ids


def kill_points(rng: random.Random, seen: Counter) -> list[tuple[str, int]]:
    """Seeded ``(kind, k)`` kill points: the k-th new file in each step's folder, then the k-th
    temporary file (inside a shard or audio write), k drawn over what the reference run wrote;
    then more of both, for points the run passed before the poll saw them."""
    steps = [kind for kind in STEP_FOLDERS if seen[kind]]
    kinds = steps + [TMP] * 3 + [rng.choice(steps + [TMP]) for _ in range(KILLS)]
    return [(kind, rng.randint(1, seen[kind])) for kind in kinds]


def test_kill_minus_nine_anywhere_then_rerun_gives_the_same_exports(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    reference = tmp_path / "reference"
    _, seen = watch(config, reference)
    expected = state(reference)
    assert len(expected["shar"]["cuts"]) > 40
    assert len(list((reference / "prompts").glob("cuts.*"))) > 3
    rng = random.Random(SEED)
    kills = []
    start = time.monotonic()
    for trial, (kind, k) in enumerate(kill_points(rng, seen)):
        if len(kills) == KILLS:
            break
        out = tmp_path / f"trial{trial}"
        killed, _ = watch(config, out, (kind, k))
        if not killed:  # the run ended before the poll saw that file: not a kill point
            continue
        left = sorted(p for p in files_under(out) if os.path.basename(p).startswith(TMP))
        kills.append((kind, k, len(left)))
        finish(config, out)
        got = state(out)
        for key in expected:
            assert got[key] == expected[key], f"trial {trial} (killed at {kind} {k}): {key} differs"
        ids = gate_ids(out)
        assert len(ids) == len(set(ids)) == len(gate_ids(reference))
        assert not [p for p in files_under(out) if os.path.basename(p).startswith(TMP)]
    print("kills (kind, k, temporary files left):", kills)
    assert len(kills) == KILLS, kills
    # Kills landed in every step's folder, and inside writes (temporary files left behind).
    assert {kind for kind, *_ in kills} >= {"prepare", "rephrase", "synthesize", "gate", TMP}
    assert sum(1 for *_, left in kills if left) >= 3, kills
    assert time.monotonic() - start < 240
