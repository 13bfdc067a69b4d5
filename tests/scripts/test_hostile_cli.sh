#!/usr/bin/env bash
# Issue 14 (reliability round 2): the commands used carelessly or with hostile inputs end in a
# clear error or the right result, and nothing a user had is lost. One case per item; the
# kill/resume items (5, 6) are in test_kill_resume.sh, the library-level ones in the C tests.
set -u
cd "$(dirname "$0")/../.."
BIN=${BUILD:-build}/sdumc
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ok() { echo "PASS hostile.$1"; }
bad() { echo "FAIL hostile.$1"; }
if [ ! -x "$BIN" ]; then echo "FAIL hostile: $BIN is not built"; exit 0; fi
if [ ! -x "$PY" ]; then echo "SKIP hostile: $PY is missing"; exit 0; fi

"$BIN" synth --out "$T/ds" --n 60 --seed 1 >/dev/null 2>&1 || { bad synth; exit 0; }
TRAIN=(--hidden 8 --epochs 1 --batch-size 32 --threads 1)
"$BIN" train --data "$T/ds" --out "$T/m.safetensors" "${TRAIN[@]}" >/dev/null 2>&1 || { bad train; exit 0; }

# ---- item 9: CSV quoting. A legal name with a comma and quotes survives predict -> score. ----
cp -r "$T/ds" "$T/q"
$PY - "$T/q" <<'EOF'
import csv, os, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/labels.csv", newline="")))
old = next(r["name"] for r in rows if r["split"] == "test")
new = 'a,b "q"'
for m in ("audio", "text", "video", "text_sim"):
    os.rename(f"{d}/{m}/{old}.npy", f"{d}/{m}/{new}.npy")
for r in rows:
    if r["name"] == old: r["name"] = new
with open(d + "/labels.csv", "w", newline="") as f:
    w = csv.DictWriter(f, ["name", "label", "split"], lineterminator="\n")
    w.writeheader(); w.writerows(rows)
EOF
if "$BIN" predict --model "$T/m.safetensors" --data "$T/q" --out "$T/q.csv" 2>"$T/err" &&
   "$BIN" score "$T/q.csv" --format json >"$T/score.json" 2>>"$T/err" &&
   $PY -c "
import csv, json, sys
rows = list(csv.DictReader(open('$T/q.csv', newline='')))
assert any(r['name'] == 'a,b \"q\"' for r in rows), rows[:3]
assert json.load(open('$T/score.json'))['n'] == len(rows)
"; then ok csv_quoted_name_round_trip; else cat "$T/err"; bad csv_quoted_name_round_trip; fi

# The other CSVs written: robustness's results.csv (model names), train --seeds' OUT.seeds.csv (the
# name of --out), compare --format csv (the condition fields it read), each read back by compare or
# Python's csv module. A name with a comma and quotes, and names that differ after 128 bytes.
cp "$T/m.safetensors" "$T/m2.safetensors"
if "$BIN" robustness --data "$T/ds" --model 'a,b "q"='"$T/m.safetensors" --model "B=$T/m2.safetensors" --out "$T/rob" \
     --seeds 1,2 --rates 0.5 --noise none --patterns none --threads 1 >/dev/null 2>"$T/err" &&
   "$BIN" compare "$T/rob/results.csv" --a 'a,b "q"' --b B --format csv >"$T/cmp.csv" 2>>"$T/err" &&
   $PY -c "
import csv
rows = list(csv.DictReader(open('$T/rob/results.csv', newline='')))
assert {r['model'] for r in rows} == {'a,b \"q\"', 'B'}, rows[:2]
assert all(len(r) == len(rows[0]) and None not in r for r in rows)
c = list(csv.DictReader(open('$T/cmp.csv', newline='')))
assert c and c[0]['condition'] == 'clean' and c[0]['n'] == '2', c
"; then ok csv_robustness_results_quoted; else cat "$T/err"; bad csv_robustness_results_quoted; fi
mkdir -p "$T/seeds"
if "$BIN" train --data "$T/ds" --out "$T/seeds/a,b \"q\".safetensors" --seeds 1,2 "${TRAIN[@]}" >/dev/null 2>"$T/err" &&
   "$BIN" compare "$T/seeds/a,b \"q\".seeds.csv" "$T/seeds/a,b \"q\".seeds.csv" >/dev/null 2>>"$T/err" &&
   $PY -c "
import csv
rows = list(csv.DictReader(open('$T/seeds/a,b \"q\".seeds.csv', newline='')))
assert len(rows) == 8 and all(r['model'] == 'a,b \"q\"' and r['seed'] in ('1', '2') and None not in r for r in rows), rows[:2]
"; then ok csv_seeds_summary_quoted; else cat "$T/err"; bad csv_seeds_summary_quoted; fi
long_a=$(printf 'M%.0s' $(seq 130))1 long_b=$(printf 'M%.0s' $(seq 130))2
$PY - "$T/crafted.csv" "$long_a" "$long_b" <<'EOF2'
import csv, sys
cols = "model,condition,target,flow,rate,seed,mae".split(",")
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n"); w.writerow(cols)
    for m, base in ((sys.argv[2], 1.0), (sys.argv[3], 0.5)):
        for s in (1, 2, 3):
            w.writerow([m, 'x,y "z"', "", "full", "", s, base + 0.01 * s * (m == sys.argv[3])])
EOF2
if "$BIN" compare "$T/crafted.csv" --a "$long_a" --b "$long_b" --format csv >"$T/cmp2.csv" 2>"$T/err" && $PY -c "
import csv
c = list(csv.DictReader(open('$T/cmp2.csv', newline='')))
assert len(c) == 1 and c[0]['condition'] == 'x,y \"z\"' and c[0]['n'] == '3' and c[0]['verdict'] == 'B better', c
"; then ok csv_compare_output_quoted_long_names; else cat "$T/err" "$T/cmp2.csv"; bad csv_compare_output_quoted_long_names; fi

# refuses NAME STATUS NEEDLE CMD...: fails with STATUS, NEEDLE in stderr, no hang
. tests/scripts/refuses.sh
same_bytes() { cmp -s "$1" "$2"; }

# ---- item 1: a long --out (components under 255 bytes) gives each file its own name. ----
long=$T
while [ ${#long} -lt 1000 ]; do long=$long/$(printf 'd%.0s' $(seq 200)); mkdir -p "$long"; done
lout=$long/m.safetensors
if "$BIN" train --data "$T/ds" --out "$lout" "${TRAIN[@]}" >/dev/null 2>"$T/err" &&
   [ -s "$lout" ] && [ -s "$lout.state" ] && [ -s "$lout.log.jsonl" ] && [ -s "$lout.report.html" ] &&
   [ "$(ls "$long" | wc -l)" = 4 ] && "$BIN" eval --model "$lout" --data "$T/ds" >/dev/null 2>&1; then
  ok long_out_path_${#lout}_bytes
else cat "$T/err"; ls "$long"; bad long_out_path_${#lout}_bytes; fi
huge=$T
while [ $((${#huge} + 201)) -lt 4070 ]; do huge=$huge/$(printf 'h%.0s' $(seq 200)); mkdir "$huge" || break; done
while [ $((${#huge} + 14 + 23)) -le 4095 ]; do huge=${huge}h; done; mkdir "$huge" # OUT.report.html.tmp.XXXXXX: too long
refuses out_path_beyond_path_max 1 "limit" "$BIN" train --data "$T/ds" --out "$huge/m.safetensors" "${TRAIN[@]}"
[ -z "$(ls "$huge")" ] && ok out_path_beyond_path_max_writes_nothing || bad out_path_beyond_path_max_writes_nothing

# ---- item 2: outputs that are inputs are refused, and the input stays as it was. ----
cp "$T/m.safetensors" "$T/m.copy"; cp "$T/ds/labels.csv" "$T/labels.copy"
refuses cache_is_the_model 1 "is --out" \
  "$BIN" train --data "$T/ds" --out "$T/m.safetensors" --cache "$T/m.safetensors" "${TRAIN[@]}"
refuses cache_is_labels_csv 1 "labels.csv of the dataset" \
  "$BIN" train --data "$T/ds" --out "$T/n.safetensors" --cache "$T/ds/labels.csv" "${TRAIN[@]}"
echo "my notes" > "$T/notes.txt"; cp "$T/notes.txt" "$T/notes.copy"
refuses cache_over_a_non_cache_file 1 "is not an sdumc feature cache" \
  "$BIN" train --data "$T/ds" --out "$T/n.safetensors" --cache "$T/notes.txt" "${TRAIN[@]}"
refuses predict_out_is_the_model 1 "is --model" \
  "$BIN" predict --model "$T/m.safetensors" --data "$T/ds" --out "$T/m.safetensors"
refuses predict_out_is_labels_csv 1 "labels.csv of the dataset" \
  "$BIN" predict --model "$T/m.safetensors" --data "$T/ds" --out "$T/ds/labels.csv"
refuses train_out_in_a_feature_folder 1 "lies inside the audio feature folder" \
  "$BIN" train --data "$T/ds" --out "$T/ds/audio/x.npy" "${TRAIN[@]}"
mkdir -p "$T/wavlm"
refuses simulate_text_out_is_wavlm 2 "is --wavlm" \
  "$BIN" simulate-text --llm "$T/none.gguf" --projector "$T/none.st" --wavlm "$T/wavlm" --out "$T/wavlm"
if same_bytes "$T/m.safetensors" "$T/m.copy" && same_bytes "$T/ds/labels.csv" "$T/labels.copy" &&
   same_bytes "$T/notes.txt" "$T/notes.copy" && [ ! -e "$T/ds/audio/x.npy" ] && [ ! -e "$T/n.safetensors" ]; then
  ok inputs_untouched_by_refused_outputs; else bad inputs_untouched_by_refused_outputs; fi

# ---- item 7: non-finite values are errors; undefined metrics are JSON null. ----
cp -r "$T/ds" "$T/huge"
$PY - "$T/huge" <<'PYEOF'
import csv, sys
import numpy as np
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/labels.csv", newline="")))
name = next(r["name"] for r in rows if r["split"] == "test")
x = np.load(f"{d}/audio/{name}.npy"); x[:] = 3e38; np.save(f"{d}/audio/{name}.npy", x)
PYEOF
# A model without input standardisation (--normalize none): the standardisation folded into the
# first layers divides them by the features' deviations, after which these values need not overflow.
"$BIN" train --data "$T/ds" --out "$T/raw.safetensors" "${TRAIN[@]}" --normalize none >/dev/null 2>&1 || bad train_raw
refuses eval_overflow_is_an_error 1 "is not finite" "$BIN" eval --model "$T/raw.safetensors" --data "$T/huge" --format json
refuses predict_overflow_is_an_error 1 "is not finite" \
  "$BIN" predict --model "$T/raw.safetensors" --data "$T/huge" --out "$T/huge.csv"
[ ! -e "$T/huge.csv" ] && ok predict_overflow_writes_nothing || bad predict_overflow_writes_nothing
$PY - "$T/m.safetensors" "$T/nan.safetensors" <<'PYEOF'
import json, struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
off = h["frame_dim_reshape_0.weight"]["data_offsets"][0]
raw[8 + n + off:8 + n + off + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(raw)
PYEOF
refuses nan_weight_refused_at_load 1 "tensor frame_dim_reshape_0.weight holds NaN" \
  "$BIN" eval --model "$T/nan.safetensors" --data "$T/ds"
cp -r "$T/ds" "$T/zero"
$PY - "$T/zero" <<'PYEOF'
import csv, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/labels.csv", newline="")))
for r in rows:
    if r["split"] == "test": r["label"] = "0"
with open(d + "/labels.csv", "w", newline="") as f:
    w = csv.DictWriter(f, ["name", "label", "split"], lineterminator="\n"); w.writeheader(); w.writerows(rows)
PYEOF
if "$BIN" eval --model "$T/m.safetensors" --data "$T/zero" --format json >"$T/zero.json" 2>"$T/err" && $PY -c "
import json
d = json.load(open('$T/zero.json'))
for f in d.values():
    assert f['n_non0'] == 0 and f['acc2_non0'] is None and f['f1_non0'] is None and f['corr'] is None, f
"; then ok undefined_metrics_are_json_null; else cat "$T/zero.json" "$T/err"; bad undefined_metrics_are_json_null; fi

# ---- item 8: FIFOs and other special files never block; the message says what they are. ----
cp -r "$T/ds" "$T/fifo"
first=$(sed -n 2p "$T/fifo/labels.csv" | cut -d, -f1)
rm "$T/fifo/video/$first.npy"; mkfifo "$T/fifo/video/$first.npy"
refuses fifo_feature_file 1 "video/$first.npy: is a FIFO (named pipe), not a file" "$BIN" validate --data "$T/fifo"
refuses fifo_feature_file_train 1 "is a FIFO" "$BIN" train --data "$T/fifo" --out "$T/f.safetensors" "${TRAIN[@]}"
cp -r "$T/ds" "$T/fifo2"; rm "$T/fifo2/labels.csv"; mkfifo "$T/fifo2/labels.csv"
refuses fifo_labels_csv 1 "labels.csv: is a FIFO" "$BIN" validate --data "$T/fifo2"
cp -r "$T/ds" "$T/fifo3"; mkfifo "$T/fifo3/dataset.json"
refuses fifo_dataset_json 1 "dataset.json: is a FIFO" "$BIN" validate --data "$T/fifo3"
mkfifo "$T/p"
refuses fifo_model 1 "is a FIFO" "$BIN" eval --model "$T/p" --data "$T/ds"
refuses fifo_state 1 "is a FIFO" "$BIN" train --data "$T/ds" --out "$T/r.safetensors" --resume "$T/p" "${TRAIN[@]}"
refuses fifo_cache 1 "exists and is a FIFO (named pipe), not an sdumc feature cache" \
  "$BIN" train --data "$T/ds" --out "$T/r.safetensors" --cache "$T/p" "${TRAIN[@]}"
refuses fifo_score_input 1 "is a FIFO" "$BIN" score "$T/p"
refuses fifo_names 1 "is a FIFO" "$BIN" predict --model "$T/m.safetensors" --data "$T/ds" --names "$T/p" --out "$T/x.csv"
refuses fifo_gguf 1 "is a FIFO" "$BIN" simulate-text --llm "$T/p" --projector "$T/p" --wavlm "$T/wavlm" --out "$T/sim"
refuses fifo_predict_one 1 "is a FIFO" "$BIN" predict-one --model "$T/m.safetensors" --audio "$T/p" --video "$T/p" --text "$T/p"
[ -p "$T/p" ] && ok fifo_left_in_place || bad fifo_left_in_place

# ---- predict-one names the file whose features do not fit the model (dim, NaN, infinity). ----
u=$(ls "$T/ds/audio" | head -1)
$PY - "$T/ds" "$u" "$T" <<'EOF2'
import sys
import numpy as np
d, u, t = sys.argv[1:4]
s = np.load(f"{d}/text_sim/{u}")
np.save(f"{t}/narrow_sim.npy", s[:, :-1])
v = np.load(f"{d}/video/{u}").astype(np.float32)
v[2, 3] = np.nan
np.save(f"{t}/nan_video.npy", v)
a = np.load(f"{d}/audio/{u}").astype(np.float32)
a[1, 0] = -np.inf
np.save(f"{t}/inf_audio.npy", a)
EOF2
ONE=("$BIN" predict-one --model "$T/m.safetensors")
refuses predict_one_names_narrow_file 1 "$T/narrow_sim.npy: simulated text features of dim" \
  "${ONE[@]}" --audio "$T/ds/audio/$u" --sim-text "$T/narrow_sim.npy" --video "$T/ds/video/$u"
refuses predict_one_names_nan_file 1 "$T/nan_video.npy: video features: NaN at frame 2, column 3" \
  "${ONE[@]}" --audio "$T/ds/audio/$u" --text "$T/ds/text/$u" --video "$T/nan_video.npy"
refuses predict_one_names_inf_file 1 "$T/inf_audio.npy: audio features: infinity at frame 1, column 0" \
  "${ONE[@]}" --audio "$T/inf_audio.npy" --text "$T/ds/text/$u" --video "$T/ds/video/$u"

# ---- item 11: the umask, unsigned options, messages that say what is wrong. ----
(umask 077 && "$BIN" train --data "$T/ds" --out "$T/u.safetensors" "${TRAIN[@]}" >/dev/null 2>&1 &&
 "$BIN" predict --model "$T/u.safetensors" --data "$T/ds" --out "$T/u.csv" >/dev/null 2>&1)
modes=$(stat -c %a "$T/u.safetensors" "$T/u.safetensors.state" "$T/u.safetensors.log.jsonl" "$T/u.safetensors.report.html" "$T/u.csv" | sort -u)
[ "$modes" = 600 ] && ok umask_honoured || { echo "  modes: $modes"; bad umask_honoured; }
refuses seed_with_a_sign 2 "--seed: ' -1' is not a non-negative whole number" \
  "$BIN" train --data "$T/ds" --out "$T/s.safetensors" --seed ' -1'
refuses dropout_underflow 2 "--dropout: '1e-320' is too small to be represented" \
  "$BIN" train --data "$T/ds" --out "$T/s.safetensors" --dropout 1e-320
refuses validate_data_is_a_file 1 "is a regular file, not a folder" "$BIN" validate --data "$T/ds/labels.csv"
refuses npy_as_model 1 "not a safetensors file (it is a NumPy .npy file)" \
  "$BIN" eval --model "$T/ds/audio/$first.npy" --data "$T/ds"
refuses labels_as_model 1 "not a safetensors file (it looks like text" "$BIN" eval --model "$T/ds/labels.csv" --data "$T/ds"
refuses score_a_folder 1 "is a folder" "$BIN" score "$T/ds"
cp -r "$T/ds" "$T/novideo"; rm -r "$T/novideo/video"
refuses no_skip_bad_hint_where_it_cannot_help 1 "video feature folder does not exist" "$BIN" validate --data "$T/novideo"
grep -q -- "skip-bad\|skip_bad" "$T/err" && bad skip_bad_not_suggested || ok skip_bad_not_suggested
"$BIN" train --data "$T/novideo" --out "$T/s.safetensors" "${TRAIN[@]}" >/dev/null 2>"$T/err"
grep -q -- "skip-bad\|skip_bad" "$T/err" && bad skip_bad_not_suggested_train || ok skip_bad_not_suggested_train

# ---- item 4: a resume compares every option that affects the result, and the dataset. ----
# (--threads and --prefetch do not affect it: the results are thread-count invariant.)
R=(--data "$T/ds" --out "$T/r4.safetensors" --batch-size 32 --epochs 2)
"$BIN" train --data "$T/ds" --out "$T/r4.safetensors" --batch-size 32 --epochs 1 --hidden 8 --threads 1 >/dev/null 2>&1
for change in "--hidden 12:hidden: 8 when the run started, 12 now" "--dropout 0.2:dropout: 0.3 when" \
              "--attn-dropout 0.4:attn-dropout: 0.5 when" "--mia off:mia: on when" "--mask off:mask: on when" \
              "--cache-dtype f16 --cache $T/r4.cache:cache-dtype: f32 when" "--skip-bad:skip-bad: no when" \
              "--preset release:preset: paper when" "--w-rnc 0.4:w-rnc: 0.5 when" "--seed 2:seed: 1 when"; do
  opts=${change%%:*} needle=${change#*:}
  hidden=(--hidden 8); [ "${opts%% *}" = --hidden ] && hidden=()
  # shellcheck disable=SC2086
  refuses "resume_compares_${opts%% *}" 1 "$needle" "$BIN" train "${R[@]}" "${hidden[@]}" $opts --resume "$T/r4.safetensors.state"
done
cp -r "$T/ds" "$T/other"
sed -i '2s/,[^,]*,train$/,0.5,train/; 2s/,[^,]*,valid$/,0.5,valid/' "$T/other/labels.csv"
refuses resume_compares_the_dataset 1 "the dataset differs" \
  "$BIN" train --data "$T/other" --out "$T/r4.safetensors" --batch-size 32 --epochs 2 --hidden 8 --resume "$T/r4.safetensors.state"
if "$BIN" train "${R[@]}" --hidden 8 --threads 2 --prefetch 0 --resume "$T/r4.safetensors.state" >/dev/null 2>"$T/err"; then
  ok resume_ignores_threads_and_prefetch; else cat "$T/err"; bad resume_ignores_threads_and_prefetch; fi
# A run started from --init resumes (--init cannot be given again: the state holds the weights, and
# the settings --init decided, its hidden size and standardisation, are the run's) to the bytes of
# the uninterrupted run, and the command printed to continue it has no --init.
"$BIN" train --data "$T/ds" --out "$T/init2.safetensors" --init "$T/r4.safetensors" --batch-size 32 --epochs 2 \
  --threads 1 >/dev/null 2>&1
"$BIN" train --data "$T/ds" --out "$T/init1.safetensors" --init "$T/r4.safetensors" --batch-size 32 --epochs 1 \
  --threads 1 >/dev/null 2>&1
if "$BIN" train --data "$T/ds" --out "$T/init1.safetensors" --batch-size 32 --epochs 2 --threads 1 \
     --resume "$T/init1.safetensors.state" >/dev/null 2>"$T/err" && cmp -s "$T/init1.safetensors" "$T/init2.safetensors"; then
  ok resume_of_an_init_run_bit_identical; else cat "$T/err"; bad resume_of_an_init_run_bit_identical; fi
refuses resume_of_an_init_run_compares 1 "hidden: 0 when the run started, 12 now" \
  "$BIN" train --data "$T/ds" --out "$T/init1.safetensors" --batch-size 32 --epochs 3 --hidden 12 --resume "$T/init1.safetensors.state"
"$BIN" train --data "$T/ds" --out "$T/init3.safetensors" --init "$T/r4.safetensors" --batch-size 32 --epochs 100000 \
  --threads 1 >/dev/null 2>"$T/err" &
pid=$!
for _ in $(seq 1 600); do [ -s "$T/init3.safetensors.state" ] && break; sleep 0.1; done
kill -TERM $pid; wait $pid # (SIGINT is ignored by a background job of a script)
if grep -q -- "--resume .*init3.safetensors.state" "$T/err" && ! grep -A1 "to continue the run" "$T/err" | grep -q -- "--init"; then
  ok resume_command_of_an_init_run; else cat "$T/err"; bad resume_command_of_an_init_run; fi
