#!/usr/bin/env bash
# End to end: `sdumc text-features` on the tiny GGUF model of tests/fixtures/llm/ against the Python
# reference (tests/reference/llama_ref.py: the tokenizer, the float64 forward pass and the
# hidden-state sum of MODEL.md section 6), with non-ASCII transcripts and quoted fields; then
# batching, resume, --drop-bos and the clear errors (empty transcript, missing column).
# Prints PASS/FAIL/SKIP lines.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BIN=$BUILD/sdumc
PY=/usr/bin/python3
if [ ! -x "$BIN" ]; then echo "FAIL text_features_build ($BIN missing)"; exit 1; fi
if ! $PY -c "import torch, numpy" 2>/dev/null; then echo "SKIP text_features (no torch for $PY)"; exit 0; fi
T=$(mktemp -d /tmp/sdumc-textfeat-XXXXXX)
trap 'rm -rf "$T"' EXIT
MODEL=tests/fixtures/llm/tiny_f32.gguf

# Transcripts: ASCII, non-ASCII (accents, CJK, an emoji: byte-fallback tokens), a quoted field with
# a comma, a quote and a line break, one long enough to span several passes of --batch-tokens 8.
$PY - "$T" <<'EOF' || { echo "FAIL text_features_inputs"; exit 1; }
import csv, sys
T = sys.argv[1]
rows = [("u01", "the movie was really good"), ("u02", "caf\u00e9 \u00fcber na\u00efve \u65e5\u672c\u8a9e \U0001F642"),
        ("u03", 'well, um, she said "great"\nand left'), ("u04", "i did not like this film at all, the story was boring "
        "and the acting was worse than the story"), ("u05", "ok")]
with open(T + "/trans.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "name", "text"])
    for i, (n, t) in enumerate(rows):
        w.writerow([i, n, t])
with open(T + "/empty.csv", "w", newline="") as f:
    f.write("name,text\nu1,fine\nu2,\nu3,\"\"\n")
EOF

check() { # out_dir, mode (exact|default), dtype, drop_bos -> compares with the reference
  $PY - "$T" "$1" "$2" "$3" "$4" <<'EOF'
import csv, sys
import numpy as np
sys.path.insert(0, "tests/reference")
import llama_ref as ref, make_llm_fixtures as mk
T, out, mode, dtype, drop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
tok = ref.Tokenizer(*mk.build_vocab())
W = ref.random_weights(mk.CFG, np.random.default_rng(1234), eos_boost=(2, 2.0))  # tiny_f32.gguf's weights
fw = {} if mode == "exact" else dict(act="f32", kv16=True)
worst = 0
for r in csv.DictReader(open(T + "/trans.csv", newline="")):
    ids = tok.encode(r["text"])
    x = ref.torch.from_numpy(W["embed"][ids].astype(np.float64))
    hidden, normed, _ = ref.forward(mk.CFG, W, x, **fw)
    want = ref.hidden_sum(hidden, normed).numpy()[drop:]
    got = np.load(out + "/%s.npy" % r["name"])
    assert got.dtype == (np.float16 if dtype == "f16" else np.float32), got.dtype
    assert got.shape == want.shape, (r["name"], got.shape, want.shape)
    if dtype == "f16":
        want = want.astype(np.float16).astype(np.float64)
    err = (np.abs(got.astype(np.float64) - want).max(axis=1) / np.abs(want).max(axis=1)).max()  # per frame
    worst = max(worst, err)
print("  %s %s%s: %d utterances, max error per frame %.2e" % (mode, dtype, " drop-bos" if drop else "",
      len(list(csv.DictReader(open(T + "/trans.csv", newline="")))), worst))
assert worst < (1e-4 if dtype == "f32" else 2e-3), worst
EOF
}

ARGS=(--llm "$MODEL" --transcripts "$T/trans.csv" --threads 2)
# 1. --exact, float32 output, against the float64 reference (bound 1e-4 per frame); the default
# arithmetic (float16 KV cache with llama.cpp's rounding) against the reference emulating it, in
# float16 (bound 2e-3: one float16 ulp is 4.9e-4 of a value).
if "$BIN" text-features "${ARGS[@]}" --exact --dtype f32 --out "$T/exact" 2>"$T/log1" && check "$T/exact" exact f32 0; then
  echo "PASS text_features_exact_matches_reference"; else echo "FAIL text_features_exact_matches_reference"; cat "$T/log1"; fi
if "$BIN" text-features "${ARGS[@]}" --out "$T/default" 2>"$T/log2" && check "$T/default" default f16 0; then
  echo "PASS text_features_default_matches_reference"; else echo "FAIL text_features_default_matches_reference"; cat "$T/log2"; fi
grep -q '\[5/5\] u05' "$T/log2" && echo "PASS text_features_progress" || { echo "FAIL text_features_progress"; cat "$T/log2"; }
ls "$T/default" | grep -q '\.tmp' && echo "FAIL text_features_no_temporaries" || echo "PASS text_features_no_temporaries"

# 2. Batching: passes of 8 positions (one utterance per pass, the longer ones in pieces) give what
# packed passes give, up to the order of float32 sums (the product kernels differ with the rows
# per pass: OpenBLAS for 8 or more F32 rows): bound 1e-5 of a frame's scale.
"$BIN" text-features "${ARGS[@]}" --exact --dtype f32 --batch-tokens 8 --out "$T/small" 2>"$T/log3"
if $PY -c "
import numpy as np, sys
worst = 0
for n in ['u01', 'u02', 'u03', 'u04', 'u05']:
    a, b = np.load('$T/exact/%s.npy' % n), np.load('$T/small/%s.npy' % n)
    assert a.shape == b.shape, n
    worst = max(worst, (np.abs(a - b).max(axis=1) / np.abs(a).max(axis=1)).max())
print('  passes of 8 positions against packed passes: %.2e' % worst)
assert worst < 1e-5, worst
"; then echo "PASS text_features_batching_same"; else echo "FAIL text_features_batching_same"; cat "$T/log3"; fi

# 3. Resume: a second run writes nothing; a deleted output is redone in the pass of a complete run,
# so its bytes equal the first run's (an utterance's numbers depend on the pass it is in).
before=$(stat -c %Y.%s "$T/default/u01.npy")
sleep 1
"$BIN" text-features "${ARGS[@]}" --out "$T/default" 2>"$T/log4"
cp "$T/default/u03.npy" "$T/u03.first"; rm "$T/default/u03.npy"
"$BIN" text-features "${ARGS[@]}" --out "$T/default" 2>"$T/log5"
if grep -q "0 written, 5 already done" "$T/log4" && grep -q "1 written, 4 already done" "$T/log5" &&
   [ "$before" = "$(stat -c %Y.%s "$T/default/u01.npy")" ] && cmp -s "$T/default/u03.npy" "$T/u03.first"; then
  echo "PASS text_features_resume"; else echo "FAIL text_features_resume"; cat "$T/log4" "$T/log5"; fi

# 4. --drop-bos: the rows after BOS.
if "$BIN" text-features "${ARGS[@]}" --exact --dtype f32 --drop-bos --out "$T/nobos" 2>"$T/log6" && check "$T/nobos" exact f32 1; then
  echo "PASS text_features_drop_bos"; else echo "FAIL text_features_drop_bos"; cat "$T/log6"; fi

# 5. Clear errors, nothing written.
"$BIN" text-features --llm "$MODEL" --transcripts "$T/empty.csv" --out "$T/e1" 2>"$T/err"; rc=$?
if [ $rc -ne 0 ] && grep -q "empty.csv: 2 transcripts cannot be used (nothing was written): line 3, 'u2': empty transcript" "$T/err" &&
   grep -q "line 4, 'u3': empty transcript" "$T/err" && [ -z "$(ls "$T/e1" 2>/dev/null)" ]; then
  echo "PASS text_features_empty_transcript_error"; else echo "FAIL text_features_empty_transcript_error (exit $rc)"; cat "$T/err"; fi
"$BIN" text-features "${ARGS[@]}" --text-column english --out "$T/e2" 2>"$T/err"; rc=$?
if [ $rc -ne 0 ] && grep -q "trans.csv: the header has no 'english' column" "$T/err"; then
  echo "PASS text_features_missing_column_error"; else echo "FAIL text_features_missing_column_error (exit $rc)"; cat "$T/err"; fi
"$BIN" text-features --llm "$MODEL" --out "$T/e3" 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q "are required" "$T/err" && echo "PASS text_features_missing_args" || echo "FAIL text_features_missing_args"
exit 0
