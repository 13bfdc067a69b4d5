#!/usr/bin/env bash
# Kill-and-resume (issue 9, item 3): a training run is killed with SIGKILL at random moments (at
# least KILLS times, default 12), resumed from its OUT.state each time (started afresh while no
# state exists yet), and finally left to finish. Checked:
#   - after every kill, every file the run had written (model, state, log, report) is whole: the
#     safetensors files parse and their tensors tile the data to the last byte, every log line is
#     JSON, the report ends with </html>;
#   - every resume is accepted;
#   - the final model is bit-identical (cmp) to an uninterrupted run with the same seed and thread
#     count.
# Kill moments: uniform in [0, 2.5 epochs) after the start (epoch time measured on the reference
# run, start-up included), so they fall in start-up, mid-epoch and in the epoch-end writes. A run
# that finishes before its kill ends a sequence, whose model is checked like the last one, and a
# new sequence starts from nothing until KILLS kills are reached. KILL_SEED fixes them
# (printed, to rerun a failure). Leftover temporaries (a kill between creating a temporary and its
# rename leaves "<file>.tmp.XXXXXX") are counted and listed, not a failure: the files are whole.
# Bounded: the whole script takes about 10 training runs of 8 small epochs (~30 s; ~2 min under
# ASan), and gives up after MAX_SECONDS (default 240).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SDUMC=$PWD/$BUILD/sdumc
KILLS=${KILLS:-12}
MAX_SECONDS=${MAX_SECONDS:-240}
KILL_SEED=${KILL_SEED:-$(( $(date +%s) % 100000 ))}
PY=/usr/bin/python3
if [ ! -x "$SDUMC" ]; then echo "FAIL kill_resume: $SDUMC is not built"; exit 0; fi
if [ ! -x "$PY" ]; then echo "SKIP kill_resume: $PY is missing (needed to check the files)"; exit 0; fi

T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

ARGS=(--hidden 16 --epochs 8 --batch-size 16 --seed 7 --threads 2)
"$SDUMC" synth --out "$T/ds" --n 200 --seed 1 >/dev/null 2>&1 || { echo "FAIL kill_resume: synth"; exit 0; }

# Checks the files in $1 that exist; prints one line per problem.
cat > "$T/check.py" <<'EOF'
import json, os, struct, sys
d = sys.argv[1]
def check_st(p):
    raw = open(p, "rb").read()
    if len(raw) < 8: return "shorter than 8 bytes"
    n = struct.unpack("<Q", raw[:8])[0]
    if 8 + n > len(raw): return "header runs past the end"
    try: h = json.loads(raw[8:8 + n])
    except Exception as e: return "header is not JSON (%s)" % e
    ends = [v["data_offsets"][1] for k, v in h.items() if k != "__metadata__"]
    if max(ends + [0]) != len(raw) - 8 - n: return "data section is %d bytes, tensors end at %d" % (len(raw) - 8 - n, max(ends + [0]))
    return None
problems = []
for name in ("m.safetensors", "m.safetensors.state"):
    p = os.path.join(d, name)
    if os.path.exists(p):
        e = check_st(p)
        if e: problems.append("%s: %s" % (name, e))
p = os.path.join(d, "m.safetensors.log.jsonl")
if os.path.exists(p):
    for i, line in enumerate(open(p, "rb").read().decode().splitlines()):
        try: json.loads(line)
        except Exception: problems.append("log line %d is not JSON" % (i + 1))
p = os.path.join(d, "m.safetensors.report.html")
if os.path.exists(p) and not open(p, "rb").read().rstrip().endswith(b"</html>"):
    problems.append("report does not end with </html>")
print("\n".join(problems))
EOF

# ---- the uninterrupted reference ----------------------------------------------------------
mkdir -p "$T/ref" "$T/run"
t0=$(now)
"$SDUMC" train --data "$T/ds" --out "$T/ref/m.safetensors" "${ARGS[@]}" >/dev/null 2>"$T/ref.err" ||
  { echo "FAIL kill_resume: reference run failed: $(tail -1 "$T/ref.err")"; exit 0; }
t_ref=$(elapsed "$t0")
epoch_s=$(awk -v t="$t_ref" 'BEGIN { printf "%.3f", t / 8 }')
echo "kill_resume: reference run ${t_ref} s (${epoch_s} s an epoch), kill seed $KILL_SEED"

# ---- killed and resumed -------------------------------------------------------------------
start=$(now)
RANDOM=$KILL_SEED
kills=0 resumes=0 fresh=0 problems=0 trial=0 sequences=0 identical=0
out=$T/run/m.safetensors
while :; do
  trial=$((trial + 1))
  if [ "$(awk -v e="$(elapsed "$start")" -v m="$MAX_SECONDS" 'BEGIN { print (e > m) }')" = 1 ]; then
    echo "FAIL kill_resume: gave up after $MAX_SECONDS s ($kills kills)"; exit 0
  fi
  cmd=("$SDUMC" train --data "$T/ds" --out "$out" "${ARGS[@]}")
  if [ -f "$out.state" ]; then cmd+=(--resume "$out.state"); resumes=$((resumes + 1)); else fresh=$((fresh + 1)); fi
  "${cmd[@]}" >/dev/null 2>"$T/run.err" &
  pid=$!
  if [ $kills -lt "$KILLS" ]; then
    delay=$(awk -v r="$RANDOM" -v e="$epoch_s" 'BEGIN { printf "%.3f", r / 32768 * 2.5 * e }')
    sleep "$delay"
    if kill -KILL "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null
      pid=
      kills=$((kills + 1))
      bad=$("$PY" "$T/check.py" "$T/run")
      tmps=$(find "$T/run" -name '*.tmp.*' | wc -l)
      epoch=$(ls "$out.state" >/dev/null 2>&1 && "$PY" -c "
import json,struct,sys; r=open(sys.argv[1],'rb').read(); n=struct.unpack('<Q',r[:8])[0]
print(json.loads(r[8:8+n])['__metadata__']['next_epoch'])" "$out.state" 2>/dev/null || echo none)
      if [ -n "$bad" ]; then
        problems=$((problems + 1))
        echo "FAIL kill_resume: kill $kills at ${delay} s left corrupted files: $(echo "$bad" | tr '\n' ';')"
      else
        echo "  kill $kills at ${delay} s: files whole, state at epoch $epoch, $tmps leftover temporaries"
      fi
      continue
    fi
  fi
  wait "$pid"
  rc=$?
  pid=
  if [ $rc -ne 0 ]; then
    echo "FAIL kill_resume: run $trial exited $rc: $(tail -2 "$T/run.err" | tr '\n' ' ')"; exit 0
  fi
  sequences=$((sequences + 1))
  if cmp -s "$T/ref/m.safetensors" "$out"; then identical=$((identical + 1)); else
    echo "FAIL kill_resume: sequence $sequences: final model differs from the uninterrupted run (kill seed $KILL_SEED): $(cmp "$T/ref/m.safetensors" "$out" 2>&1 | head -1)"
  fi
  [ $kills -ge "$KILLS" ] && break
  echo "  run $trial finished before its kill (sequence $sequences done); starting over to reach $KILLS kills"
  mv "$T/run" "$T/run.$sequences" && mkdir -p "$T/run"
done

leftover=$(find "$T" -path "$T/ref" -prune -o -name '*.tmp.*' -printf '%f ' )
bad=$("$PY" "$T/check.py" "$T/run")
if [ $problems -eq 0 ] && [ -z "$bad" ]; then
  echo "PASS kill_resume: $kills SIGKILLs, no file ever corrupted ($resumes resumed runs, $fresh fresh starts, $(elapsed "$start") s)"
else
  echo "FAIL kill_resume: corrupted files after kills ($problems) ${bad}"
fi
if [ $identical -eq $sequences ]; then
  echo "PASS kill_resume: final model bit-identical to the uninterrupted run in $sequences of $sequences sequences ($(stat -c %s "$out") bytes, seed 7, 2 threads)"
fi
[ -n "$leftover" ] && echo "  note: leftover temporaries from kills: $leftover"
exit 0
