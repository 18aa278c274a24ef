"""Festival rendering's temporary files (tts_gan.frontend.festival), with a stand-in
``festival`` executable so that the race and the failure path are reproducible."""

from __future__ import annotations

import os
import stat
import sys
import threading

import pytest

from data_prep import corpus, festival_corpus
from tts_gan.frontend import festival

# Writes each requested wav, sleeps (so that two concurrent renders overlap), then the label;
# logs the paths it was given; FAKE_FESTIVAL_FAIL=1: writes the wav, then fails.
FAKE = r'''#!{python}
import os, re, sys, time
script = open(sys.argv[2]).read()
calls = re.findall(r'\(tts_gan_render "(?:[^"\\]|\\.)*" "([^"]*)" "([^"]*)"\)', script)
with open(os.environ["FAKE_FESTIVAL_LOG"], "a") as log:
    for wav, lab in calls:
        log.write(wav + "\n" + lab + "\n")
for wav, lab in calls:
    with open(wav, "wb") as f:
        f.write(b"RIFF")
    if os.environ.get("FAKE_FESTIVAL_FAIL"):
        sys.exit(1)
    time.sleep(0.3)
    with open(lab, "w") as f:
        f.write("0 100 x^x-pau+x=x\n")
'''


@pytest.fixture
def fake_festival(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "festival"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_FESTIVAL_LOG", str(log))
    assert festival.festival_binary() == str(exe)
    return log


def _items(root, n: int = 2) -> list[tuple[str, str, str, str]]:
    return [(f"Sentence {i}.", str(root / f"s{i}.wav"), str(root / f"s{i}.lab"),
             str(root / f"s{i}.txt")) for i in range(n)]


def test_concurrent_renders_into_one_folder_both_succeed(tmp_path, fake_festival) -> None:
    out = tmp_path / "cache"
    out.mkdir()
    errors: list[BaseException] = []

    def render() -> None:
        try:
            festival.render_batch("voice_x", _items(out))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=render) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(os.listdir(out)) == sorted(
        f"s{i}.{ext}" for i in range(2) for ext in ("wav", "lab", "txt"))
    temps = fake_festival.read_text().split()
    assert len(set(temps)) == len(temps) == 8  # 2 renders x 2 items x (wav, lab): all distinct
    for p in temps:
        assert not p.endswith(".wav") and f".tmp-{os.getpid()}-" in p


def test_failed_render_leaves_no_temporary_file(tmp_path, fake_festival, monkeypatch) -> None:
    out = tmp_path / "cache"
    out.mkdir()
    monkeypatch.setenv("FAKE_FESTIVAL_FAIL", "1")
    with pytest.raises(festival.FestivalError, match=r"voice_x\) failed on 'Sentence 0\.'"):
        festival.render_batch("voice_x", _items(out))
    temps = fake_festival.read_text().split()
    assert os.path.basename(temps[0]).startswith("s0.wav.tmp-")  # written before the failure
    assert os.listdir(out) == []


def test_stale_temporaries_of_old_versions_are_not_read_as_utterances(tmp_path) -> None:
    """A ``X.wav.tmp.wav`` left by the old fixed temporary names is removed by the next render
    (it would be discovered as utterance ``X.wav.tmp``)."""
    cache = tmp_path / "cache"
    for sub, name in (("wav", "s0001.wav"), ("lab", "s0001.lab"), ("text", "s0001.txt")):
        (cache / sub / "slt_hts").mkdir(parents=True)
        (cache / sub / "slt_hts" / name).write_text("The birch canoe.\n")
    (cache / "wav" / "slt_hts" / "s0001.wav.tmp.wav").write_bytes(b"RIFF")
    (cache / "lab" / "slt_hts" / "s0001.lab.tmp").write_text("")
    utts, _ = corpus.discover(str(cache), "hts")
    assert [u.uid for u in utts] == ["slt_hts/s0001", "slt_hts/s0001.wav.tmp"]
    festival_corpus.render_corpus(str(cache), ["The birch canoe."],
                                  {"slt_hts": festival.HTS_VOICE}, progress=False)
    utts, _ = corpus.discover(str(cache), "hts")
    assert [u.uid for u in utts] == ["slt_hts/s0001"]
    assert sorted(os.listdir(cache / "lab" / "slt_hts")) == ["s0001.lab"]


def test_temporaries_of_a_dead_render_are_removed_and_a_live_ones_kept(tmp_path) -> None:
    """A render killed hard (SIGTERM/SIGKILL) leaves ``NAME.tmp-PID-TAG`` files; the next
    render removes those of processes that are gone, not those of a running one."""
    import subprocess

    cache = tmp_path / "cache"
    for sub, name in (("wav", "s0001.wav"), ("lab", "s0001.lab"), ("text", "s0001.txt")):
        (cache / sub / "slt_hts").mkdir(parents=True)
        (cache / sub / "slt_hts" / name).write_text("The birch canoe.\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    wav = cache / "wav" / "slt_hts"
    (wav / f"s0002.wav.tmp-{dead.pid}-0123456789ab").write_bytes(b"RIFF")
    (wav / f"s0003.wav.tmp-{os.getpid()}-0123456789ab").write_bytes(b"RIFF")
    festival_corpus.render_corpus(str(cache), ["The birch canoe."],
                                  {"slt_hts": festival.HTS_VOICE}, progress=False)
    assert sorted(os.listdir(wav)) == ["s0001.wav", f"s0003.wav.tmp-{os.getpid()}-0123456789ab"]


def test_a_failed_or_interrupted_render_stops_without_running_the_queued_batches(
        tmp_path, monkeypatch) -> None:
    """Before, the pool's shutdown ran every queued batch after Ctrl-C (silently, to the end)."""
    monkeypatch.setattr(festival_corpus, "festival_binary", lambda: "/bin/true")
    calls = []

    def failing(voice_fn: str, items: list) -> None:
        calls.append(len(items))
        raise RuntimeError("interrupted")

    monkeypatch.setattr(festival_corpus, "render_batch", failing)
    sents = [f"Sentence number {i}." for i in range(5 * festival.BATCH)]
    with pytest.raises(RuntimeError, match="interrupted"):
        festival_corpus.render_corpus(str(tmp_path / "c"), sents,
                                      {"slt_hts": festival.HTS_VOICE}, workers=1,
                                      progress=False)
    assert 1 <= len(calls) <= 2  # the failed batch and at most the one already started
