#!/usr/bin/env bash
# Sharded LLM jobs (docs/SCALE_OUT.md) on the tiny GGUF fixture, one thread per process.
# simulate-text, 30 utterances of 10..242 frames; checked, each against one plain process (diff -r
# of the output folders: every .npy and transcripts.csv byte for byte, no part file left):
#   - mpirun -np 1, 2 and 3 of the MPI build;
#   - --shard 0/3, 1/3, 2/3 run one after the other (transcripts.csv appears with the last one);
#   - a rank killed (SIGKILL) mid-run: the job stops, and a rerun on 3 ranks finishes only what is
#     missing (some utterances "already done") with the same folder;
#   - a --shard process killed mid-run, rerun, then the other shard;
#   - --shard under mpirun and a malformed --shard are refused.
# text-features, 40 transcripts of 1..60 words packed into passes of 64 positions: --shard 0/3..2/3
# and 2 and 3 ranks give the folder of one process (workers take whole passes).
# The MPI parts print a SKIP line when mpirun or the MPI build is missing.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PLAIN=$PWD/$BUILD/sdumc
PY=/usr/bin/python3
MODEL=$PWD/tests/fixtures/llm/tiny_f32.gguf
if ! $PY -c "import numpy" 2>/dev/null; then echo "SKIP mpi_llm_jobs (no numpy for $PY)"; exit 0; fi
if [ -x "$BUILD/sdumc-mpi" ]; then MPIBIN=$PWD/$BUILD/sdumc-mpi; else MPIBIN=$PLAIN; fi
have_mpi=1
command -v mpirun >/dev/null 2>&1 && "$MPIBIN" version 2>/dev/null | grep -q '^mpi: MPI' || have_mpi=0

T=$(mktemp -d)
bg=
cleanup() { [ -n "$bg" ] && kill -KILL "$bg" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
ok() { echo "PASS mpi_llm_jobs.$1"; }
bad() { echo "FAIL mpi_llm_jobs.$1"; }
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
[ "${SD_SANITIZED:-0}" = 1 ] && MPIRUN+=(-x "ASAN_OPTIONS=detect_leaks=0:abort_on_error=0")

$PY - "$T" <<'EOF' || { bad inputs; exit 0; }
import json, os, struct, sys
import numpy as np
T = sys.argv[1]
rng = np.random.default_rng(5)
P = {"encoder_projector.linear1.weight": rng.standard_normal((32, 80)) / 9,
     "encoder_projector.linear1.bias": rng.standard_normal(32) * 0.1,
     "encoder_projector.linear2.weight": rng.standard_normal((64, 32)) / 5,
     "encoder_projector.linear2.bias": rng.standard_normal(64) * 0.1}
header, blobs, off = {}, [], 0
for name, a in P.items():
    b = np.ascontiguousarray(a, dtype=np.float32).tobytes()
    header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(header).encode(); h += b" " * ((-len(h)) % 8)
open(T + "/proj.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
os.makedirs(T + "/wavlm")
for i in range(30):
    n = 10 + (i * 37) % 233   # lengths spread over 10..242, not in name order
    np.save(T + "/wavlm/utt%02d.npy" % i, rng.standard_normal((n, 16)).astype(np.float16))
words = "the movie was really good but the story felt long and the acting was not great".split()
with open(T + "/trans.csv", "w") as f:
    f.write("name,text\n")
    for i in range(40):
        k = 1 + (i * 17) % 60
        f.write("t%02d,%s\n" % (i, " ".join(words[(i + j) % len(words)] for j in range(k))))
EOF
ARGS=(simulate-text --llm "$MODEL" --projector "$T/proj.safetensors" --wavlm "$T/wavlm" --threads 1 --max-new-tokens 150)
N=30

same_folder() { # reference folder, folder
  if diff -r "$1" "$2" >"$T/diff.txt" 2>&1; then return 0; fi
  head -5 "$T/diff.txt"; return 1
}
# Outputs present in a folder.
count_npy() { ls "$1"/*.npy 2>/dev/null | wc -l; }

if ! "$PLAIN" "${ARGS[@]}" --out "$T/ref" >"$T/ref.log" 2>&1; then tail -5 "$T/ref.log"; bad single_process; exit 0; fi
[ "$(count_npy "$T/ref")" -eq $N ] && ok single_process || bad single_process

# --shard, one shard after the other.
merged_early=0
for i in 0 1 2; do
  "$PLAIN" "${ARGS[@]}" --out "$T/shards" --shard $i/3 >"$T/shard$i.log" 2>&1
  [ $i -lt 2 ] && [ -f "$T/shards/transcripts.csv" ] && merged_early=1
done
if [ $merged_early = 0 ] && same_folder "$T/ref" "$T/shards"; then ok shards_0_1_2_of_3_same_as_one_process
else cat "$T/shard2.log"; bad shards_0_1_2_of_3_same_as_one_process; fi

# A --shard process killed after its first output, rerun, then the other shard.
"$PLAIN" "${ARGS[@]}" --out "$T/kshard" --shard 1/2 >"$T/kshard1.log" 2>&1 &
bg=$!
for _ in $(seq 1 3000); do [ "$(count_npy "$T/kshard")" -ge 1 ] && break; kill -0 $bg 2>/dev/null || break; sleep 0.01; done
kill -KILL $bg 2>/dev/null; wait $bg 2>/dev/null; bg=
before=$(count_npy "$T/kshard")
"$PLAIN" "${ARGS[@]}" --out "$T/kshard" --shard 1/2 >"$T/kshard2.log" 2>&1
"$PLAIN" "${ARGS[@]}" --out "$T/kshard" --shard 0/2 >"$T/kshard3.log" 2>&1
if same_folder "$T/ref" "$T/kshard"; then
  ok shard_killed_then_rerun
  echo "  (shard 1/2 killed with $before outputs written; its rerun: $(grep -o '[0-9]* written, [0-9]* already done' "$T/kshard2.log"))"
else cat "$T/kshard3.log"; bad shard_killed_then_rerun; fi

if ! "$PLAIN" "${ARGS[@]}" --out "$T/x" --shard 3/3 >"$T/bad.log" 2>&1 && grep -q "not a shard I/N" "$T/bad.log"; then
  ok refuses_bad_shard
else cat "$T/bad.log"; bad refuses_bad_shard; fi

# text-features: shards of whole passes.
TF=(text-features --llm "$MODEL" --transcripts "$T/trans.csv" --threads 1 --batch-tokens 64)
"$PLAIN" "${TF[@]}" --out "$T/tf_ref" >"$T/tf_ref.log" 2>&1 || { tail -3 "$T/tf_ref.log"; bad text_features_single; }
for i in 0 1 2; do "$PLAIN" "${TF[@]}" --out "$T/tf_shards" --shard $i/3 >"$T/tf_shard$i.log" 2>&1; done
if [ "$(count_npy "$T/tf_ref")" -eq 40 ] && same_folder "$T/tf_ref" "$T/tf_shards"; then ok text_features_shards_same_as_one_process
else tail -3 "$T/tf_shard2.log"; bad text_features_shards_same_as_one_process; fi

if [ $have_mpi = 0 ]; then echo "SKIP mpi_llm_jobs.ranks (no mpirun or MPI build)"; exit 0; fi

for np in 2 3; do
  if "${MPIRUN[@]}" -np $np "$MPIBIN" "${TF[@]}" --out "$T/tf_np$np" >"$T/tf_np$np.log" 2>&1 &&
     same_folder "$T/tf_ref" "$T/tf_np$np"; then ok "text_features_ranks_${np}_same_as_one_process"
  else tail -5 "$T/tf_np$np.log"; bad "text_features_ranks_${np}_same_as_one_process"; fi
done

for np in 1 2 3; do
  if "${MPIRUN[@]}" -np $np "$MPIBIN" "${ARGS[@]}" --out "$T/np$np" >"$T/np$np.log" 2>&1 && same_folder "$T/ref" "$T/np$np"; then
    ok "ranks_${np}_same_as_one_process"
  else
    tail -5 "$T/np$np.log"; bad "ranks_${np}_same_as_one_process"
  fi
done
if [ "$(grep -c "written, .* already done" "$T/np3.log")" -eq 1 ] && grep -q "all ranks: .* of $N utterances done" "$T/np3.log"; then
  ok rank0_prints_overall_progress
else cat "$T/np3.log"; bad rank0_prints_overall_progress; fi

# A rank killed mid-run: both ranks stopped (SIGSTOP) after the first output, one killed, the other
# let go (mpirun then ends the job); the rerun on 3 ranks finishes the rest.
"${MPIRUN[@]}" -np 2 "$MPIBIN" "${ARGS[@]}" --out "$T/killed" >"$T/killed1.log" 2>&1 &
bg=$!
ranks=
for _ in $(seq 1 3000); do
  if [ "$(count_npy "$T/killed")" -ge 1 ]; then
    ranks=$(pgrep -P $bg | tr '\n' ' ')
    for p in $ranks; do kill -STOP "$p" 2>/dev/null; done
    break
  fi
  kill -0 $bg 2>/dev/null || break
  sleep 0.01
done
at_kill=$(count_npy "$T/killed")
set -- $ranks
if [ $# -ge 2 ] && [ "$at_kill" -lt $N ]; then
  kill -KILL "$2"
  kill -CONT "$1"
  wait $bg; rc=$?; bg=
  "${MPIRUN[@]}" -np 3 "$MPIBIN" "${ARGS[@]}" --out "$T/killed" >"$T/killed2.log" 2>&1
  line=$(grep -o '[0-9]* written, [0-9]* already done, [0-9]* failed' "$T/killed2.log")
  redone=$(echo "$line" | awk '{print $1}'); skipped=$(echo "$line" | awk '{print $3}')
  if [ $rc -ne 0 ] && [ -n "$line" ] && [ "$skipped" -ge 1 ] && [ $((redone + skipped)) -eq $N ] &&
     same_folder "$T/ref" "$T/killed"; then
    ok rank_killed_then_rerun_on_3_ranks
    echo "  (rank killed with $at_kill outputs written, job exit $rc; rerun: $line)"
  else
    echo "  exit $rc; rerun: $line"; tail -5 "$T/killed2.log"; bad rank_killed_then_rerun_on_3_ranks
  fi
else
  for p in $ranks; do kill -CONT "$p" 2>/dev/null; done
  wait $bg; bg=
  echo "SKIP mpi_llm_jobs.rank_killed_then_rerun_on_3_ranks (the run ended before a rank could be stopped; machine too busy)"
fi

if ! "${MPIRUN[@]}" -np 2 "$MPIBIN" "${ARGS[@]}" --out "$T/x" --shard 0/2 >"$T/bad2.log" 2>&1 &&
   grep -q "under mpirun the 2 ranks share the work" "$T/bad2.log"; then
  ok refuses_shard_under_mpirun
else tail -5 "$T/bad2.log"; bad refuses_shard_under_mpirun; fi
exit 0
