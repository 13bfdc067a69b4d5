#!/usr/bin/env bash
# Kill-and-resume (issue 9, item 3; issue 14, items 5 and 6 at the end): a training run is killed
# with SIGKILL at random moments (at
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

# ---- issue 14: SIGINT and SIGTERM, the rerun without --resume, stale temporaries, extension ------
# A signal after the first epoch: the run stops between batches with exit 128 + signal, keeps the
# state of its last finished epoch, leaves no temporary, and prints the exact command that continues
# it. Running the same command again without --resume is refused and changes nothing. The printed
# command finishes the run bit-identical to the uninterrupted one.
sum() { md5sum "$@" 2>/dev/null | cut -c1-32 | tr '\n' ' '; }
for sig in INT TERM; do
  d=$T/sig_$sig
  mkdir -p "$d"
  out=$d/m.safetensors
  cmd=("$SDUMC" train --data "$T/ds" --out "$out" "${ARGS[@]}")
  # (a background job starts with SIGINT ignored: exec the run with the default disposition)
  "$PY" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "${cmd[@]}" >/dev/null 2>"$d/err" &
  pid=$!
  for _ in $(seq 1200); do [ -f "$out.state" ] && break; sleep 0.05; done
  kill -"$sig" "$pid"
  wait "$pid"
  rc=$?
  pid=
  want=$([ $sig = INT ] && echo 130 || echo 143)
  resume=$(grep -A1 '^sdumc train: to continue the run:' "$d/err" | tail -1)
  if [ $rc -eq "$want" ] && grep -q "interrupted (SIG$sig) in epoch .*: stopped; the state after epoch" "$d/err" &&
     [ "$resume" = "  ${cmd[*]} --resume $out.state" ] && [ -z "$(find "$d" -name '*.tmp*')" ]; then
    echo "PASS kill_resume.sig$sig: exit $rc, state kept, no temporary, the resume command printed"
  else
    echo "FAIL kill_resume.sig$sig: exit $rc (want $want), temporaries: $(find "$d" -name '*.tmp*' | wc -l), stderr: $(tail -3 "$d/err" | tr '\n' ' ')"
    continue
  fi
  before=$(sum "$d"/m.*)
  "${cmd[@]}" >/dev/null 2>"$T/rerun.err"
  rc=$?
  if [ $rc -eq 1 ] && grep -q "holds an unfinished run" "$T/rerun.err" && grep -q -- "--resume $out.state" "$T/rerun.err" &&
     [ "$before" = "$(sum "$d"/m.*)" ]; then
    echo "PASS kill_resume.rerun_without_resume_refused_after_sig$sig"
  else
    echo "FAIL kill_resume.rerun_without_resume_refused_after_sig$sig: exit $rc: $(tail -2 "$T/rerun.err" | tr '\n' ' ')"
  fi
  if eval "${resume# }" >/dev/null 2>"$d/resume.err" && cmp -s "$T/ref/m.safetensors" "$out"; then
    echo "PASS kill_resume.sig${sig}_resumed_bit_identical"
  else
    echo "FAIL kill_resume.sig${sig}_resumed_bit_identical: $(tail -2 "$d/resume.err" | tr '\n' ' ')"
  fi
done

# Stale temporaries of the same outputs (older than the start, not locked by a live process) are
# removed when a run starts; a live writer's (held with flock), another file's and a new one stay.
d=$T/stale
mkdir -p "$d"
out=$d/m.safetensors
for f in "$out.tmp.AbC123" "$out.state.tmp.Xy12Z9" "$out.log.jsonl.tmp.q0q0q0" "$d/other.tmp.AbC123"; do
  echo partial > "$f"; touch -d '1 hour ago' "$f"
done
flock "$out.report.html.tmp.LiVe01" sleep 600 &
holder=$!
for _ in $(seq 100); do [ -f "$out.report.html.tmp.LiVe01" ] && break; sleep 0.05; done
touch -d '1 hour ago' "$out.report.html.tmp.LiVe01"
"$SDUMC" train --data "$T/ds" --out "$out" "${ARGS[@]/8/1}" >/dev/null 2>"$d/err"
rc=$?
left=$(cd "$d" && ls | grep '\.tmp' | tr '\n' ' ')
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
if [ $rc -eq 0 ] && [ "$left" = "m.safetensors.report.html.tmp.LiVe01 other.tmp.AbC123 " ]; then
  echo "PASS kill_resume.stale_temporaries_removed_live_kept"
else
  echo "FAIL kill_resume.stale_temporaries_removed_live_kept: exit $rc, left: $left"
fi
# The same for the synthetic corpus's temporary folder (a killed synth at MOSEI scale left GBs).
mkdir -p "$T/corpus.tmp-St4le0/audio" && echo x > "$T/corpus.tmp-St4le0/audio/u.npy"
touch -d '1 hour ago' "$T/corpus.tmp-St4le0"
if "$SDUMC" synth --out "$T/corpus" --n 20 --seed 3 >/dev/null 2>&1 && [ ! -e "$T/corpus.tmp-St4le0" ] &&
   [ -z "$(ls -d "$T"/corpus.tmp-* 2>/dev/null)" ]; then
  echo "PASS kill_resume.stale_synth_folder_removed"
else
  echo "FAIL kill_resume.stale_synth_folder_removed: $(ls -d "$T"/corpus* | tr '\n' ' ')"
fi

# A finished run is extended to more epochs by --resume when every other option matches: the same
# model as the longer run from the start.
d=$T/extend
mkdir -p "$d"
out=$d/m.safetensors
"$SDUMC" train --data "$T/ds" --out "$out" "${ARGS[@]/8/4}" >/dev/null 2>"$d/err" &&
  "$SDUMC" train --data "$T/ds" --out "$out" "${ARGS[@]}" --resume "$out.state" >/dev/null 2>>"$d/err"
rc=$?
if [ $rc -eq 0 ] && cmp -s "$T/ref/m.safetensors" "$out"; then
  echo "PASS kill_resume.finished_run_extended_bit_identical (4 + 4 epochs = 8)"
else
  echo "FAIL kill_resume.finished_run_extended_bit_identical: exit $rc: $(tail -2 "$d/err" | tr '\n' ' ')"
fi
exit 0
