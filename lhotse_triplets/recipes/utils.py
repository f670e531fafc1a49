"""The bookkeeping every recipe shares: output names, completion markers, writer, failed log.

A recipe only parses its corpus into cuts (and :class:`~lhotse_triplets.errors.Failure` records
for items it cannot use) and hands them to :func:`prepare_manifest`, which writes, in
``output_dir``:

- ``<corpus>_cuts_<part>.jsonl.gz``: the cuts, written lazily (``CutSet.open_writer``);
- ``<corpus>_failed_<part>.jsonl``: one line per failed item (cut id, stage, reason);
- ``.<corpus>_<part>.completed``: written last; it stores the run's parameters, so a rerun with
  the same parameters returns the finished manifest without redoing it, and a changed one redoes
  the part.

Every recipe inherits the text checks of :func:`check_cut_text` (a cut failing one becomes a
failure, recorded and skipped): its supervision text must be speakable in the cut's language
(:func:`lhotse_triplets.text.unspeakable_reason`: ``control_characters``, ``no_speakable_text``,
``wrong_script``) and at most ``max_prompt_chars`` long (``prompt_too_long``); its answer
(``custom[fields.ANSWER]``) at most ``max_answer_chars`` (``answer_too_long``) and free of control
characters; each supplied translation (``custom[fields.TRANSLATIONS]``) is checked like the text,
in its own language.

Without ``output_dir`` the cuts are collected in memory and nothing is written.

The dialogue recipes (``deepdialogue``, ``multidialog``, ``instructs2s``) also share the turn
cut itself: :func:`turn_recording` (a turn's audio file, resampled lazily to 16 kHz, or
``unreadable_audio: <file>: <reason>``) and :func:`turn_cut` (one cut per turn, the role in the
supervision ``speaker`` and in ``custom["role"]``, text only when the corpus lacks the audio).

Example::

    def prepare_toy(corpus_dir, output_dir=None, part="train"):
        items = (toy_row_to_cut(row) for row in read_rows(corpus_dir, part))
        params = {"corpus_dir": str(corpus_dir), "part": part}
        return prepare_manifest(items, corpus="toy", part=part, output_dir=output_dir,
                                params=params)
"""

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
from lhotse.cut import Cut
from lhotse.utils import Pathlike, fastcopy
from tqdm.auto import tqdm

from lhotse_triplets import fields, text
from lhotse_triplets.dialogues import MISSING_AUDIO
from lhotse_triplets.errors import Failure, FailureLog, ItemError, log_failure, read_failures

logger = logging.getLogger(__name__)

#: The stage named in failures of a recipe.
STAGE = "prepare"
#: What a recipe yields: a cut, a failure, or the outputs of one source item (one progress step).
Output = Cut | Failure
Item = Output | Iterable[Output]

#: The rate every dialogue turn's recording is resampled to (lazily, on load).
TURN_SAMPLING_RATE = 16000
#: ``custom[fields.AUDIO_SOURCE]`` of a dialogue turn the corpus has no audio for (text only).

_CUTS_NAME = re.compile(r"(?P<corpus>.+?)_cuts_(?P<part>.+)\.jsonl\.gz")


@dataclass(frozen=True)
class RecipeFiles:
    """The files of one prepared part of a corpus inside ``output_dir``.

    Example::

        >>> RecipeFiles("llava_instruct", "train", Path("out")).cuts
        PosixPath('out/llava_instruct_cuts_train.jsonl.gz')
    """

    corpus: str
    part: str
    output_dir: Path

    @property
    def cuts(self) -> Path:
        """The cut manifest: ``<corpus>_cuts_<part>.jsonl.gz``."""
        return self.output_dir / f"{self.corpus}_cuts_{self.part}.jsonl.gz"

    @property
    def failed(self) -> Path:
        """The failed log: ``<corpus>_failed_<part>.jsonl``."""
        return self.output_dir / f"{self.corpus}_failed_{self.part}.jsonl"

    @property
    def marker(self) -> Path:
        """The completion marker: ``.<corpus>_<part>.completed`` (the run's parameters)."""
        return self.output_dir / f".{self.corpus}_{self.part}.completed"

    @classmethod
    def of_cuts(cls, path: Pathlike) -> "RecipeFiles | None":
        """The files a cut manifest named ``<corpus>_cuts_<part>.jsonl.gz`` belongs to."""
        path = Path(path)
        match = _CUTS_NAME.fullmatch(path.name)
        return cls(match["corpus"], match["part"], path.parent) if match else None

    def is_complete(self, params: Mapping[str, Any]) -> bool:
        """Whether the cuts exist and the marker holds exactly ``params``."""
        try:
            done = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return False
        return self.cuts.is_file() and done == _as_json(params)

    def mark_complete(self, params: Mapping[str, Any]) -> None:
        """Write the completion marker holding ``params``."""
        self.marker.write_text(json.dumps(params, sort_keys=True, default=str))

    def remove(self) -> None:
        """Delete the part's files (a part a rerun no longer writes, e.g. an emptied split)."""
        for path in (self.marker, self.cuts, self.failed):
            path.unlink(missing_ok=True)


@dataclass
class PrepareCounts:
    """What a run gave: the number of cuts, and the failures by reason."""

    cuts: int = 0
    failed: Counter = field(default_factory=Counter)

    def log(self, corpus: str) -> None:
        """The end-of-run log line: cuts written, failed items by reason."""
        logger.info(
            "Prepared %d cuts of %s; %d items failed%s",
            self.cuts,
            corpus,
            sum(self.failed.values()),
            "".join(f"\n  {n} x {reason}" for reason, n in self.failed.most_common()),
        )


def prepare_manifest(
    items: Iterable[Item],
    *,
    corpus: str,
    part: str,
    output_dir: Pathlike | None = None,
    params: Mapping[str, Any] | None = None,
    total: int | None = None,
    desc: str | None = None,
    max_prompt_chars: int | None = text.MAX_PROMPT_CHARS,
    max_answer_chars: int | None = text.MAX_ANSWER_CHARS,
    texts_checked: bool = False,
) -> CutSet:
    """Write a recipe's cuts and failures to ``output_dir`` (or keep them in memory).

    ``items`` is consumed only when the part is not already prepared with the same ``params``;
    its first item is drawn before any output is opened, so a source that cannot be read leaves
    earlier outputs as they were.

    :param items: cuts, :class:`Failure` records, or lists of both (the outputs of one source
        item, counted as one step of the progress bar).
    :param corpus: the corpus name in the output names, e.g. ``"llava_instruct"``.
    :param part: the split or part in the output names, e.g. ``"train"``.
    :param output_dir: where the manifest, failed log and marker go; ``None``: in memory.
    :param params: JSON-able values the run depends on (stored in the completion marker).
    :param total: the number of items, for the progress bar (``len(items)`` when it has one).
    :param desc: the progress bar's label (default ``"Preparing <corpus>"``).
    :param max_prompt_chars: longest supervision text kept (``None``: no cap); also stored in the
        completion marker, like ``max_answer_chars``.
    :param max_answer_chars: longest answer kept (``None``: no cap).
    :param texts_checked: the recipe ran :func:`check_cut_text` on every cut itself (the
        dialogue recipes do, to fail a whole conversation): not checked again here.
    :return: the cuts, lazily read from the manifest when written.

    Example::

        >>> cuts = prepare_manifest([cut, Failure("x-t0", "prepare", "empty_turn: ...")],
        ...                         corpus="toy", part="train", output_dir="out")
    """
    files = RecipeFiles(corpus, part, Path(output_dir)) if output_dir is not None else None
    params = {
        "max_prompt_chars": max_prompt_chars,
        "max_answer_chars": max_answer_chars,
        **(params or {}),
    }
    if files is not None and files.is_complete(params):
        logger.info("%s is already prepared (%s exists); not redoing it.", files.cuts, files.marker)
        return CutSet.from_jsonl_lazy(files.cuts)
    if total is None and isinstance(items, Sized):
        total = len(items)
    items = _drawn_first(items)
    if files is not None:
        files.output_dir.mkdir(parents=True, exist_ok=True)
        files.marker.unlink(missing_ok=True)
    with ExitStack() as stack:
        cuts_path = files.cuts if files is not None else None
        writer = stack.enter_context(CutSet.open_writer(cuts_path, overwrite=True))
        on_failure = log_failure
        if files is not None:
            on_failure = stack.enter_context(FailureLog(files.failed, echo=True)).write
        progress = tqdm(items, total=total, desc=desc or f"Preparing {corpus}", unit="item")
        checked = progress
        if not texts_checked:
            checked = (_checked(item, max_prompt_chars, max_answer_chars) for item in progress)
        write = writer.write if files is None else lambda cut: writer.write(cut_dict(cut))
        counts = _drain(checked, write, on_failure)
    counts.log(corpus)
    if files is None:
        return writer.open_manifest() or CutSet()
    files.mark_complete(params)
    return CutSet.from_jsonl_lazy(files.cuts)


#: Custom lists longer than this are put into a cut's dict as they are (see :func:`cut_dict`).
_LONG_LIST = 64


def cut_dict(cut: Cut) -> dict[str, Any]:
    """``cut.to_dict()``, without Lhotse's deep copy of long custom lists (``speech_units``:
    thousands of integers a turn, which ``dataclasses.asdict`` copies one by one; it was half of
    InstructS2S's prepare time). The lists are shared with the cut, not copied: write the dict
    at once.

    Example::

        >>> cut_dict(cut)["custom"]["speech_units"][:3]
        [2957, 4299, 11]
    """
    custom = cut.custom or {}
    long = {k: v for k, v in custom.items() if isinstance(v, list) and len(v) > _LONG_LIST}
    if not long:
        return cut.to_dict()
    short = fastcopy(cut, custom={k: v for k, v in custom.items() if k not in long})
    data = short.to_dict()
    data.setdefault("custom", {}).update(long)
    return data


def file_stamp(path: Pathlike) -> list[int] | None:
    """``[size, mtime_ns]`` of a file (``None`` for anything else): a completion marker's way
    to notice that a source file changed.

    Example::

        >>> params = {"source": "rows.jsonl", "source_stat": file_stamp("rows.jsonl")}
    """
    path = Path(path)
    if not path.is_file():
        return None
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def describe_prepared(cuts: CutSet | Mapping[str, CutSet]) -> str:
    """How many cuts a recipe gave, where they are, and how many items failed: one line, or
    one line per part for a recipe that returns its parts (``{"train": cuts, "valid": cuts}``).

    Turns whose audio did not come from the corpus are counted by ``custom["audio_source"]``
    (``missing``: text only; ``synthesized: <tts>``).

    Example::

        >>> describe_prepared(prepare_sample("data/sample"))
        'Prepared 27 cuts in data/sample/llava_instruct_cuts_train.jsonl.gz (0 failed)'
        >>> print(describe_prepared(prepare_deepdialogue("dd", "out", valid_ratio=0.1)))
        train: Prepared 90 cuts in out/deepdialogue_cuts_train.jsonl.gz (0 failed)
        valid: Prepared 10 cuts in out/deepdialogue_cuts_valid.jsonl.gz (0 failed)
    """
    if isinstance(cuts, Mapping):
        return "\n".join(
            f"{part}: {describe_prepared(part_cuts)}" for part, part_cuts in cuts.items()
        )
    num_cuts = 0
    sources: Counter = Counter()
    for cut in cuts:
        num_cuts += 1
        source = (cut.custom or {}).get(fields.AUDIO_SOURCE)
        if source is not None:
            sources[str(source)] += 1
    turns = "".join(f"; {n} turns {source}" for source, n in sorted(sources.items()))
    path = getattr(cuts.data, "path", None)
    files = RecipeFiles.of_cuts(path) if path is not None else None
    if files is None:
        return f"Prepared {num_cuts} cuts (in memory){turns}"
    if not files.failed.is_file():
        return f"Prepared {num_cuts} cuts in {files.cuts}{turns}"
    num_failed = len(read_failures(files.failed))
    where = f", see {files.failed}" if num_failed else ""
    return f"Prepared {num_cuts} cuts in {files.cuts} ({num_failed} failed{where}){turns}"


def turn_recording(
    source: Pathlike | bytes,
    recording_id: str,
    *,
    name: str | None = None,
    sampling_rate: int = TURN_SAMPLING_RATE,
) -> Recording:
    """A dialogue turn's audio (a file, header read only, or bytes) as a recording resampled
    lazily to ``sampling_rate`` (channel 0 is what a turn cut uses).

    :param name: how errors name the audio (default: the file name).
    :raises ItemError: ``unreadable_audio: <name>: <reason>`` (libsndfile's words when it has
        some; ``no samples`` for an empty file).

    Example::

        >>> turn_recording("segments/001_LLM1_happy.wav", "dialogues_x/music_1_1-t0").sampling_rate
        16000
    """
    if name is None:
        name = "<bytes>" if isinstance(source, bytes) else Path(source).name
    try:
        if isinstance(source, bytes):
            recording = Recording.from_bytes(source, recording_id)
        else:
            recording = Recording.from_file(source, recording_id=recording_id)
    except Exception as e:  # noqa: BLE001 - soundfile / audioread errors differ by backend
        raise ItemError(f"unreadable_audio: {name}: {_audio_error(source, e)}") from None
    if recording.num_samples <= 0 or recording.duration <= 0:
        raise ItemError(f"unreadable_audio: {name}: no samples")
    if recording.sampling_rate != sampling_rate:
        recording = recording.resample(sampling_rate)
    return recording


def turn_cut(
    cut_id: str,
    *,
    text: str,
    language: str,
    role: str,
    custom: Mapping[str, Any],
    recording: Recording | None,
) -> MonoCut:
    """One dialogue turn as a cut: the recording (channel 0) with one supervision holding
    ``text``, ``language`` and ``speaker`` = ``role``; ``custom`` plus ``custom["role"]`` (kept
    there too: synthesis overwrites the supervision's speaker with its voice). Without a
    recording: a text-only cut (duration 0, ``custom["audio_source"] == "missing"``).

    Example::

        >>> cut = turn_cut("c1-t0", text="Hi.", language="en", role="user",
        ...                custom={"conversation_id": "c1", "turn": 0}, recording=None)
        >>> cut.custom["role"], cut.custom["audio_source"], cut.duration
        ('user', 'missing', 0.0)
    """
    custom = {**custom, fields.ROLE: role}
    if recording is None:
        custom.setdefault(fields.AUDIO_SOURCE, MISSING_AUDIO)
    duration = recording.duration if recording is not None else 0.0
    supervision = SupervisionSegment(
        id=cut_id,
        recording_id=recording.id if recording is not None else cut_id,
        start=0.0,
        duration=duration,
        channel=0,
        text=text,
        language=language,
        speaker=role,
    )
    return MonoCut(
        id=cut_id,
        start=0.0,
        duration=duration,
        channel=0,
        recording=recording,
        supervisions=[supervision],
        custom=custom,
    )


def _audio_error(source: Pathlike | bytes, error: Exception) -> str:
    """A short reason for audio Lhotse cannot open (libsndfile's own words when it has some)."""
    import io

    import soundfile

    try:
        soundfile.info(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    except Exception as e:  # noqa: BLE001 - libsndfile: "Error opening '<path>': <reason>"
        return str(e).rsplit(": ", 1)[-1][:200]
    return type(error).__name__


def check_cut_text(
    cut: Cut,
    max_prompt_chars: int | None = text.MAX_PROMPT_CHARS,
    max_answer_chars: int | None = text.MAX_ANSWER_CHARS,
) -> str | None:
    """Why ``cut``'s texts cannot make a prompt (``"<code>: <detail>"``), or ``None``.

    Checks the supervision text (speakable in the cut's language, at most ``max_prompt_chars``),
    each translation in ``custom[fields.TRANSLATIONS]`` the same way in its language, and the
    answer in ``custom[fields.ANSWER]`` (no control characters, at most ``max_answer_chars``).

    Example::

        >>> check_cut_text(make_prompt_cut("a-t0", "\u200b", "en", {}))
        'no_speakable_text: no letter or digit in 1 characters'
    """
    for sup in cut.supervisions:
        reason = _prompt_reason(sup.text or "", sup.language, max_prompt_chars)
        if reason is not None:
            return reason
    custom = cut.custom or {}
    translations = custom.get(fields.TRANSLATIONS)
    for language, translation in (translations or {}).items():
        reason = _prompt_reason(str(translation), str(language), max_prompt_chars)
        if reason is not None:
            code, detail = reason.split(": ", 1)
            return f"{code}: translation {str(language)[:20]!r}: {detail}"
    answer = custom.get(fields.ANSWER)
    if isinstance(answer, str):
        reason = text.control_characters_reason(answer)
        if reason is not None:
            code, detail = reason.split(": ", 1)
            return f"{code}: answer has {detail}"
        return text.length_reason(answer, max_answer_chars, "answer_too_long")
    return None


def _prompt_reason(prompt: str, language: str | None, limit: int | None) -> str | None:
    reason = text.length_reason(prompt, limit, "prompt_too_long")
    return reason if reason is not None else text.unspeakable_reason(prompt, language)


def _checked(item: Item, max_prompt_chars: int | None, max_answer_chars: int | None) -> Item:
    """``item`` with each cut whose texts fail :func:`check_cut_text` made a failure."""

    def check(output: Output) -> Output:
        if isinstance(output, Failure):
            return output
        reason = check_cut_text(output, max_prompt_chars, max_answer_chars)
        return output if reason is None else Failure(output.id, STAGE, reason)

    if isinstance(item, (Cut, Failure)):
        return check(item)
    return [check(output) for output in item]


def _drain(
    items: Iterable[Item],
    write_cut: Callable[[Cut], None],
    write_failure: Callable[[Failure], None],
) -> PrepareCounts:
    counts = PrepareCounts()
    for item in items:
        for output in (item,) if isinstance(item, (Cut, Failure)) else item:
            if isinstance(output, Failure):
                write_failure(output)
                counts.failed[output.reason.split(":")[0]] += 1
            else:
                write_cut(output)
                counts.cuts += 1
    return counts


def _drawn_first(items: Iterable[Item]) -> Iterator[Item]:
    """``items`` with the first one already drawn (a source that cannot be read raises here)."""
    iterator = iter(items)
    for first in iterator:
        return chain([first], iterator)
    return iter(())


def _as_json(params: Mapping[str, Any]) -> Any:
    """``params`` as they read back from a marker (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(params, sort_keys=True, default=str))


def first_of_each_conversation(
    rows: Iterable[tuple[str, Any]], conversation_id: Callable[[Any, str], str], stage: str
) -> Iterator[tuple[str, str, Any] | Failure]:
    """``(conversation id, fallback id, row)`` of each source row, or a :class:`Failure` for a
    row that is an :class:`ItemError` (unreadable), whose id is unusable (``conversation_id``
    raises), or whose id was seen before (``duplicate_id``: the first row with an id wins).

    Holds the ids seen (a set of strings) in memory, nothing else.

    Example::

        >>> rows = [("row0", {"id": "a"}), ("row1", {"id": "a"})]
        >>> [type(x).__name__ for x in first_of_each_conversation(rows, get_id, "prepare")]
        ['tuple', 'Failure']
    """
    seen_ids: set[str] = set()
    for fallback_id, row in rows:
        if isinstance(row, ItemError):
            yield Failure.of(fallback_id, stage, row)
            continue
        try:
            conv_id = conversation_id(row, fallback_id)
        except ItemError as e:
            yield Failure.of(fallback_id, stage, e)
            continue
        if conv_id in seen_ids:
            reason = f"duplicate_id: conversation id {conv_id[:200]!r} was seen before"
            yield Failure(conv_id, stage, reason)
            continue
        seen_ids.add(conv_id)
        yield conv_id, fallback_id, row
