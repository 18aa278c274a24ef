"""Festival front end: text → synthesised wav + HTS full-context labels.

GAN-TTS conditions on linguistic features and log F0 (paper §3.1), which need a text
front end, a duration model and a pitch model. We use Festival: its HTS voice predicts the
durations and F0, and its utterance structure gives the full-context labels
(``hts_dump_feats_string_list``: one label per ``Segment`` item with the start/end times as
Festival synthesised them). The built-in corpus (``tts-gan-prep --format=festival``) and
``tts-gan-synthesize --text`` both render through :func:`render_batch`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid

HTS_VOICE = "voice_cmu_us_slt_arctic_hts"
BATCH = 16  # sentences per Festival process
# The built-in corpus' speakers (``tts-gan-prep --format=festival``) → the Festival voice
# function that rendered them: their durations and F0 when they speak new text.
VOICES: dict[str, str] = {
    "kal_diphone": "voice_kal_diphone",
    "slt_hts": HTS_VOICE,
}


# Log-F0 mean / std (natural log of Hz, voiced frames, dio) and mean phone duration (frames
# of 5 ms, pauses included) of each voice's renderings of the 290 built-in sentences, measured
# with the prep's feature code by benchmarks/festival_voice_prosody.py (2026-12-03): the
# source side when a speaker without a voice of its own speaks with one
# (tts_gan.frontend.prosody.map_log_f0).
VOICE_PROSODY: dict[str, dict[str, float]] = {
    HTS_VOICE: {"log_f0_mean": 5.1338, "log_f0_std": 0.1551, "phone_frames_mean": 17.349},
    "voice_kal_diphone": {"log_f0_mean": 4.6157, "log_f0_std": 0.1162,
                          "phone_frames_mean": 19.865},
}


class FestivalError(RuntimeError):
    """Festival is missing or failed."""


def festival_binary() -> str | None:
    """Path of the ``festival`` executable, or None."""
    return shutil.which("festival")


def _scheme_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _script(voice_fn: str, items: list[tuple[str, str, str]]) -> str:
    """Festival script rendering ``items`` = [(text, wav_tmp, lab_tmp)] with ``voice_fn``."""
    lines = [
        # The HTS voice defines hts_feats_list and loads hts.scm (label export) for any voice.
        f"({HTS_VOICE})",
        f"({voice_fn})",
        # Utterance does not evaluate its arguments, hence the eval.
        "(define (tts_gan_render sentence wav lab)",
        "  (let ((utt (utt.synth (eval (list 'Utterance 'Text sentence))))",
        "        (fd (fopen lab \"w\")))",
        "    (utt.save.wave utt wav 'riff)",
        "    (mapcar (lambda (l) (format fd \"%s\" l))",
        "            (hts_dump_feats_string_list utt hts_feats_list))",
        "    (fclose fd)))",
    ]
    for text, wav, lab in items:
        lines.append(
            f"(tts_gan_render {_scheme_string(text)} {_scheme_string(wav)} {_scheme_string(lab)})"
        )
    return "\n".join(lines) + "\n"


def _temp_name(path: str, tag: str) -> str:
    """A temporary name next to ``path``, unique to this process and call, that does not end
    in ``.wav`` (corpus discovery reads every ``*.wav`` as an utterance)."""
    return f"{path}.tmp-{os.getpid()}-{tag}"


def render_batch(voice_fn: str, items: list[tuple[str, str, str, str]]) -> None:
    """Renders ``items = [(text, wav, lab, txt)]`` (final paths) with one Festival process and
    the voice ``voice_fn``; writes via temporary names, then renames.

    The temporary names are unique per process and call, so concurrent renders into one cache
    (two preps) do not collide; on any failure this call's temporary files are removed.
    """
    binary = festival_binary()
    if binary is None:
        raise FestivalError("festival not found (install it: `make system-deps` in the tts-gan "
                            "checkout, or apt-get install festival festvox-us-slt-hts)")
    tag = uuid.uuid4().hex[:12]
    tmp_items = [(t, _temp_name(w, tag), _temp_name(lb, tag)) for t, w, lb, _ in items]
    temps = [p for _, w, lb in tmp_items for p in (w, lb)]
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as f:
            f.write(_script(voice_fn, tmp_items))
            script = f.name
        try:
            proc = subprocess.run(
                [binary, "-b", script], capture_output=True, text=True, timeout=600,
                check=False,
            )
        finally:
            os.unlink(script)
        for (text, wav, lab, txt), (_, wtmp, ltmp) in zip(items, tmp_items, strict=True):
            if proc.returncode != 0 or not (os.path.exists(wtmp) and os.path.exists(ltmp)):
                err = " | ".join(
                    ln for ln in proc.stderr.splitlines() if "ALSA" not in ln and ln.strip()
                )[-500:]
                raise FestivalError(
                    f"festival ({voice_fn}) failed on {text!r} (exit {proc.returncode}): {err}"
                )
            os.replace(ltmp, lab)
            os.replace(wtmp, wav)
            ttmp = _temp_name(txt, tag)
            temps.append(ttmp)
            with open(ttmp, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            os.replace(ttmp, txt)
    finally:
        for p in temps:
            if os.path.exists(p):
                os.unlink(p)
