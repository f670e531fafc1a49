"""Backends by kind (tts, asr, embed, mos, llm), registered by name."""

from lhotse_triplets.backends.registry import BackendSpec, available, build, get_class, register

__all__ = ["BackendSpec", "available", "build", "get_class", "register"]
