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
