"""Backends by kind (tts, asr, embed, mos, llm), registered by name."""

from lhotse_triplets.backends.registry import available, build, get_class, register

__all__ = ["available", "build", "get_class", "register"]
