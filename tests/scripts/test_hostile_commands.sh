#!/usr/bin/env bash
# Issue 14 (reliability round 2), items 1, 2, 6 and 8 on the commands added after the first round:
# audio-features, prepare, text-features, import-mmsa, robustness, compare. Outputs that are inputs
# are refused before any work and the inputs stay as they were; a long --out gives each output its
# own name; temporaries that killed runs left are removed while a live writer's (flock'ed) stay; a
# FIFO in place of an input ends in an error, never a hang. (test_hostile_cli.sh holds train,
# predict, eval, validate, score, simulate-text and synth.)
set -u
cd "$(dirname "$0")/../.."
BIN=${BUILD:-build}/sdumc
PY=/usr/bin/python3
WAVLM=tests/fixtures/wavlm/tiny_large.safetensors
LLM=tests/fixtures/llm/tiny_f32.gguf
T=$(mktemp -d)
holders=()
trap 'for h in "${holders[@]}"; do kill "$h" 2>/dev/null; done; rm -rf "$T"' EXIT
ok() { echo "PASS hostile_commands.$1"; }
bad() { echo "FAIL hostile_commands.$1"; }
if [ ! -x "$BIN" ]; then echo "FAIL hostile_commands: $BIN is not built"; exit 0; fi
if [ ! -x "$PY" ]; then echo "SKIP hostile_commands: $PY is missing"; exit 0; fi

# refuses NAME STATUS NEEDLE CMD...: fails with STATUS, NEEDLE in stderr, no hang
. tests/scripts/refuses.sh
# A temporary of an earlier run: $1 "old" (an hour old, no holder: stale) or "live" (held with flock
# by a process that outlives the command, like a writer still at work); $2 its path.
temporary() {
  echo partial > "$2"; touch -d '1 hour ago' "$2"
  if [ "$1" = live ]; then
    # (one process that holds the lock and nothing else: no child left behind, no pipe kept open)
    $PY -c 'import fcntl, sys, time; f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(600)' \
      "$2" </dev/null >/dev/null 2>&1 &
    holders+=($!)
    for _ in $(seq 100); do flock -n "$2" true 2>/dev/null || break; sleep 0.05; done
  fi
}
tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum) | md5sum; }

# ---- audio-features (item 2: outputs among the inputs, two outputs in one folder; item 6) ----
if command -v sox >/dev/null && [ -f "$WAVLM" ]; then
  mkdir -p "$T/wav"
  sox -n -r 16000 "$T/wav/tone.wav" synth 0.5 sine 440 2>/dev/null
  sox -n -r 16000 "$T/wav/noise.wav" synth 0.5 whitenoise 2>/dev/null
  before=$(tree_sum "$T/wav")
  AF=("$BIN" audio-features --wavlm "$WAVLM" --wav "$T/wav" --layer 1 --threads 1)
  refuses audio_features_out_is_wav 2 "is --wav" "${AF[@]}" --out "$T/wav"
  refuses audio_features_out_inside_wav 2 "lies inside --wav" "${AF[@]}" --out "$T/wav/feats"
  refuses audio_features_out_last_is_out 2 "are the same folder" "${AF[@]}" --out "$T/f1" --out-last "$T/f1/"
  refuses audio_features_out_is_the_model 2 "is --wavlm" "${AF[@]}" --out "$WAVLM"
  [ "$before" = "$(tree_sum "$T/wav")" ] && [ ! -e "$T/f1" ] && ok audio_features_inputs_untouched || bad audio_features_inputs_untouched
  # Stale temporaries: an old one (of a recording not in --wav) goes, a live writer's stays (of a
  # recording this run writes: its own temporary has another name).
  mkdir -p "$T/af"
  temporary old "$T/af/gone.npy.tmp.AbC123"
  temporary live "$T/af/tone.npy.tmp.LiVe01"
  if "${AF[@]}" --out "$T/af" >/dev/null 2>"$T/err" && [ -s "$T/af/tone.npy" ] && [ -s "$T/af/noise.npy" ] &&
     [ "$(cd "$T/af" && ls | grep '\.tmp' | tr '\n' ' ')" = "tone.npy.tmp.LiVe01 " ]; then
    ok audio_features_stale_temporaries_removed_live_kept
  else
    echo "  left: $(ls "$T/af" | tr '\n' ' ') $(tail -2 "$T/err")"; bad audio_features_stale_temporaries_removed_live_kept
  fi
else
  echo "SKIP hostile_commands.audio_features (sox or $WAVLM missing)"
fi

# ---- prepare and text-features (item 2; checked before the models load: these paths need not exist) ----
mkdir -p "$T/rec" "$T/data/text_sim"
printf 'name,text\nu1,hello there\nu2,fine\n' > "$T/data/text_sim/transcripts.csv"
cp "$T/data/text_sim/transcripts.csv" "$T/trans.copy"
PREP=(--wavlm "$T/no.safetensors" --llm "$T/no.gguf" --projector "$T/no.st")
refuses prepare_out_is_wav 2 "is --wav" "$BIN" prepare --wav "$T/rec" "${PREP[@]}" --out "$T/rec"
refuses prepare_audio_folder_is_wav 2 "is --wav" "$BIN" prepare --wav "$T/data/audio" "${PREP[@]}" --out "$T/data"
refuses prepare_transcripts_are_an_output 2 "is --transcripts" \
  "$BIN" prepare --wav "$T/rec" --transcripts "$T/data/text_sim/transcripts.csv" "${PREP[@]}" --out "$T/data"
refuses text_features_out_is_transcripts 2 "is --transcripts" \
  "$BIN" text-features --llm "$LLM" --transcripts "$T/data/text_sim/transcripts.csv" --out "$T/data/text_sim/transcripts.csv"
cmp -s "$T/data/text_sim/transcripts.csv" "$T/trans.copy" && [ ! -e "$T/data/audio" ] && ok prepare_inputs_untouched ||
  bad prepare_inputs_untouched
# text-features removes what killed runs left in --out at start; a live writer's stays.
if [ -f "$LLM" ]; then
  mkdir -p "$T/tf"
  temporary old "$T/tf/u9.npy.tmp.AbC123"
  temporary live "$T/tf/u1.npy.tmp.LiVe01"
  if "$BIN" text-features --llm "$LLM" --transcripts "$T/trans.copy" --out "$T/tf" --threads 1 >/dev/null 2>"$T/err" &&
     [ -s "$T/tf/u1.npy" ] && [ "$(cd "$T/tf" && ls | grep '\.tmp' | tr '\n' ' ')" = "u1.npy.tmp.LiVe01 " ]; then
    ok text_features_stale_temporaries_removed_live_kept
  else
    echo "  left: $(ls "$T/tf" | tr '\n' ' ') $(tail -2 "$T/err")"; bad text_features_stale_temporaries_removed_live_kept
  fi
fi

# ---- import-mmsa (item 8): a FIFO in place of the pickle ----
mkfifo "$T/p.pkl"
refuses import_mmsa_fifo 1 "is a FIFO" "$BIN" import-mmsa "$T/p.pkl" --out "$T/imported"
[ ! -e "$T/imported" ] && ok import_mmsa_fifo_writes_nothing || bad import_mmsa_fifo_writes_nothing

# ---- robustness (items 1, 2, 6) ----
"$BIN" synth --out "$T/ds" --n 60 --seed 1 >/dev/null 2>&1 &&
  "$BIN" train --data "$T/ds" --out "$T/m.safetensors" --hidden 8 --epochs 1 --batch-size 32 --threads 1 >/dev/null 2>&1 ||
  { bad robustness_setup; exit 0; }
ROB=(--data "$T/ds" --seeds 1 --rates 0.5 --noise none --patterns none --targets all --threads 1)
refuses robustness_out_in_a_feature_folder 1 "lies inside the audio feature folder" \
  "$BIN" robustness --model "$T/m.safetensors" "${ROB[@]}" --out "$T/ds/audio"
mkdir -p "$T/rob"
cp "$T/m.safetensors" "$T/rob/results.csv"
refuses robustness_results_csv_is_the_model 1 "is --model" \
  "$BIN" robustness --model "$T/rob/results.csv" "${ROB[@]}" --out "$T/rob"
cmp -s "$T/m.safetensors" "$T/rob/results.csv" && [ ! -e "$T/ds/audio/results.csv" ] && ok robustness_inputs_untouched ||
  bad robustness_inputs_untouched
# A long --out (every component under 255 bytes): results.csv, summary.json and report.html each
# under its own name (1,197 bytes: fixed 1,200-byte buffers cut them to OUT/r, OUT/s, OUT/r).
long=$T
while [ ${#long} -lt 1000 ]; do long=$long/$(printf 'd%.0s' $(seq 200)); mkdir -p "$long"; done
long=$long/$(printf 'e%.0s' $(seq $((1197 - ${#long} - 1))))
mkdir -p "$long"
temporary old "$long/results.csv.tmp.AbC123"
if "$BIN" robustness --model "$T/m.safetensors" "${ROB[@]}" --out "$long" >/dev/null 2>"$T/err" &&
   [ "$(ls "$long" | tr '\n' ' ')" = "report.html results.csv summary.json " ] &&
   $PY -c "import json; json.load(open('$long/summary.json'))"; then
  ok robustness_long_out_${#long}_bytes_and_stale_temporary
else
  echo "  $(ls "$long" | tr '\n' ' ') $(tail -2 "$T/err")"; bad robustness_long_out_${#long}_bytes_and_stale_temporary
fi
exit 0
