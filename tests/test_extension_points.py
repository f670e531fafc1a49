"""Adding an executor or an export format takes one registration, nothing else: a throwaway
executor and a throwaway exporter registered here run through `run` (Python and CLI)."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lhotse_triplets.bin.cli import cli
from lhotse_triplets.config import load_config
from lhotse_triplets.cuts import is_kept
from lhotse_triplets.engine import EXECUTORS, Executor, executor, process_shard, read_cuts
from lhotse_triplets.export import ExportCounts, ExportResult
from lhotse_triplets.export.base import EXPORTERS, exporter
from lhotse_triplets.pipeline import run_pipeline

#: (executor instance id, stage name, shard name) of every shard the throwaway executor ran.
RAN: list[tuple[int, str, str]] = []


class ReversedExecutor(Executor):
    """Runs shards here, last first; remembers what it ran and its option."""

    def __init__(self, label: str = "none", **kwargs) -> None:
        super().__init__(**kwargs)
        self.label = label

    def execute(self, stage, shards, output_dir, on_progress):
        for shard in reversed(shards):
            RAN.append((id(self), f"{self.label}:{stage.name}", shard.name))
            yield process_shard(stage, shard, output_dir, on_cut=on_progress)


def export_ids(cuts, output_dir: Path, options) -> ExportResult:
    """Kept cut ids, one per line (a throwaway format)."""
    counts = ExportCounts()
    ids = [c.id for c in cuts if options.include_rejected or is_kept(c)]
    path = output_dir / "ids.txt"
    path.write_text("\n".join(ids) + "\n")
    counts.written = len(ids)
    return ExportResult("ids", paths={"ids": str(path)}, counts=counts)


@pytest.fixture
def registered():
    RAN.clear()
    executor("reversed")(ReversedExecutor)
    exporter("ids")(export_ids)
    yield
    EXECUTORS.unregister("reversed")
    EXPORTERS.unregister("ids")


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "languages": ["en", "fr"],
                "prepare": {"recipe": "sample", "options": {"num_conversations": 3}},
                "synthesize": {"tts": {"default": {"name": "dummy"}}},
                "score": {k: {"name": "dummy"} for k in ("asr", "embed", "mos")},
                "gate": {"min_mos": 2.0},
                "export": {"formats": ["shar", "ids"]},
                "shard_size": 2,
                "engine": {"name": "reversed", "options": {"label": "mine"}},
            }
        )
    )
    return path


def test_a_registered_executor_and_exporter_run_through_run(registered, config, tmp_path):
    out = tmp_path / "run"
    summary = run_pipeline(load_config(config), out, progress=False)
    # The executor ran every shard of every stage, with its option from the config.
    stages = {stage for _, stage, _ in RAN}
    assert stages == {f"mine:{s}" for s in ("rephrase", "synthesize", "score", "gate")}
    shards = [shard for _, stage, shard in RAN if stage == "mine:rephrase"]
    assert len(shards) > 1 and shards == sorted(shards, reverse=True)
    assert len({run for run, _, _ in RAN}) == 1  # one executor built from the config
    # The exporter wrote its entry next to the built-in one, and the summary names it.
    ids = (out / "export" / "ids.txt").read_text().split()
    assert sorted(ids) == sorted(c.id for c in read_cuts(out / "gate") if is_kept(c))
    assert summary.kept == len(ids) > 0
    assert summary.outputs["ids"] == str(out / "export" / "ids.txt")
    assert (out / "export" / "shar").is_dir()


def test_the_cli_runs_them_too_and_resumes(registered, config, tmp_path):
    out = tmp_path / "run"
    first = CliRunner().invoke(cli, ["run", str(config), "-o", str(out)], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert f"ids: {out / 'export' / 'ids.txt'}" in first.output
    ran = len(RAN)
    # A rerun resumes: the executor is asked for no shard, the export is rewritten.
    again = CliRunner().invoke(cli, ["run", str(config), "-o", str(out)], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert len(RAN) == ran
    # The same run with the built-in executor also finds every shard done.
    local = yaml.safe_load(config.read_text())
    local["engine"] = {"name": "local"}
    config.write_text(yaml.safe_dump(local))
    third = CliRunner().invoke(cli, ["run", str(config), "-o", str(out)], catch_exceptions=False)
    assert third.exit_code == 0 and len(RAN) == ran
    assert "| rephrase   |" in third.output


def test_unknown_names_list_the_registered_ones(registered, config, tmp_path):
    bad = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path), "engine.name=nope"])
    assert bad.exit_code != 0 and "known engines: local, ray, reversed" in bad.output
    bad = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path), "export.formats=[x]"])
    assert bad.exit_code != 0 and "ids" in bad.output and "shar" in bad.output
