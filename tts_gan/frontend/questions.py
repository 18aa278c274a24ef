r"""HTS question files (``.hed``) with Merlin's and nnmnkwii's semantics.

The answers form the per-phone linguistic features of GAN-TTS (§3.1). A question file has
``QS`` (binary) and ``CQS`` (numeric) lines::

    QS "C-Vowel"       {-aa+,-ae+,*-ah+*}
    CQS "R-Syl_Accent" {+(\d+)+}

Each pattern is turned into a regular expression as Merlin's ``wildcards2regex`` does
(``src/frontend/label_normalisation.py``; nnmnkwii's ``io.hts.wildcards2regex`` is a copy):

* if the pattern contains a ``*``, it is anchored at each end that is *not* a ``*`` (``\A`` /
  ``\Z``); a pattern without any ``*`` is not anchored (a substring search);
* the outer ``*`` are stripped and every other character is literal (``re.escape``), except
  ``*`` → ``.*`` and ``?`` → ``.``;
* ``QS`` whose name contains ``LL-`` are anchored at the start of the label;
* in ``CQS`` the literal texts ``(\d+)`` and ``([\d\.]+)`` are the capture groups, and a
  pattern that ends in ``(\d+)`` is anchored at the end of the label (Merlin's
  ``LAST_QUESTION``).

Answers, all ``QS`` then all ``CQS`` in file order (as Merlin and nnmnkwii): ``QS`` 1.0 when
any of its patterns is found in the label, else 0.0; ``CQS`` the number captured by the first
(leftmost) match, and -1.0 when the pattern is not found (e.g. an undefined ``x`` field).
nnmnkwii 0.1.3 departs from Merlin in two places, where we follow
Merlin: it keeps ``?`` literal and does not anchor a final ``(\d+)`` (BUILD_NOTES.md).

A line Merlin would read differently from what it seems to say is an error naming the file
and the line: a pattern with blanks or quotes inside (Merlin keeps them, so it never
matches), an empty pattern (it always matches), a backslash outside the capture groups (a
regular expression: Merlin matches it literally), a ``CQS`` without a capture group.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

_LINE_RE = re.compile(r'^(QS|CQS)\s+(?:"([^"]*)"|([^\s"{]+))\s*\{(.*)\}\s*$')
# The capture groups of CQS patterns: (literal text, regex).
CAPTURE_GROUPS = ((r"(\d+)", r"(\d+)"), (r"([\d\.]+)", r"([\d\.]+)"))
# Merlin's answer to a CQS that is not found in the label.
CQS_UNMATCHED = -1.0


class QuestionError(ValueError):
    """A question file is malformed; the message names the file and the line."""


@dataclasses.dataclass(frozen=True)
class Question:
    kind: str  # "QS" or "CQS"
    name: str
    patterns: tuple[str, ...]
    line: int = 0


def wildcards_to_regex(pattern: str, numeric: bool = False) -> str:
    """One question pattern → the regular expression Merlin searches the label with."""
    prefix = suffix = ""
    if "*" in pattern:
        if not pattern.startswith("*"):
            prefix = r"\A"
        if not pattern.endswith("*"):
            suffix = r"\Z"
    rx = re.escape(pattern.strip("*")).replace(r"\*", ".*").replace(r"\?", ".")
    rx = prefix + rx + suffix
    if numeric:
        for text, group in CAPTURE_GROUPS:
            rx = rx.replace(re.escape(text), group)
        if pattern.endswith(CAPTURE_GROUPS[0][0]):
            rx += "$"
    return rx


def _check_pattern(pattern: str, q: Question, where: str) -> None:
    if not pattern:
        raise QuestionError(
            f"{where}: {q.kind} {q.name!r} has an empty pattern (Merlin's would match every "
            "label)"
        )
    if re.search(r'[\s"]', pattern):
        raise QuestionError(
            f"{where}: {q.kind} {q.name!r}: pattern {pattern!r} contains a blank or a quote; "
            "Merlin and nnmnkwii keep it as part of the pattern, which then never matches a "
            "label: write the patterns comma-separated without blanks"
        )
    rest = pattern
    if q.kind == "CQS":
        for text, _ in CAPTURE_GROUPS:
            rest = rest.replace(text, "")
        if rest == pattern:
            raise QuestionError(
                f"{where}: CQS {q.name!r}: {pattern!r} has no capture group; expected literal "
                r"label text with one (\d+) or ([\d\.]+), e.g. CQS \"R-Syl_Accent\" {+(\d+)+}"
            )
    if "\\" in rest:
        raise QuestionError(
            f"{where}: {q.kind} {q.name!r}: {pattern!r} looks like a regular expression; "
            "question patterns are literal label text with the wildcards * and ? (and, in CQS, "
            r"one (\d+) or ([\d\.]+))"
        )


class QuestionSet:
    """Parsed question file; :meth:`answer` maps a full-context label to its answer vector.

    ``cqs_unmatched`` is the answer of a ``CQS`` that is not found: Merlin's -1.0; 0.0
    reproduces features prepared before this project followed Merlin (front-end version 1).
    """

    def __init__(
        self, questions: list[Question], path: str = "<questions>",
        cqs_unmatched: float = CQS_UNMATCHED,
    ) -> None:
        if not questions:
            raise QuestionError(f"{path}: no QS/CQS questions found")
        # Merlin's and nnmnkwii's answer vectors: every QS, then every CQS, in file order.
        questions = ([q for q in questions if q.kind == "QS"]
                     + [q for q in questions if q.kind == "CQS"])
        self.questions = questions
        self._num_binary = sum(q.kind == "QS" for q in questions)
        self.path = path
        self.cqs_unmatched = float(cqs_unmatched)
        self._compiled: list[tuple[bool, list[re.Pattern[str]]]] = []
        for q in questions:
            where = f"{path}:{q.line}" if q.line else path
            for p in q.patterns:
                _check_pattern(p, q, where)
            if q.kind == "QS":
                rxs = [wildcards_to_regex(p) for p in q.patterns]
                if "LL-" in q.name:  # Merlin/nnmnkwii: the left-left phone starts the label
                    rxs = [rx if rx.startswith("^") else "^" + rx for rx in rxs]
                # one search for the whole question: any pattern found
                self._compiled.append((False, [re.compile("|".join(f"(?:{r})" for r in rxs))]))
            else:
                if len(q.patterns) != 1:
                    raise QuestionError(
                        f"{where}: CQS {q.name!r} must have exactly one pattern, has "
                        f"{len(q.patterns)}"
                    )
                rx = re.compile(wildcards_to_regex(q.patterns[0], numeric=True))
                self._compiled.append((True, [rx]))
        self._cache: dict[str, np.ndarray] = {}

    @property
    def dim(self) -> int:
        return len(self.questions)

    @property
    def num_binary(self) -> int:
        """Number of ``QS`` questions: the first ``num_binary`` answers."""
        return self._num_binary

    def is_binary(self) -> np.ndarray:
        return np.array([q.kind == "QS" for q in self.questions])

    def answer(self, label: str) -> np.ndarray:
        """float32 [dim] answers for one full-context label (cached: labels repeat).

        Raises :class:`QuestionError` when a ``([\\d\\.]+)`` group captures text that is not
        a number (e.g. ``1.2.3``).
        """
        hit = self._cache.get(label)
        if hit is not None:
            return hit
        out = np.zeros(len(self._compiled), np.float32)
        for i, (numeric, rxs) in enumerate(self._compiled):
            if numeric:
                m = rxs[0].search(label)
                if m is None:
                    out[i] = self.cqs_unmatched
                    continue
                try:
                    out[i] = float(m.group(1))
                except ValueError:
                    raise QuestionError(
                        f"{self.path}: CQS {self.questions[i].name!r} captured "
                        f"{m.group(1)!r}, not a number, from label {label[:80]!r}"
                    ) from None
            elif rxs[0].search(label):
                out[i] = 1.0
        if len(self._cache) < 200_000:
            self._cache[label] = out
        return out

    def answer_all(self, labels: list[str]) -> np.ndarray:
        """float32 [len(labels), dim]."""
        if not labels:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.answer(lab) for lab in labels])


def parse_question_text(
    text: str, path: str = "<questions>", cqs_unmatched: float = CQS_UNMATCHED
) -> QuestionSet:
    """Parses the text of a question file (blank lines and ``#`` comments are skipped)."""
    questions: list[Question] = []
    names: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE_RE.match(line)
        if not m:
            raise QuestionError(
                f'{path}:{lineno}: expected QS "name" {{patterns}} or CQS "name" {{pattern}}, '
                f"got {line[:60]!r}"
            )
        kind, quoted, bare, body = m.groups()
        name = bare if quoted is None else quoted
        if name in names:
            raise QuestionError(
                f"{path}:{lineno}: duplicate question name {name!r} (first on line "
                f"{names[name]})"
            )
        names[name] = lineno
        questions.append(Question(kind, name, tuple(body.strip().split(",")), lineno))
    return QuestionSet(questions, path, cqs_unmatched)


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a question file's bytes: recorded by the prep in manifest.json
    (``question_file_sha256``) so serving can tell which question set the features came from."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_questions(path: str, cqs_unmatched: float = CQS_UNMATCHED) -> QuestionSet:
    """Reads a ``.hed`` question file (local, or ``gs://`` / ``ram://`` through tf.io.gfile:
    an export's ``assets/questions.hed``)."""
    if "://" in path:
        import tensorflow as tf

        try:
            with tf.io.gfile.GFile(path, "r") as f:
                text = f.read()
        except tf.errors.OpError as e:
            raise QuestionError(f"{path}: cannot read question file ({e.message})") from None
    else:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise QuestionError(f"{path}: cannot read question file ({e.strerror})") from None
    return parse_question_text(text, path, cqs_unmatched)
