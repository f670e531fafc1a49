"""The static gallery of the export report: sampled clips as self-contained HTML cards.

A :class:`GallerySampler` watches the cuts stream past once (the report's statistics pass) and
keeps, per language, ``n`` kept cuts and, per reject reason, ``n`` rejected ones: bottom-k
sampling on a seeded hash of the cut id, in one reservoir per voice and engine, so the choice is
the same whatever the order of the shards and spread over voices and engines; only the sampled
cut manifests are held. :func:`render_gallery` then turns them into cards: the image (a
downscaled copy inline as a ``data:`` URI, click to enlarge), the audio (16 kHz mono FLAC inline),
the spoken text, the source text, what the ASR heard with the word differences marked
(:func:`word_diff`), the answer, language / voice / engine, scores, kept or the reasons, and for
dialogue turns the conversation, turn and role. Nothing in the page points outside it.

Example::

    >>> sampler = GallerySampler(2)
    >>> stats = collect_stats(sampler.watch(cuts))      # one pass feeds both
    >>> html = render_gallery(sampler.gallery())
"""

import base64
import hashlib
import heapq
import html
import io
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.cuts import cut_language, cut_text, cut_voice, is_rejected, reject_reasons
from lhotse_triplets.dialogues import conversation_id, is_turn_cut, turn_number, turn_role
from lhotse_triplets.errors import Failure, log_failure
from lhotse_triplets.export.common import audio_samples, encode_audio
from lhotse_triplets.images import has_image, load_image
from lhotse_triplets.metrics import uses_cer, word_ops

logger = logging.getLogger(__name__)

#: Seed of the sample choice (the same cuts always give the same gallery).
SEED = 0
#: Longest side of the embedded images, in pixels (shown smaller; click to enlarge).
IMAGE_SIZE = 640
#: Audio of the cards: mono, this rate, this codec (small enough to attach the page to a review).
AUDIO_RATE = 16000
AUDIO_FORMAT = "flac"
#: Stage name of the failures recorded when a sampled clip's image or audio cannot be read.
STAGE = "report"
#: Engine shown for a cut without a ``tts_model``.
UNKNOWN = "-"


@dataclass
class Gallery:
    """The sampled cuts: language -> kept cuts, reject reason -> rejected cuts (in card order)."""

    kept: dict[str, list[Cut]] = field(default_factory=dict)
    rejected: dict[str, list[Cut]] = field(default_factory=dict)

    def __len__(self) -> int:
        """The number of distinct cuts shown (a cut rejected for two reasons is shown twice)."""
        return len({c.id for cuts in (*self.kept.values(), *self.rejected.values()) for c in cuts})

    def counts(self) -> dict[str, dict[str, int]]:
        """Cards per section: ``{"kept": {language: n}, "rejected": {reason: n}}``."""
        return {
            "kept": {k: len(v) for k, v in self.kept.items()},
            "rejected": {k: len(v) for k, v in self.rejected.items()},
        }


class GallerySampler:
    """Streaming sample of ``n`` kept cuts per language and ``n`` rejected cuts per reason.

    :param n: cuts per section (0: keep nothing).
    :param seed: seed of the hash that orders the cuts.

    Example::

        >>> sampler = GallerySampler(3)
        >>> for cut in cuts:
        ...     sampler.add(cut)
        >>> sampler.gallery().counts()
        {'kept': {'en': 3, 'fr': 3}, 'rejected': {'low_similarity': 2}}
    """

    def __init__(self, n: int, seed: int = SEED) -> None:
        self.n = n
        self.seed = seed
        #: (section kind, section) -> group -> max-heap of (-priority, cut id, cut), n smallest.
        self._heaps: dict[tuple[str, str], dict[tuple[str, ...], list]] = {}

    def add(self, cut: Cut) -> None:
        """Offer ``cut`` to the reservoirs of its language (kept) or of each reason (rejected)."""
        if self.n <= 0:
            return
        group = (cut_voice(cut), str((cut.custom or {}).get(fields.TTS_MODEL) or UNKNOWN))
        if not is_rejected(cut):
            self._offer(("kept", cut_language(cut)), group, cut)
            return
        for reason in reject_reasons(cut):
            self._offer(("rejected", reason), (cut_language(cut), *group), cut)

    @property
    def held(self) -> int:
        """How many cut manifests the sample holds now (at most ``n`` per section and group)."""
        return sum(len(h) for groups in self._heaps.values() for h in groups.values())

    def watch(self, cuts: Iterable[Cut]) -> Iterator[Cut]:
        """``cuts``, each offered to the sample as it passes (one pass serves two readers)."""
        for cut in cuts:
            self.add(cut)
            yield cut

    def gallery(self) -> Gallery:
        """The sample: per section, round robin over the voice/engine groups (sorted), each
        group's cuts in hash order, at most ``n``."""
        gallery = Gallery()
        for (kind, section), groups in sorted(self._heaps.items()):
            target = gallery.kept if kind == "kept" else gallery.rejected
            target[section] = _round_robin(
                [[c for _, _, c in sorted(groups[g], reverse=True)] for g in sorted(groups)],
                self.n,
            )
        return gallery

    def _offer(self, section: tuple[str, str], group: tuple[str, ...], cut: Cut) -> None:
        heap = self._heaps.setdefault(section, {}).setdefault(group, [])
        entry = (-self._priority(cut.id), cut.id, cut)
        if len(heap) < self.n:
            heapq.heappush(heap, entry)
        elif entry[:2] > heap[0][:2]:
            heapq.heapreplace(heap, entry)

    def _priority(self, cut_id: str) -> int:
        digest = hashlib.blake2b(f"{self.seed}\0{cut_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")


def _round_robin(lists: list[list[Cut]], n: int) -> list[Cut]:
    out: list[Cut] = []
    for i in range(max((len(x) for x in lists), default=0)):
        out += [x[i] for x in lists if i < len(x)]
    return out[:n]


# --- rendering ----------------------------------------------------------------------------------


def word_diff(reference: str, hypothesis: str, language: str | None = None) -> str:
    """HTML of ``hypothesis`` against ``reference``, word by word (character by character for
    languages written without spaces): words missing from the hypothesis in ``<del>``, words it
    added in ``<ins>``; words are compared after :func:`~lhotse_triplets.metrics.normalize_text`
    (case and punctuation do not count).

    Example::

        >>> word_diff("Is the cube red?", "is the cube bread", "en")
        'is the cube <del>red?</del> <ins>bread</ins>'
    """
    cer = uses_cer(language)
    out = []
    for op, ref, hyp in word_ops(reference, hypothesis, language):
        if op == "equal":
            out += [html.escape(t) for t in hyp]
            continue
        if ref:
            out.append(f"<del>{html.escape(_join(ref, cer))}</del>")
        if hyp:
            out.append(f"<ins>{html.escape(_join(hyp, cer))}</ins>")
    return _join(out, cer)


def _join(tokens: list[str], cer: bool) -> str:
    return ("" if cer else " ").join(tokens)


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` of ``data``: an inline resource of a self-contained page."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_data_uri(cut: Cut, size: int = IMAGE_SIZE) -> str:
    """The image of ``cut``, downscaled to ``size`` pixels on its longest side, as a JPEG (PNG
    when it has transparency) ``data:`` URI.

    Example::

        >>> image_data_uri(cut)[:23]
        'data:image/jpeg;base64,'
    """
    img = load_image(cut)
    img.thumbnail((size, size))
    buf = io.BytesIO()
    if img.mode in ("RGBA", "LA") or "transparency" in img.info:
        img.save(buf, format="PNG", optimize=True)
        return data_uri(buf.getvalue(), "image/png")
    img.convert("RGB").save(buf, format="JPEG", quality=85)
    return data_uri(buf.getvalue(), "image/jpeg")


def audio_data_uri(cut: Cut) -> str:
    """The audio of ``cut``, mono, resampled to :data:`AUDIO_RATE`, FLAC, as a ``data:`` URI.

    Example::

        >>> audio_data_uri(cut)[:22]
        'data:audio/flac;base64'
    """
    audio, rate = audio_samples(cut, AUDIO_RATE)
    return data_uri(encode_audio(audio, rate, AUDIO_FORMAT), f"audio/{AUDIO_FORMAT}")


def render_gallery(
    gallery: Gallery,
    on_failure: Callable[[Failure], None] | None = log_failure,
    progress: bool = False,
) -> str:
    """The gallery section of the report page: one card per sampled cut, kept cuts per
    language then rejected cuts per reason, with the page's style and script.

    An image or audio that cannot be read is recorded (``on_failure``, stage ``report``) and its
    card says so; the other cards are written.

    Example::

        >>> page_body += render_gallery(sampler.gallery())
    """
    from tqdm.auto import tqdm

    cards: dict[str, str] = {}
    total = sum(len(v) for v in (*gallery.kept.values(), *gallery.rejected.values()))
    bar = tqdm(total=total, desc="report gallery", unit="clip", disable=not progress)
    body = [
        "<h2 id='gallery'>Gallery</h2>",
        f"<p>{len(gallery)} sample clips. Click an image to enlarge it.</p>",
    ]
    sections = [("Kept", k, v) for k, v in gallery.kept.items()]
    sections += [("Rejected", k, v) for k, v in gallery.rejected.items()]
    for title, name, cuts in sections:
        body.append(f"<h3>{title}: {html.escape(name)} ({len(cuts)})</h3>")
        body.append(f"<div class='cards' data-section='{title.lower()}:{html.escape(name)}'>")
        for cut in cuts:
            if cut.id not in cards:
                cards[cut.id] = _card(cut, on_failure or log_failure)
            body.append(cards[cut.id])
            bar.update()
        body.append("</div>")
    bar.close()
    return GALLERY_STYLE + "".join(body) + GALLERY_OVERLAY


def _card(cut: Cut, on_failure: Callable[[Failure], None]) -> str:
    status = "rejected" if is_rejected(cut) else "kept"
    parts = [
        f"<div class='card {status}' data-cut-id='{html.escape(cut.id, quote=True)}' "
        f"data-language='{html.escape(cut_language(cut))}'>",
        f"<div class='id'>{html.escape(cut.id)}</div>",
        _media(cut, "image", image_data_uri, has_image(cut), on_failure),
        _media(cut, "audio", audio_data_uri, cut.has_recording, on_failure),
        "<dl>",
        *(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in _texts(cut)),
        "</dl>",
        f"<div class='meta'>{html.escape(_meta(cut))}</div>",
        f"<div class='scores'>{html.escape(_scores(cut))}</div>",
        f"<div class='status'>{html.escape(_status(cut))}</div>",
        "</div>",
    ]
    return "".join(p for p in parts if p)


def _media(
    cut: Cut,
    kind: str,
    to_uri: Callable[[Cut], str],
    present: bool,
    on_failure: Callable[[Failure], None],
) -> str:
    if not present:
        return "" if kind == "image" else "<div class='missing'>no audio</div>"
    try:
        uri = to_uri(cut)
    except Exception as e:  # one unreadable clip is recorded and shown, never fatal
        failure = Failure.of(cut.id, STAGE, f"gallery {kind}: {e}")
        on_failure(failure)
        return f"<div class='missing'>{html.escape(failure.reason)}</div>"
    if kind == "image":
        return f"<img class='thumb' src='{uri}' alt='image of {html.escape(cut.id)}'>"
    return f"<audio controls preload='metadata' src='{uri}'></audio>"


def _texts(cut: Cut) -> list[tuple[str, str]]:
    """(label, HTML) of the texts a card shows, those the cut has."""
    custom = cut.custom or {}
    spoken, asr = cut_text(cut), custom.get(fields.ASR_TEXT)
    rows = []
    if is_turn_cut(cut):
        turn = f"{conversation_id(cut)} · turn {turn_number(cut)} · {turn_role(cut)}"
        rows.append(("conversation", html.escape(turn)))
    rows.append(("spoken", html.escape(spoken or "")))
    if custom.get(fields.USER_TEXT) is not None and custom[fields.USER_TEXT] != spoken:
        rows.append(("source", html.escape(str(custom[fields.USER_TEXT]))))
    if asr is not None:
        rows.append(("ASR", word_diff(spoken or "", str(asr), cut_language(cut))))
    if custom.get(fields.ANSWER) is not None:
        rows.append(("answer", html.escape(str(custom[fields.ANSWER]))))
    return rows


def _meta(cut: Cut) -> str:
    engine = (cut.custom or {}).get(fields.TTS_MODEL) or UNKNOWN
    return f"{cut_language(cut)} · {cut_voice(cut)} · {engine} · {cut.duration:.2f} s"


def _scores(cut: Cut) -> str:
    custom = cut.custom or {}
    values = [(name, custom.get(name)) for name in fields.SCORES]
    return " · ".join(f"{name} {v:.3f}" for name, v in values if isinstance(v, (int, float)))


def _status(cut: Cut) -> str:
    return f"rejected: {', '.join(reject_reasons(cut))}" if is_rejected(cut) else "kept"


#: The gallery's style (inline: the page stays one file).
GALLERY_STYLE = (
    "<style>.cards{display:flex;flex-wrap:wrap;gap:8px}"
    ".card{border:1px solid #ccc;border-radius:6px;padding:6px;width:288px;font-size:13px}"
    ".card.rejected{border-color:#d55;background:#fff6f6}"
    ".card .id{font-family:monospace;font-size:11px;color:#555;word-break:break-all}"
    ".card img.thumb{max-width:100%;max-height:160px;cursor:zoom-in;display:block}"
    ".card audio{width:100%}.card dl{margin:4px 0}.card dt{font-weight:bold;color:#444}"
    ".card dd{margin:0 0 4px 0}del{background:#fcc}ins{background:#cfc;text-decoration:none}"
    ".card .status{font-weight:bold}.card.rejected .status{color:#b00}.missing{color:#b00}"
    "#overlay{display:none;position:fixed;inset:0;background:rgba(0,0,0,.8);"
    "align-items:center;justify-content:center;cursor:zoom-out}"
    "#overlay.open{display:flex}#overlay img{max-width:95vw;max-height:95vh}</style>"
)

#: The enlarged image: one overlay, filled by a click on a thumbnail (no resource leaves the page).
GALLERY_OVERLAY = (
    "<div id='overlay'><img id='overlay-img' alt='enlarged image'></div>"
    "<script>(function(){var o=document.getElementById('overlay'),"
    "i=document.getElementById('overlay-img');"
    "document.querySelectorAll('img.thumb').forEach(function(t){t.addEventListener('click',"
    "function(){i.setAttribute('src',t.getAttribute('src'));o.classList.add('open');});});"
    "o.addEventListener('click',function(){o.classList.remove('open');i.removeAttribute('src');});"
    "document.addEventListener('keydown',function(e){if(e.key==='Escape')o.click();});})();"
    "</script>"
)
