"""What ``validate`` found: per export (target), per check, pass/fail counts and offending ids.

Memory stays flat: a check keeps its two counters and the first :data:`SHOWN` offenders; the
rest are only counted ("and N more").

Example::

    >>> check = CheckResult("text")
    >>> check.fail("c1-t0", "empty text")
    >>> check.failed, check.offenders
    (1, ['c1-t0: empty text'])
"""

from dataclasses import dataclass, field
from typing import Any

#: How many offending ids a failing check lists (the rest are counted).
SHOWN = 20


@dataclass
class CheckResult:
    """Pass/fail counts of one check and its first offenders (``"<id>: <reason>"``)."""

    name: str
    passed: int = 0
    failed: int = 0
    offenders: list[str] = field(default_factory=list)

    def ok(self) -> None:
        """Count one item that passed."""
        self.passed += 1

    def fail(self, item_id: str, reason: str) -> None:
        """Count one item that failed; keep its id and reason among the first :data:`SHOWN`."""
        self.failed += 1
        if len(self.offenders) < SHOWN:
            self.offenders.append(f"{item_id}: {reason}")

    @property
    def more(self) -> int:
        """Offenders not listed."""
        return self.failed - len(self.offenders)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failed": self.failed,
            "offenders": list(self.offenders),
            "more": self.more,
        }


@dataclass
class TargetReport:
    """The checks of one validated thing (a manifest, a stage directory, one export)."""

    kind: str
    path: str
    items: int = 0
    checks: dict[str, CheckResult] = field(default_factory=dict)

    def check(self, name: str) -> CheckResult:
        """The result of the check ``name`` (created on first use)."""
        if name not in self.checks:
            self.checks[name] = CheckResult(name)
        return self.checks[name]

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "items": self.items,
            "ok": self.ok,
            "checks": {name: c.to_dict() for name, c in sorted(self.checks.items())},
        }

    def lines(self) -> list[str]:
        status = "OK" if self.ok else "FAILED"
        out = [f"{self.kind} {self.path}: {self.items} items, {status}"]
        for name, c in sorted(self.checks.items()):
            out.append(f"  {name:<14} passed {c.passed:>7}  failed {c.failed:>5}")
            out += [f"      {offender}" for offender in c.offenders]
            if c.more:
                out.append(f"      and {c.more} more")
        return out


@dataclass
class ValidationReport:
    """Every target validated under one path; ``ok`` when no check failed anywhere.

    Example::

        >>> report = validate("out/export")
        >>> report.ok, [t.kind for t in report.targets]
        (True, ['duplex', 'triplet_files', 'hf', 'nemo', 'shar', 'triplets'])
    """

    path: str
    targets: list[TargetReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.targets) and all(t.ok for t in self.targets)

    @property
    def failed(self) -> int:
        """Failed item checks, all targets together."""
        return sum(c.failed for t in self.targets for c in t.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "failed": self.failed,
            "targets": [t.to_dict() for t in self.targets],
        }

    def __str__(self) -> str:
        lines = [line for t in self.targets for line in t.lines()]
        items = sum(t.items for t in self.targets)
        verdict = "OK" if self.ok else f"FAILED ({self.failed} failed checks)"
        lines.append(
            f"validate {self.path}: {len(self.targets)} target(s), {items} items, {verdict}"
        )
        return "\n".join(lines)
