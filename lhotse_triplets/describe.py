"""``describe``: what an input holds, in numbers (the terminal counterpart of ``browse``, as
``lhotse cut describe`` is for cuts).

Counts and hours per language / voice / engine, duration and score percentiles, kept /
rejected by reason / failed by reason, conversations and turns, over any input
:func:`~lhotse_triplets.browse.records.iter_records` reads. On a run folder the numbers are the
run summary's: ``kept``, ``rejected_cuts``, ``rejected`` and ``failed`` by reason, and
``hours`` (language -> voice -> ``{"cuts", "hours"}`` over kept clips).

Example::

    >>> description = describe("out")
    >>> print(description)            # tables
    >>> description.to_dict()["kept"]
    32
"""

from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from lhotse.utils import Pathlike
from tabulate import tabulate

from lhotse_triplets.browse.records import Record, iter_records

#: Percentiles reported for durations and scores.
PERCENTILES = (5, 25, 50, 75, 95)
#: Record attributes counted per value.
GROUPS = ("language", "voice", "engine", "kind")


@dataclass
class Description:
    """The numbers of one input; ``str()`` gives tables, :meth:`to_dict` JSON-ready data."""

    records: int = 0
    kept: int = 0
    rejected_cuts: int = 0
    unscored: int = 0
    #: reason -> rejected records (a record may have several reasons)
    rejected: dict[str, int] = field(default_factory=dict)
    #: ``"<stage>: <reason>"`` -> failed items
    failed: dict[str, int] = field(default_factory=dict)
    #: group (language, voice, engine, kind) -> value -> {"records", "hours", "kept", ...}
    groups: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: language -> voice -> {"cuts", "hours"} over kept records (the run summary's ``hours``)
    hours: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    total_hours: float = 0.0
    kept_hours: float = 0.0
    #: ``{"p5": ..., "p95": ...}`` of durations (seconds) and of each score
    durations: dict[str, float] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    conversations: int = 0
    turns: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lines = [
            f"records: {self.records}   kept: {self.kept}   rejected: {self.rejected_cuts}   "
            f"failed: {sum(self.failed.values())}   unscored: {self.unscored}   "
            f"hours: {self.total_hours:.4f} (kept {self.kept_hours:.4f})"
        ]
        if self.conversations:
            lines.append(f"conversations: {self.conversations}   dialogue turns: {self.turns}")
        tables = ["\n".join(lines)]
        for name in GROUPS:
            tables.append(_group_table(name, self.groups.get(name, {})))
        tables.append(_percentile_table({"duration (s)": self.durations, **self.scores}))
        for title, counts in (("rejected", self.rejected), ("failed", self.failed)):
            rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            if rows:
                tables.append(
                    tabulate(rows, headers=[f"{title} reason", "count"], tablefmt="github")
                )
        return "\n\n".join(t for t in tables if t)


def _group_table(name: str, values: dict[str, dict[str, float]]) -> str:
    if len(values) == 0:
        return ""
    rows = [
        [
            value,
            g["records"],
            g["kept"],
            g["rejected"],
            f"{g['hours']:.4f}",
            f"{g['kept_hours']:.4f}",
        ]
        for value, g in sorted(values.items(), key=lambda kv: -kv[1]["records"])
    ]
    headers = [name, "records", "kept", "rejected", "hours", "kept hours"]
    return tabulate(rows, headers=headers, disable_numparse=True, tablefmt="github")


def _percentile_table(stats: dict[str, dict[str, float]]) -> str:
    rows = [[name] + [f"{p[f'p{q}']:.3f}" for q in PERCENTILES] for name, p in stats.items() if p]
    headers = ["", *(f"p{q}" for q in PERCENTILES)]
    return tabulate(rows, headers=headers, tablefmt="github") if rows else ""


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    points = np.percentile(np.asarray(values, dtype=np.float64), PERCENTILES)
    return {f"p{q}": float(v) for q, v in zip(PERCENTILES, points)}


class _Counter:
    """One pass over records."""

    def __init__(self) -> None:
        self.d = Description()
        self.rejected: Counter = Counter()
        self.failed: Counter = Counter()
        self.groups: dict[str, dict[str, Counter]] = {g: defaultdict(Counter) for g in GROUPS}
        self.hours: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        # 8 bytes a value (a Python list of floats costs 32): exact percentiles need them all.
        self.durations = array("d")
        self.scores: dict[str, array] = defaultdict(lambda: array("d"))
        self.conversations: set[tuple[str, str]] = set()

    def add(self, record: Record) -> None:
        d = self.d
        d.records += 1
        if record.status == "failed":
            self.failed.update(record.reasons)
            return
        seconds = record.duration or 0.0
        kept = record.status == "kept"
        d.kept += kept
        d.rejected_cuts += record.status == "rejected"
        d.unscored += record.status == "unscored"
        if record.status == "rejected":
            self.rejected.update(record.reasons)
        d.total_hours += seconds / 3600
        for name in GROUPS:
            group = self.groups[name][str(getattr(record, name))]
            group.update(
                records=1, kept=kept, rejected=record.status == "rejected", hours=seconds / 3600
            )
            group["kept_hours"] += seconds / 3600 if kept else 0.0
        if kept:
            d.kept_hours += seconds / 3600
            voice = self.hours[str(record.language)][str(record.voice)]
            voice.update(cuts=1, hours=seconds / 3600)
        self._add_values(record)

    def _add_values(self, record: Record) -> None:
        if record.duration is not None:
            self.durations.append(record.duration)
        for name, value in record.scores.items():
            self.scores[name].append(value)
        if record.role is not None and record.conversation_id is not None:
            self.d.turns += 1
            self.conversations.add((record.kind, record.conversation_id))

    def result(self) -> Description:
        d = self.d
        d.rejected, d.failed = dict(self.rejected), dict(self.failed)
        d.groups = {
            name: {value: _group_numbers(c) for value, c in values.items()}
            for name, values in self.groups.items()
        }
        d.hours = {
            lang: {voice: {"cuts": int(c["cuts"]), "hours": c["hours"]} for voice, c in v.items()}
            for lang, v in self.hours.items()
        }
        d.durations = _percentiles(self.durations)
        d.scores = {name: _percentiles(v) for name, v in self.scores.items()}
        d.conversations = len(self.conversations)
        return d


def _group_numbers(counter: Counter) -> dict[str, Any]:
    return {
        "records": int(counter["records"]),
        "kept": int(counter["kept"]),
        "rejected": int(counter["rejected"]),
        "hours": float(counter["hours"]),
        "kept_hours": float(counter["kept_hours"]),
    }


def describe_records(records: Iterable[Record]) -> Description:
    """The :class:`Description` of ``records`` (one pass; only durations and scores are kept
    for the percentiles)."""
    counter = _Counter()
    for record in records:
        counter.add(record)
    return counter.result()


def describe(path: Pathlike, index: Any = None) -> Description:
    """The :class:`Description` of any input (run folder, stage, manifest, export, bench run).

    :param index: an opened :class:`~lhotse_triplets.browse.index.BrowseIndex` of ``path`` to
        read the records from instead of the input.

    Example::

        >>> describe("out/export/nemo").groups["language"]["fr"]["hours"]
    """
    if index is not None:
        return describe_records(_index_records(index))
    return describe_records(iter_records(path))


def _index_records(index: Any) -> Iterable[Record]:
    from lhotse_triplets.browse.index import Filters

    offset, step = 0, 5000
    while page := index.page(Filters(), offset=offset, limit=step):
        yield from (record for _, record in page)
        offset += step
