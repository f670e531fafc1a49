"""Synthetic copies of the spoken dialogue corpora, in their real on-disk shapes, at any scale.

Writers for tests and ``benchmarks/dialogue_corpora.py``: each lays out a corpus exactly as the
recipe of the same name reads it (see the recipe modules for the shapes), quirks included, with
sine-plus-noise wavs (numpy + soundfile; fast), deterministic for a given ``seed``:

- :func:`write_deepdialogue`: ``data/dialogues_<model>/<dialogue>.json``, ``<dialogue>_full.wav``
  and ``segments/NNN_<LLM1|LLM2>_<RAVDESS emotion>.wav`` at 24 kHz, the per-turn parquet; pairs of
  dialogues share a name under two model folders, some segment wavs are missing, the file name's
  emotion differs from the JSON's;
- :func:`write_multidialog`: ``metadata/<split>/<split>_metadata_NNNN.jsonl`` (rows shuffled
  inside a file, conversations spanning two files) and ``data/<split>/<split>_chunks_NNNN.tar.gz``
  holding ``t_<uuid>/t_<uuid>_<utt><actor>.wav`` at 16 kHz, some members missing;
- :func:`write_instructs2s`: ``instruct_en_200k_data_cosy2.json`` (one JSON array, ``unit``
  strings on ``gpt`` turns, about 5 KB a row like the real ~1 GB / 200K rows) and, with
  ``with_audio``, ``wavs/<id>-<k>-user.wav`` (16 kHz) / ``-<k>-assistant.wav`` (24 kHz).

Every writer returns a :class:`WrittenCorpus` with the counts a recipe run should reproduce.
``bad`` adds that many conversations the recipe must record as failures and skip.

Example::

    >>> info = write_deepdialogue(tmp / "DeepDialogue-xtts", dialogues=20, seed=0)
    >>> len(prepare_deepdialogue(tmp / "DeepDialogue-xtts")) == info.turns
    True
"""

import io
import json
import random
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = [
    "FIXTURE_CONVERSATIONS",
    "MULTIDIALOG_SPLITS",
    "RAVDESS",
    "WrittenCorpus",
    "write_deepdialogue",
    "write_instructs2s",
    "write_multidialog",
]

#: Conversations (dialogues, rows) in each recipe's test fixture: the benchmark's scale 1.
FIXTURE_CONVERSATIONS = {"deepdialogue": 7, "multidialog": 5, "instructs2s": 12}
#: The labels DeepDialogue synthesized with (the emotion in a segment's file name).
RAVDESS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
#: The JSON's free-form emotions (a few are RAVDESS words too, usually not the file's).
FREE_EMOTIONS = ("excited", "curious", "thoughtful", "joyful", "touched", "happy", "calm", "sad")
MULTIDIALOG_EMOTIONS = ("Neutral", "Happy", "Fear", "Angry", "Disgusting", "Surprising", "Sad")
#: Splits and the share of conversations each gets.
MULTIDIALOG_SPLITS = {
    "train": 0.8,
    "valid_freq": 0.05,
    "valid_rare": 0.05,
    "test_freq": 0.05,
    "test_rare": 0.05,
}
DEEPDIALOGUE_MODELS = (
    "dialogues_llama3-70B",
    "dialogues_qwen2.5-72B",
    "dialogues_llama3-70B_qwen2.5-72B",
    "dialogues_gemma3-27B_llama3-70B",
)
DOMAINS = ("music", "travel", "food", "sports", "movies", "science", "books", "weather")
INSTRUCTS2S_FILE = "instruct_en_200k_data_cosy2.json"
WORDS = (
    "the quick answer depends on what you like most about music travel food and books "
    "we could try a new place next week if the weather stays warm and the trains run on time "
    "owls hunt at night while most birds sleep in trees near the river where it is quiet"
).split()
#: CosyVoice2 speech tokens per second of speech (the ``unit`` strings' rate).
UNITS_PER_SECOND = 25
MAX_UNIT = 6560


@dataclass
class WrittenCorpus:
    """What a writer put on disk: the numbers a recipe run over it should report.

    :param root: the corpus folder (what ``prepare`` takes as its source).
    :param conversations: conversations a recipe keeps (``bad`` ones not counted).
    :param turns: turn cuts a recipe writes (text-only ones included).
    :param missing_audio: kept turns without a wav (text-only cuts).
    :param audio_seconds: seconds of turn audio written (kept turns).
    :param failures: conversations written broken on purpose (recorded, skipped).
    """

    root: Path
    conversations: int = 0
    turns: int = 0
    missing_audio: int = 0
    audio_seconds: float = 0.0
    failures: int = 0

    def add_turn(self, seconds: float | None) -> None:
        self.turns += 1
        if seconds is None:
            self.missing_audio += 1
        else:
            self.audio_seconds += seconds


class _Tones:
    """Sine-plus-noise turns, one per (frequency, length) cached: writing stays I/O bound."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._cache: dict[tuple[int, int, int], np.ndarray] = {}

    def audio(self, seconds: float, rate: int) -> np.ndarray:
        frequency = 150 + 50 * self._rng.randrange(8)
        key = (frequency, int(seconds * rate), rate)
        if key not in self._cache:
            t = np.arange(key[1]) / rate
            noise = np.random.default_rng(frequency).normal(0.0, 0.01, key[1])
            self._cache[key] = (0.3 * np.sin(2 * np.pi * frequency * t) + noise).astype(np.float32)
        return self._cache[key]

    def wav(self, seconds: float, rate: int) -> bytes:
        buffer = io.BytesIO()
        sf.write(buffer, self.audio(seconds, rate), rate, format="WAV", subtype="PCM_16")
        return buffer.getvalue()


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _seconds(rng: random.Random, low: float, high: float) -> float:
    """A turn length, rounded to 10 ms (durations then match the wav sample counts exactly)."""
    return round(rng.uniform(low, high), 2)


# --- DeepDialogue ---------------------------------------------------------------------------


def write_deepdialogue(
    root: Path,
    dialogues: int = 7,
    *,
    seed: int = 0,
    turns: tuple[int, int] = (2, 6),
    turn_seconds: tuple[float, float] = (0.3, 1.2),
    missing_ratio: float = 0.05,
    bad: int = 0,
    full_wav: bool = True,
    parquet: bool = True,
) -> WrittenCorpus:
    """A DeepDialogue snapshot (``root/data/...``) of ``dialogues`` dialogues (+ ``bad``).

    Dialogues ``2i`` and ``2i+1`` share a name under two model folders; a turn's segment wav is
    left out with probability ``missing_ratio``; the segment name's RAVDESS emotion is drawn
    apart from the JSON's free-form one. ``bad`` dialogues hold truncated JSON
    (``invalid_json``).

    :param turns: fewest and most turns of a dialogue.
    :param turn_seconds: shortest and longest turn, seconds (24 kHz mono wavs).
    :param full_wav: also write ``<dialogue>_full.wav`` (the turns end to end).
    :param parquet: also write ``data/train-00000-of-00001.parquet`` (needs pyarrow).

    Example::

        >>> info = write_deepdialogue(Path("/tmp/dd"), dialogues=100, seed=1, bad=2)
        >>> len(prepare_deepdialogue("/tmp/dd")) == info.turns
        True
    """
    rng = random.Random(seed)
    tones = _Tones(random.Random(seed + 1))
    data = Path(root) / "data"
    info = WrittenCorpus(Path(root))
    rows: list[dict] = []
    for index in range(dialogues):
        model_dir = DEEPDIALOGUE_MODELS[index % len(DEEPDIALOGUE_MODELS)]
        pair = index // 2
        name = f"{DOMAINS[pair % len(DOMAINS)]}_{pair}_{pair % 9 + 1}"
        count = rng.randint(*turns)
        document, segments = _deepdialogue_dialogue(rng, model_dir, count, turn_seconds)
        folder = data / model_dir
        (folder / name / "segments").mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps(document, indent=2))
        written = []
        for number, (turn, (emotion, seconds)) in enumerate(
            zip(document["conversation"], segments), start=1
        ):
            kept = rng.random() >= missing_ratio
            segment = f"{number:03d}_{turn['speaker']}_{emotion}.wav"
            if kept:
                audio = tones.audio(seconds, 24000)
                sf.write(folder / name / "segments" / segment, audio, 24000, subtype="PCM_16")
                written.append(audio)
            info.add_turn(seconds if kept else None)
            rows.append(_parquet_row(model_dir, name, number, turn, document, segment, seconds))
        if full_wav and written:
            sf.write(folder / name / f"{name}_full.wav", np.concatenate(written), 24000)
        info.conversations += 1
    for index in range(bad):
        folder = data / DEEPDIALOGUE_MODELS[index % len(DEEPDIALOGUE_MODELS)]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"broken_{index}_1.json").write_text('{"domain": "music", "conversation": [')
        info.failures += 1
    if parquet and rows:
        _write_parquet(data / "train-00000-of-00001.parquet", rows)
    return info


def _deepdialogue_dialogue(
    rng: random.Random, model_dir: str, count: int, turn_seconds: tuple[float, float]
) -> tuple[dict, list[tuple[str, float]]]:
    """The JSON document of one dialogue and, per turn, its file emotion and length."""
    models = model_dir.removeprefix("dialogues_").split("_")
    conversation = [
        {
            "speaker": "LLM1" if turn % 2 == 0 else "LLM2",
            "text": _sentence(rng, rng.randint(4, 14)),
            "emotion": rng.choice(FREE_EMOTIONS),
        }
        for turn in range(count)
    ]
    document = {
        "domain": DOMAINS[rng.randrange(len(DOMAINS))],
        "timestamp": f"2025-03-{rng.randint(1, 28):02d} 10:00:00",
        "model1": models[0],
        "model2": models[-1],
        "conversation": conversation,
    }
    segments = [(rng.choice(RAVDESS), _seconds(rng, *turn_seconds)) for _ in conversation]
    return document, segments


def _parquet_row(
    model_dir: str, name: str, number: int, turn: dict, document: dict, segment: str, seconds
) -> dict:
    return {
        "conversation_id": name,
        "model_dir": model_dir,
        "turn_index": number - 1,
        "speaker": turn["speaker"],
        "text": turn["text"],
        "domain": document["domain"],
        "emotion": turn["emotion"],
        "segment_audio_path": f"{model_dir}/{name}/segments/{segment}",
        "audio_duration": seconds,
    }


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)


# --- MultiDialog ----------------------------------------------------------------------------


def write_multidialog(
    root: Path,
    conversations: int = 5,
    *,
    seed: int = 0,
    turns: tuple[int, int] = (2, 8),
    turn_seconds: tuple[float, float] = (0.3, 1.2),
    missing_ratio: float = 0.05,
    bad: int = 0,
    rows_per_file: int = 500,
    conversations_per_chunk: int = 50,
) -> WrittenCorpus:
    """A MultiDialog snapshot (``root/metadata``, ``root/data``) of ``conversations`` spread over
    the five splits (:data:`MULTIDIALOG_SPLITS`, train first; every split gets at least one
    conversation once there are five).

    Metadata files hold ``rows_per_file`` rows each, shuffled inside the file (a conversation
    can span two files); each chunk holds the wavs of ``conversations_per_chunk`` conversations
    (16 kHz mono), a turn's member left out with probability ``missing_ratio``. ``bad`` adds
    that many unparsable metadata lines to ``train`` (``invalid_json``; they are rows, no
    conversation is lost).

    Example::

        >>> info = write_multidialog(Path("/tmp/md"), conversations=50)
        >>> len(prepare_multidialog("/tmp/md")) == info.turns
        True
    """
    rng = random.Random(seed)
    tones = _Tones(random.Random(seed + 1))
    info = WrittenCorpus(Path(root))
    for split, count in _split_sizes(conversations).items():
        rows: list[dict] = []
        members: list[dict[str, bytes]] = []
        for index in range(count):
            if index % conversations_per_chunk == 0:
                members.append({})
            conversation, wavs = _multidialog_conversation(
                rng, tones, info, turns, turn_seconds, missing_ratio
            )
            rows += conversation
            members[-1].update(wavs)
        bad_here = bad if split == "train" else 0
        info.failures += bad_here
        _write_metadata(Path(root) / "metadata" / split, split, rows, rows_per_file, rng, bad_here)
        for number, chunk in enumerate(members):
            _write_tar(Path(root) / "data" / split / f"{split}_chunks_{number:04d}.tar.gz", chunk)
    return info


def _split_sizes(conversations: int) -> dict[str, int]:
    """Conversations per split: each split its share (at least 1 if there are enough), the
    rest to train."""
    sizes = {split: 0 for split in MULTIDIALOG_SPLITS}
    if conversations >= len(MULTIDIALOG_SPLITS):
        for split, share in list(MULTIDIALOG_SPLITS.items())[1:]:
            sizes[split] = max(1, int(conversations * share))
    sizes["train"] = conversations - sum(sizes.values())
    return sizes


def _multidialog_conversation(
    rng: random.Random,
    tones: _Tones,
    info: WrittenCorpus,
    turns: tuple[int, int],
    turn_seconds: tuple[float, float],
    missing_ratio: float,
) -> tuple[list[dict], dict[str, bytes]]:
    """The metadata rows of one conversation and its chunk members (name -> wav bytes)."""
    conv = f"t_{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    actors = rng.sample("ABCDEFGH", 2)
    rows: list[dict] = []
    members: dict[str, bytes] = {}
    for utt in range(rng.randint(*turns)):
        name = f"{conv}/{conv}_{utt}{actors[utt % 2]}.wav"
        rows.append(
            {
                "file_name": name,
                "conv_id": conv,
                "utterance_id": utt,
                "from": "human" if utt % 2 == 0 else "gpt",
                "value": _sentence(rng, rng.randint(3, 16)),
                "emotion": rng.choice(MULTIDIALOG_EMOTIONS),
                "original_full_path": f"/data/MultiDialog/raw/{name}",
            }
        )
        seconds = _seconds(rng, *turn_seconds)
        kept = rng.random() >= missing_ratio
        if kept:
            members[name] = tones.wav(seconds, 16000)
        info.add_turn(seconds if kept else None)
    info.conversations += 1
    return rows, members


def _write_metadata(
    folder: Path, split: str, rows: list[dict], per_file: int, rng: random.Random, bad: int
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(row) for row in rows] + ["{not json"] * bad
    for number, start in enumerate(range(0, max(len(lines), 1), per_file)):
        part = lines[start : start + per_file]
        rng.shuffle(part)
        (folder / f"{split}_metadata_{number:04d}.jsonl").write_text("\n".join(part) + "\n")


def _write_tar(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in members.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))


# --- InstructS2S ----------------------------------------------------------------------------


def write_instructs2s(
    root: Path,
    rows: int = 12,
    *,
    seed: int = 0,
    with_audio: bool = True,
    exchanges: tuple[int, int] = (1, 3),
    turn_seconds: tuple[float, float] = (0.3, 1.2),
    missing_ratio: float = 0.05,
    bad: int = 0,
) -> WrittenCorpus:
    """``root/instruct_en_200k_data_cosy2.json`` of ``rows`` conversations (+ ``bad``) and, with
    ``with_audio``, their wavs under ``root/wavs/``.

    Rows alternate ``alpaca_<i>`` (one exchange) and ``ultrachat_<i>`` (``exchanges`` of them);
    ``gpt`` turns carry ``unit`` strings (``<2957><4299>...``, up to 6,560) and answers of
    realistic length, so a row takes about 5 KB like the real file's. A wav is left out with
    probability ``missing_ratio`` (all are missing without ``with_audio``: every turn is then
    text-only). The file is written row by row (memory stays flat at any ``rows``). ``bad``
    rows hold a ``system`` turn (``unknown_role``).

    Example::

        >>> info = write_instructs2s(Path("/tmp/is2s"), rows=200_000, with_audio=False)
        >>> info.missing_audio == info.turns
        True
    """
    rng = random.Random(seed)
    tones = _Tones(random.Random(seed + 1))
    info = WrittenCorpus(Path(root))
    (info.root / "wavs" if with_audio else info.root).mkdir(parents=True, exist_ok=True)
    pools = _Pools(rng)
    with open(info.root / INSTRUCTS2S_FILE, "w", encoding="utf-8") as f:
        f.write("[\n")
        for index, row in enumerate(_instructs2s_rows(rng, pools, rows, bad, exchanges)):
            if index:
                f.write(",\n")
            f.write(json.dumps(row))
            if row["id"].startswith("bad_"):
                info.failures += 1
                continue
            info.conversations += 1
            for turn in row["conversation"]:
                seconds = _seconds(rng, *turn_seconds)
                kept = rng.random() >= missing_ratio and with_audio
                if kept:
                    rate = 16000 if turn["from"] == "human" else 24000
                    audio = tones.audio(seconds, rate)
                    sf.write(info.root / turn["speech"], audio, rate, subtype="PCM_16")
                info.add_turn(seconds if kept else None)
        f.write("\n]\n")
    return info


class _Pools:
    """Answer texts and unit strings drawn once and reused: the file is written fast."""

    def __init__(self, rng: random.Random, size: int = 256) -> None:
        self.answers = [_sentence(rng, rng.randint(40, 120)) for _ in range(size)]
        self.units = [
            "".join(f"<{rng.randint(0, MAX_UNIT)}>" for _ in range(len(answer.split()) * 10))
            for answer in self.answers
        ]


def _instructs2s_rows(
    rng: random.Random, pools: _Pools, rows: int, bad: int, exchanges: tuple[int, int]
) -> Iterator[dict]:
    """The array's rows in order; the ``bad`` ones spread evenly among them."""
    every = rows // bad if bad else 0
    made = 0
    for index in range(rows):
        if every and index % every == 0 and made < bad:
            made += 1
            yield {"id": f"bad_{made}", "conversation": [{"from": "system", "text": "Be nice."}]}
        source = "alpaca" if index % 2 == 0 else "ultrachat"
        row_id = f"{source}_{index}"
        count = 1 if source == "alpaca" else rng.randint(*exchanges)
        conversation = []
        for k in range(count):
            answer = rng.randrange(len(pools.answers))
            conversation += [
                {
                    "from": "human",
                    "text": _sentence(rng, rng.randint(5, 25)),
                    "speech": f"wavs/{row_id}-{k}-user.wav",
                },
                {
                    "from": "gpt",
                    "text": pools.answers[answer],
                    "speech": f"wavs/{row_id}-{k}-assistant.wav",
                    "unit": pools.units[answer],
                },
            ]
        yield {"id": row_id, "conversation": conversation}
    for extra in range(made, bad):
        yield {"id": f"bad_{extra + 1}", "conversation": [{"from": "system", "text": "Hi."}]}
