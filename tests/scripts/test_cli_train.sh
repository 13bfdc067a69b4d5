#!/usr/bin/env bash
# The training and evaluation commands end to end: synth -> train -> eval -> predict -> score, and
# option validation (a bad value is an error with a non-zero exit before anything is written).
set -u
cd "$(dirname "$0")/../.."
BIN=${BUILD:-build}/sdumc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "PASS cli_train.$1"; }
bad() { echo "FAIL cli_train.$1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

"$BIN" synth --out "$tmp/data" --n 100 --seed 2 >/dev/null 2>&1 || { bad synth; exit 1; }
train=("$BIN" train --data "$tmp/data" --out "$tmp/m.safetensors" --hidden 16 --epochs 2 --batch-size 16 --lr 1e-3 --threads 1)

# Option validation: each bad value exits 2, names the option, and writes nothing.
expect_refused() {
  local name=$1 needle=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ] && grep -q -- "$needle" <<<"$out" && ! ls "$tmp"/m.safetensors* >/dev/null 2>&1; then
    ok "refuses_$name"
  else
    echo "  exit $rc, output: $out"; bad "refuses_$name"
  fi
}
expect_refused negative_epochs "--epochs" "${train[@]}" --epochs -1
expect_refused unknown_preset "unknown preset" "${train[@]}" --preset fast
expect_refused weight_not_a_number "--w-rnc" "${train[@]}" --w-rnc abc
expect_refused onoff "--mia" "${train[@]}" --mia maybe
expect_refused unknown_option "unknown option" "${train[@]}" --learning-rate 3
expect_refused missing_dir "does not exist" "$BIN" train --data "$tmp/nope" --out "$tmp/m.safetensors"
expect_refused out_folder_missing "folder does not exist" "${train[@]/$tmp\/m.safetensors/$tmp/no/m.safetensors}"

# Train, then evaluate, predict and score.
if "${train[@]}" >"$tmp/train.out" 2>"$tmp/train.err"; then ok train; else cat "$tmp/train.err"; bad train; fi
check writes_all_files test -s "$tmp/m.safetensors" -a -s "$tmp/m.safetensors.state" -a -s "$tmp/m.safetensors.log.jsonl" -a -s "$tmp/m.safetensors.report.html"
check log_names_selection grep -q '"selected_epoch"' "$tmp/m.safetensors.log.jsonl"
# The packed float32 cache changes where features come from, not what they are: same model bytes.
"${train[@]/$tmp\/m.safetensors/$tmp/c.safetensors}" --cache "$tmp/feat.pack" >/dev/null 2>"$tmp/cache.err"
check cache_same_model cmp -s "$tmp/m.safetensors" "$tmp/c.safetensors"
check cache_built grep -q "feature cache .* (built)" "$tmp/cache.err"
"$BIN" eval --model "$tmp/m.safetensors" --data "$tmp/data" --format json >"$tmp/eval.json" 2>"$tmp/eval.err"
check eval_json_keys /usr/bin/python3 -c "
import json,sys
d=json.load(open('$tmp/eval.json'))
keys={'mae','mse','corr','acc7','acc5','acc2_has0','f1_has0','acc2_non0','f1_non0','n','n_non0'}
assert set(d)=={'full','missing'}, d.keys()
for f in d.values(): assert keys <= set(f), set(f)
"
"$BIN" eval --model "$tmp/m.safetensors" --data "$tmp/data" --flow missing --format table >"$tmp/eval.txt" 2>&1
check eval_table grep -q '^missing' "$tmp/eval.txt"
"$BIN" predict --model "$tmp/m.safetensors" --data "$tmp/data" --flow missing --out "$tmp/p.csv" 2>/dev/null
check predict_csv bash -c "head -1 '$tmp/p.csv' | grep -qx 'name,prediction,label' && [ \$(wc -l < '$tmp/p.csv') -gt 5 ]"
"$BIN" score "$tmp/p.csv" --format json >"$tmp/score.json" 2>&1
check score_equals_eval /usr/bin/python3 -c "
import json
e=json.load(open('$tmp/eval.json'))['missing']; s=json.load(open('$tmp/score.json'))
for k in ('mae','mse','acc7','acc5','acc2_has0','f1_has0','acc2_non0','f1_non0','n'):
    assert abs(e[k]-s[k]) < 1e-5, (k, e[k], s[k])
"
head -4 "$tmp/p.csv" | tail -3 | cut -d, -f1 > "$tmp/names.txt"
"$BIN" predict --model "$tmp/m.safetensors" --data "$tmp/data" --flow missing --names "$tmp/names.txt" --out "$tmp/p2.csv" 2>/dev/null
# Same utterances in another batch: the same predictions (masked mode) to float rounding.
check predict_names /usr/bin/python3 -c "
a=[l.split(',') for l in open('$tmp/p.csv').read().split()[1:4]]
b=[l.split(',') for l in open('$tmp/p2.csv').read().split()[1:]]
assert [x[0] for x in a]==[x[0] for x in b] and len(b)==3, (a,b)
assert all(abs(float(x[1])-float(y[1])) <= 1e-5*max(1,abs(float(x[1]))) and x[2]==y[2] for x,y in zip(a,b)), (a,b)
"
printf 'label,prediction\n1,0.5\n' > "$tmp/bad.csv"; printf 'x,y\n1,2\n' > "$tmp/nocols.csv"
check score_refuses_missing_columns bash -c "! '$BIN' score '$tmp/nocols.csv' 2>/dev/null"
check eval_refuses_missing_model bash -c "! '$BIN' eval --model '$tmp/none.safetensors' --data '$tmp/data' 2>/dev/null"
# A failed validation leaves an existing model untouched.
cp "$tmp/m.safetensors" "$tmp/before"
rm "$tmp/data/audio/$(sed -n 2p "$tmp/data/labels.csv" | cut -d, -f1).npy"
"${train[@]}" >/dev/null 2>"$tmp/err2"
check failed_validation_keeps_model cmp -s "$tmp/m.safetensors" "$tmp/before"
check failed_validation_names_file grep -q "missing\|cannot" "$tmp/err2"
