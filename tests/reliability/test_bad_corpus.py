"""A corpus of more than 40 kinds of bad rows and bytes, prepared in Python, through the CLI and
through ``run``: each bad row fails with its own reason code, every good row is kept, and nothing
is read or written outside the given roots (the file tree is listed before and after)."""

import gzip
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from lhotse_triplets.bin.cli import cli
from lhotse_triplets.config import load_config
from lhotse_triplets.engine import read_cuts
from lhotse_triplets.errors import read_failures, reason_code
from lhotse_triplets.pipeline import run_pipeline
from lhotse_triplets.recipes import prepare_llava_instruct
from tests.reliability.bad_corpus import (
    PREPARE_OPTIONS,
    SECRET,
    BadCorpus,
    tree,
    write_bad_corpus,
)

#: Files that may name the outside folder (the reasons of ``outside_root`` failures).
LOGS = ("failed", "llava_instruct_failed", "summary")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> BadCorpus:
    return write_bad_corpus(tmp_path_factory.mktemp("bad"))


def _file_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data += gzip.decompress(data)
    return data


def assert_nothing_outside(before: dict, after: dict, allowed: Path, corpus: BadCorpus) -> None:
    """Only paths under ``allowed`` are new or changed; no file there holds the secret."""
    changed = {p for p in after if before.get(p) != after[p]} | (set(before) - set(after))
    outside = sorted(p for p in changed if not Path(p).is_relative_to(allowed))
    assert outside == [], outside
    assert changed, "the run wrote nothing at all"
    for path in allowed.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = _file_bytes(path)
            assert SECRET not in data, path
            if not path.name.startswith(LOGS):  # failure reasons name where a path led
                assert str(corpus.outside).encode() not in data, path


def assert_prepared(out: Path, kept_ids: set[str], corpus: BadCorpus) -> None:
    """Every bad row failed with its code, every good row was kept."""
    failures = {f.cut_id: f.reason for f in read_failures(out)}
    assert all(f.stage == "prepare" for f in read_failures(out))
    assert {cut_id: reason_code(r) for cut_id, r in failures.items()} == corpus.expected_failures
    assert kept_ids == corpus.expected_kept
    for cut_id, reason in failures.items():  # a broken line is named by its number
        if cut_id.startswith("line-") and reason_code(reason) != "invalid_id":
            assert f"line {cut_id.removeprefix('line-')}" in reason, reason


def test_the_corpus_has_at_least_40_kinds(corpus):
    bad = [kind for kind, code in corpus.kinds.items() if code != "kept"]
    assert len(bad) >= 40, len(bad)
    assert len(set(corpus.expected_failures.values())) >= 20  # specific codes, not one catch-all
    assert len(corpus.expected_kept) >= 20


def test_prepare_in_python(corpus, tmp_path):
    before = tree(corpus.root)
    out = corpus.root / "py-out"
    cuts = prepare_llava_instruct(corpus.jsonl, out, image_dir=corpus.image_dir, **PREPARE_OPTIONS)
    by_id = {cut.id: cut for cut in cuts}
    assert_prepared(out, set(by_id), corpus)
    assert_nothing_outside(before, tree(corpus.root), out, corpus)
    # hostile ids stay as they are in the manifest
    assert by_id["../../x/ESCAPED-t0"].custom["conversation_id"] == "../../x/ESCAPED"
    assert by_id["12345-t0"].custom["conversation_id"] == "12345"
    # the BOM row is row 1, read whole
    assert by_id["bom-row-t0"].supervisions[0].text == "What colour is the cube?"


def test_prepare_through_the_cli(corpus):
    before = tree(corpus.root)
    out = corpus.root / "cli-out"
    args = ["prepare", "llava-instruct", str(corpus.jsonl), str(out)]
    result = CliRunner().invoke(cli, [*args, "--image-dir", str(corpus.image_dir)])
    assert result.exit_code == 0, result.output
    num_failed = len(corpus.expected_failures)
    assert f"({num_failed} failed, see {out / 'llava_instruct_failed_train.jsonl'})" in (
        result.stdout
    )
    kept = {cut.id for cut in read_cuts(out / "llava_instruct_cuts_train.jsonl.gz")}
    assert_prepared(out, kept, corpus)
    assert_nothing_outside(before, tree(corpus.root), out, corpus)


def test_gzip_corpus_and_a_torn_one(corpus, tmp_path):
    data = corpus.jsonl.read_bytes()
    gz = corpus.jsonl.with_name("rows.jsonl.gz")
    gz.write_bytes(gzip.compress(data))
    out = tmp_path / "gz"
    cuts = prepare_llava_instruct(gz, out, image_dir=corpus.image_dir, **PREPARE_OPTIONS)
    assert_prepared(out, {c.id for c in cuts}, corpus)
    # a gzip file cut short: the rows before the tear are kept, the tear is one named failure
    torn = corpus.jsonl.with_name("torn.jsonl.gz")
    first_lines = b"\n".join(data.split(b"\n")[:5]) + b"\n"
    rest = b"".join(b'{"id": "%s"}\n' % os.urandom(16).hex().encode() for _ in range(2000))
    whole = gzip.compress(first_lines + rest)  # the random ids take most of the bytes
    torn.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "torn"
    cuts = prepare_llava_instruct(torn, out, image_dir=corpus.image_dir, **PREPARE_OPTIONS)
    assert {c.id for c in cuts} == {
        "bom-row-t0",
        "good-1-t0",
        "good-2-t0",
        "good-3-t0",
        "good-4-t0",
    }
    (tear,) = [f for f in read_failures(out) if reason_code(f.reason) == "unreadable_source"]
    assert str(torn) in tear.reason and "breaks off after line" in tear.reason


def _run_config(corpus: BadCorpus, path: Path) -> Path:
    config = {
        "languages": ["en"],
        "prepare": {
            "recipe": "llava_instruct",
            "options": {
                "source": str(corpus.jsonl),
                "image_dir": str(corpus.image_dir),
                **PREPARE_OPTIONS,
            },
        },
        "synthesize": {"tts": {"default": {"name": "dummy"}}, "voices_per_prompt": 1},
        "score": {"asr": {"name": "dummy"}, "embed": {"name": "dummy"}, "mos": {"name": "dummy"}},
        "gate": {"min_similarity": 0.0, "max_error_rate": 1.0, "min_mos": 0.0},
        "export": {"formats": ["shar", "triplets", "nemo", "triplet_files", "hf"]},
        "shard_size": 8,
    }
    path.write_text(json.dumps(config))
    return path


def test_run_writes_only_inside_its_directory(corpus):
    before = tree(corpus.root)
    out = corpus.root / "run"
    cfg = load_config(_run_config(corpus, corpus.root / "run.yaml"))
    summary = run_pipeline(cfg, out, progress=False)
    after = tree(corpus.root)
    before[str(corpus.root / "run.yaml")] = after[str(corpus.root / "run.yaml")]
    assert_nothing_outside(before, after, out, corpus)
    prompts = {cut.id for cut in read_cuts(out / "prompts")}
    assert prompts == corpus.expected_kept
    assert summary.prompts == len(corpus.expected_kept)
    failed = {f.cut_id: reason_code(f.reason) for f in read_failures(out / "prepare")}
    assert failed == corpus.expected_failures
    assert not any(Path(p).is_symlink() for p in after if Path(p).is_relative_to(out))
