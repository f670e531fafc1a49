"""Rephrase stage: the spoken-style user text in each target language; answers untouched."""

from collections import defaultdict
from collections.abc import Sequence

from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.transforms.base import BackendSpec, Output, Stage
from lhotse_triplets.transforms.cuts import with_language_text


class Rephrase(Stage):
    """One cut per target language (id ``{cut.id}-{lang}``) whose supervision text is the rewrite.

    :param languages: target languages (ISO 639-1).
    :param backend: the rephrasing backend (``llm`` kind); default the rule-based one.

    Example::

        rephrase = Rephrase(languages=["en", "fr"])
        spoken = rephrase.apply(CutSet.from_file("prompts.jsonl.gz"))
    """

    name = "rephrase"

    def __init__(
        self,
        languages: Sequence[str] = ("en",),
        backend: BackendSpec | None = None,
        batch_size: int = 32,
    ) -> None:
        super().__init__()
        self.languages = list(languages)
        self.spec = backend or BackendSpec("llm", "rules")
        self.batch_size = batch_size

    def setup(self) -> None:
        self.backend("llm", self.spec)

    def process_batch(self, cuts: list[Cut]) -> list[Output]:
        llm = self.backend("llm", self.spec)
        by_source = defaultdict(list)
        for cut in cuts:
            by_source[cut.supervisions[0].language or "en"].append(cut)
        out: list[Output] = []
        for source_language, group in by_source.items():
            texts = [c.supervisions[0].text for c in group]
            contexts = [_history_text(c) for c in group]
            translations = [c.custom.get(fields.TRANSLATIONS) if c.custom else None for c in group]
            for language in self.languages:
                rewrites = llm.rephrase(
                    texts,
                    language=language,
                    source_language=source_language,
                    contexts=contexts,
                    translations=translations,
                )
                for cut, text in zip(group, rewrites):
                    if text is None or not text.strip():
                        out.append(
                            self.failure(
                                cut,
                                f"no {language} text from the {self.spec.name} rephraser "
                                "(supply translations or use an LLM backend)",
                            )
                        )
                    else:
                        out.append(with_language_text(cut, language, text))
        return out


def _history_text(cut: Cut) -> str | None:
    history = (cut.custom or {}).get(fields.HISTORY) or []
    if not history:
        return None
    return "\n".join(f"{turn['role']}: {turn['text']}" for turn in history)
