# The inputs of the `sdumc prepare` tests (sourced by test_prepare.sh and test_mpi_prepare.sh):
# prepare_fixture DIR writes six recordings synthesised with espeak-ng into DIR/wav (utt5_stereo: 44.1
# kHz stereo FLAC, without a transcript), DIR/transcripts.csv (the other five, and a row without a
# recording), and random projectors for the tiny WavLM and LLaMA fixtures: DIR/proj.safetensors (they
# fit) and DIR/proj_large.safetensors (a WavLM-Large input: they do not). Needs espeak-ng, sox and
# numpy (the caller checks); returns non-zero when a tool fails.
prepare_fixture() {
  local T=$1
  mkdir -p "$T/wav" || return 1
  local texts=("I really loved this movie, it was wonderful." "That was the worst meal I have ever had."
               "The weather is fine today." "Honestly, I am not sure what to think about it."
               "What a fantastic performance by the whole cast." "Nothing special, just an ordinary day.")
  for i in 0 1 2 3 4 5; do
    espeak-ng -s $((140 + 10 * i)) -w "$T/wav/utt$i.wav" "${texts[$i]}" 2>/dev/null || return 1
  done
  sox "$T/wav/utt5.wav" -r 44100 -c 2 "$T/wav/utt5_stereo.flac" && rm "$T/wav/utt5.wav" || return 1
  { echo "name,text"
    for i in 0 1 2 3 4; do printf 'utt%d,"%s"\n' $i "${texts[$i]}"; done
    echo 'not_recorded,"a transcript without a recording"'; } > "$T/transcripts.csv"
  /usr/bin/python3 - "$T" <<'PYEOF'
import sys
import numpy as np
sys.path.insert(0, "tools")
import safetensors_np as s
T = sys.argv[1]
rng = np.random.default_rng(3)
P = {"encoder_projector.linear1.weight": rng.standard_normal((16, 160)) / 12,
     "encoder_projector.linear1.bias": rng.standard_normal(16) * 0.1,
     "encoder_projector.linear2.weight": rng.standard_normal((64, 16)) / 4,
     "encoder_projector.linear2.bias": rng.standard_normal(64) * 0.1}
s.write(T + "/proj.safetensors", {k: v.astype(np.float32) for k, v in P.items()})
P["encoder_projector.linear1.weight"] = rng.standard_normal((16, 5120)).astype(np.float32)
s.write(T + "/proj_large.safetensors", {k: v.astype(np.float32) for k, v in P.items()})
PYEOF
}
