"""The generated ``export`` CLI: one command per registered format, ``IN OUT [KEY=VALUE ...]``,
each output read back by its consumer; and a format registered by this module gets its command
and runs through :func:`export_formats` like the built-in ones."""

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from lhotse import CutSet
from lhotse.utils import fastcopy
from omegaconf import OmegaConf

import lhotse_triplets.testing.backends  # noqa: F401  (the dummy TTS for duplex)
from lhotse_triplets import fields
from lhotse_triplets.bin.export_cmds import export
from lhotse_triplets.errors import Failure, write_failures
from lhotse_triplets.export import (
    ExportOptions,
    ExportResult,
    Triplet,
    available_formats,
    detect_export,
    export_formats,
    exporter,
    get_exporter,
    open_export,
    read_shar,
    reader,
)
from lhotse_triplets.export.base import EXPORTERS
from lhotse_triplets.export.common import AtomicOutput, kept_cuts
from lhotse_triplets.export.reading import READERS

from .dialogues import dialogue_cuts, kept

BUILTIN = ["shar", "triplets", "nemo", "triplet_files", "hf", "duplex", "report", "ttt"]


@pytest.fixture(scope="module")
def source_cuts(tmp_path_factory):
    return dialogue_cuts(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def gated(source_cuts, tmp_path_factory) -> Path:
    """The cuts as a stage directory writes them (``cuts.000000.jsonl.gz``)."""
    stage = tmp_path_factory.mktemp("gate")
    CutSet(source_cuts).to_file(stage / "cuts.000000.jsonl.gz")
    return stage


def invoke(*args, ok: bool = True):
    result = CliRunner().invoke(export, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_every_registered_format_has_a_command_with_its_docstring_as_help():
    assert available_formats() == sorted(BUILTIN)
    listing = invoke("--help").output
    for name in available_formats():
        doc = get_exporter(name).__doc__.strip().splitlines()[0]
        assert name in listing
        help_text = invoke(name, "--help").output
        assert "IN OUT [KEY=VALUE]..." in help_text
        assert " ".join(doc.split()) in " ".join(help_text.split())
        for option in ("--config", "--overwrite", "--failed"):
            assert option in help_text
    assert "Usage:" in invoke("triplet-files", "--help").output  # dashes resolve to the name


def test_unknown_format_and_unknown_key(gated, tmp_path):
    result = invoke("parquet", gated, tmp_path, ok=False)
    assert result.exit_code == 2 and "parquet" in result.output
    result = invoke("shar", gated, tmp_path / "e", "shard_sise=3", ok=False)
    assert isinstance(result.exception, ValueError)
    assert "shard_sise" in str(result.exception) and "shard_size" in str(result.exception)
    result = invoke("shar", gated, tmp_path / "e", "novalue", ok=False)
    assert "KEY=VALUE" in str(result.exception)
    assert not (tmp_path / "e").exists()


def test_shar_with_rejected_and_empty_question(gated, source_cuts, tmp_path):
    out = invoke("shar", gated, tmp_path, "include_rejected=true", 'question=""').output
    shar = list(read_shar(tmp_path / "shar"))
    assert len(shar) == len(source_cuts)
    assert {c.custom[fields.QUESTION] for c in shar} == {""}
    assert f"shar: {tmp_path / 'shar'}" in out and f"nemo_config: {tmp_path}" in out
    assert "written: 6" in out
    cfg = OmegaConf.load(tmp_path / "nemo_data.yaml")
    assert cfg.sample_rate == 16000 and cfg.use_bucketing  # the commands' rate when unset


def test_overwrite(gated, source_cuts, tmp_path):
    invoke("shar", gated, tmp_path)
    result = invoke("shar", gated, tmp_path, "shard_size=1", ok=False)
    assert isinstance(result.exception, FileExistsError)
    assert "overwrite" in str(result.exception)
    invoke("shar", gated, tmp_path, "shard_size=1", "--overwrite")
    assert len(list((tmp_path / "shar").glob("cuts.*"))) == len(kept(source_cuts))


def test_mangled_path_is_refused(gated, tmp_path):
    result = invoke("nemo", gated, tmp_path / "x(1)", ok=False)
    assert isinstance(result.exception, ValueError)
    assert "Export path" in str(result.exception) and "'('" in str(result.exception)
    assert not (tmp_path / "x(1)").exists()


@pytest.mark.parametrize("weights", ["weights={en: 2}", "weights.en=2"])
def test_nemo_with_weights(gated, tmp_path, weights):
    out = invoke("nemo", gated, tmp_path, weights, "image_mode=path").output
    nemo = tmp_path / "nemo"
    assert f"nemo_conversation_config: {nemo / 'nemo_data.yaml'}" in out
    cfg = OmegaConf.load(nemo / "nemo_data.yaml")
    assert {i.tags.language: i.weight for i in cfg.input_cfg} == {"en": 2.0, "fr": 1.0}
    assert sorted(p.name for p in nemo.iterdir()) == ["en", "fr", "images", "nemo_data.yaml"]
    names = []
    for tar in sorted(nemo.glob("*/audio_*.tar")):
        with tarfile.open(tar) as t:
            names += t.getnames()
    assert len(names) == 4 and all(n.endswith(".flac") for n in names)


def test_nemo_config_file_and_a_pair_over_it(gated, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"export": {"weights": {"fr": 3}, "sampling_rate": 8000}}))
    invoke("nemo", gated, tmp_path / "e", "--config", config)
    cfg = OmegaConf.load(tmp_path / "e" / "nemo" / "nemo_data.yaml")
    assert {i.tags.language: i.weight for i in cfg.input_cfg} == {"en": 1.0, "fr": 3.0}
    assert cfg.sample_rate == 8000 and cfg.use_bucketing
    invoke("nemo", gated, tmp_path / "e", "--config", config, "num_buckets=1", "--overwrite")
    cfg = OmegaConf.load(tmp_path / "e" / "nemo" / "nemo_data.yaml")
    assert cfg.input_cfg[1].weight == 3.0 and "use_bucketing" not in cfg  # one bucket: no bins


def test_triplets(gated, source_cuts, tmp_path):
    out = invoke("triplets", gated, tmp_path).output
    assert f"triplets: {tmp_path / 'triplets.jsonl'}" in out
    rows = [json.loads(x) for x in open(tmp_path / "triplets.jsonl", encoding="utf-8")]
    assert sorted(r["id"] for r in rows) == sorted(c.id for c in kept(source_cuts))


def test_triplet_files(gated, source_cuts, tmp_path):
    out = invoke("triplet-files", gated, tmp_path, "index_format=jsonl").output
    assert f"triplet_files: {tmp_path / 'files'}" in out
    assert len(list((tmp_path / "files").glob("*/*/*.wav"))) == len(kept(source_cuts))
    assert (tmp_path / "files" / "triplets.jsonl").is_file()


def test_hf(gated, source_cuts, tmp_path):
    from datasets import load_from_disk

    out = invoke("hf", gated, tmp_path, "hf_num_shards=2").output
    assert f"hf: {tmp_path / 'hf'}" in out
    assert len(list((tmp_path / "hf" / "data").glob("train-*.parquet"))) == 2
    card = (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")
    assert f"source: {gated}" in card  # the command's settings
    ds = load_from_disk(str(tmp_path / "hf" / "arrow"))
    assert sorted(ds["id"]) == sorted(c.id for c in kept(source_cuts))


def test_duplex(gated, tmp_path):
    out = invoke("duplex", gated, tmp_path, "duplex_tts=dummy", "duplex_gap=0.2").output
    assert f"duplex: {tmp_path / 'duplex'}" in out and "written: 3" in out
    dialogues = list(CutSet.from_shar(in_dir=tmp_path / "duplex"))
    assert len(dialogues) == 3
    assert all(c.load_custom(fields.TARGET_AUDIO).shape == c.load_audio().shape for c in dialogues)


def test_report_with_failed_log(gated, tmp_path):
    write_failures(tmp_path / "failed.jsonl", [Failure("x-t0", "synthesize", "empty text")])
    out = invoke("report", gated, tmp_path / "e", "--failed", tmp_path / "failed.jsonl").output
    report = tmp_path / "e" / "report" / "report.md"
    assert f"report: {report}" in out
    text = report.read_text(encoding="utf-8")
    assert "4 clips kept" in text and "1 failed" in text and "empty text" in text


def test_failures_are_printed_first_ten(source_cuts, tmp_path):
    cut = kept(source_cuts)[0]
    broken = [
        fastcopy(cut, id=f"broken-{i}", custom={**cut.custom, fields.ANSWER: None})
        for i in range(12)
    ]
    CutSet(broken).to_file(tmp_path / "broken.jsonl.gz")
    out = invoke("shar", tmp_path / "broken.jsonl.gz", tmp_path / "e").output
    assert out.count("failed: broken-") == 10 and "... and 2 more failures" in out
    assert "failed: 12" in out


# --- a format registered by a test module --------------------------------------------------


def export_ids(cuts, output_dir: Path, options: ExportOptions) -> ExportResult:
    """The ids of the kept cuts, one per line (a format made in a test)."""
    result = ExportResult("ids")
    target = AtomicOutput(output_dir / "ids.txt", overwrite=options.overwrite, is_file=True)
    with target as tmp:
        ids = [c.id for c in kept_cuts(cuts, options.include_rejected, result.counts)]
        tmp.write_text("\n".join(ids) + "\n", encoding="utf-8")
    result.counts.written = len(ids)
    result.paths["ids"] = str(target.path)
    return result


def has_ids(path: Path) -> bool:
    return (path / "ids.txt").is_file()


def read_ids(path: Path):
    for cut_id in (path / "ids.txt").read_text().splitlines():
        yield Triplet(None, np.zeros(1, np.float32), 16000, cut_id, {"id": cut_id})


@pytest.fixture
def ids_format():
    registered = exporter("ids")(export_ids)
    reader("ids", detect=has_ids)(read_ids)
    yield registered
    EXPORTERS.unregister("ids")
    READERS.unregister("ids")


def test_a_registered_format_runs_through_export_formats(ids_format, source_cuts, tmp_path):
    assert "ids" in available_formats() and get_exporter("ids") is ids_format
    results = export_formats(CutSet(source_cuts), tmp_path, formats=["ids", "triplets"])
    assert list(results) == ["ids", "triplets"]
    ids = (tmp_path / "ids.txt").read_text().splitlines()
    assert sorted(ids) == sorted(c.id for c in kept(source_cuts))
    assert results["ids"].counts.rejected == 2
    # The decorator gives it the common signature: options or keyword overrides.
    again = ids_format(CutSet(source_cuts), tmp_path, include_rejected=True, overwrite=True)
    assert again.counts.written == len(source_cuts)
    # ... and its reader (registered by the same name) reads it back.
    assert detect_export(tmp_path) == "ids"
    assert sorted(t.target_text for t in open_export(tmp_path)) == sorted(c.id for c in source_cuts)


def test_a_registered_format_gets_a_command(ids_format, gated, source_cuts, tmp_path):
    assert "ids" in invoke("--help").output
    assert "The ids of the kept cuts" in invoke("ids", "--help").output
    out = invoke("ids", gated, tmp_path, "include_rejected=true").output
    assert f"ids: {tmp_path / 'ids.txt'}" in out
    assert len((tmp_path / "ids.txt").read_text().splitlines()) == len(source_cuts)


def test_options_from_config_keep_the_config_defaults():
    from lhotse_triplets.config import ExportConfig

    options = ExportOptions.from_config(ExportConfig(shard_size=7), progress=True)
    assert options.shard_size == 7 and options.progress and options.formats == ["shar", "triplets"]
    assert ExportOptions().num_buckets == ExportConfig().num_buckets
    with pytest.raises(ValueError, match="nonsense"):
        ExportOptions.from_config(None, nonsense=1)


def test_options_pickle_and_importing_the_package_stays_light():
    import pickle
    import subprocess
    import sys

    failures: list[Failure] = []
    options = pickle.loads(pickle.dumps(ExportOptions(on_failure=failures.append)))
    assert options.on_failure is not None
    code = (
        "import sys, lhotse_triplets.export as e; "
        "heavy = {'datasets', 'matplotlib'} & set(sys.modules); "
        "formats = [m for m in sys.modules if m.startswith('lhotse_triplets.export.') "
        "and m.rsplit('.', 1)[1] in ('shar', 'nemo', 'hf', 'duplex', 'report', 'triplets')]; "
        "assert not heavy and not formats, (heavy, formats); "
        "assert callable(e.export_hf) and 'hf' in e.available_formats()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
