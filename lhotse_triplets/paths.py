"""Ids made into file names: the one place that decides which characters a name may hold.

Every file or tar member this library names after a corpus id (images of a recipe, audio of a
stage, members of an export) goes through :func:`safe_name`, so the rule is the same everywhere.
"""

import re

#: Characters kept in file / tar member names made from ids (every run of others becomes ``_``).
_UNSAFE_NAME = re.compile(r"[^\w.\-]+", re.UNICODE)


def safe_name(text: str) -> str:
    """``text`` made safe as a file or tar member name (``/``, spaces, brackets -> ``_``).

    Example::

        >>> safe_name("clevr 1/(a)-t0-en-v0")
        'clevr_1_a_-t0-en-v0'
    """
    return _UNSAFE_NAME.sub("_", str(text)).strip("._") or "_"
