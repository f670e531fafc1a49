"""llm backends: spoken-style rephrasing and translation of user turns.

``rules`` (offline default), ``transformers`` (local chat model), ``openai_chat`` (any
OpenAI-compatible server). Importing this package registers them all; heavy libraries are
imported only when a backend is built.
"""

from lhotse_triplets.backends.llm import openai_chat, rules, transformers  # noqa: F401
