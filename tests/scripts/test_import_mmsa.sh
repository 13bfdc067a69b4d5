#!/usr/bin/env bash
# sdumc import-mmsa (issue 13, item 3): MMSA-style pickles written by tests/reference/mmsa_pickle.py
# (aligned with text_bert masks, unaligned with lengths; -inf and NaN values; zero padding; pickle
# protocols 2-5 and numpy 2's module names) are imported and every file checked against numpy's
# trimming and cleaning; CH-SIMS labels need --label-range, which the dataset keeps and the
# metrics follow; hostile pickles (code execution, truncation, wrong types, huge sizes) are refused
# with their message, nothing run and nothing written. Under make test-asan this runs the ASan build.
set -u
cd "$(dirname "$0")/../.."
BIN=${BUILD:-build}/sdumc
PY=/usr/bin/python3
REF=tests/reference/mmsa_pickle.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "PASS import_mmsa.$1"; }
bad() { echo "FAIL import_mmsa.$1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
if ! $PY -c "import numpy" 2>/dev/null; then echo "SKIP import_mmsa (no numpy for $PY)"; exit 0; fi

# Each kind and protocol: the import equals numpy's trimming; the counts printed equal numpy's.
for kind in aligned unaligned; do
  for proto in 2 3 4 5; do
    name=${kind}_p$proto
    $PY $REF write "$tmp/$name.pkl" $kind --protocol $proto --seed $proto || { bad "$name.write"; continue; }
    if "$BIN" import-mmsa "$tmp/$name.pkl" --out "$tmp/$name" >"$tmp/$name.out" 2>"$tmp/$name.err"; then
      want=$($PY $REF check "$tmp/$name.pkl" "$tmp/$name" 2>&1) || { echo "$want"; bad "$name.equals_numpy"; continue; }
      ok "$name.equals_numpy"
      read -r a t v <<<"$(sed -n 's/^nonfinite audio text video: //p' <<<"$want")"
      check "$name.nonfinite_counts" bash -c "grep -q '^  audio .*; $a -inf/+inf/NaN values set to 0' '$tmp/$name.out' &&
        grep -q '^  text .*; $t -inf/+inf/NaN values set to 0' '$tmp/$name.out' && grep -q '^  video .*; $v -inf/+inf/NaN values set to 0' '$tmp/$name.out'"
      "$BIN" validate --data "$tmp/$name" >"$tmp/$name.val" 2>&1
      check "$name.validates" grep -q "ok, .* utterances" "$tmp/$name.val"
    else
      cat "$tmp/$name.err"; bad "$name.import"
    fi
  done
done
check aligned_by_mask grep -q "^  text .*(by text_bert attention mask)" "$tmp/aligned_p4.out"
check aligned_by_nonzero_rows grep -q "^  audio .*(by frames that are not all zero)" "$tmp/aligned_p4.out"
check unaligned_by_lengths grep -q "^  audio .*(by audio_lengths).*; 3 utterances without frames got one zero frame" "$tmp/unaligned_p4.out"
check ids_kept_with_dollar grep -q '^train_vid000\$_\$0,' "$tmp/aligned_p4/labels.csv"
check no_sim_by_default bash -c "[ ! -e '$tmp/aligned_p4/text_sim' ] && grep -q 'text_sim: not written' '$tmp/aligned_p4.out'"

# An id with a comma and a quote: labels.csv quotes it (RFC 4180) and the dataset reads it back.
$PY - "$tmp/aligned_p4.pkl" "$tmp/comma.pkl" <<'EOF'
import pickle, sys
d = pickle.load(open(sys.argv[1], "rb"))
ids = list(d["test"]["id"]); ids[0] = 'clip "7", take 2'; d["test"]["id"] = ids
pickle.dump(d, open(sys.argv[2], "wb"), protocol=4)
EOF
"$BIN" import-mmsa "$tmp/comma.pkl" --out "$tmp/comma" >/dev/null 2>&1
check id_with_comma_quoted bash -c "grep -q '^\"clip \"\"7\"\", take 2\",' '$tmp/comma/labels.csv' && [ -s '$tmp/comma/audio/clip \"7\", take 2.npy' ] &&
  '$BIN' validate --data '$tmp/comma' >/dev/null 2>&1"

# numpy 2 writes numpy._core.multiarray: the same arrays.
for proto in 2 3; do
  $PY $REF write "$tmp/np2_$proto.pkl" aligned --protocol $proto --numpy2
  "$BIN" import-mmsa "$tmp/np2_$proto.pkl" --out "$tmp/np2_$proto" >/dev/null 2>"$tmp/np2.err" || cat "$tmp/np2.err"
  check "numpy2_names_p$proto" bash -c "$PY $REF check '$tmp/np2_$proto.pkl' '$tmp/np2_$proto' >/dev/null"
done

# CH-SIMS: labels in [-1, 1] (and the SIMS keys); --label-range keeps the range with the dataset. A
# label outside the range given (here the default [-3, 3]) is refused, the message names the option.
$PY $REF write "$tmp/sims.pkl" unaligned --sims --seed 7
"$BIN" import-mmsa "$tmp/sims.pkl" --out "$tmp/sims" --label-range -1,1 --sim zeros >"$tmp/sims.out" 2>&1
check sims_equals_numpy bash -c "$PY $REF check '$tmp/sims.pkl' '$tmp/sims' --sims >/dev/null"
check sims_range_kept grep -q '"label_range": \[-1, 1\]' "$tmp/sims/dataset.json"
check sims_text_sim_zeros $PY -c "
import numpy as np, os
d = '$tmp/sims'
names = [l.split(',')[0] for l in open(d + '/labels.csv').read().split()[1:]]
for n in names:
    s = np.load(d + '/text_sim/' + n + '.npy'); t = np.load(d + '/text/' + n + '.npy')
    assert s.shape == (1, t.shape[1]) and not s.any(), (n, s.shape)
"
$PY - "$tmp/sims.pkl" "$tmp/sims_wide.pkl" <<'EOF'
import pickle, sys
d = pickle.load(open(sys.argv[1], "rb"))
d["valid"]["regression_labels"][1] = 3.5  # beyond [-3, 3]
pickle.dump(d, open(sys.argv[2], "wb"), protocol=4)
EOF
out=$("$BIN" import-mmsa "$tmp/sims_wide.pkl" --out "$tmp/wide" 2>&1); rc=$?
check label_range_refused bash -c "[ $rc -eq 1 ] && grep -q \"valid/regression_labels: 1 label lies outside \[-3, 3\] (e.g. 3.5 of 'valid_vid000\\\$_\\\$1'.*--label-range LO,HI\" <<<\"\$1\" && [ ! -e '$tmp/wide' ]" _ "$out"
# Validation follows dataset.json: a label beyond the dataset's range is a problem.
sed -i '2s/,[^,]*,\(train\|valid\|test\)$/,1.5,\1/' "$tmp/sims/labels.csv"
out=$("$BIN" validate --data "$tmp/sims" 2>&1); rc=$?
check validate_uses_label_range bash -c "[ $rc -eq 1 ] && grep -q 'label 1.5 of .* lies outside \[-1, 1\] (the label range of dataset.json)' <<<\"\$1\"" _ "$out"
"$BIN" import-mmsa "$tmp/sims.pkl" --out "$tmp/sims2" --label-range -1,1 --sim zeros >/dev/null 2>&1

# From the pickle to a test-set metric: import-mmsa, train, eval (SIMS metrics for [-1, 1]).
"$BIN" train --data "$tmp/sims2" --out "$tmp/m.safetensors" --hidden 8 --epochs 2 --batch-size 8 --lr 1e-3 \
  --threads 1 >/dev/null 2>"$tmp/train.err" || cat "$tmp/train.err"
"$BIN" eval --model "$tmp/m.safetensors" --data "$tmp/sims2" --format json >"$tmp/eval.json" 2>"$tmp/eval.err" || cat "$tmp/eval.err"
check sims_eval_metrics $PY -c "
import json
d = json.load(open('$tmp/eval.json'))
for f in ('full', 'missing'):
    m = d[f]
    assert {'mae', 'mse', 'corr', 'acc2', 'acc3', 'acc5', 'f1', 'n'} <= set(m) and 'acc7' not in m and m['scheme'] == 'sims', m
"
check sims_log_metrics grep -q '"valid_full": {.*"acc3": .*"scheme": "sims"}' "$tmp/m.safetensors.log.jsonl"
"$BIN" predict --model "$tmp/m.safetensors" --data "$tmp/sims2" --out "$tmp/p.csv" 2>/dev/null
"$BIN" score "$tmp/p.csv" --label-range -1,1 --format json >"$tmp/score.json" 2>&1
check score_label_range_equals_eval $PY -c "
import json
e = json.load(open('$tmp/eval.json'))['full']; s = json.load(open('$tmp/score.json'))
for k in ('mae', 'acc2', 'acc3', 'acc5', 'f1', 'n'):
    assert abs(e[k] - s[k]) < 1e-5, (k, e[k], s[k])
"

# The output folder must be new: an existing non-empty one is left alone.
out=$("$BIN" import-mmsa "$tmp/aligned_p4.pkl" --out "$tmp/aligned_p4" 2>&1); rc=$?
check existing_output_refused bash -c "[ $rc -eq 1 ] && grep -q 'exists and is not an empty folder' <<<\"\$1\"" _ "$out"
out=$("$BIN" import-mmsa "$tmp/aligned_p4.pkl" --out "$tmp/x" --label-range 1,-1 2>&1); rc=$?
check bad_range_refused bash -c "[ $rc -eq 2 ] && grep -q -- '--label-range' <<<\"\$1\"" _ "$out"

# Hostile pickles: each refused with its message; nothing run (no marker), nothing written.
mkdir "$tmp/hostile"
$PY $REF hostile "$tmp/hostile" "$tmp/MARKER"
expect() { # file, message
  local f=$1 msg=$2 out rc
  out=$("$BIN" import-mmsa "$tmp/hostile/$f" --out "$tmp/h_out" 2>&1); rc=$?
  if [ $rc -eq 1 ] && grep -q -- "$msg" <<<"$out" && [ ! -e "$tmp/h_out" ] && [ ! -e "$tmp/MARKER" ] &&
     ! ls "$tmp" | grep -q '^h_out.tmp'; then
    ok "hostile.${f%.pkl}"
  else
    echo "  exit $rc: $out"; bad "hostile.${f%.pkl}"
  fi
}
expect exec_os_system.pkl "refuses the global 'posix.system'.*nothing from this file is run"
expect exec_os_system_proto2.pkl "refuses the global 'posix.system'"
expect exec_eval.pkl "refuses the global 'builtins.eval'"
expect exec_swapped_global.pkl "refuses the global 'posix.system'"
expect inst_opcode.pkl "refuses INST (creates an object of a class)"
expect out_of_band_buffer.pkl "refuses an out-of-band buffer"
expect truncated.pkl "truncated"
expect truncated_proto2.pkl "runs past the end of the file (truncated?)"
expect not_a_pickle.pkl "not a binary pickle"
expect empty.pkl "empty file (not a pickle)"
expect wrong_type_audio.pkl "train/audio: a list, not a numeric numpy array"
expect wrong_root.pkl "the pickle holds a list, not MMSA's dict of splits"
expect wrong_count.pkl "valid/audio: shape \[1, 6, 2\], expected \[2 utterances, frames, dim\]"
expect huge_shape.pkl "numpy array size overflows"
expect huge_bytes_length.pkl "a bytes value of 4611686018427387904 bytes runs past the end of the file"
expect memo_index_far.pkl "memo index far beyond the values memoised"
expect deep_marks.pkl "stack underflow"
# And Python itself would have run the command: the marker proves the file is live.
$PY -c "import pickle; pickle.load(open('$tmp/hostile/exec_os_system.pkl', 'rb'))" >/dev/null 2>&1
check hostile_file_is_live test -e "$tmp/MARKER"
