"""Length curricula of spoken dialogues: conversations split into stages by their token length.

A conversation is every turn cut with the same
:class:`~lhotse_triplets.export.common.ConversationKey` (``conversation_id`` and language; a cut
without ``conversation_id`` is its own conversation, a triplet cut's key also holds its voice).
Its length in tokens is, summed over its turns::

    text tokens of the turn            tokenizer.count(text) of every supervision text (and of
                                       the ``answer`` of a triplet cut), no special tokens
    + audio frames of the turn         ceil(duration / token_equivalent_duration) for a turn
                                       that has audio (NeMo's measure; 0 for a text-only turn)

Stages are ascending token limits; a conversation enters the **first** stage whose limit it does
not exceed (``tokens <= limit``). The output folder holds one manifest per stage,
``curriculum_<limit>.jsonl.gz`` (the turn cuts unchanged, in input order; read it with
``CutSet.from_file``), ``too_long.jsonl`` (the conversations longer than the last limit),
``failed.jsonl`` (conversations with turn gaps or a turn without text, skipped) and
``summary.json`` (the table printed at the end). A stage no conversation fits still gets its
(empty) manifest: ``CutSet.from_jsonl_lazy`` reads it as an empty CutSet (Lhotse's
``CutSet.from_file`` returns ``None`` for any empty manifest). The input is read twice,
streaming: memory holds a few integers per conversation, never the cuts.

Example::

    >>> result = build_curriculum("out/turns.jsonl.gz", "out/curriculum", [8192, 16384],
    ...                           tokenizer="models/tokenizer.model")
    >>> print(result)
    >>> CutSet.from_file(result.manifest(8192))
"""

import json
import math
import statistics
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from lhotse import CutSet
from lhotse.cut import Cut
from lhotse.utils import Pathlike
from tabulate import tabulate
from tqdm.auto import tqdm

from lhotse_triplets import fields
from lhotse_triplets.dialogues import turn_gaps, turn_number
from lhotse_triplets.engine.base import read_cuts
from lhotse_triplets.errors import Failure, FailureLog
from lhotse_triplets.export.common import AtomicOutput, ConversationKey, conversation_key
from lhotse_triplets.export.nemo_config import NemoDataConfig
from lhotse_triplets.tokenizers import TextTokenizer, load_tokenizer

#: The step name in failed logs.
STEP = "curriculum"
#: NeMo's default seconds of audio counted as one token.
TOKEN_EQUIVALENT_DURATION = NemoDataConfig.token_equivalent_duration
SUMMARY_FILE = "summary.json"
TOO_LONG_FILE = "too_long.jsonl"
FAILED_FILE = "failed.jsonl"


def manifest_name(limit: int) -> str:
    """The file name of the stage manifest of ``limit`` tokens (``curriculum_8192.jsonl.gz``)."""
    return f"curriculum_{limit}.jsonl.gz"


def parse_stages(stages: str | Iterable[int]) -> list[int]:
    """The stage limits of ``--stages`` (``"8192,16384"`` or integers), ascending.

    :raises ValueError: for an empty list, a limit that is not a positive whole number, or a
        limit given twice (naming it).

    Example::

        >>> parse_stages("16384, 8192")
        [8192, 16384]
    """
    given = str(stages).split(",") if isinstance(stages, str) else list(stages)
    limits = []
    for item in given:
        text = str(item).strip()
        if not text.isdigit() or int(text) <= 0:
            raise ValueError(f"--stages {stages!r}: {text!r} is not a positive whole number")
        limits.append(int(text))
    if not limits:
        raise ValueError(f"--stages {stages!r}: give at least one token limit")
    twice = sorted({x for x in limits if limits.count(x) > 1})
    if twice:
        raise ValueError(f"--stages {stages!r}: {twice[0]} given twice; limits must differ")
    return sorted(limits)


def audio_frames(duration: float, token_equivalent_duration: float) -> int:
    """The tokens ``duration`` seconds of audio count for (NeMo's ``ceil(d / ted)``)."""
    return math.ceil(duration / token_equivalent_duration)


def turn_texts(cut: Cut) -> list[str]:
    """The texts of a turn that count as text tokens: its supervision texts, and the answer of a
    triplet cut. Empty texts are left out."""
    texts = [s.text for s in cut.supervisions if s.text and s.text.strip()]
    answer = (cut.custom or {}).get(fields.ANSWER)
    return texts + [answer] if answer else texts


def turn_tokens(cut: Cut, tokenizer: TextTokenizer, token_equivalent_duration: float) -> int:
    """Text tokens plus audio frames of one turn cut (see the module docstring).

    Example::

        >>> turn_tokens(cut, load_tokenizer("tokenizer.model"), 0.08)
        17
    """
    text = sum(tokenizer.count(t) for t in turn_texts(cut))
    audio = audio_frames(cut.duration, token_equivalent_duration) if cut.has_recording else 0
    return text + audio


@dataclass
class _Tally:
    """What pass 1 keeps of one conversation."""

    tokens: int = 0
    seconds: float = 0.0
    turns: list[int] = field(default_factory=list)
    problem: str | None = None


@dataclass
class StageRow:
    """One row of the report: a stage (``limit``) or the too-long conversations (``None``)."""

    limit: int | None
    conversations: int = 0
    turns: int = 0
    seconds: float = 0.0
    tokens: list[int] = field(default_factory=list, repr=False)

    def add(self, tally: _Tally) -> None:
        self.conversations += 1
        self.turns += len(tally.turns)
        self.seconds += tally.seconds
        self.tokens.append(tally.tokens)

    @property
    def name(self) -> str:
        return "too long" if self.limit is None else str(self.limit)

    def to_dict(self) -> dict:
        tokens = sorted(self.tokens)
        return {
            "limit": self.limit,
            "conversations": self.conversations,
            "turns": self.turns,
            "hours": self.seconds / 3600,
            "tokens_min": tokens[0] if tokens else None,
            "tokens_median": statistics.median(tokens) if tokens else None,
            "tokens_max": tokens[-1] if tokens else None,
        }


@dataclass
class CurriculumResult:
    """What :func:`build_curriculum` wrote; ``str(result)`` is the report table."""

    output_dir: Path
    stages: list[StageRow]
    too_long: StageRow
    failed: int
    tokenizer: str
    token_equivalent_duration: float

    def manifest(self, limit: int) -> Path:
        """The manifest of the stage ``limit``."""
        return self.output_dir / manifest_name(limit)

    def to_dict(self) -> dict:
        return {
            "output_dir": str(self.output_dir),
            "tokenizer": self.tokenizer,
            "token_equivalent_duration": self.token_equivalent_duration,
            "stages": [row.to_dict() for row in self.stages],
            "too_long": self.too_long.to_dict(),
            "failed": self.failed,
        }

    def __str__(self) -> str:
        rows = []
        for row in [*self.stages, self.too_long]:
            d = row.to_dict()
            spread = (
                "-"
                if not row.tokens
                else (f"{d['tokens_min']} / {d['tokens_median']:g} / {d['tokens_max']}")
            )
            rows.append([row.name, row.conversations, row.turns, d["hours"], spread])
        table = tabulate(
            rows,
            headers=["stage (tokens)", "conversations", "turns", "hours", "tokens min/median/max"],
            floatfmt=".3f",
        )
        failed = f"; {self.failed} failed ({FAILED_FILE})" if self.failed else ""
        return (
            f"{table}\ncurriculum written to {self.output_dir} (tokenizer {self.tokenizer}, "
            f"{self.token_equivalent_duration:g} s of audio per token){failed}"
        )


def build_curriculum(
    cuts_or_path: CutSet | Pathlike,
    out_dir: Pathlike,
    stages: str | Iterable[int],
    tokenizer: TextTokenizer | Pathlike,
    token_equivalent_duration: float = TOKEN_EQUIVALENT_DURATION,
    progress: bool = True,
    overwrite: bool = False,
) -> CurriculumResult:
    """Split the conversations of ``cuts_or_path`` into length stages (one manifest each).

    Tokens per conversation = text tokens of every turn (``tokenizer.count`` of its texts) +
    ``ceil(duration / token_equivalent_duration)`` of every turn that has audio. A conversation
    enters the first stage with ``tokens <= limit``; longer than the last is listed in
    ``too_long.jsonl``; turn gaps or a turn without text go to ``failed.jsonl``. The output
    folder is written atomically.

    :param cuts_or_path: turn cuts (or triplet cuts): a manifest, a stage directory, or a CutSet
        that can be iterated twice (a lazy one can).
    :param stages: token limits (``"8192,16384"`` or integers); see :func:`parse_stages`.
    :param tokenizer: a loaded tokenizer, or the path of a Hugging Face tokenizer folder or a
        SentencePiece ``.model`` (:func:`~lhotse_triplets.tokenizers.load_tokenizer`).
    :param token_equivalent_duration: seconds of audio counted as one token (NeMo's key).
    :param overwrite: replace an earlier curriculum in ``out_dir`` (else ``FileExistsError``).
    :raises ValueError: for bad stages, a bad ``token_equivalent_duration`` or tokenizer.
    :raises FileNotFoundError: for a missing input or tokenizer.

    Example::

        >>> result = build_curriculum("out/turns.jsonl.gz", "out/cur", "8192,16384",
        ...                           "tokenizer.model", overwrite=True)
        >>> [row.conversations for row in result.stages], result.too_long.conversations
        ([120, 31], 2)
    """
    limits = parse_stages(stages)
    if not token_equivalent_duration > 0:
        raise ValueError(
            f"--token-equivalent-duration {token_equivalent_duration!r}: must be > 0 seconds"
        )
    output = AtomicOutput(out_dir, overwrite=overwrite, format=STEP)
    if not isinstance(tokenizer, TextTokenizer):
        tokenizer = load_tokenizer(tokenizer)
    cuts = read_cuts(cuts_or_path) if isinstance(cuts_or_path, (str, Path)) else cuts_or_path
    tallies, n_cuts = _tally(cuts, tokenizer, token_equivalent_duration, progress)
    rows = [StageRow(limit) for limit in limits]
    too_long = StageRow(None)
    with output as tmp:
        plan, failed = _plan(tallies, rows, too_long, tmp)
        _write_stages(cuts, plan, rows, tmp, n_cuts, progress)
        result = CurriculumResult(
            Path(out_dir), rows, too_long, failed, tokenizer.name, token_equivalent_duration
        )
        _write_json(tmp / SUMMARY_FILE, result.to_dict())
    return result


def _tally(
    cuts: Iterable[Cut], tokenizer: TextTokenizer, ted: float, progress: bool
) -> tuple[dict[ConversationKey, _Tally], int]:
    """Pass 1: tokens, seconds and turn numbers per conversation; the number of cuts."""
    tallies: dict[ConversationKey, _Tally] = {}
    n_cuts = 0
    for cut in tqdm(cuts, desc="curriculum: counting tokens", unit="cut", disable=not progress):
        n_cuts += 1
        tally = tallies.setdefault(conversation_key(cut), _Tally())
        tally.turns.append(turn_number(cut))
        if not turn_texts(cut) and tally.problem is None:
            tally.problem = f"empty_text: turn {turn_number(cut)} ({cut.id}) has no text"
        if tally.problem is not None:
            continue  # skipped anyway: spare the tokenizer
        tally.tokens += turn_tokens(cut, tokenizer, ted)
        tally.seconds += cut.duration if cut.has_recording else 0.0
    return tallies, n_cuts


def _plan(
    tallies: dict[ConversationKey, _Tally], rows: list[StageRow], too_long: StageRow, tmp: Path
) -> tuple[dict[ConversationKey, int], int]:
    """Each conversation's stage index (``len(rows)``: too long, ``-1``: failed); writes the
    too-long and failed lists; returns the plan and the number of failed conversations."""
    plan: dict[ConversationKey, int] = {}
    failed = 0
    with FailureLog(tmp / FAILED_FILE) as log, (tmp / TOO_LONG_FILE).open("w") as long_file:
        for key, tally in tallies.items():
            gaps = turn_gaps(tally.turns)
            problem = tally.problem or (f"turn_gaps: {gaps}" if gaps else None)
            if problem is not None:
                plan[key] = -1
                failed += 1
                log.write(Failure(key.name, STEP, problem), **_describe(key, tally, False))
                continue
            plan[key] = next((i for i, r in enumerate(rows) if tally.tokens <= r.limit), len(rows))
            row = rows[plan[key]] if plan[key] < len(rows) else too_long
            row.add(tally)
            if row is too_long:
                long_file.write(json.dumps(_describe(key, tally), ensure_ascii=False) + "\n")
    return plan, failed


def _describe(key: ConversationKey, tally: _Tally, with_tokens: bool = True) -> dict:
    out = {fields.CONVERSATION_ID: key.conversation_id, fields.LANGUAGE: key.language}
    if key.voice:
        out[fields.VOICE] = key.voice
    if with_tokens:
        out["tokens"] = tally.tokens
    return {**out, "turns": len(tally.turns), "seconds": round(tally.seconds, 3)}


def _write_stages(
    cuts: Iterable[Cut],
    plan: dict[ConversationKey, int],
    rows: Sequence[StageRow],
    tmp: Path,
    n_cuts: int,
    progress: bool,
) -> None:
    """Pass 2: every cut of a staged conversation to its stage's manifest, in input order."""
    with ExitStack() as stack:
        writers = [
            stack.enter_context(CutSet.open_writer(tmp / manifest_name(row.limit))) for row in rows
        ]
        for cut in _progress(cuts, n_cuts, progress):
            index = plan.get(conversation_key(cut), -1)
            if 0 <= index < len(writers):
                writers[index].write(cut)


def _progress(cuts: Iterable[Cut], total: int, progress: bool) -> Iterator[Cut]:
    return iter(
        tqdm(cuts, desc="curriculum: writing stages", unit="cut", total=total, disable=not progress)
    )


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
