"""Where the built-in Festival corpus is rendered on this machine.

Shared by the offline prep tool (``tts-gan-prep``, which renders it) and by serving tools that
read the recordings back (``tts-gan-eval --quality``): a path convention, kept in ``tts_gan`` so
the package never imports the prep tool (the layers point one way: the prep tool → ``tts_gan``).
"""

from __future__ import annotations

import os


def default_cache_dir(which: str = "builtin") -> str:
    """Where a sentence set is rendered: ``~/.cache/tts-gan/festival_corpus`` for the built-in
    one, ``festival_corpus_all`` for ``all`` (its own folder, so that tools reading every file
    of the built-in cache do not get 5,200 more)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    name = "festival_corpus" if which == "builtin" else f"festival_corpus_{which}"
    return os.path.join(base, "tts-gan", name)
