"""Domain errors: a failure on one item that a stage records and skips."""

from dataclasses import asdict, dataclass


class ItemError(Exception):
    """One item cannot be processed; the run records it and goes on.

    :param reason: short human-readable reason (shown in ``failed.jsonl`` and the summary).
    :param cut_id: the item it concerns, when known where the error is raised.
    """

    def __init__(self, reason: str, cut_id: str | None = None) -> None:
        super().__init__(reason if cut_id is None else f"{cut_id}: {reason}")
        self.reason = reason
        self.cut_id = cut_id


@dataclass
class Failure:
    """One line of ``failed.jsonl``: which item failed, in which stage, and why."""

    cut_id: str
    stage: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)
