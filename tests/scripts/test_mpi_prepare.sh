#!/usr/bin/env bash
# Sharded `sdumc prepare` (docs/SCALE_OUT.md) on the inputs of test_prepare.sh (six espeak-ng
# recordings, five transcripts, the tiny WavLM and LLaMA fixtures, a random projector) and a faster
# copy of each recording, one thread per process. Each run is checked against one plain process with diff -r of the dataset folders
# (audio, wavlm_last, text, text_sim: every .npy and transcripts.csv byte for byte, no part file or
# temporary left):
#   - --shard 0/3, 1/3, 2/3 run one after the other (transcripts.csv appears with the last one);
#   - a --shard process killed (SIGKILL) after its first simulated text, rerun, then the other shard;
#   - mpirun -np 1, 2 and 3 of the MPI build, rank 0 printing the job's overall progress;
#   - a rank killed (SIGKILL) mid-run: the job stops, and a rerun on 3 ranks finishes only what is
#     missing (the audio features done before the kill are kept) with the same folder;
#   - --shard under mpirun and a malformed --shard are refused before anything is written.
# The MPI parts print a SKIP line when mpirun or the MPI build is missing.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PLAIN=$PWD/$BUILD/sdumc
PY=/usr/bin/python3
if [ ! -x "$PLAIN" ]; then echo "FAIL mpi_prepare (not built)"; exit 1; fi
for tool in espeak-ng sox; do
  command -v $tool >/dev/null || { echo "SKIP mpi_prepare ($tool missing: bash scripts/setup.sh installs it)"; exit 0; }
done
if ! $PY -c "import numpy" 2>/dev/null; then echo "SKIP mpi_prepare (no numpy for $PY)"; exit 0; fi
. tests/scripts/mpi_jobs_common.sh

T=$(mktemp -d /tmp/sdumc-mpi-prepare-XXXXXX)
bg=
cleanup() { [ -n "$bg" ] && kill -KILL "$bg" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
ok() { echo "PASS mpi_prepare.$1"; }
bad() { echo "FAIL mpi_prepare.$1"; }

. tests/scripts/prepare_fixture.sh
prepare_fixture "$T" || { bad inputs; exit 0; }
# Each recording also 1.3x faster (no transcript): 12 recordings, stage 3 long enough for a kill to
# land in it.
for f in "$T"/wav/*; do b=$(basename "$f"); sox "$f" "$T/wav/fast_${b%.*}.wav" speed 1.3 || { bad inputs; exit 0; }; done
ARGS=(prepare --wav "$T/wav" --transcripts "$T/transcripts.csv" --wavlm "$PWD/tests/fixtures/wavlm/tiny_large.safetensors"
      --llm "$PWD/tests/fixtures/llm/tiny_f32.gguf" --projector "$T/proj.safetensors" --layer 1 --max-new-tokens 60 --threads 1)
N=12

if ! "$PLAIN" "${ARGS[@]}" --out "$T/ref" >"$T/ref.log" 2>&1; then tail -5 "$T/ref.log"; bad single_process; exit 0; fi
[ "$(count_npy "$T/ref/text_sim")" -eq $N ] && [ "$(count_npy "$T/ref/text")" -eq 5 ] && ok single_process || bad single_process

# --shard, one shard after the other.
merged_early=0
for i in 0 1 2; do
  "$PLAIN" "${ARGS[@]}" --out "$T/shards" --shard $i/3 >"$T/shard$i.log" 2>&1
  [ $i -lt 2 ] && [ -f "$T/shards/text_sim/transcripts.csv" ] && merged_early=1
done
if [ $merged_early = 0 ] && grep -q "every utterance is done; the shards' transcripts are merged" "$T/shard2.log" &&
   same_folder "$T/ref" "$T/shards"; then ok shards_0_1_2_of_3_same_as_one_process
else cat "$T/shard2.log"; bad shards_0_1_2_of_3_same_as_one_process; fi

# A --shard process killed after its first simulated text, rerun, then the other shard.
run_then_kill "$T/kshard1.log" "$T/kshard/text_sim" "$PLAIN" "${ARGS[@]}" --out "$T/kshard" --shard 1/2
before=$(count_npy "$T/kshard/text_sim")
"$PLAIN" "${ARGS[@]}" --out "$T/kshard" --shard 1/2 >"$T/kshard2.log" 2>&1
"$PLAIN" "${ARGS[@]}" --out "$T/kshard" --shard 0/2 >"$T/kshard3.log" 2>&1
# (The killed shard had finished its audio features: its rerun keeps them all.)
if grep -q "audio-features *0 written, [1-9][0-9]* already done" "$T/kshard2.log" && same_folder "$T/ref" "$T/kshard"; then
  ok shard_killed_then_rerun
  echo "  (shard 1/2 killed with $before simulated texts written; its rerun: $(grep 'simulate-text  ' "$T/kshard2.log" | xargs))"
else cat "$T/kshard2.log" "$T/kshard3.log"; bad shard_killed_then_rerun; fi

rm -rf "$T/x"
if ! "$PLAIN" "${ARGS[@]}" --out "$T/x" --shard 2/2 >"$T/bad.log" 2>&1 && grep -q "not a shard I/N" "$T/bad.log" && [ ! -e "$T/x" ]; then
  ok refuses_bad_shard
else cat "$T/bad.log"; bad refuses_bad_shard; fi

if [ $have_mpi = 0 ]; then echo "SKIP mpi_prepare.ranks (no mpirun or MPI build)"; exit 0; fi

for np in 1 2 3; do
  if "${MPIRUN[@]}" -np $np "$MPIBIN" "${ARGS[@]}" --out "$T/np$np" >"$T/np$np.log" 2>&1 && same_folder "$T/ref" "$T/np$np"; then
    ok "ranks_${np}_same_as_one_process"
  else tail -5 "$T/np$np.log"; bad "ranks_${np}_same_as_one_process"; fi
done
if [ "$(grep -c "simulate-text   " "$T/np3.log")" -eq 1 ] && grep -q "all ranks: audio .*, text_sim .* done" "$T/np3.log" &&
   grep -q "simulate-text   $N written, 0 already done, 0 failed" "$T/np3.log"; then
  ok rank0_prints_overall_progress
else cat "$T/np3.log"; bad rank0_prints_overall_progress; fi

# A rank killed mid-run: both ranks stopped (SIGSTOP) after the first simulated text, one killed,
# the other let go (mpirun then ends the job); the rerun on 3 ranks finishes the rest.
if kill_a_rank "$T/killed1.log" "$T/killed/text_sim" $N "${MPIRUN[@]}" -np 2 "$MPIBIN" "${ARGS[@]}" --out "$T/killed"; then
  rc=$kill_rc
  "${MPIRUN[@]}" -np 3 "$MPIBIN" "${ARGS[@]}" --out "$T/killed" >"$T/killed2.log" 2>&1
  # (The rank with a simulated text had finished its audio features: those are kept.)
  line=$(grep -o 'simulate-text   [0-9]* written, [0-9]* already done, [0-9]* failed' "$T/killed2.log")
  redone=$(echo "$line" | awk '{print $2}'); skipped=$(echo "$line" | awk '{print $4}')
  audio_kept=$(grep -o 'audio-features *[0-9]* written, [0-9]* already done' "$T/killed2.log" | awk '{print $4}')
  if [ $rc -ne 0 ] && [ -n "$line" ] && [ "${audio_kept:-0}" -ge 1 ] && [ $((redone + skipped)) -eq $N ] &&
     same_folder "$T/ref" "$T/killed"; then
    ok rank_killed_then_rerun_on_3_ranks
    echo "  (rank killed with $at_kill simulated texts written, job exit $rc; rerun: $audio_kept audio features kept, $line)"
  else
    echo "  exit $rc; rerun: $line"; tail -5 "$T/killed2.log"; bad rank_killed_then_rerun_on_3_ranks
  fi
else
  echo "SKIP mpi_prepare.rank_killed_then_rerun_on_3_ranks (the run ended before a rank could be stopped; machine too busy)"
fi

rm -rf "$T/x"
if ! "${MPIRUN[@]}" -np 2 "$MPIBIN" "${ARGS[@]}" --out "$T/x" --shard 0/2 >"$T/bad2.log" 2>&1 &&
   grep -q "under mpirun the 2 ranks share the work" "$T/bad2.log" && [ ! -e "$T/x" ]; then
  ok refuses_shard_under_mpirun
else tail -5 "$T/bad2.log"; bad refuses_shard_under_mpirun; fi
exit 0
