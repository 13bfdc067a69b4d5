#!/usr/bin/env bash
# Each command needs only the splits it reads (issue 13, item 2): a test-only folder serves eval and
# predict; a train+valid folder serves train; a train-only folder trains with --valid-fraction (a
# seeded validation split carved out of train, its names written beside the model) and is refused
# without it, with the way out named; validate says which commands a folder supports. Also the
# 1-based epoch numbers of the JSON log and the small-corpus hint (item 5).
set -u
cd "$(dirname "$0")/../.."
BIN=${BUILD:-build}/sdumc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "PASS partial.$1"; }
bad() { echo "FAIL partial.$1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

"$BIN" synth --out "$tmp/full" --n 120 --seed 5 >/dev/null 2>&1 || { bad synth; exit 1; }
# A copy of the corpus whose labels.csv keeps only the rows of the given splits.
subset() { # subset NAME SPLIT_REGEX
  cp -r "$tmp/full" "$tmp/$1"
  awk -F, -v re="$2" 'NR == 1 || $3 ~ re' "$tmp/full/labels.csv" > "$tmp/$1/labels.csv"
}
subset testonly '^test$'
subset trainvalid '^(train|valid)$'
subset trainonly '^train$'
small=(--hidden 8 --batch-size 16 --lr 1e-3 --threads 1 --epochs)

# validate reports what each folder supports.
"$BIN" validate --data "$tmp/testonly" >"$tmp/v1.out" 2>&1
check validate_test_only_ok grep -q "ok, .* (train 0, valid 0, test" "$tmp/v1.out"
check validate_test_only_train_no grep -q "^  train  *no (the train split is empty)" "$tmp/v1.out"
check validate_test_only_eval grep -q "^  eval, predict  --split test or --names FILE; both flows" "$tmp/v1.out"
"$BIN" validate --data "$tmp/trainonly" >"$tmp/v2.out" 2>&1
check validate_train_only grep -q "^  train  *with --valid-fraction F only" "$tmp/v2.out"
"$BIN" validate --data "$tmp/full" >"$tmp/v3.out" 2>&1
check validate_full grep -q "^  train  *yes (train [0-9]*, valid [0-9]*)" "$tmp/v3.out"
check validate_full_splits grep -q "^  eval, predict  --split test, valid, train" "$tmp/v3.out"

# train on train+valid; the log numbers epochs from 1 as the console does.
if "$BIN" train --data "$tmp/trainvalid" --out "$tmp/m.safetensors" "${small[@]}" 2 >"$tmp/t.out" 2>"$tmp/t.err"; then
  ok train_on_train_valid
else cat "$tmp/t.err"; bad train_on_train_valid; fi
check log_epochs_one_based /usr/bin/python3 - "$tmp/m.safetensors.log.jsonl" "$tmp/t.err" "$tmp/t.out" <<'EOF'
import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
epochs = [l["epoch"] for l in lines if "epoch" in l]
assert epochs == [1, 2], epochs
console = [int(m) for m in re.findall(r"^epoch (\d+)/2:", open(sys.argv[2]).read(), re.M)]
assert console == epochs, (console, epochs)
sel = lines[-1]["selected_epoch"]
printed = int(re.search(r"selected epoch (\d+) of 2", open(sys.argv[3]).read()).group(1))
assert sel == printed and sel in (1, 2), (sel, printed)
EOF
check small_corpus_hint grep -q "hint: [0-9]* optimiser steps per epoch" "$tmp/t.err"
out=$("$BIN" eval --model "$tmp/m.safetensors" --data "$tmp/trainvalid" 2>&1); rc=$?
check eval_missing_split_refused bash -c "[ $rc -ne 0 ] && grep -q \"split 'test' is empty\" <<<\"\$1\"" _ "$out"

# eval and predict on a test-only folder: the same numbers as on the whole corpus.
"$BIN" eval --model "$tmp/m.safetensors" --data "$tmp/testonly" --format json >"$tmp/e1.json" 2>"$tmp/e1.err"
"$BIN" eval --model "$tmp/m.safetensors" --data "$tmp/full" --format json >"$tmp/e2.json" 2>&1
check eval_test_only cmp -s "$tmp/e1.json" "$tmp/e2.json"
"$BIN" predict --model "$tmp/m.safetensors" --data "$tmp/testonly" --flow missing --out "$tmp/p1.csv" 2>/dev/null
"$BIN" predict --model "$tmp/m.safetensors" --data "$tmp/full" --flow missing --out "$tmp/p2.csv" 2>/dev/null
check predict_test_only bash -c "[ -s '$tmp/p1.csv' ] && cmp -s '$tmp/p1.csv' '$tmp/p2.csv'"
cut -d, -f1 "$tmp/p1.csv" | sed -n 2,4p > "$tmp/names.txt"
check predict_names_test_only "$BIN" predict --model "$tmp/m.safetensors" --data "$tmp/testonly" --names "$tmp/names.txt" --out "$tmp/p3.csv" 2>/dev/null

# train refuses a folder without train, and one without valid naming --valid-fraction.
out=$("$BIN" train --data "$tmp/testonly" --out "$tmp/x.safetensors" "${small[@]}" 2 2>&1); rc=$?
check train_test_only_refused bash -c "[ $rc -ne 0 ] && grep -q \"split 'train' is empty\" <<<\"\$1\" && [ ! -e '$tmp/x.safetensors' ]" _ "$out"
out=$("$BIN" train --data "$tmp/trainonly" --out "$tmp/x.safetensors" "${small[@]}" 2 2>&1); rc=$?
check train_no_valid_names_the_way_out bash -c "[ $rc -ne 0 ] && grep -q 'the valid split is empty' <<<\"\$1\" && grep -q -- '--valid-fraction 0.1' <<<\"\$1\" && [ ! -e '$tmp/x.safetensors' ]" _ "$out"
out=$("$BIN" train --data "$tmp/full" --out "$tmp/x.safetensors" "${small[@]}" 2 --valid-fraction 0.2 2>&1); rc=$?
check valid_fraction_refused_with_valid_split bash -c "[ $rc -ne 0 ] && grep -q 'already has a valid split' <<<\"\$1\"" _ "$out"

# --valid-fraction: a seeded carve-out, recorded beside the model, the same on a second run.
ntrain=$(($(wc -l < "$tmp/trainonly/labels.csv") - 1))
for r in a b; do
  "$BIN" train --data "$tmp/trainonly" --out "$tmp/$r.safetensors" "${small[@]}" 2 --seed 4 --valid-fraction 0.2 \
    >/dev/null 2>"$tmp/$r.err" || { cat "$tmp/$r.err"; bad "valid_fraction_train_$r"; }
done
want=$(/usr/bin/python3 -c "print(round(0.2 * $ntrain))")
check valid_fraction_count bash -c "[ \$(wc -l < '$tmp/a.safetensors.valid.txt') -eq $want ]"
check valid_fraction_names_from_train bash -c "while read -r n; do grep -q \"^\$n,.*,train\$\" '$tmp/trainonly/labels.csv' || exit 1; done < '$tmp/a.safetensors.valid.txt'"
check valid_fraction_reported grep -q "validation split carved out of train: $want of $ntrain utterances (--valid-fraction 0.2, seed 4)" "$tmp/a.err"
check valid_fraction_reproducible cmp -s "$tmp/a.safetensors" "$tmp/b.safetensors"
check valid_fraction_same_names cmp -s "$tmp/a.safetensors.valid.txt" "$tmp/b.safetensors.valid.txt"
check valid_fraction_valid_metrics /usr/bin/python3 -c "
import json
l = json.loads(open('$tmp/a.safetensors.log.jsonl').readline())
assert l['valid_full']['n'] == $want, l['valid_full']['n']"
# A resume must carve the same split: another fraction is refused (the seed is compared already).
out=$("$BIN" train --data "$tmp/trainonly" --out "$tmp/a.safetensors" "${small[@]}" 2 --seed 4 --valid-fraction 0.3 --resume "$tmp/a.safetensors.state" 2>&1); rc=$?
check valid_fraction_resume_other_refused bash -c "[ $rc -ne 0 ] && grep -q 'valid-fraction: 0.2 when the run started, 0.3 now' <<<\"\$1\"" _ "$out"
