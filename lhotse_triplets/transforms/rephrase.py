"""Rephrase stage: the spoken-style user text in each target language; answers untouched.

Every rewrite is validated (:mod:`lhotse_triplets.rephrasing.checks`). A rewrite that fails
falls back to the rule-based rewrite, then to the text as supplied (the source turn in its own
language, or the supplied translation), and the cut records why in
``custom[fields.REPHRASE_REJECTED]``; ``custom[fields.REPHRASED_BY]`` says which text was kept.
When no valid text exists in a language (no supplied translation and the LLM's translation was
rejected), the item is recorded as failed with the reasons.

A backend that returns another number of rewrites than it was asked for cannot be trusted to
have kept their order, so none of that call's rewrites is used: each item records the attempt as
rejected with ``llm_output_count`` and falls back like any rejected rewrite (rules, then the
supplied text; failed when neither exists). An answer that is not text is rejected with
``llm_output_type``. An embedding backend of the meaning check that returns another number of
vectors than texts fails the items with ``embed_output_count``.
"""

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.backends.registry import BackendSpec
from lhotse_triplets.config import RephraseConfig
from lhotse_triplets.cuts import with_custom, with_language_text
from lhotse_triplets.errors import ItemError
from lhotse_triplets.rephrasing.cache import RewriteCache
from lhotse_triplets.rephrasing.checks import RewriteItem, RewriteValidator, reason_key
from lhotse_triplets.rephrasing.spoken import remove_placeholders
from lhotse_triplets.rephrasing.translations import read_translation_files
from lhotse_triplets.transforms.base import Output, Stage

logger = logging.getLogger(__name__)

_DEFAULTS = RephraseConfig()
#: The meaning check's default encoder (the config's): multilingual, its weights ship in a package.
DEFAULT_EMBED = _DEFAULTS.embed.spec("embed") if _DEFAULTS.embed else None
RULES = BackendSpec("llm", "rules")
FALLBACKS = ("rules", "source")


class Rephrase(Stage):
    """One cut per target language (id ``{cut.id}-{lang}``) whose supervision text is the rewrite.

    :param languages: target languages (ISO 639-1).
    :param backend: the rephrasing backend (``llm`` kind); default the rule-based one.
    :param embed: sentence encoder of the meaning check; ``None`` skips that check (only that
        one: the other checks always run).
    :param min_similarity: meaning check threshold, rewrite vs source in the same language.
    :param min_cross_similarity: meaning check threshold across languages (translations).
    :param fallback: what replaces a rejected rewrite: ``"rules"`` (the rule-based rewrite if
        it passes, else the supplied text) or ``"source"`` (the supplied text).
    :param cache: sqlite file caching the backend's rewrites (slow backends only), so reruns
        and resumed runs do not call the LLM again.
    :param translation_files: JSONL files (or folders) of supplied translations, joined to cuts
        by conversation id and turn (see :mod:`lhotse_triplets.rephrasing.translations`);
        translations in the cut (``fields.TRANSLATIONS``) take precedence.

    Example::

        rephrase = Rephrase(languages=["en", "fr"])
        spoken = rephrase.apply(CutSet.from_file("prompts.jsonl.gz"))
        llm = Rephrase(["en"], BackendSpec("llm", "openai_chat", {"model": "qwen2.5-7b"}),
                       cache="out/rephrase/cache.sqlite")
    """

    name = "rephrase"
    summary = "Spoken-style user text in each target language (one cut per language), validated."

    def __init__(
        self,
        languages: Sequence[str] = ("en",),
        backend: BackendSpec | None = None,
        batch_size: int = RephraseConfig.batch_size,
        *,
        embed: BackendSpec | None = DEFAULT_EMBED,
        min_similarity: float = RephraseConfig.min_similarity,
        min_cross_similarity: float = RephraseConfig.min_cross_similarity,
        min_length_ratio: float = RephraseConfig.min_length_ratio,
        max_length_ratio: float = RephraseConfig.max_length_ratio,
        fallback: str = RephraseConfig.fallback,
        cache: str | Path | None = None,
        translation_files: Sequence[str | Path] = (),
    ) -> None:
        super().__init__()
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback={fallback!r}; expected one of {', '.join(FALLBACKS)}")
        self.languages = list(languages)
        self.spec = backend or RULES
        self.batch_size = batch_size
        self.embed = embed
        self.validator = RewriteValidator(
            min_similarity, min_cross_similarity, min_length_ratio, max_length_ratio
        )
        self.fallback = fallback
        self.cache = RewriteCache(cache) if cache is not None else None
        self.translation_files = [str(p) for p in translation_files]
        self._joined: dict | None = None
        #: Calls of the backend (items asked, items answered from the cache), this process.
        self.stats: Counter = Counter()

    @classmethod
    def from_config(
        cls, cfg: Any, run_dir: str | Path | None = None, stage_dir: str | Path | None = None
    ) -> "Rephrase":
        """The rephraser of ``cfg.rephrase`` into ``cfg.languages``; a relative ``cache`` path
        is in the stage's folder (``run_dir/rephrase`` unless ``stage_dir``)."""
        r = cfg.rephrase
        if stage_dir is None and run_dir is not None:
            stage_dir = Path(run_dir) / cls.name
        cache = None
        if r.cache is not None and (stage_dir is not None or Path(r.cache).is_absolute()):
            cache = Path(stage_dir or ".") / r.cache
        return cls(
            cfg.languages,
            r.backend.spec("llm"),
            batch_size=r.batch_size,
            embed=r.embed.spec("embed") if r.embed else None,
            min_similarity=r.min_similarity,
            min_cross_similarity=r.min_cross_similarity,
            min_length_ratio=r.min_length_ratio,
            max_length_ratio=r.max_length_ratio,
            fallback=r.fallback,
            cache=cache,
            translation_files=r.translation_files,
        )

    def setup(self) -> None:
        self.backend("llm", self.spec)

    # -- backend calls, through the cache ------------------------------------------------------
    def _fingerprint(self, llm: Any) -> str:
        if hasattr(llm, "fingerprint"):
            return f"{self.spec.name}:{llm.fingerprint()}"
        return f"{self.spec.name}:{json.dumps(self.spec.options, sort_keys=True, default=str)}"

    def _ask(
        self,
        llm: Any,
        texts: list[str],
        language: str,
        source_language: str,
        contexts: list[str | None],
        translations: list[dict | None],
    ) -> list[Any]:
        """The backend's rewrites (``str``, ``None`` or an ``Exception`` per item)."""
        use_cache = self.cache is not None and getattr(llm, "cacheable", True)
        keys: list[str] = []
        cached: dict[str, str] = {}
        if use_cache:
            fp = self._fingerprint(llm)
            keys = [
                RewriteCache.key(fp, source_language, language, c, t)
                for t, c in zip(texts, contexts)
            ]
            cached = self.cache.get_many(keys)
        todo = [i for i in range(len(texts)) if not use_cache or keys[i] not in cached]
        out: list[Any] = [cached.get(k) for k in keys] if use_cache else [None] * len(texts)
        self.stats["cached"] += len(texts) - len(todo)
        if todo:
            self.stats["asked"] += len(todo)
            try:
                answers = llm.rephrase(
                    [texts[i] for i in todo],
                    language=language,
                    source_language=source_language,
                    contexts=[contexts[i] for i in todo],
                    translations=[translations[i] for i in todo],
                )
            except (ImportError, KeyboardInterrupt, MemoryError):
                raise
            except Exception as e:  # the whole batch failed: every item falls back
                logger.warning("%s rephraser failed on a batch: %s", self.spec.name, e)
                answers = [e] * len(todo)
            answers = _one_each(answers, len(todo), self._name(llm))
            fresh = {}
            for i, answer in zip(todo, answers, strict=True):
                out[i] = answer
                if use_cache and isinstance(answer, str) and answer.strip():
                    fresh[keys[i]] = answer
            if use_cache:
                self.cache.put_many(fresh)
        return out

    def _translations(self, cut: Cut) -> dict | None:
        own = (cut.custom or {}).get(fields.TRANSLATIONS)
        if not self.translation_files:
            return own
        if self._joined is None:
            self._joined = read_translation_files(self.translation_files)
        custom = cut.custom or {}
        key = (str(custom.get(fields.CONVERSATION_ID)), int(custom.get(fields.TURN) or 0))
        joined = self._joined.get(key)
        return {**joined, **(own or {})} if joined else own

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_joined"] = None  # re-read in each worker
        return state

    def _name(self, llm: Any) -> str:
        return RULES.name if llm is self._backends.get("rules") else self.spec.name

    def _encode(self, texts: list[str]) -> Any:
        vectors = self.backend("embed", self.embed).encode(texts)
        if len(vectors) != len(texts):
            raise ItemError(
                f"embed_output_count: {self.embed.name} returned {len(vectors)} vectors for "
                f"{len(texts)} texts"
            )
        return vectors

    # -- the stage -------------------------------------------------------------------------------
    def process_batch(self, cuts: list[Cut]) -> list[Output]:
        by_source = defaultdict(list)
        for cut in cuts:
            by_source[cut.supervisions[0].language or "en"].append(cut)
        out: list[Output] = []
        for source_language, group in by_source.items():
            batch = _Batch(
                cuts=group,
                source_language=source_language,
                texts=[c.supervisions[0].text for c in group],
                contexts=[_history_text(c) for c in group],
                translations=[self._translations(c) for c in group],
                answers=[(c.custom or {}).get(fields.ANSWER) for c in group],
            )
            for language in self.languages:
                out.extend(self._rephrase(batch, language))
        return out

    def _rounds(self) -> list[tuple[str, Any]]:
        """The rephrasers tried in turn: the configured one, then the rules (``fallback``)."""
        rounds = [(self.spec.name, self.backend("llm", self.spec))]
        if self.fallback == "rules" and self.spec.name != RULES.name:
            rounds.append((RULES.name, self.backend("rules", RULES)))
        return rounds

    def _rephrase(self, batch: "_Batch", language: str) -> list[Output]:
        """One cut (or failure) per cut of ``batch`` in ``language``."""
        attempt = _Attempt(batch, language)
        for by, rephraser in self._rounds():
            pending = attempt.pending()
            if not pending:
                break
            results = self._ask(
                rephraser,
                [batch.texts[i] for i in pending],
                language,
                batch.source_language,
                [batch.contexts[i] for i in pending],
                [batch.translations[i] for i in pending],
            )
            self._judge(attempt, by, pending, results)
        for i in attempt.pending():
            if attempt.supplied[i] is not None:
                attempt.chosen[i] = ("source", attempt.supplied[i], 1.0)
        return [self._output(attempt, i, cut) for i, cut in enumerate(batch.cuts)]

    def _judge(self, attempt: "_Attempt", by: str, pending: list[int], results: list) -> None:
        """Validate one round's rewrites: accepted ones are chosen, others recorded."""
        checks, where = [], []
        for i, result in zip(pending, results):
            if isinstance(result, Exception):
                attempt.reject(i, by, None, [_error_reason(result)])
            elif isinstance(result, str) and result.strip():
                checks.append(attempt.item(i, result))
                where.append(i)
            elif result is not None and not isinstance(result, str):
                kind = type(result).__name__
                attempt.reject(i, by, None, [f"llm_output_type: {by} returned a {kind}"])
        encode = self._encode if self.embed is not None else None
        for i, item, verdict in zip(where, checks, self.validator.validate(checks, encode=encode)):
            if verdict.ok:
                attempt.chosen[i] = (by, item.rewrite, verdict.similarity)
            else:
                attempt.reject(i, by, item.rewrite, verdict.reasons)

    def _output(self, attempt: "_Attempt", i: int, cut: Cut) -> Output:
        if attempt.chosen[i] is None:
            return self.failure(
                cut, _no_text(attempt.language, self.spec.name, attempt.rejected[i])
            )
        by, text, similarity = attempt.chosen[i]
        return with_custom(
            with_language_text(cut, attempt.language, text),
            **{
                fields.REPHRASED_BY: by,
                fields.REPHRASE_REJECTED: attempt.rejected[i],
                fields.REPHRASE_SIMILARITY: similarity,
            },
        )


@dataclass
class _Batch:
    """Cuts of one source language with what every round needs of them."""

    cuts: list[Cut]
    source_language: str
    texts: list[str]
    contexts: list[str | None]
    translations: list[dict | None]
    answers: list[str | None]


class _Attempt:
    """The rewrites of a batch into one language: chosen texts and rejected attempts."""

    def __init__(self, batch: _Batch, language: str) -> None:
        self.batch = batch
        self.language = language
        #: per cut: the text as supplied in ``language`` (source turn or translation), if any
        self.supplied = [
            text if language == batch.source_language else _supplied(tr, language)
            for text, tr in zip(batch.texts, batch.translations)
        ]
        self.chosen: list[tuple[str, str, float | None] | None] = [None] * len(batch.cuts)
        self.rejected: list[list[dict]] = [[] for _ in batch.cuts]

    def pending(self) -> list[int]:
        return [i for i, c in enumerate(self.chosen) if c is None]

    def item(self, i: int, rewrite: str) -> RewriteItem:
        """What ``rewrite`` of cut ``i`` is checked against: the supplied text, else the source."""
        if self.supplied[i] is not None:
            ref, ref_language = self.supplied[i], self.language
        else:
            ref, ref_language = self.batch.texts[i], self.batch.source_language
        return RewriteItem(ref, rewrite, self.language, ref_language, self.batch.answers[i])

    def reject(self, i: int, by: str, text: str | None, reasons: list[str]) -> None:
        self.rejected[i].append({"by": by, "text": text, "reasons": reasons})


def _one_each(answers: Any, expected: int, backend: str) -> list[Any]:
    """The backend's answers, one per text asked; when it returned another number of them, none
    can be matched to its text, so each item gets ``llm_output_count`` (its own rejected
    attempt: the item falls back, see the module's docstring)."""
    try:
        answers = list(answers)
    except TypeError:
        answers = None
    if answers is not None and len(answers) == expected:
        return answers
    got = "no list" if answers is None else f"{len(answers)} rewrites"
    logger.warning("%s rephraser returned %s for %d texts", backend, got, expected)
    error = ItemError(f"llm_output_count: {backend} returned {got} for {expected} texts")
    return [error] * expected


def _error_reason(error: Exception) -> str:
    """A rejected attempt's reason for a backend error (its own code when it has one)."""
    if isinstance(error, ItemError) and error.reason.split(":", 1)[0].startswith("llm_"):
        return error.reason
    return f"backend_error: {error}"


def _supplied(translations: dict | None, language: str) -> str | None:
    text = (translations or {}).get(language)
    if text is None or not str(text).strip():
        return None
    return remove_placeholders(str(text))


def _no_text(language: str, backend: str, rejected: list[dict]) -> str:
    if not rejected:
        return (
            f"no_text: no {language} text from the {backend} rephraser "
            "(supply translations or use an LLM backend)"
        )
    reasons = sorted({reason_key(r) for attempt in rejected for r in attempt["reasons"]})
    return f"no_text: no valid {language} text: {backend} rewrite rejected ({', '.join(reasons)})"


def _history_text(cut: Cut) -> str | None:
    history = (cut.custom or {}).get(fields.HISTORY) or []
    if not history:
        return None
    return "\n".join(f"{turn['role']}: {turn['text']}" for turn in history)


@dataclass
class RephraseReport:
    """What a rephrase run kept, and why rewrites were rejected."""

    cuts: int = 0
    #: ``rephrased_by`` -> cuts (backend name, ``rules``, ``source``)
    kept_by: Counter = field(default_factory=Counter)
    #: reason key -> rejected rewrites
    reasons: Counter = field(default_factory=Counter)
    #: (cut id, source text, spoken text, rephrased_by) of a few changed texts
    examples: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: (cut id, rejected text, reasons) of a few rejected rewrites
    rejected_examples: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"rephrased cuts: {self.cuts}"]
        for by, n in self.kept_by.most_common():
            lines.append(f"  text from {by:12s} {n:6d}")
        if self.reasons:
            lines.append("rejected rewrites by reason:")
            for reason, n in self.reasons.most_common():
                lines.append(f"  {n:6d}  {reason}")
        if self.examples:
            lines.append("examples:")
            for cut_id, before, after, by in self.examples:
                lines.append(f"  {cut_id} [{by}]\n    before: {before}\n    after:  {after}")
        if self.rejected_examples:
            lines.append("rejected, for example:")
            for cut_id, text, reasons in self.rejected_examples:
                lines.append(f"  {cut_id}: {text!r}\n    {'; '.join(reasons)}")
        return "\n".join(lines)


def rephrase_report(cuts: Iterable[Cut], num_examples: int = 5) -> RephraseReport:
    """Counts per validation reason and per text origin over rephrased cuts, with examples."""
    report = RephraseReport()
    shown: set[str] = set()
    for cut in cuts:
        custom = cut.custom or {}
        report.cuts += 1
        report.kept_by[custom.get(fields.REPHRASED_BY, "?")] += 1
        for attempt in custom.get(fields.REPHRASE_REJECTED) or []:
            report.reasons.update({reason_key(r) for r in attempt["reasons"]})
            if len(report.rejected_examples) < 3:
                report.rejected_examples.append((cut.id, attempt["text"], attempt["reasons"]))
        before = custom.get(fields.USER_TEXT)
        after, language = cut.supervisions[0].text, cut.supervisions[0].language
        if (
            before
            and after != " ".join(before.split())
            and len(report.examples) < num_examples
            and language not in shown
        ):
            shown.add(language)  # one example per language
            report.examples.append((cut.id, before, after, custom.get(fields.REPHRASED_BY)))
    return report
