"""Corpus discovery for tts-gan-prep: ``hts`` (wav/ + lab/) and ``features`` (wav/ + feats/).

Layouts (``EXT`` is ``lab`` or ``npy``)::

    corpus/wav/ID.wav         corpus/lab/ID.lab          single speaker, or speakers.tsv
    corpus/wav/SPK/ID.wav     corpus/lab/SPK/ID.lab      one sub-folder per speaker

``speakers.tsv`` (optional, flat layout): ``ID<TAB>SPEAKER`` per line, ``#`` comments. Without
it a flat corpus has one speaker named ``default``. Speaker ids are the sorted speaker names'
indices. An utterance present only in wav/ or only in lab/ (feats/) is listed too, so that it
is reported in rejected.tsv ("missing label" / "missing wav").
"""

from __future__ import annotations

import dataclasses
import os

DEFAULT_SPEAKER = "default"


class CorpusError(ValueError):
    """The corpus as a whole is unusable (not one utterance's problem)."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    uid: str  # "ID" or "SPK/ID"; unique
    speaker: str
    wav: str
    side: str  # label (.lab) or features (.npy) path


def _stems(folder: str, ext: str) -> dict[str, str]:
    if not os.path.isdir(folder):
        return {}
    return {
        os.path.splitext(n)[0]: os.path.join(folder, n)
        for n in os.listdir(folder)
        if n.lower().endswith(ext) and not n.startswith(".")
    }


def _read_speakers_tsv(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t") if "\t" in line else line.split()
            if len(parts) != 2:
                raise CorpusError(f"{path}:{lineno}: expected 'ID<TAB>SPEAKER', got {line!r}")
            out[parts[0].strip()] = parts[1].strip()
    return out


def discover(corpus_dir: str, fmt: str) -> tuple[list[Utterance], list[tuple[str, str, str]]]:
    """(utterances sorted by uid, [(uid, reason, detail)] for files without a speaker)."""
    side_dir, side_ext = {"hts": ("lab", ".lab"), "features": ("feats", ".npy")}[fmt]
    wav_root = os.path.join(corpus_dir, "wav")
    side_root = os.path.join(corpus_dir, side_dir)
    if not os.path.isdir(wav_root):
        raise CorpusError(f"{wav_root}: no such directory (expected {corpus_dir}/wav/ID.wav)")
    if not os.path.isdir(side_root):
        raise CorpusError(
            f"{side_root}: no such directory (expected {corpus_dir}/{side_dir}/ID{side_ext})"
        )
    subdirs = sorted(
        d for d in os.listdir(wav_root)
        if os.path.isdir(os.path.join(wav_root, d)) and not d.startswith(".")
    )
    utts: list[Utterance] = []
    problems: list[tuple[str, str, str]] = []
    groups: list[tuple[str | None, str, str]] = (
        [(d, os.path.join(wav_root, d), os.path.join(side_root, d)) for d in subdirs]
        if subdirs
        else [(None, wav_root, side_root)]
    )
    spk_map: dict[str, str] = {}
    tsv = os.path.join(corpus_dir, "speakers.tsv")
    if not subdirs and os.path.exists(tsv):
        spk_map = _read_speakers_tsv(tsv)
    for spk, wdir, sdir in groups:
        wavs = _stems(wdir, ".wav")
        sides = _stems(sdir, side_ext)
        for stem in sorted(set(wavs) | set(sides)):
            uid = f"{spk}/{stem}" if spk else stem
            wav = wavs.get(stem, os.path.join(wdir, stem + ".wav"))
            side = sides.get(stem, os.path.join(sdir, stem + side_ext))
            if spk is not None:
                speaker = spk
            elif spk_map:
                if stem not in spk_map:
                    problems.append((uid, "missing speaker", f"{tsv}: no line for {stem}"))
                    continue
                speaker = spk_map[stem]
            else:
                speaker = DEFAULT_SPEAKER
            utts.append(Utterance(uid, speaker, wav, side))
    if not utts and not problems:
        raise CorpusError(f"{corpus_dir}: no utterances found in wav/ or {side_dir}/")
    utts.sort(key=lambda u: u.uid)
    return utts, problems
