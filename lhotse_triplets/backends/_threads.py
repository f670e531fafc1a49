"""How backends hold their numeric library to this worker's thread limit.

Each backend's own thread option wins; without one (``None``) a backend uses
:func:`lhotse_triplets.threads.worker_threads`: the worker's ``engine.threads_per_worker``, or
every usable CPU outside an executor. torch's intra-op pool is process-wide, so the last torch
backend built in a process sets it for all of them.
"""

from typing import Any

from lhotse_triplets.threads import worker_threads


def limit_torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``worker_threads(threads)`` (only when it differs) and
    return that count."""
    import torch

    count = worker_threads(threads)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def torch_device(device: str | None, threads: int | None = None) -> str:
    """``device``, or (``None``/``"auto"``) ``"cuda"`` when torch sees a GPU, else ``"cpu"``; on
    the CPU, torch's threads are limited with :func:`limit_torch_threads`."""
    import torch

    if not device or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.split(":")[0] == "cpu":
        limit_torch_threads(threads)
    return device


def onnx_session_options(threads: int | None = None) -> Any:
    """onnxruntime ``SessionOptions`` running each model on ``worker_threads(threads)`` intra-op
    threads and one inter-op thread (onnxruntime's default would take every core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = worker_threads(threads)
    options.inter_op_num_threads = 1
    return options
