"""``validate``: check a manifest, a stage directory or any export before training on it.

``PATH`` is detected (:mod:`~lhotse_triplets.validate.kinds`): a manifest, a stage directory,
one export of any format (Shar, duplex Shar, NeMo conversation shards, HF dataset, TTT rows, the
WAV tree, the triplets index), or a run's export folder (every export in it). Each item is read
with the format's own reader and checked (:mod:`~lhotse_triplets.validate.checks`) one at a
time: memory stays flat on big exports. The report counts passes and failures per check and lists
the first 20 offending ids of each failing check, with the count of the rest.

Example::

    >>> report = validate("out/export", sampling_rate=16000)
    >>> report.ok
    True
    >>> print(report)
    shar out/export/shar: 32 items, OK
      audio          passed      32  failed     0
    ...
"""

import itertools
from pathlib import Path

from lhotse.utils import Pathlike
from tqdm.auto import tqdm

from lhotse_triplets.validate.checks import TOLERANCE, Checker, describe
from lhotse_triplets.validate.items import Item, read_items
from lhotse_triplets.validate.kinds import KINDS, Target, find_targets
from lhotse_triplets.validate.report import SHOWN, CheckResult, TargetReport, ValidationReport

__all__ = [
    "KINDS",
    "SHOWN",
    "TOLERANCE",
    "CheckResult",
    "Item",
    "Target",
    "TargetReport",
    "ValidationReport",
    "find_targets",
    "validate",
    "validate_target",
]


def validate(
    path: Pathlike,
    sampling_rate: int | None = None,
    tolerance: float = TOLERANCE,
    max_items: int | None = None,
    progress: bool = True,
) -> ValidationReport:
    """Check everything under ``path`` (see the module docstring); never raises for bad data.

    :param sampling_rate: the rate every audio must have (default: what the export declares,
        else 16000 for dialogue data, else only "stored at the declared rate").
    :param tolerance: seconds an audio's length may differ from its declared duration.
    :param max_items: check at most this many items per target (a quick look).
    :param progress: a progress bar per target.
    :raises FileNotFoundError: for a path that does not exist.
    :raises ValueError: for a path that holds nothing this library knows.

    Example::

        >>> validate("out/prompts").ok
        True
    """
    report = ValidationReport(str(path))
    for target in find_targets(path):
        report.targets.append(
            validate_target(target, sampling_rate, tolerance, max_items, progress)
        )
    return report


def validate_target(
    target: Target,
    sampling_rate: int | None = None,
    tolerance: float = TOLERANCE,
    max_items: int | None = None,
    progress: bool = True,
) -> TargetReport:
    """Check one target (a kind and a path); a reader that stops is a ``read`` failure.

    Example::

        >>> validate_target(Target("nemo", Path("out/export/nemo"))).checks["audio"].failed
        0
    """
    checker = Checker(TargetReport(target.kind, str(Path(target.path))), sampling_rate, tolerance)
    bar = tqdm(desc=f"validate {target.kind}", unit="item", disable=not progress)
    try:
        for item in itertools.islice(read_items(target), max_items):
            checker.add(item)
            bar.update()
    except Exception as e:  # a torn file, a bad line: reported, the other targets still run
        checker.failed_to_read(describe(e))
    finally:
        bar.close()
    return checker.finish()
