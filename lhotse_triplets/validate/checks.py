"""The checks ``validate`` runs on every :class:`~lhotse_triplets.validate.items.Item`.

====================  =========================================================================
check                 fails when
====================  =========================================================================
``fields``            a required field / column is missing
``unique_ids``        an id appears twice (within its namespace: cuts, rows, conversations)
``text``              a text that must be there is empty
``audio``             the audio does not load, is not mono, or is not ``float32`` once decoded
``sampling_rate``     the audio is not at the expected rate, or the stored file is not at the
                      rate its manifest / row says
``duration``          the audio's length differs from the declared duration by > tolerance
``target_audio``      (duplex) the agent channel does not load or differs in length / rate
``image``             the image does not resolve (inside the export) or does not decode
``tokens``            (TTT) ``input_ids``/``labels`` misaligned or not padded as declared
``turns``             a conversation has no turn 0, a gap or a turn twice (``dialogues.turn_gaps``;
                      for triplet kinds, where the gate drops turns, only a turn twice)
``read``              the reader itself failed (the rest of that target is not checked)
====================  =========================================================================

Memory: the ids seen and each conversation's turn numbers, nothing else.

Example::

    >>> checker = Checker(TargetReport("manifest", "cuts.jsonl.gz"), sampling_rate=16000)
    >>> for item in read_items(target):
    ...     checker.add(item)
    >>> checker.finish().ok
    True
"""

from collections import Counter

import numpy as np

from lhotse_triplets.dialogues import turn_gaps
from lhotse_triplets.validate.items import DIALOGUE_RATE, Audio, Item
from lhotse_triplets.validate.report import TargetReport

#: Default tolerance (seconds) between the audio's length and its declared duration.
TOLERANCE = 0.01


def describe(e: BaseException) -> str:
    """One line for an exception raised while loading something."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class Checker:
    """Runs every applicable check on each item it is given and records them in ``report``.

    :param sampling_rate: the expected rate (default: what the export declares, else 16000 for
        dialogue kinds, else only "stored at the declared rate" is checked).
    :param tolerance: seconds the audio's length may differ from the declared duration.
    """

    def __init__(
        self, report: TargetReport, sampling_rate: int | None = None, tolerance: float = TOLERANCE
    ) -> None:
        self.report = report
        self.sampling_rate = sampling_rate
        self.tolerance = tolerance
        self.ids: set[tuple[str, str]] = set()
        self.turns: dict[str, list[int]] = {}
        self.strict: dict[str, bool] = {}

    def add(self, item: Item) -> None:
        """Check one item."""
        self.report.items += 1
        self._fields(item)
        self._unique(item)
        self._text(item)
        audio = self._audio(item) if item.audio is not None else None
        if item.target is not None:
            self._target(item, audio)
        if item.image is not None:
            self._outcome("image", item, item.image)
        if item.tokens is not None:
            self._result("tokens", item, item.tokens())
        if item.conversation is not None and item.turn is not None:
            self.turns.setdefault(item.conversation, []).append(int(item.turn))
            self.strict[item.conversation] = item.strict_turns

    def failed_to_read(self, reason: str) -> None:
        """Record that the target's reader stopped (after the items checked so far)."""
        self.report.check("read").fail(self.report.path, reason)

    def finish(self) -> TargetReport:
        """Run the per-conversation check and return the report."""
        check = self.report.check("turns") if self.turns else None
        for conversation, numbers in self.turns.items():
            if self.strict[conversation]:
                reason = turn_gaps(numbers)
            else:
                twice = sorted(n for n, k in Counter(numbers).items() if k > 1)
                reason = f"turn {twice[0]} twice" if twice else None
            check.fail(conversation, reason) if reason else check.ok()
        return self.report

    # --- one check each ---------------------------------------------------------------------

    def _result(self, name: str, item: Item, reason: str | None) -> None:
        check = self.report.check(name)
        check.fail(item.id, reason) if reason else check.ok()

    def _outcome(self, name: str, item: Item, load) -> object:
        try:
            value = load()
        except Exception as e:  # any loading error is this item's failure, reported
            self.report.check(name).fail(item.id, describe(e))
            return None
        self.report.check(name).ok()
        return value

    def _fields(self, item: Item) -> None:
        self._result("fields", item, f"missing {', '.join(item.missing)}" if item.missing else None)

    def _unique(self, item: Item) -> None:
        key = (item.namespace, item.id)
        self._result(
            "unique_ids", item, f"duplicate {item.namespace} id" if key in self.ids else None
        )
        self.ids.add(key)

    def _text(self, item: Item) -> None:
        if item.texts is None:
            return
        empty = sum(1 for t in item.texts if not isinstance(t, str) or not t.strip())
        self._result("text", item, f"{empty} empty text(s)" if empty else None)

    def _audio(self, item: Item) -> Audio | None:
        audio = self._outcome("audio", item, item.audio)
        if audio is None:
            self._rate(item, None)
            return None
        check = self.report.check("audio")
        samples = np.asarray(audio.samples)
        channels = samples.shape[0] if samples.ndim == 2 else 1
        if channels != 1 or samples.ndim > 2:
            check.passed -= 1
            check.fail(item.id, f"{channels} channels, not mono")
        elif samples.dtype != np.float32:
            check.passed -= 1
            check.fail(item.id, f"decoded as {samples.dtype}, not float32")
        self._rate(item, audio)
        self._duration(item, audio)
        return audio

    def expected_rate(self, item: Item) -> int | None:
        """The rate ``item``'s audio must have (``None``: any)."""
        if self.sampling_rate:
            return self.sampling_rate
        if item.expected_rate:
            return item.expected_rate
        return DIALOGUE_RATE if item.dialogue else None

    def _rate(self, item: Item, audio: Audio | None) -> None:
        problems = []
        if item.stored_rate is not None:
            try:
                problems.append(item.stored_rate())
            except Exception as e:  # an unreadable file: its rate is unknown
                problems.append(f"rate unreadable: {describe(e)}")
        expected = self.expected_rate(item)
        if audio is not None and expected and audio.sampling_rate != expected:
            problems.append(f"{audio.sampling_rate} Hz, expected {expected}")
        if audio is not None and item.declared_rate and audio.sampling_rate != item.declared_rate:
            problems.append(f"decoded at {audio.sampling_rate} Hz, declared {item.declared_rate}")
        problems = [p for p in problems if p]
        if audio is not None or problems:
            self._result("sampling_rate", item, "; ".join(problems) or None)

    def _duration(self, item: Item, audio: Audio) -> None:
        if item.duration is None:
            return
        seconds = np.asarray(audio.samples).shape[-1] / audio.sampling_rate
        off = abs(seconds - float(item.duration))
        reason = None
        if off > self.tolerance:
            reason = f"audio lasts {seconds:.3f} s, declared {float(item.duration):.3f} s"
        self._result("duration", item, reason)

    def _target(self, item: Item, audio: Audio | None) -> None:
        target = self._outcome("target_audio", item, item.target)
        if target is None or audio is None:
            return
        n, m = np.asarray(audio.samples).shape[-1], np.asarray(target.samples).shape[-1]
        reason = None
        if target.sampling_rate != audio.sampling_rate:
            reason = f"target at {target.sampling_rate} Hz, the cut at {audio.sampling_rate}"
        elif abs(n - m) / audio.sampling_rate > self.tolerance:
            reason = (
                f"target lasts {m / audio.sampling_rate:.3f} s, the cut "
                f"{n / audio.sampling_rate:.3f} s"
            )
        if reason:
            check = self.report.check("target_audio")
            check.passed -= 1
            check.fail(item.id, reason)
