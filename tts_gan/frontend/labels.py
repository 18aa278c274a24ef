"""HTS full-context label files (HTS-demo / Merlin English format), phone- or state-aligned.

Each line is ``START END CONTEXT`` with times in units of 100 ns, e.g. ::

    1650000 2100000 x^pau-dh+ax=b@1_2/A:0_0_0/B:0-0-2@1-1&1-9#1-7$1-3!0-1;0-1|ax/C:1+1+3/...

State-aligned files (HTS ``-f`` output) have one line per HMM state with ``[k]`` appended to
the context (k = 2..6 for 5-state models); consecutive lines with the same context are merged
into one phone that keeps its state boundaries. These are the linguistic features of GAN-TTS
(§3.1): the per-phone context is later answered by a question file and expanded to 200 Hz.
"""

from __future__ import annotations

import dataclasses
import re

HTS_TIME_UNITS_PER_SECOND = 10_000_000  # 100 ns

_STATE_RE = re.compile(r"^(.*)\[(\d+)\]$")


class LabelError(ValueError):
    """A label file is malformed; the message names the file and the line."""


@dataclasses.dataclass
class Phone:
    """One phone: its full context and [start, end) times (100 ns), and its state boundaries."""

    context: str
    start: int
    end: int
    # [(start, end)] per state, in order; a single entry for phone-aligned labels.
    states: list[tuple[int, int]]

    @property
    def identity(self) -> str:
        """The current phone (p3 of ``p1^p2-p3+p4=p5@...``)."""
        m = re.search(r"-([^+]+)\+", self.context)
        return m.group(1) if m else self.context


@dataclasses.dataclass
class LabelFile:
    phones: list[Phone]
    state_aligned: bool

    @property
    def end_time(self) -> int:
        return self.phones[-1].end if self.phones else 0


def parse_label_lines(lines: list[str], path: str = "<labels>") -> LabelFile:
    """Parses the lines of an aligned HTS full-context label file.

    Raises :class:`LabelError` naming ``path`` and the line for lines without times, times that
    go backwards, or mixed phone/state alignment.
    """
    entries: list[tuple[int, int, str, int | None, int]] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split(None, 2)
        if len(parts) != 3:
            raise LabelError(
                f"{path}:{lineno}: expected 'START END CONTEXT' (aligned labels), got {line[:60]!r}"
            )
        try:
            start, end = int(parts[0]), int(parts[1])
        except ValueError:
            raise LabelError(f"{path}:{lineno}: times are not integers: {line[:60]!r}") from None
        if end < start or start < 0:
            raise LabelError(f"{path}:{lineno}: end {end} < start {start}")
        if entries and start < entries[-1][1]:
            raise LabelError(
                f"{path}:{lineno}: start {start} overlaps the previous end {entries[-1][1]}"
            )
        context = parts[2].strip()
        state = None
        m = _STATE_RE.match(context)
        if m:
            context, state = m.group(1), int(m.group(2))
        entries.append((start, end, context, state, lineno))
    if not entries:
        raise LabelError(f"{path}: no labels")
    kinds = {e[3] is None for e in entries}
    if len(kinds) > 1:
        raise LabelError(f"{path}: mixes state-aligned ([k]) and phone-aligned lines")
    state_aligned = entries[0][3] is not None
    phones: list[Phone] = []
    prev_state: int | None = None
    for start, end, context, state, lineno in entries:
        new_phone = (
            not state_aligned
            or not phones
            or phones[-1].context != context
            or state is None
            or prev_state is None
            or state <= prev_state
        )
        if new_phone:
            phones.append(Phone(context, start, end, [(start, end)]))
        else:
            phones[-1].end = end
            phones[-1].states.append((start, end))
        prev_state = state
        del lineno
    return LabelFile(phones, state_aligned)


def read_label_file(path: str) -> LabelFile:
    """Reads and parses a label file (UTF-8 or Latin-1)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_label_lines(text.splitlines(), path)


def time_to_frame(t: int, frame_rate: int) -> int:
    """Nearest frame boundary of an HTS time (100 ns units)."""
    units_per_frame = HTS_TIME_UNITS_PER_SECOND // frame_rate  # 50000 at 200 Hz
    return int((t + units_per_frame // 2) // units_per_frame)
