#!/usr/bin/env bash
# Sharded per-utterance jobs (docs/SCALE_OUT.md) on the tiny GGUF and WavLM fixtures, one thread per process.
# simulate-text, 30 utterances of 10..242 frames; checked, each against one plain process (diff -r
# of the output folders: every .npy and transcripts.csv byte for byte, no part file left):
#   - mpirun -np 1, 2 and 3 of the MPI build;
#   - --shard 0/3, 1/3, 2/3 run one after the other (transcripts.csv appears with the last one);
#   - a rank killed (SIGKILL) mid-run: the job stops, and a rerun on 3 ranks finishes only what is
#     missing (some utterances "already done") with the same folder;
#   - a --shard process killed mid-run, rerun, then the other shard;
#   - --shard under mpirun and a malformed --shard are refused.
# text-features, 40 transcripts of 1..60 words packed into passes of 64 positions: --shard 0/3..2/3
# and 2 and 3 ranks give the folder of one process (workers take whole passes). audio-features (the
# tiny WavLM fixture), 7 WAV files of 0.3..2.1 s: the same with --out-last, on 1, 2 and 3 ranks too,
# a 2-rank rerun after three outputs were removed writes only those two recordings; and a --shard
# process killed mid-run (SIGKILL) on 24 recordings of 10..14.6 s, rerun, then the other shard.
# The MPI parts print a SKIP line when mpirun or the MPI build is missing.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PLAIN=$PWD/$BUILD/sdumc
PY=/usr/bin/python3
MODEL=$PWD/tests/fixtures/llm/tiny_f32.gguf
if ! $PY -c "import numpy" 2>/dev/null; then echo "SKIP mpi_jobs (no numpy for $PY)"; exit 0; fi
. tests/scripts/mpi_jobs_common.sh

T=$(mktemp -d)
bg=
cleanup() { [ -n "$bg" ] && kill -KILL "$bg" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
ok() { echo "PASS mpi_jobs.$1"; }
bad() { echo "FAIL mpi_jobs.$1"; }

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
import wave
os.makedirs(T + "/wav")
for i in range(7):
    n = int(16000 * (0.3 + 0.3 * ((i * 3) % 7)))
    t = np.arange(n) / 16000.0
    x = 0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.05 * rng.standard_normal(n)
    with wave.open(T + "/wav/rec%d.wav" % i, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
os.makedirs(T + "/wav_k")  # 24 of 10..14.6 s: enough work for a kill to land mid-run
for i in range(24):
    n = int(16000 * (10 + 0.2 * i))
    t = np.arange(n) / 16000.0
    x = 0.3 * np.sin(2 * np.pi * (120 + 15 * i) * t) + 0.05 * rng.standard_normal(n)
    with wave.open(T + "/wav_k/k%02d.wav" % i, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
EOF
ARGS=(simulate-text --llm "$MODEL" --projector "$T/proj.safetensors" --wavlm "$T/wavlm" --threads 1 --max-new-tokens 150)
N=30

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
run_then_kill "$T/kshard1.log" "$T/kshard" "$PLAIN" "${ARGS[@]}" --out "$T/kshard" --shard 1/2
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

# audio-features: shards of recordings.
AF=(audio-features --wavlm "$PWD/tests/fixtures/wavlm/tiny_large.safetensors" --wav "$T/wav" --layer 1 --threads 1)
"$PLAIN" "${AF[@]}" --out "$T/af_ref" --out-last "$T/af_ref_last" >"$T/af_ref.log" 2>&1 || { tail -3 "$T/af_ref.log"; bad audio_features_single; }
for i in 0 1 2; do "$PLAIN" "${AF[@]}" --out "$T/af_sh" --out-last "$T/af_sh_last" --shard $i/3 >"$T/af_shard$i.log" 2>&1; done
if [ "$(count_npy "$T/af_ref")" -eq 7 ] && same_folder "$T/af_ref" "$T/af_sh" && same_folder "$T/af_ref_last" "$T/af_sh_last"; then
  ok audio_features_shards_same_as_one_process
else tail -3 "$T/af_shard2.log"; bad audio_features_shards_same_as_one_process; fi

# An audio-features --shard process killed (24 recordings of 10..14.6 s) once a recording has both
# outputs, rerun, then the other shard: the rerun keeps what was done and removes the killed
# writer's temporaries.
AFK=(audio-features --wavlm "$PWD/tests/fixtures/wavlm/tiny_large.safetensors" --wav "$T/wav_k" --layer 1 --threads 1)
"$PLAIN" "${AFK[@]}" --out "$T/afk_ref" --out-last "$T/afk_ref_last" >"$T/afk_ref.log" 2>&1 || tail -3 "$T/afk_ref.log"
run_then_kill "$T/af_k1.log" "$T/af_k $T/af_k_last" "$PLAIN" "${AFK[@]}" --out "$T/af_k" --out-last "$T/af_k_last" --shard 1/2
before=$(count_npy "$T/af_k_last")
share=$(grep -o 'shard 1 of 2: [0-9]*' "$T/af_k1.log" | awk '{print $5}')
"$PLAIN" "${AFK[@]}" --out "$T/af_k" --out-last "$T/af_k_last" --shard 1/2 >"$T/af_k2.log" 2>&1
"$PLAIN" "${AFK[@]}" --out "$T/af_k" --out-last "$T/af_k_last" --shard 0/2 >"$T/af_k3.log" 2>&1
line=$(grep -o '[0-9]* written, [0-9]* already done' "$T/af_k2.log")
if [ "$before" -ge "${share:-0}" ]; then
  echo "SKIP mpi_jobs.audio_features_shard_killed_then_rerun (the shard ended before the kill: $before of ${share:-?} done)"
elif [ "$(echo "$line" | awk '{print $1}')" -ge 1 ] && [ "$(echo "$line" | awk '{print $3}')" -ge 1 ] &&
     [ "$(count_npy "$T/afk_ref")" -eq 24 ] && same_folder "$T/afk_ref" "$T/af_k" && same_folder "$T/afk_ref_last" "$T/af_k_last"; then
  ok audio_features_shard_killed_then_rerun
  echo "  (shard 1/2 of $share recordings killed with $before done; its rerun: $line)"
else cat "$T/af_k2.log"; bad audio_features_shard_killed_then_rerun; fi

if [ $have_mpi = 0 ]; then echo "SKIP mpi_jobs.ranks (no mpirun or MPI build)"; exit 0; fi

for np in 1 2 3; do
  if "${MPIRUN[@]}" -np $np "$MPIBIN" "${AF[@]}" --out "$T/af_np$np" --out-last "$T/af_np${np}_last" >"$T/af_np$np.log" 2>&1 &&
     same_folder "$T/af_ref" "$T/af_np$np" && same_folder "$T/af_ref_last" "$T/af_np${np}_last"; then
    ok "audio_features_ranks_${np}_same_as_one_process"
  else tail -5 "$T/af_np$np.log"; bad "audio_features_ranks_${np}_same_as_one_process"; fi
done
# A rerun on 2 ranks after outputs went missing (a killed rank's) redoes only those.
rm -f "$T/af_np3/rec2.npy" "$T/af_np3/rec5.npy" "$T/af_np3_last/rec5.npy"
if "${MPIRUN[@]}" -np 2 "$MPIBIN" "${AF[@]}" --out "$T/af_np3" --out-last "$T/af_np3_last" >"$T/af_re.log" 2>&1 &&
   grep -q "all ranks: 2 written, 5 already done, 0 failed" "$T/af_re.log" &&
   same_folder "$T/af_ref" "$T/af_np3" && same_folder "$T/af_ref_last" "$T/af_np3_last"; then
  ok audio_features_rerun_on_2_ranks_redoes_only_missing
else tail -5 "$T/af_re.log"; bad audio_features_rerun_on_2_ranks_redoes_only_missing; fi

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
if kill_a_rank "$T/killed1.log" "$T/killed" $N "${MPIRUN[@]}" -np 2 "$MPIBIN" "${ARGS[@]}" --out "$T/killed"; then
  rc=$kill_rc
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
  echo "SKIP mpi_jobs.rank_killed_then_rerun_on_3_ranks (the run ended before a rank could be stopped; machine too busy)"
fi

if ! "${MPIRUN[@]}" -np 2 "$MPIBIN" "${ARGS[@]}" --out "$T/x" --shard 0/2 >"$T/bad2.log" 2>&1 &&
   grep -q "under mpirun the 2 ranks share the work" "$T/bad2.log"; then
  ok refuses_shard_under_mpirun
else tail -5 "$T/bad2.log"; bad refuses_shard_under_mpirun; fi
exit 0
