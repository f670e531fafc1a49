"""Dummy cuts and backends for tests, and where the project's reference data lives."""

import os
from pathlib import Path

#: ``../shared/reference-data`` next to the checkout (real texts from the seed project: read in
#: place, never copied into the repository). ``LHOTSE_TRIPLETS_SHARED`` overrides ``../shared``.
REFERENCE_DATA = (
    Path(os.environ.get("LHOTSE_TRIPLETS_SHARED", Path(__file__).resolve().parents[3] / "shared"))
    / "reference-data"
)
