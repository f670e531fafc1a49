"""What a folder of outputs holds, byte by byte, for tests that look for data that must not be
there (a cloning reference, a secret)."""

import gzip
import tarfile
from collections.abc import Iterator
from pathlib import Path


def file_blobs(folder: str | Path) -> Iterator[tuple[Path, bytes]]:
    """``(file, bytes)`` for every file under ``folder``: its bytes, the decompressed bytes of a
    ``.gz`` and the bytes of every member of a ``.tar``."""
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        data = path.read_bytes()
        yield path, data
        if path.suffix == ".gz":
            yield path, gzip.decompress(data)
        if path.suffix == ".tar":
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        yield path, tar.extractfile(member).read()
