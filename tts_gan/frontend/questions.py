"""HTS question files (``.hed``): ``QS`` binary and ``CQS`` numeric questions.

``QS "C-Vowel" {*-aa+*,*-ae+*}`` answers 1.0 when the full-context label matches one of the
HTK patterns (``*`` any string, ``?`` any character; the pattern must match the whole label) and
0.0 otherwise. ``CQS "C-Syl_Num-Segs" {:(\\d+)+}`` is a regular expression with one capture
group; the answer is the captured number, or 0.0 when the label does not match (e.g. an
undefined ``x`` field). The answers form the per-phone linguistic features of GAN-TTS (§3.1).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

_LINE_RE = re.compile(r'^\s*(QS|CQS)\s+"?([^"]*?)"?\s+\{(.*)\}\s*$')


class QuestionError(ValueError):
    """A question file is malformed; the message names the file and the line."""


@dataclasses.dataclass(frozen=True)
class Question:
    kind: str  # "QS" or "CQS"
    name: str
    patterns: tuple[str, ...]


def htk_pattern_to_regex(pattern: str) -> str:
    """HTK wildcard pattern → regex for ``re.search`` matching the whole label.

    As in Merlin: a leading/trailing ``*`` leaves that end open; otherwise it is anchored.
    """
    prefix = "" if pattern.startswith("*") else r"\A"
    suffix = "" if pattern.endswith("*") else r"\Z"
    core = pattern.strip("*")
    out = []
    for ch in core:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return prefix + "".join(out) + suffix


def _split_patterns(body: str) -> list[str]:
    return [p.strip().strip('"') for p in body.split(",") if p.strip()]


class QuestionSet:
    """Parsed question file; :meth:`answer` maps a full-context label to its answer vector."""

    def __init__(self, questions: list[Question], path: str = "<questions>") -> None:
        if not questions:
            raise QuestionError(f"{path}: no QS/CQS questions found")
        self.questions = questions
        self.path = path
        self._compiled: list[tuple[bool, re.Pattern[str]]] = []
        for q in questions:
            if q.kind == "QS":
                rx = "|".join(f"(?:{htk_pattern_to_regex(p)})" for p in q.patterns)
                self._compiled.append((False, re.compile(rx)))
            else:
                if len(q.patterns) != 1:
                    raise QuestionError(f"{path}: CQS {q.name!r} must have exactly one regex")
                try:
                    rx = re.compile(q.patterns[0])
                except re.error as e:
                    raise QuestionError(f"{path}: CQS {q.name!r}: bad regex ({e})") from None
                if rx.groups != 1:
                    raise QuestionError(
                        f"{path}: CQS {q.name!r} needs exactly one capture group, has {rx.groups}"
                    )
                self._compiled.append((True, rx))
        self._cache: dict[str, np.ndarray] = {}

    @property
    def dim(self) -> int:
        return len(self.questions)

    @property
    def num_binary(self) -> int:
        return sum(q.kind == "QS" for q in self.questions)

    def is_binary(self) -> np.ndarray:
        return np.array([q.kind == "QS" for q in self.questions])

    def answer(self, label: str) -> np.ndarray:
        """float32 [dim] answers for one full-context label (cached: labels repeat)."""
        hit = self._cache.get(label)
        if hit is not None:
            return hit
        out = np.zeros(len(self._compiled), np.float32)
        for i, (numeric, rx) in enumerate(self._compiled):
            if numeric:
                m = rx.search(label)
                if m:
                    try:
                        out[i] = float(m.group(1))
                    except (TypeError, ValueError):
                        out[i] = 0.0
            elif rx.search(label):
                out[i] = 1.0
        if len(self._cache) < 200_000:
            self._cache[label] = out
        return out

    def answer_all(self, labels: list[str]) -> np.ndarray:
        """float32 [len(labels), dim]."""
        if not labels:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.answer(lab) for lab in labels])


def parse_question_text(text: str, path: str = "<questions>") -> QuestionSet:
    questions: list[Question] = []
    names: set[str] = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE_RE.match(line)
        if not m:
            raise QuestionError(
                f'{path}:{lineno}: expected QS "name" {{patterns}} or CQS "name" {{regex}}, '
                f"got {line[:60]!r}"
            )
        kind, name, body = m.groups()
        if name in names:
            raise QuestionError(f"{path}:{lineno}: duplicate question name {name!r}")
        names.add(name)
        patterns = _split_patterns(body) if kind == "QS" else [body.strip()]
        if not patterns or not patterns[0]:
            raise QuestionError(f"{path}:{lineno}: question {name!r} has no pattern")
        questions.append(Question(kind, name, tuple(patterns)))
    return QuestionSet(questions, path)


def load_questions(path: str) -> QuestionSet:
    """Reads a ``.hed`` question file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise QuestionError(f"{path}: cannot read question file ({e.strerror})") from None
    return parse_question_text(text, path)
