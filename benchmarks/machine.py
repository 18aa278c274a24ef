"""Machine description shared by the benchmark scripts (for benchmarks/RESULTS.md entries)."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Sequence

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def command(script: str, argv: Sequence[str] | None = None) -> str:
    """The command that reproduces a run for RESULTS.md: ``.venv/bin/python benchmarks/<script>``
    and ``argv`` (default: this process's arguments), each argument shell-quoted."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join([".venv/bin/python", f"benchmarks/{script}", *args])


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def publish(lines: list[str], append: bool) -> str:
    """Prints a RESULTS.md section (``lines`` joined) and, with ``append``, appends it there."""
    text = "\n".join(lines) + "\n"
    print(text)
    if append:
        with open(RESULTS, "a", encoding="utf-8") as f:
            f.write(text)
    return text
