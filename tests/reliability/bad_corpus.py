"""A generated bad-input corpus in LLaVA's JSONL shape, for the reliability tests.

:func:`write_bad_corpus` writes, under one root folder::

    root/corpus/rows.jsonl        LLaVA rows: {"id", "image", "conversations": [human, gpt, ...]}
    root/corpus/images/           the image_dir (good images, bad files, symlinks pointing out)
    root/outside/secret.png       a valid PNG carrying a secret marker, outside image_dir

Good rows are mixed with more than 40 kinds of bad rows and bad bytes (hostile ids, image paths
leaving image_dir, broken images, broken lines, unspeakable or oversized text, placeholder and
image counts that disagree, malformed conversations). Each bad row comes with the reason code its
item must fail with (by cut id, as written to the failed log); every good row with the cut ids it
must give. Some hostile rows must be *kept* (ids with ``/``, ``..`` or 300 characters are valid
ids: only the names of files made from them change), so they count among the kept ids.

Example::

    corpus = write_bad_corpus(tmp_path)
    prepare_llava_instruct(corpus.jsonl, out, image_dir=corpus.image_dir)
    assert failed_codes(out) == corpus.expected_failures
"""

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import PIL.Image
import PIL.PngImagePlugin

#: Bytes that the file outside image_dir holds; no output file may ever contain them.
SECRET = b"SECRET-MARKER-8d1f0c2e-never-copy-me"
#: Keyword arguments of ``prepare_llava_instruct`` the expectations assume (besides image_dir).
PREPARE_OPTIONS = {"language": "en"}

BOM = b"\xef\xbb\xbf"
LONG_ID = "x" * 300


def png(color=(200, 30, 30), size=(16, 12), text: bytes | None = None) -> bytes:
    """A small PNG (with a ``tEXt`` chunk holding ``text`` when given)."""
    info = None
    if text is not None:
        info = PIL.PngImagePlugin.PngInfo()
        info.add_text("marker", text.decode())
    buf = io.BytesIO()
    PIL.Image.new("RGB", size, color).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def jpeg(color=(30, 30, 200), size=(16, 12)) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("RGB", size, color).save(buf, format="JPEG")
    return buf.getvalue()


def turns(*texts: str) -> list[dict[str, str]]:
    """LLaVA turns alternating ``human`` and ``gpt``."""
    roles = ("human", "gpt")
    return [{"from": roles[i % 2], "value": t} for i, t in enumerate(texts)]


def row(conversation_id: Any, question: str = "<image>\nWhat colour is the cube?", **extra):
    """A LLaVA row about ``good.png`` (override ``image``/``conversations`` with ``extra``)."""
    data = {"id": conversation_id, "image": "good.png"}
    data["conversations"] = turns(question, "It is red.")
    data.update(extra)
    return data


@dataclass
class BadCorpus:
    """What :func:`write_bad_corpus` wrote and what preparing it must give."""

    root: Path
    jsonl: Path
    image_dir: Path
    outside: Path
    #: cut id (or ``line-N`` / conversation id) -> reason code it must fail with
    expected_failures: dict[str, str] = field(default_factory=dict)
    #: cut ids that must be kept
    expected_kept: set[str] = field(default_factory=set)
    #: kind name -> ``"kept"`` or the reason code (one entry per kind of bad input)
    kinds: dict[str, str] = field(default_factory=dict)


class _Writer:
    """Collects JSONL lines and the expectations of each, numbering lines as they come."""

    def __init__(self, corpus: BadCorpus) -> None:
        self.corpus = corpus
        self.lines: list[bytes] = []

    @property
    def next_line(self) -> int:
        return len(self.lines) + 1

    def raw(self, data: bytes) -> int:
        self.lines.append(data)
        return len(self.lines)

    def good(self, data: dict, *cut_ids: str, kind: str | None = None) -> None:
        self.raw(json.dumps(data, ensure_ascii=False).encode("utf-8"))
        cut_ids = cut_ids or (f"{data['id']}-t0",)
        self.corpus.expected_kept.update(cut_ids)
        if kind is not None:
            self.corpus.kinds[kind] = "kept"

    def bad(self, kind: str, code: str, data: dict | bytes, cut_id: str | None = None) -> None:
        """A bad line: its item fails with ``code`` (``cut_id`` default: ``<id>-t0``)."""
        if isinstance(data, bytes):
            number = self.raw(data)
            cut_id = cut_id or f"line-{number}"
        else:
            self.raw(json.dumps(data, ensure_ascii=False).encode("utf-8"))
            cut_id = cut_id or f"{data['id']}-t0"
        assert cut_id not in self.corpus.expected_failures, cut_id
        self.corpus.expected_failures[cut_id] = code
        assert kind not in self.corpus.kinds, kind
        self.corpus.kinds[kind] = code


def _images(image_dir: Path, outside: Path) -> None:
    image_dir.mkdir(parents=True)
    outside.mkdir(parents=True)
    (outside / "secret.png").write_bytes(png((1, 2, 3), text=SECRET))
    (image_dir / "good.png").write_bytes(png())
    (image_dir / "good.jpg").write_bytes(jpeg())
    (image_dir / "sub").mkdir()
    (image_dir / "sub" / "nested.png").write_bytes(png((0, 200, 0)))
    (image_dir / "by-id-row.png").write_bytes(png((9, 9, 9)))  # found by the row's id
    full = png((50, 60, 70), size=(64, 48))
    (image_dir / "truncated.png").write_bytes(full[: len(full) // 2])
    (image_dir / "text.png").write_bytes(b"this is not an image at all\n")
    (image_dir / "empty.png").write_bytes(b"")
    (image_dir / "folder.png").mkdir()
    (image_dir / "link_out.png").symlink_to(outside / "secret.png")
    (image_dir / "linkdir").symlink_to(outside, target_is_directory=True)
    (image_dir / "by-id-link.png").symlink_to(outside / "secret.png")
    (image_dir / "loop_a.png").symlink_to(image_dir / "loop_b.png")
    (image_dir / "loop_b.png").symlink_to(image_dir / "loop_a.png")
    (image_dir / "link_in.png").symlink_to(image_dir / "good.png")  # a symlink that stays inside


def _good_rows(w: _Writer) -> None:
    """Good rows, including hostile ids that are valid (kept, only file names change)."""
    w.good(row("good-1"))
    w.good(row("good-2", image="good.jpg"))
    w.good(row("good-3", image="sub/nested.png"))
    w.good(row("good-4", image="link_in.png"), kind="symlink that stays inside image_dir")
    w.good(
        row(
            "good-multi",
            conversations=turns("<image>\nHow many cubes?", "Two.", "And spheres?", "One."),
        ),
        "good-multi-t0",
        "good-multi-t1",
    )
    translated = row("good-fr")
    translated["conversations"][0]["translations"] = {"fr": "De quelle couleur est le cube ?"}
    w.good(translated)
    w.good(row("a/b/c"), kind="id with /")
    w.good(row("../../x/ESCAPED"), kind="id with ../")
    w.good(row(".."), kind="id ..")
    w.good(row(LONG_ID), kind="id of 300 characters")
    w.good(row("id with spaces & (parens)"), kind="id with spaces and punctuation")
    w.good(row("ümlaut-идентификатор-標識"), kind="non-ASCII id")
    w.good(row(12345), "12345-t0", kind="integer id")
    w.good(row("-rf"), kind="id starting with -")
    w.good(row(".hidden"), kind="id starting with .")
    w.good(row("nul\u0000id"), kind="id with a NUL character")
    number = w.next_line
    w.good(row(""), f"line-{number}-t0", kind="empty id (line number used)")
    by_id = row("by-id-row")
    del by_id["image"]
    w.good(by_id, kind="image found by id")
    w.good(
        row(
            "good-chat",
            conversations=[
                {"role": "user", "content": "<image>\nWhich shape?"},
                {"role": "assistant", "content": "A cube."},
            ],
        ),
    )


def _bad_ids(w: _Writer) -> None:
    for kind, value in [
        ("id is a JSON object", {"x": 1}),
        ("id is a list", ["a", "b"]),
        ("id is a boolean", True),
        ("id is a float", 1.5),
    ]:
        w.bad(kind, "invalid_id", row(value), cut_id=f"line-{w.next_line}")
    w.bad("duplicate id", "duplicate_id", row("good-1"), cut_id="good-1")


def _bad_images(w: _Writer, outside: Path) -> None:
    cases = [
        ("image ../ outside image_dir", "outside_root", "../../outside/secret.png"),
        ("image absolute path outside", "outside_root", str(outside / "secret.png")),
        ("image symlink pointing outside", "outside_root", "link_out.png"),
        ("image under a symlinked folder", "outside_root", "linkdir/secret.png"),
        ("image sub/../../ escaping", "outside_root", "sub/../../../outside/secret.png"),
        ("image truncated PNG", "unreadable_image", "truncated.png"),
        ("image non-image bytes", "unreadable_image", "text.png"),
        ("image 0 bytes", "unreadable_image", "empty.png"),
        ("image is a directory", "missing_image", "folder.png"),
        ("image file missing", "missing_image", "nowhere.png"),
        ("image symlink loop", "missing_image", "loop_a.png"),
        ("image path with a NUL byte", "invalid_image", "good\u0000.png"),
        ("image name of 300 characters", "missing_image", "y" * 300 + ".png"),
    ]
    for i, (kind, code, image) in enumerate(cases):
        w.bad(kind, code, row(f"img-{i}", image=image))
    w.bad("image field is a number", "invalid_image", row("img-number", image=7))
    w.bad("two images", "too_many_images", row("img-two", image=["good.png", "good.jpg"]))
    by_id_link = row("by-id-link")
    del by_id_link["image"]
    w.bad("image found by id is a symlink out", "outside_root", by_id_link)
    escaping_id = row("../../outside/secret")
    del escaping_id["image"]
    w.bad("id names a path outside image_dir", "missing_image", escaping_id)
    w.bad(
        "three <image> with one image",
        "placeholder_mismatch",
        row("ph-three", "Compare <image>, <image> and <image>."),
    )
    w.bad(
        "<image> in two turns with one image",
        "placeholder_mismatch",
        row("ph-two", conversations=turns("<image>\nWhat?", "A cube.", "<image>\nAnd?", "Red.")),
        cut_id="ph-two-t0",
    )
    w.corpus.expected_failures["ph-two-t1"] = "placeholder_mismatch"


def _bad_lines(w: _Writer) -> None:
    good = json.dumps(row("utf8-row", "<image>\nWhat colour is the cube?"), ensure_ascii=False)
    w.bad("invalid UTF-8 byte", "invalid_utf8", good.encode().replace(b"colour", b"col\xffour"))
    w.bad("truncated UTF-8 sequence", "invalid_utf8", good.encode()[:-2] + b"\xe2\x82")
    w.bad(
        "latin-1 encoded line", "invalid_utf8", good.replace("colour", "colöur").encode("latin-1")
    )
    w.bad("broken JSON", "invalid_json", b'{"id": "broken", "conversations": [')
    w.bad("JSON list line", "not_an_object", b'["id", "x"]')
    w.bad("JSON string line", "not_an_object", b'"just a string"')
    w.bad("JSON number line", "not_an_object", b"42")
    w.bad("NUL bytes line", "invalid_json", b"\x00\x00\x00")


def _bad_texts(w: _Writer) -> None:
    cases = [
        ("zero-width-only turn", "no_speakable_text", "<image>\n\u200b\u200c\u200d"),
        ("emoji-only turn", "no_speakable_text", "<image>\n\U0001f600\U0001f389\U0001f44d"),
        ("punctuation-only turn", "no_speakable_text", "<image>\n?!... --"),
        ("control characters", "control_characters", "<image>\nWhat\x07 colour\x1b[31m?"),
        ("NUL character in turn", "control_characters", "<image>\nWhat\u0000 colour?"),
        ("wrong script for en (Cyrillic)", "wrong_script", "<image>\nКакого цвета куб?"),
        ("wrong script for en (Japanese)", "wrong_script", "<image>\n立方体は何色ですか？"),
        ("100,000-character turn", "prompt_too_long", "<image>\n" + "Why is it red? " * 6667),
        ("empty turn", "empty_turn", "   "),
        ("placeholder-only turn", "placeholders_only", "<image>\n"),
    ]
    for i, (kind, code, question) in enumerate(cases):
        w.bad(kind, code, row(f"text-{i}", question))
    huge = row("answer-10mb")
    huge["conversations"][1]["value"] = "Red. " * (2 * 1024 * 1024)
    w.bad("10 MB answer", "answer_too_long", huge)
    ctrl = row("answer-ctrl")
    ctrl["conversations"][1]["value"] = "Red.\x08\x08\x08Blue."
    w.bad("control characters in the answer", "control_characters", ctrl)
    wrong = row("translation-ja")
    wrong["conversations"][0]["translations"] = {"ja": "What colour is the cube?"}
    w.bad("wrong script in a translation", "wrong_script", wrong)
    emoji = row("translation-emoji")
    emoji["conversations"][0]["translations"] = {"fr": "\U0001f600"}
    w.bad("unspeakable translation", "no_speakable_text", emoji)


def _bad_conversations(w: _Writer) -> None:
    w.bad("missing reply", "no_reply", row("conv-noreply", conversations=turns("<image>\nQ?")))
    w.bad(
        "empty reply",
        "empty_reply",
        row("conv-emptyreply", conversations=turns("<image>\nWhat?", "  ")),
    )
    w.bad(
        "two user turns in a row",
        "no_reply",
        row(
            "conv-twousers",
            conversations=[
                {"from": "human", "value": "<image>\nFirst?"},
                {"from": "human", "value": "Second?"},
                {"from": "gpt", "value": "Answer."},
            ],
        ),
    )
    w.corpus.expected_kept.add("conv-twousers-t1")
    for kind, code, conversations in [
        ("unknown role", "unknown_role", [{"from": "narrator", "value": "Once"}]),
        ("conversations is a string", "no_conversations", "human: hi"),
        ("conversations is an object", "no_conversations", {"from": "human"}),
        ("conversations missing", "no_conversations", None),
        ("conversations empty", "empty_conversation", []),
        ("turn is a string", "malformed_turn", ["hello", "hi"]),
        ("turn content is a number", "malformed_turn", [{"from": "human", "value": 5}]),
        (
            "unsupported content part",
            "malformed_turn",
            [{"role": "user", "content": [{"type": "audio", "url": "x"}]}],
        ),
    ]:
        data = row(f"conv-{len(w.lines)}", conversations=conversations)
        if conversations is None:
            del data["conversations"]
        w.bad(kind, code, data, cut_id=data["id"])
    bad_translations = row("conv-translations")
    bad_translations["conversations"][0]["translations"] = ["fr", "Bonjour"]
    w.bad(
        "translations not a mapping", "invalid_translations", bad_translations, "conv-translations"
    )


def write_bad_corpus(root: Path) -> BadCorpus:
    """Write the corpus under ``root`` (see the module doc); return it with its expectations."""
    root = Path(root)
    corpus = BadCorpus(
        root=root,
        jsonl=root / "corpus" / "rows.jsonl",
        image_dir=root / "corpus" / "images",
        outside=root / "outside",
    )
    _images(corpus.image_dir, corpus.outside)
    w = _Writer(corpus)
    bom_row = json.dumps(row("bom-row"), ensure_ascii=False).encode()
    w.raw(BOM + bom_row)
    corpus.expected_kept.add("bom-row-t0")
    corpus.kinds["UTF-8 BOM before the first row"] = "kept"
    _good_rows(w)
    _bad_ids(w)
    _bad_images(w, corpus.outside)
    _bad_lines(w)
    _bad_texts(w)
    _bad_conversations(w)
    w.raw(b"")  # blank lines are skipped, not failed
    w.good(row("good-last"))
    corpus.jsonl.write_bytes(b"\r\n".join(w.lines[:3]) + b"\r\n" + b"\n".join(w.lines[3:]) + b"\n")
    return corpus


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` (symlinks not followed) -> ``"dir"``, ``"link"`` or its size and
    mtime: a listing to compare before and after a run."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            stat = path.lstat()
            if path.is_symlink():
                out[str(path)] = f"link->{os.readlink(path)}"
            elif path.is_dir():
                out[str(path)] = "dir"
            else:
                out[str(path)] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return out
