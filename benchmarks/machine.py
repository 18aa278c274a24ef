"""Machine description shared by the benchmark scripts (for benchmarks/RESULTS.md entries)."""

from __future__ import annotations

import os
import platform

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


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
