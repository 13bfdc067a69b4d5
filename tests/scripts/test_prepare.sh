#!/usr/bin/env bash
# `sdumc prepare` end to end: six recordings synthesised with espeak-ng (one without a transcript;
# the transcripts CSV also has a row without a recording), the small WavLM of
# tests/fixtures/wavlm/tiny_large, the tiny LLaMA of tests/fixtures/llm and a random projector.
# Checked:
#   - the dataset folders hold exactly what the three commands write on their own (audio-features
#     with --out-last, text-features on the transcripts of the recordings, simulate-text on the
#     last layer): byte-identical files;
#   - killed with SIGKILL at several moments (start-up, each stage) and run again: the final files
#     are byte-identical to the uninterrupted run's, no temporary is left;
#   - errors found before anything is written (models that do not fit together, an empty
#     transcript, a layer the model does not have);
#   - then a model trained on the prepared folder (plus video features and labels.csv, the user's
#     part) scores the recordings with `sdumc predict`.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BIN=$PWD/$BUILD/sdumc
PY=/usr/bin/python3
WAVLM=tests/fixtures/wavlm/tiny_large.safetensors
LLM=tests/fixtures/llm/tiny_f32.gguf
if [ ! -x "$BIN" ]; then echo "FAIL prepare (not built)"; exit 1; fi
for tool in espeak-ng sox; do
  command -v $tool >/dev/null || { echo "SKIP prepare ($tool missing: bash scripts/setup.sh installs it)"; exit 0; }
done
if ! $PY -c "import numpy" 2>/dev/null; then echo "SKIP prepare (no numpy for $PY)"; exit 0; fi
T=$(mktemp -d /tmp/sdumc-prepare-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; rm -rf "$T"' EXIT

. tests/scripts/prepare_fixture.sh
prepare_fixture "$T" || { echo "FAIL prepare_inputs"; exit 0; }

ARGS=(--wav "$T/wav" --transcripts "$T/transcripts.csv" --wavlm "$WAVLM" --llm "$LLM" --projector "$T/proj.safetensors"
      --layer 1 --max-new-tokens 8 --threads 2)
if "$BIN" prepare "${ARGS[@]}" --out "$T/data" 2>"$T/log1"; then echo "PASS prepare_run"; else echo "FAIL prepare_run"; cat "$T/log1"; fi
count() { ls "$1" 2>/dev/null | grep -c '\.npy$'; }
if [ "$(count "$T/data/audio")" = 6 ] && [ "$(count "$T/data/wavlm_last")" = 6 ] && [ "$(count "$T/data/text")" = 5 ] &&
   [ "$(count "$T/data/text_sim")" = 6 ] && [ "$(grep -c '^"\?utt' "$T/data/text_sim/transcripts.csv")" = 6 ] &&
   [ ! -e "$T/data/text/utt5_stereo.npy" ] && [ ! -e "$T/data/text/not_recorded.npy" ] &&
   grep -q "6 recordings, 5 with a transcript (1 transcripts without a recording left out)" "$T/log1"; then
  echo "PASS prepare_layout"; else echo "FAIL prepare_layout"; cat "$T/log1"; ls -R "$T/data"; fi
grep -q "video/<name>.npy" "$T/log1" && grep -q "labels.csv" "$T/log1" && echo "PASS prepare_says_what_is_left" \
  || echo "FAIL prepare_says_what_is_left"

# The same files as the three commands give on their own.
mkdir -p "$T/sep"
"$BIN" audio-features --wavlm "$WAVLM" --wav "$T/wav" --out "$T/sep/audio" --layer 1 --out-last "$T/sep/wavlm_last" --threads 2 2>/dev/null
grep -v not_recorded "$T/transcripts.csv" > "$T/transcripts_recorded.csv"
"$BIN" text-features --llm "$LLM" --transcripts "$T/transcripts_recorded.csv" --out "$T/sep/text" --threads 2 2>/dev/null
"$BIN" simulate-text --llm "$LLM" --projector "$T/proj.safetensors" --wavlm "$T/sep/wavlm_last" --out "$T/sep/text_sim" \
  --max-new-tokens 8 --threads 2 2>/dev/null
same=1
for d in audio wavlm_last text text_sim; do
  for f in "$T/sep/$d"/*; do cmp -s "$f" "$T/data/$d/$(basename "$f")" || { same=0; echo "  $d/$(basename "$f") differs"; }; done
done
[ $same = 1 ] && echo "PASS prepare_equals_the_three_commands" || echo "FAIL prepare_equals_the_three_commands"

# Kill at several moments, then run to the end: the files equal the uninterrupted run's. A kill
# between a temporary's creation and its rename leaves "<name>.npy.tmp.XXXXXX": audio-features
# removes those of a recording it redoes; text-features and simulate-text leave them (counted and
# listed, not a failure: the dataset reads only the files labels.csv names).
ok=1
stages=
for delay in 0.2 0.6 1.0 1.6 2.4 3.5; do
  "$BIN" prepare "${ARGS[@]}" --out "$T/k" >/dev/null 2>"$T/klog" &
  pid=$!
  sleep $delay
  kill -KILL $pid 2>/dev/null
  wait $pid 2>/dev/null
  pid=
  stages="$stages $(grep -o 'stage [0-9]' "$T/klog" | tail -1 | tr -dc 0-9 || true)"
done
echo "  kills fell in stages:$stages (0: during start-up)"
"$BIN" prepare "${ARGS[@]}" --out "$T/k" 2>"$T/log2" || { ok=0; cat "$T/log2"; }
for d in audio wavlm_last text text_sim; do
  for f in "$T/data/$d"/*; do cmp -s "$f" "$T/k/$d/$(basename "$f")" || { ok=0; echo "  resumed $d/$(basename "$f") differs"; }; done
  extra=$(ls "$T/k/$d" | grep -v '\.npy$\|^transcripts\.csv$')
  if [ -n "$extra" ]; then
    case $d in audio|wavlm_last) ok=0; echo "  $d: temporaries left: $extra";; *) echo "  $d: temporaries left by the killed runs: $extra";; esac
  fi
  [ "$(ls "$T/k/$d" | grep -c '\.npy$')" = "$(ls "$T/data/$d" | grep -c '\.npy$')" ] || { ok=0; echo "  $d: other .npy files"; }
done
[ $ok = 1 ] && echo "PASS prepare_kill_resume" || echo "FAIL prepare_kill_resume"
"$BIN" prepare "${ARGS[@]}" --out "$T/k" 2>"$T/log3"
grep -q "audio-features  0 written, 6 already done" "$T/log3" && grep -q "text-features   0 written, 5 already done" "$T/log3" &&
  grep -q "simulate-text   0 written, 6 already done" "$T/log3" && echo "PASS prepare_rerun_does_nothing" \
  || { echo "FAIL prepare_rerun_does_nothing"; cat "$T/log3"; }

# Errors before anything is written.
expect_error() { # name, expected text, args...
  local name=$1 want=$2; shift 2
  rm -rf "$T/e"
  "$BIN" prepare "$@" --out "$T/e" >/dev/null 2>"$T/err"
  local rc=$?
  if [ $rc != 0 ] && grep -q -- "$want" "$T/err" && [ ! -e "$T/e" ]; then echo "PASS $name"
  else echo "FAIL $name (exit $rc)"; cat "$T/err"; ls -R "$T/e" 2>/dev/null | head; fi
}
expect_error prepare_models_do_not_fit "the projector takes 1024-dim frames but WavLM gives 32" \
  --wav "$T/wav" --wavlm "$WAVLM" --llm "$LLM" --projector "$T/proj_large.safetensors" --layer 1
printf 'name,text\nutt0,"fine"\nutt1,""\n' > "$T/empty.csv"
expect_error prepare_empty_transcript "empty.csv, line 3, utterance 'utt1'" \
  --wav "$T/wav" --transcripts "$T/empty.csv" --wavlm "$WAVLM" --llm "$LLM" --projector "$T/proj.safetensors" --layer 1
expect_error prepare_layer "the WavLM model has hidden states 0..3" \
  --wav "$T/wav" --wavlm "$WAVLM" --llm "$LLM" --projector "$T/proj.safetensors"

# The user's part (video features, labels.csv), then a model trained on the folder scores the
# recordings: the labelled ones with `predict` (both flows), the one without a transcript (no text
# file, so not in labels.csv) with `predict-one --sim-text`, the text-missing flow.
$PY - "$T/data" <<'EOF'
import os, sys
import numpy as np
d = sys.argv[1]
os.makedirs(d + "/video", exist_ok=True)
rng = np.random.default_rng(9)
rows = [("utt0", 1.2, "train"), ("utt1", -2.0, "train"), ("utt2", 0.4, "valid"), ("utt3", -0.6, "valid"),
        ("utt4", 2.2, "test")]
for name in [r[0] for r in rows] + ["utt5_stereo"]:
    np.save("%s/video/%s.npy" % (d, name), rng.standard_normal((12, 8)).astype(np.float16))
with open(d + "/labels.csv", "w") as f:
    f.write("name,label,split\n" + "".join("%s,%s,%s\n" % r for r in rows))
EOF
D=$T/data
if "$BIN" validate --data "$D" --require-sim >"$T/log4" 2>&1 &&
   "$BIN" train --data "$D" --out "$T/model.safetensors" --hidden 4 --epochs 1 --batch-size 2 --threads 2 >>"$T/log4" 2>&1 &&
   "$BIN" predict --model "$T/model.safetensors" --data "$D" --split test --flow full --out "$T/full.csv" >>"$T/log4" 2>&1 &&
   "$BIN" predict --model "$T/model.safetensors" --data "$D" --split test --flow missing --out "$T/missing.csv" >>"$T/log4" 2>&1 &&
   grep -q "utt4" "$T/full.csv" && grep -q "utt4" "$T/missing.csv" &&
   "$BIN" predict-one --model "$T/model.safetensors" --audio "$D/audio/utt5_stereo.npy" --sim-text "$D/text_sim/utt5_stereo.npy" \
     --video "$D/video/utt5_stereo.npy" --json >"$T/one.json" 2>>"$T/log4" && grep -q '"score"' "$T/one.json"; then
  echo "PASS prepare_then_predict"; else echo "FAIL prepare_then_predict"; cat "$T/log4"; fi
exit 0
