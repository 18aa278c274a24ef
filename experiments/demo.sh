#!/usr/bin/env bash
# `make demo`: the whole job end to end on the built-in default corpus, on CPU, in minutes:
# the shipped pretrained model speaks from text first (pretrained/, if present); then prep
# (Festival corpus → 567-dim features + µ-law windows) → train (tiny config) → export
# (EMA + standing statistics → SavedModel) → synthesize (text and test utterances) → eval.
# Re-running resumes: prep keeps finished shards, training resumes from its checkpoint; the
# wav files of an earlier run are replaced (--overwrite).
set -euo pipefail
OUT=${1:-demo_out}
BIN=${BIN:-.venv/bin}
STEPS=${DEMO_STEPS:-300}
mkdir -p "$OUT"
t0=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - t0 )) s] $*"; }

PRETRAINED=${PRETRAINED:-pretrained/cpu_harmonic_noise}
if [ -d "$PRETRAINED" ]; then
  step "0/5 tts-gan-synthesize: the shipped model ($PRETRAINED, see its README.md) speaks from text"
  "$BIN/tts-gan-synthesize" --export_dir="$PRETRAINED" --output_dir="$OUT/wav_pretrained" --overwrite \
    --text="The quick brown fox jumps over the lazy dog."
  echo "-> $OUT/wav_pretrained"
fi

# The 290 built-in sentences (the default --festival_sentences=builtin): the larger set
# (--festival_sentences=all, 2,890 sentences per voice) takes ~70 min to render and prep
# with --workers=1 on this machine (BUILD_NOTES).
step "1/5 tts-gan-prep: built-in Festival corpus (2 voices = 2 speakers)"
"$BIN/tts-gan-prep" --format=festival --output_dir="$OUT/data" --workers=2 --compression=GZIP

step "2/5 tts-gan-train: experiments/tiny.py for $STEPS steps (TensorBoard: $OUT/model)"
"$BIN/tts-gan-train" --config=experiments/tiny.py --data_dir="$OUT/data" \
  --model_dir="$OUT/model" --max_steps="$STEPS"

step "3/5 tts-gan-export: EMA weights + standing statistics -> $OUT/export/<version>/"
"$BIN/tts-gan-export" --model_dir="$OUT/model" --export_dir="$OUT/export" --data_dir="$OUT/data"

step "4/5 tts-gan-synthesize: text (Festival front end) and the test split"
"$BIN/tts-gan-synthesize" --export_dir="$OUT/export" --output_dir="$OUT/wav_text" --speaker=1 --overwrite \
  --text="The quick brown fox jumps over the lazy dog."
"$BIN/tts-gan-synthesize" --export_dir="$OUT/export" --data_dir="$OUT/data" \
  --output_dir="$OUT/wav_test" --overwrite

step "5/5 tts-gan-eval: distances (DNSMOS embedding, not the paper's DeepSpeech2), DNSMOS and WER"
"$BIN/tts-gan-eval" --export_dir="$OUT/export" --data_dir="$OUT/data" --num_samples=16 \
  --quality_max_per_speaker=2 --output_json="$OUT/eval.json"

step "done: wav files in $OUT/wav_pretrained (shipped model), $OUT/wav_text and $OUT/wav_test (the 300-step demo model); tensorboard --logdir $OUT/model"
