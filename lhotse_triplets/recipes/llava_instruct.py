"""LLaVA-style visual instruction data: conversations about one image.

About the corpus: LLaVA's visual instruction tuning data (Liu et al., "Visual Instruction
Tuning", 2023) and the collections built on its format, such as LLaVA-OneVision-1.5-Instruct-Data
(``mvp-lab/LLaVA-OneVision-1.5-Instruct-Data`` on the Hugging Face hub, one config per source
corpus, e.g. ``CLEVR``), hold conversations about an image: user turns (the first one usually
carries an ``<image>`` placeholder) alternate with assistant replies. Each row has an ``id``, a
``conversations`` list (``{"from": "human"|"gpt", "value"}`` in LLaVA's own files,
``{"role": "user"|"assistant", "content"}`` in chat-style dumps), often a ``data_source`` and the
image: embedded (``image``/``images`` columns of the hub datasets) or a path relative to an image
folder (LLaVA's JSON). Licences differ per source corpus (the CLEVR images, for instance, are
CC BY 4.0): check the dataset card of the config you use.

This recipe turns every user turn that has an assistant reply into one text-only *prompt cut*
(id ``{conversation_id}-t{turn}``): the user text without placeholders is the supervision text,
the reply is kept verbatim in ``custom[fields.ANSWER]``, and the image is attached with
``attach_image``. Sources it reads (one row-processing function, :func:`llava_row_to_cuts`,
serves them all):

- a Hugging Face hub dataset id (streamed, nothing is downloaded beforehand; embedded images are
  written to ``output_dir/images/<id>.<ext>`` with their original encoding);
- a local JSONL dump (``*.jsonl``/``*.jsonl.gz``), one conversation per line, with images looked
  up in ``image_dir`` (the row's ``image`` field, else ``<id>.{png,jpg,jpeg,webp}``); a bad line is
  recorded and skipped;
- local ``*.parquet``/``*.arrow``/``*.json`` files, a folder of them, or a dataset saved with
  ``Dataset.save_to_disk``, read through HF ``datasets``.

A user turn may carry ``"translations": {language: text}``; they are kept in
``custom[fields.TRANSLATIONS]``. Items that cannot be used (invalid JSON, an empty user turn, a
turn with nothing besides placeholders, no assistant reply, a missing image) are written to
``llava_instruct_failed_<split>.jsonl`` with the reason, and the run goes on.
"""

import gzip
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import Any

from lhotse import CutSet, MonoCut, SupervisionSegment
from lhotse.image import Image
from lhotse.utils import Pathlike
from tqdm.auto import tqdm

from lhotse_triplets import fields
from lhotse_triplets.errors import Failure, ItemError
from lhotse_triplets.images import encode_image, image_extension, image_manifest

logger = logging.getLogger(__name__)

STAGE = "prepare"
#: Media placeholders removed from user turns (with the spaces and the one newline around them).
PLACEHOLDER_PATTERN = re.compile(r"[ \t]*(<image>|<video>)[ \t]*(?:\r?\n)?")
#: Extensions tried for ``image_dir/<id>.<ext>`` when a row names no image file.
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp")
#: Source role names -> ``user`` / ``assistant`` / ``system``.
ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
}
_DATASETS_SUFFIXES = {".parquet": "parquet", ".arrow": "arrow", ".json": "json"}

Row = Mapping[str, Any]
Output = MonoCut | Failure


def prepare_llava_instruct(
    source: Pathlike,
    output_dir: Pathlike | None = None,
    *,
    image_dir: Pathlike | None = None,
    config: str | None = None,
    split: str = "train",
    limit: int | None = None,
    language: str = "en",
    require_images: bool | None = None,
    streaming: bool = True,
) -> CutSet:
    """Prompt cuts (one per user turn with a reply) from LLaVA-style instruction data.

    :param source: a hub dataset id, a JSONL dump, parquet/arrow/json files (or a folder of
        them), or a folder written by ``Dataset.save_to_disk``.
    :param output_dir: where to write ``llava_instruct_cuts_<split>.jsonl.gz``, the failure log
        ``llava_instruct_failed_<split>.jsonl`` and embedded images (``images/``). Without it the
        cuts are returned in memory (embedded images held in memory too).
    :param image_dir: folder the images of a JSONL dump (or path-valued image columns) live in.
    :param config: the hub dataset's config (e.g. ``"CLEVR"``); also the default ``data_source``.
    :param split: the split to read; also names the output files.
    :param limit: read only the first ``limit`` rows (in order).
    :param language: ISO 639-1 code of the source text (``supervision.language``).
    :param require_images: record an item as failed when its image cannot be found; by default
        ``True`` when ``image_dir`` is given. Without ``image_dir`` a JSONL dump is prepared text
        only.
    :param streaming: stream datasets read through HF ``datasets`` instead of caching them.
    :return: the prompt cuts (lazy when written to ``output_dir``).

    Example::

        >>> hub_id = "mvp-lab/LLaVA-OneVision-1.5-Instruct-Data"
        >>> cuts = prepare_llava_instruct(hub_id, "data/clevr", config="CLEVR", limit=1000)
        >>> cuts = prepare_llava_instruct("clevr.jsonl", "data/clevr", image_dir="clevr/images")
    """
    if require_images is None:
        require_images = image_dir is not None
    out_dir = Path(output_dir) if output_dir is not None else None
    cuts_path = failed_path = marker = None
    params = _run_params(source, image_dir, config, split, limit, language, require_images)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        cuts_path = out_dir / f"llava_instruct_cuts_{split}.jsonl.gz"
        failed_path = out_dir / f"llava_instruct_failed_{split}.jsonl"
        marker = out_dir / f".llava_instruct_{split}.completed"
        if cuts_path.is_file() and _read_marker(marker) == params:
            logger.info("%s is already prepared (%s exists); not redoing it.", cuts_path, marker)
            return CutSet.from_jsonl_lazy(cuts_path)
        marker.unlink(missing_ok=True)

    rows, total = open_llava_rows(source, config=config, split=split, streaming=streaming)
    if limit is not None:
        rows = islice(rows, limit)
        total = limit if total is None else min(total, limit)
    image_out = (out_dir / "images") if out_dir is not None else None

    kept: list[MonoCut] = []
    failed: Counter = Counter()
    num_cuts = 0
    seen_ids = set()
    with ExitStack() as stack:
        writer = failure_log = None
        if out_dir is not None:
            writer = stack.enter_context(CutSet.open_writer(cuts_path, overwrite=True))
            failure_log = stack.enter_context(open(failed_path, "w", encoding="utf-8"))
        for fallback_id, row in tqdm(
            rows, total=total, desc="Preparing LLaVA instruct", unit="row"
        ):
            if isinstance(row, ItemError):
                outputs: list[Output] = [Failure(fallback_id, STAGE, row.reason)]
            else:
                conversation_id = _conversation_id(row, fallback_id)
                if conversation_id in seen_ids:
                    outputs = [Failure(conversation_id, STAGE, "duplicate conversation id")]
                else:
                    seen_ids.add(conversation_id)
                    outputs = llava_row_to_cuts(
                        row,
                        fallback_id=fallback_id,
                        language=language,
                        image_dir=image_dir,
                        image_output_dir=image_out,
                        require_images=require_images,
                        data_source=config,
                    )
            for item in outputs:
                if isinstance(item, Failure):
                    logger.warning("Skipping %s: %s", item.cut_id, item.reason)
                    failed[item.reason.split(":")[0]] += 1
                    if failure_log is not None:
                        print(json.dumps(item.to_dict(), ensure_ascii=False), file=failure_log)
                else:
                    num_cuts += 1
                    if writer is not None:
                        writer.write(item)
                    else:
                        kept.append(item)
    logger.info(
        "Prepared %d prompt cuts; %d items failed%s",
        num_cuts,
        sum(failed.values()),
        "".join(f"\n  {n} x {reason}" for reason, n in failed.most_common()),
    )
    if out_dir is None:
        return CutSet.from_cuts(kept)
    marker.write_text(json.dumps(params, sort_keys=True))
    return CutSet.from_jsonl_lazy(cuts_path)


def llava_row_to_cuts(
    row: Row,
    *,
    fallback_id: str,
    language: str = "en",
    image_dir: Pathlike | None = None,
    image_output_dir: Pathlike | None = None,
    require_images: bool = False,
    data_source: str | None = None,
) -> list[Output]:
    """The prompt cuts of one conversation row, and a :class:`Failure` for each unusable item.

    :param row: ``{"id", "conversations", "data_source"?, "image"?|"images"?}``.
    :param fallback_id: conversation id when the row has none (e.g. ``line-7``).
    :param image_dir: folder in which path-valued images (or ``<id>.<ext>``) are looked up.
    :param image_output_dir: where embedded image bytes are written; in memory when ``None``.
    :param require_images: a conversation without a usable image fails.
    :param data_source: ``custom[fields.DATA_SOURCE]`` when the row has no ``data_source``.

    Example::

        >>> row = {"id": "1", "conversations": [
        ...     {"from": "human", "value": "<image>\\nWhat color is the cube?"},
        ...     {"from": "gpt", "value": "Red."}]}
        >>> [cut.id for cut in llava_row_to_cuts(row, fallback_id="row-0")]
        ['1-t0']
    """
    conversation_id = _conversation_id(row, fallback_id)
    try:
        turns = parse_turns(row.get("conversations"))
    except ItemError as e:
        return [Failure(conversation_id, STAGE, e.reason)]

    source_name = row.get("data_source") or data_source
    system_prompt = "\n".join(t["text"] for t in turns if t["role"] == "system") or None
    turns = [t for t in turns if t["role"] != "system"]
    outputs: list[tuple[str, str, dict[str, Any]] | Failure] = []
    history: list[dict[str, str]] = []
    user_turn = 0
    for i, turn in enumerate(turns):
        if turn["role"] == "assistant":
            history.append({"role": "assistant", "text": turn["text"]})
            continue
        cut_id = f"{conversation_id}-t{user_turn}"
        user_text, placeholders = split_placeholders(turn["text"])
        reply = turns[i + 1] if i + 1 < len(turns) else None
        try:
            if not turn["text"].strip():
                raise ItemError("empty user turn")
            if not user_text:
                raise ItemError("user turn has no text besides placeholders")
            if reply is None or reply["role"] != "assistant":
                raise ItemError("user turn has no assistant reply")
            if not reply["text"].strip():
                raise ItemError("empty assistant reply")
            custom: dict[str, Any] = {
                fields.CONVERSATION_ID: conversation_id,
                fields.TURN: user_turn,
                fields.USER_TEXT: user_text,
                fields.PLACEHOLDERS: placeholders,
                fields.ANSWER: reply["text"],
                fields.DATA_SOURCE: source_name,
                fields.HISTORY: [dict(h) for h in history],
            }
            if turn["translations"]:
                custom[fields.TRANSLATIONS] = turn["translations"]
            if system_prompt is not None:
                custom[fields.SYSTEM_PROMPT] = system_prompt
            outputs.append((cut_id, tidy_text(user_text), custom))
        except ItemError as e:
            outputs.append(Failure(cut_id, STAGE, e.reason))
        history.append({"role": "user", "text": user_text})
        user_turn += 1

    good = [o for o in outputs if not isinstance(o, Failure)]
    if not good:
        return outputs  # nothing to attach an image to: don't write one
    try:
        image = _image_for_row(row, conversation_id, image_dir, image_output_dir, require_images)
    except ItemError as e:
        return [
            Failure(o[0], STAGE, e.reason) if not isinstance(o, Failure) else o for o in outputs
        ]
    return [
        o if isinstance(o, Failure) else make_prompt_cut(o[0], o[1], language, o[2], image)
        for o in outputs
    ]


def make_prompt_cut(
    cut_id: str,
    text: str,
    language: str,
    custom: dict[str, Any],
    image: Image | None = None,
) -> MonoCut:
    """A text-only prompt cut: no recording, zero duration, one supervision carrying ``text``.

    Example::

        >>> cut = make_prompt_cut("000000-t0", "How many cubes are there?", "en", {})
    """
    custom = dict(custom)
    if image is not None:
        custom[fields.IMAGE] = image
    return MonoCut(
        id=cut_id,
        start=0,
        duration=0.0,
        channel=0,
        recording=None,
        supervisions=[
            SupervisionSegment(
                id=cut_id,
                recording_id=cut_id,
                start=0.0,
                duration=0.0,
                text=text,
                language=language,
            )
        ],
        custom=custom,
    )


def split_placeholders(text: str) -> tuple[str, list[str]]:
    """``text`` without media placeholders (``<image>``, and the newline after it), and the
    placeholders removed, in order. Leading/trailing whitespace is stripped.

    Example::

        >>> split_placeholders("<image>\\nHow many cubes are there?")
        ('How many cubes are there?', ['<image>'])
    """
    pieces = PLACEHOLDER_PATTERN.split(text)
    out = pieces[0]
    for piece in pieces[2::2]:
        if out and piece and not out[-1].isspace() and not piece[0].isspace():
            out += " "
        out += piece
    return out.strip(), pieces[1::2]


def tidy_text(text: str) -> str:
    """``text`` without placeholders, every run of whitespace turned into one space.

    Example::

        >>> tidy_text("<image>\\nHow many\\n cubes?")
        'How many cubes?'
    """
    return " ".join(split_placeholders(text)[0].split())


def parse_turns(conversations: Any) -> list[dict[str, Any]]:
    """Normalise a conversation to ``[{"role", "text", "translations"}]``.

    Accepts LLaVA's ``{"from", "value"}`` and chat-style ``{"role", "content"}`` turns; content
    given as a list of parts (``{"type": "text"|"image", ...}``) becomes text with ``<image>``.

    :raises ItemError: when the conversation is missing or malformed.
    """
    if (
        conversations is None
        or isinstance(conversations, (str, bytes))
        or not isinstance(conversations, Iterable)
    ):
        raise ItemError(f"no conversations list (got {type(conversations).__name__})")
    turns = []
    for i, turn in enumerate(conversations):
        if not isinstance(turn, Mapping):
            raise ItemError(f"turn {i} is not an object (got {type(turn).__name__})")
        role_name = turn.get("role") or turn.get("from")
        role = ROLES.get(str(role_name).lower()) if role_name is not None else None
        if role is None:
            raise ItemError(f"turn {i} has unknown role {role_name!r} (known: {sorted(ROLES)})")
        content = turn.get("content")
        if content is None:
            content = turn.get("value")
        turns.append(
            {
                "role": role,
                "text": _content_text(content, i),
                "translations": _translations(turn.get("translations"), i),
            }
        )
    if not turns:
        raise ItemError("empty conversation")
    return turns


def open_llava_rows(
    source: Pathlike,
    *,
    config: str | None = None,
    split: str = "train",
    streaming: bool = True,
) -> tuple[Iterator[tuple[str, Row | ItemError]], int | None]:
    """Rows of ``source`` in order as ``(fallback_id, row or ItemError)``, and their count if known.

    Example::

        >>> rows, total = open_llava_rows("clevr.jsonl")
        >>> fallback_id, row = next(rows)
    """
    path = Path(source)
    name = path.name.lower()
    if path.is_file() and (name.endswith((".jsonl", ".jsonl.gz"))):
        return _iter_jsonl(path), None
    if path.is_file() and path.suffix.lower() not in _DATASETS_SUFFIXES:
        raise ValueError(
            f"Unsupported source file {path}: expected *.jsonl, *.jsonl.gz, "
            f"{', '.join('*' + s for s in _DATASETS_SUFFIXES)}, a folder, or a hub dataset id."
        )
    return _iter_datasets(source, config=config, split=split, streaming=streaming)


# --- helpers ------------------------------------------------------------------------------------


def _iter_jsonl(path: Path) -> Iterator[tuple[str, Row | ItemError]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            name = f"line-{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield name, ItemError(f"invalid JSON on line {number}: {e}")
                continue
            if not isinstance(row, dict):
                yield name, ItemError(f"line {number} is not a JSON object")
                continue
            yield name, row


def _iter_datasets(
    source: Pathlike, *, config: str | None, split: str, streaming: bool
) -> tuple[Iterator[tuple[str, Row]], int | None]:
    try:
        import datasets
    except ImportError as e:
        raise ImportError(
            "Reading hub datasets or parquet/arrow files needs HF datasets: pip install datasets"
        ) from e

    path = Path(source)
    if path.is_dir():
        if any((path / f).is_file() for f in ("dataset_dict.json", "state.json")):
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split]
        else:
            found = [
                (builder, files)
                for suffix, builder in _DATASETS_SUFFIXES.items()
                if (files := sorted(str(p) for p in path.rglob(f"*{suffix}")))
            ]
            if not found:
                raise ValueError(
                    f"No dataset in {path}: expected a folder written by save_to_disk or one "
                    f"with {', '.join('*' + s for s in _DATASETS_SUFFIXES)} files."
                )
            builder, files = found[0]
            ds = datasets.load_dataset(
                builder, data_files={split: files}, split=split, streaming=streaming
            )
    elif path.is_file():
        builder = _DATASETS_SUFFIXES[path.suffix.lower()]
        ds = datasets.load_dataset(
            builder, data_files={split: str(path)}, split=split, streaming=streaming
        )
    else:
        if path.suffix.lower() in _DATASETS_SUFFIXES or str(source).startswith((".", "/")):
            raise FileNotFoundError(f"No such file or folder: {source}")
        ds = datasets.load_dataset(str(source), config, split=split, streaming=streaming)

    total = None
    if isinstance(ds, datasets.Dataset):
        total = len(ds)
        ds = ds.to_iterable_dataset()
    if ds.features is not None:
        ds = ds.decode(False)  # keep images as their original encoded bytes
    return ((f"row-{i}", row) for i, row in enumerate(ds)), total


def _conversation_id(row: Row, fallback_id: str) -> str:
    value = row.get("id")
    return fallback_id if value is None or str(value) == "" else str(value)


def _content_text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(part.get("text") or "")
            elif isinstance(part, Mapping) and part.get("type") in ("image", "image_url"):
                parts.append("<image>")
            else:
                raise ItemError(f"turn {index} has an unsupported content part: {part!r}"[:200])
        return "\n".join(parts)
    raise ItemError(f"turn {index} content is not text (got {type(content).__name__})")


def _translations(value: Any, index: int) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ItemError(
            f"turn {index} translations must be a {{language: text}} mapping "
            f"(got {type(value).__name__})"
        )
    out = {
        str(lang): tidy_text(text)
        for lang, text in value.items()
        if isinstance(text, str) and text.strip()
    }
    return out or None


def _image_for_row(
    row: Row,
    conversation_id: str,
    image_dir: Pathlike | None,
    image_output_dir: Pathlike | None,
    require: bool,
) -> Image | None:
    """The image manifest of ``row`` (embedded bytes are written to ``image_output_dir``)."""
    ref = row.get("image")
    if ref is None and row.get("images") is not None:
        images = [x for x in row["images"] if x is not None]
        if len(images) > 1:
            raise ItemError(
                f"conversation has {len(images)} images; one image per conversation is supported"
            )
        ref = images[0] if images else None
    if isinstance(ref, Mapping):  # datasets' undecoded Image: {"bytes", "path"}
        ref = ref.get("bytes") or ref.get("path")

    data: bytes | None = None
    path: Path | None = None
    if isinstance(ref, (bytes, bytearray)):
        data = bytes(ref)
    elif ref is not None and hasattr(ref, "save"):  # a decoded PIL image
        data = encode_image(ref)
    elif isinstance(ref, str) and ref:
        if image_dir is not None:
            path = Path(image_dir) / ref
        elif Path(ref).is_absolute():
            path = Path(ref)
        elif require:
            raise ItemError(f"missing image: no image_dir given to resolve {ref!r}")
        else:
            return None
        if not path.is_file():
            return _missing(f"missing image: {path} does not exist", require)
    elif image_dir is not None:
        stem = Path(image_dir) / _safe_name(conversation_id)
        candidates = [stem.with_name(f"{stem.name}.{ext}") for ext in IMAGE_EXTENSIONS]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            tried = f"{stem}.{{{','.join(IMAGE_EXTENSIONS)}}}"
            return _missing(f"missing image: tried {tried}", require)
    else:
        return _missing("missing image: the row has none", require)

    if data is not None:
        ext = image_extension(data)
        if image_output_dir is None:
            return image_manifest(data)
        path = Path(image_output_dir) / f"{_safe_name(conversation_id)}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    try:
        return image_manifest(path.absolute())
    except Exception as e:
        raise ItemError(f"unreadable image: {path} ({type(e).__name__}: {e})") from e


def _missing(reason: str, require: bool) -> None:
    if require:
        raise ItemError(reason)
    logger.debug(reason)


def _safe_name(conversation_id: str) -> str:
    return re.sub(r"[^\w.\-]", "_", conversation_id)


def _run_params(
    source: Pathlike,
    image_dir: Pathlike | None,
    config: str | None,
    split: str,
    limit: int | None,
    language: str,
    require_images: bool,
) -> dict[str, Any]:
    """What a finished run depends on: a rerun with the same values is not redone."""
    path = Path(source)
    stat = path.stat() if path.is_file() else None
    return {
        "source": str(source),
        "source_stat": [stat.st_size, stat.st_mtime_ns] if stat else None,
        "image_dir": str(image_dir) if image_dir is not None else None,
        "config": config,
        "split": split,
        "limit": limit,
        "language": language,
        "require_images": require_images,
    }


def _read_marker(marker: Path) -> dict[str, Any] | None:
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
