#!/usr/bin/env bash
# `sdumc audio-features` end to end on real speech synthesised now with espeak-ng and converted
# with sox: 8, 16, 22.05 and 44.1 kHz, each mono and stereo (two different voices, one per channel),
# 16-bit and float WAV, FLAC, OGG/Vorbis; the small WavLM-Large-shaped model of
# tests/fixtures/wavlm/tiny_large (3 layers), layer 1 and the last layer from one pass.
# Checked against the float64 reference (tests/reference/wavlm_ref.py):
#   - 16 kHz files (no resampling; stereo averaged): the whole path, WAV reading included;
#   - resampled files: sdumc's decoded 16 kHz samples (build/tests/test_audio --decode) against an
#     ideal band-limited (FFT) resampling of the source, and the features against the reference
#     run on those decoded samples;
#   - a recording longer than the window (chunking) against the reference's chunked extraction;
#   - FLAC gives the same bytes as WAV; OGG close to WAV.
# Then: resume (nothing redone; a deleted output redone to the same bytes), kill -9 at several
# moments and resume (outputs equal to an uninterrupted run), bad files (not audio, empty, too
# short) reported by name while the others are written, option errors.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BIN=$BUILD/sdumc
PY=/usr/bin/python3
MODEL=tests/fixtures/wavlm/tiny_large.safetensors
if [ ! -x "$BIN" ] || [ ! -x "$BUILD/tests/test_audio" ]; then echo "FAIL audio_features (not built)"; exit 1; fi
for tool in espeak-ng sox; do
  command -v $tool >/dev/null || { echo "SKIP audio_features ($tool missing: bash scripts/setup.sh installs it)"; exit 0; }
done
if ! $PY -c "import torch, numpy" 2>/dev/null; then echo "SKIP audio_features (no torch for $PY)"; exit 0; fi
T=$(mktemp -d /tmp/sdumc-audio-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; rm -rf "$T"' EXIT
export OMP_NUM_THREADS=2

# ---- recordings ----
mkdir -p "$T/src" "$T/wav"
espeak-ng -v en-us -s 150 -w "$T/src/a.wav" "The quick brown fox jumps over the lazy dog, and then it rests." 2>/dev/null
espeak-ng -v en-gb -s 170 -w "$T/src/b.wav" "Speech features from raw audio, computed in C, with no Python at all." 2>/dev/null
sox "$T/src/a.wav" -r 16000 "$T/wav/mono16k.wav"
sox -M "$T/src/a.wav" "$T/src/b.wav" -r 16000 "$T/wav/stereo16k.wav"
sox "$T/src/a.wav" -r 8000 "$T/wav/mono8k.wav"
sox -M "$T/src/a.wav" "$T/src/b.wav" -r 8000 "$T/wav/stereo8k.wav"
cp "$T/src/a.wav" "$T/wav/mono22k.wav"
sox -M "$T/src/a.wav" "$T/src/b.wav" "$T/wav/stereo22k.wav"
sox "$T/src/a.wav" "$T/wav/mono22k_flac.flac"
sox -M "$T/src/a.wav" "$T/src/b.wav" -r 44100 -e floating-point -b 32 "$T/wav/stereo44k_float.wav"
sox "$T/src/b.wav" -r 44100 "$T/wav/mono44k_ogg.ogg"
sox "$T/src/b.wav" -r 44100 "$T/wav/mono44k.wav"
# a long one (4 x a + b, about 20 s) for the windows: --chunk-seconds 6 --overlap-seconds 1.5
sox "$T/src/a.wav" "$T/src/b.wav" "$T/src/a.wav" "$T/src/b.wav" "$T/src/a.wav" -r 16000 "$T/wav/long16k.wav"
printf 'made with espeak-ng %s\n' "$(espeak-ng --version | head -1)" > "$T/wav/README.txt"
n_audio=$(ls "$T/wav" | grep -vc README)
ok=1
for f in "$T"/wav/*; do [ -s "$f" ] || ok=0; done
if [ $ok = 1 ] && [ "$n_audio" = 11 ]; then echo "PASS audio_features_synthesised"; else echo "FAIL audio_features_synthesised"; ls -la "$T/wav"; exit 0; fi

ARGS=(--wavlm "$MODEL" --wav "$T/wav" --layer 1 --chunk-seconds 6 --overlap-seconds 1.5 --threads 2)
if "$BIN" audio-features "${ARGS[@]}" --out "$T/l1" --out-last "$T/last" 2>"$T/log1"; then
  echo "PASS audio_features_run"
else
  echo "FAIL audio_features_run"; cat "$T/log1"
fi
grep -q "^\[11/11\] stereo8k: .* (8000 Hz, 2 ch)" "$T/log1" && grep -q "ETA" "$T/log1" \
  && echo "PASS audio_features_progress" || { echo "FAIL audio_features_progress"; cat "$T/log1"; }
ls "$T/l1" "$T/last" | grep -q '\.tmp' && echo "FAIL audio_features_no_temporaries" || echo "PASS audio_features_no_temporaries"

for f in "$T"/wav/*.wav "$T"/wav/*.flac "$T"/wav/*.ogg; do
  "$BUILD/tests/test_audio" --decode "$f" "$T/dec_$(basename "${f%.*}").npy" || echo "FAIL audio_features_decode $f"
done

# ---- against the reference ----
if $PY - "$T" "$MODEL" <<'EOF'
import os, sys, wave
import numpy as np, torch
sys.path.insert(0, "tests/reference"); sys.path.insert(0, "tools")
import make_wavlm_fixtures as mk, wavlm_ref as W
T, model_path = sys.argv[1], sys.argv[2]
cfg, seed = mk.CONFIGS["tiny_large"][0], mk.CONFIGS["tiny_large"][1]
model = W.WavLM(cfg); W.random_init(model, seed)   # the weights of the fixture file
L = cfg["num_hidden_layers"]

def read_wav(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2, path
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768.0
        return w.getframerate(), x.reshape(-1, w.getnchannels()).mean(axis=1)

def err(a, b):
    return float(np.abs(a.astype(np.float64) - b).max() / np.abs(b).max())

def features(x):
    with torch.no_grad():
        r = W.extract(model, torch.tensor(x, dtype=torch.float64), [1, L], 6.0, 1.5)
    return r[1].numpy(), r[L].numpy()

def got(name):
    return np.load(T + "/l1/%s.npy" % name), np.load(T + "/last/%s.npy" % name)

worst = {}
fail = []
# 1. 16 kHz WAV: the whole path. float16 output: bound 2e-3 of the tensor's scale.
for name in ["mono16k", "stereo16k", "long16k"]:
    rate, x = read_wav(T + "/wav/%s.wav" % name)
    assert rate == 16000
    want, g = features(x), got(name)
    for k in range(2):
        assert g[k].dtype == np.float16 and g[k].shape == want[k].shape, (name, g[k].shape, want[k].shape)
        e = err(g[k], want[k]); worst[name] = max(worst.get(name, 0), e)
        if e > 2e-3: fail.append("%s layer %d: %.2e" % (name, [1, L][k], e))
# 2. Resampled: decoded samples vs ideal band-limited resampling; features vs the reference on them.
def fft_resample(x, r_in, r_out=16000):
    """Band-limited resampling by the exact ratio: zero-padded to a whole number of periods p_in
    (p_in r_out = p_out r_in), then the spectrum cut or extended."""
    g = np.gcd(r_in, r_out); p_in, p_out = r_in // g, r_out // g
    n_in = -(-len(x) // p_in) * p_in
    n_out = n_in // p_in * p_out
    X = np.fft.rfft(np.concatenate([x, np.zeros(n_in - len(x))]))
    m = min(len(X), n_out // 2 + 1)
    Y = np.zeros(n_out // 2 + 1, complex); Y[:m] = X[:m]
    return (np.fft.irfft(Y, n_out) * n_out / n_in)[:int(round(len(x) * r_out / r_in))]
for name, src in [("mono8k", "mono8k.wav"), ("mono22k", "mono22k.wav"), ("mono44k", "mono44k.wav"),
                  ("stereo8k", "stereo8k.wav"), ("stereo22k", "stereo22k.wav")]:
    rate, x = read_wav(T + "/wav/" + src)
    dec = np.load(T + "/dec_%s.npy" % name).astype(np.float64)
    ideal = fft_resample(x, rate)
    if abs(len(dec) - len(ideal)) > 1: fail.append("%s: %d decoded samples, expected %d" % (name, len(dec), len(ideal)))
    n = min(len(dec), len(ideal)); mid = slice(800, n - 800)
    # the resampler's pass band ends at 91% of the lower Nyquist: compare below 0.85 of it
    cut = 0.85 * min(rate, 16000) / 2
    def lowpass(v):
        V = np.fft.rfft(v); f = np.fft.rfftfreq(len(v), 1 / 16000); V[f > cut] = 0; return np.fft.irfft(V, len(v))
    a, b = lowpass(dec[:n])[mid], lowpass(ideal[:n])[mid]
    snr = 10 * np.log10(np.sum(b ** 2) / np.sum((a - b) ** 2))
    worst[name + " SNR dB"] = snr
    if snr < 50: fail.append("%s: resampling SNR %.1f dB" % (name, snr))
    want, g = features(dec), got(name)
    for k in range(2):
        e = err(g[k], want[k]); worst[name] = max(worst.get(name, 0), e)
        if e > 2e-3: fail.append("%s layer %d: %.2e" % (name, [1, L][k], e))
# 3. FLAC is WAV's bytes; OGG near WAV (lossy); stereo float 44.1k: the mean of the two voices.
for k in range(2):
    if not np.array_equal(got("mono22k")[k], got("mono22k_flac")[k]): fail.append("FLAC differs from WAV")
    o, w = got("mono44k_ogg")[k].astype(np.float64), got("mono44k")[k].astype(np.float64)
    c = np.corrcoef(o.ravel(), w.ravel())[0, 1]; worst["ogg corr"] = c
    if o.shape != w.shape or c < 0.9: fail.append("OGG vs WAV: correlation %.3f" % c)
dec = np.load(T + "/dec_stereo44k_float.npy").astype(np.float64)
want, g = features(dec), got("stereo44k_float")
for k in range(2):
    e = err(g[k], want[k]); worst["stereo44k_float"] = max(worst.get("stereo44k_float", 0), e)
    if e > 2e-3: fail.append("stereo44k_float layer %d: %.2e" % ([1, L][k], e))
print("  " + ", ".join("%s %.3g" % kv for kv in worst.items()))
if fail:
    print("\n".join(fail)); sys.exit(1)
EOF
then echo "PASS audio_features_matches_reference"; else echo "FAIL audio_features_matches_reference"; fi

# ---- resume ----
before=$(stat -c %Y.%s "$T"/l1/*.npy | tr '\n' ' ')
sleep 1
"$BIN" audio-features "${ARGS[@]}" --out "$T/l1" --out-last "$T/last" 2>"$T/log2"
after=$(stat -c %Y.%s "$T"/l1/*.npy | tr '\n' ' ')
if grep -q "0 written, 11 already done, 0 failed" "$T/log2" && [ "$before" = "$after" ]; then
  echo "PASS audio_features_resume_skips"; else echo "FAIL audio_features_resume_skips"; cat "$T/log2"; fi
cp "$T/last/mono8k.npy" "$T/mono8k.first"
rm "$T/last/mono8k.npy"
"$BIN" audio-features "${ARGS[@]}" --out "$T/l1" --out-last "$T/last" 2>"$T/log3"
if grep -q "1 written, 10 already done" "$T/log3" && cmp -s "$T/last/mono8k.npy" "$T/mono8k.first"; then
  echo "PASS audio_features_resume_redoes_missing"; else echo "FAIL audio_features_resume_redoes_missing"; cat "$T/log3"; fi

# A run killed between a temporary's creation and its rename leaves "<name>.npy.tmp.XXXXXX" (the
# kills below land there only by chance, so here they are planted, an hour old): at start every
# stale temporary of both output folders is removed (older than the start and locked by no live
# process: sd_atomic_remove_stale; a live writer's temporary is locked and kept, tested in
# test_hostile_commands.sh), whichever recording it belongs to; files that only look alike are left.
rm "$T/l1/mono8k.npy" "$T/last/mono8k.npy"
echo partial > "$T/l1/mono8k.npy.tmp.Ab12Cd"; echo partial > "$T/l1/mono8k.npy.tmp.x9Y8z7"
echo partial > "$T/last/mono8k.npy.tmp.Qw3rTy"
echo other > "$T/l1/mono16k.npy.tmp.Zz0000"; echo other > "$T/l1/mono8k.npy.tmp.toolong1"
echo other > "$T/last/mono8k.npy.bak"
touch -d '1 hour ago' "$T"/l1/*.tmp.* "$T"/last/*.tmp.* "$T/last/mono8k.npy.bak"
"$BIN" audio-features "${ARGS[@]}" --out "$T/l1" --out-last "$T/last" 2>"$T/log3b"
left=$(cd "$T" && ls l1 last | grep -v '\.npy$\|^l1:$\|^last:$\|^$' | sort | tr '\n' ' ')
if grep -q "1 written, 10 already done" "$T/log3b" && cmp -s "$T/last/mono8k.npy" "$T/mono8k.first" &&
   [ "$left" = "mono8k.npy.bak mono8k.npy.tmp.toolong1 " ]; then
  echo "PASS audio_features_removes_stale_temporaries"
else echo "FAIL audio_features_removes_stale_temporaries (left: $left)"; cat "$T/log3b"; fi
rm -f "$T/l1/mono8k.npy.tmp.toolong1" "$T/last/mono8k.npy.bak"

# ---- kill -9 and resume: the outputs equal the uninterrupted run's ----
kill_ok=1
for delay in 0.3 0.8 1.5; do
  rm -rf "$T/k1" "$T/klast"
  "$BIN" audio-features "${ARGS[@]}" --out "$T/k1" --out-last "$T/klast" 2>/dev/null &
  pid=$!
  sleep $delay
  kill -KILL $pid 2>/dev/null
  wait $pid 2>/dev/null
  pid=
  for f in "$T"/k1/*.npy "$T"/klast/*.npy; do  # whatever exists is whole
    [ -e "$f" ] || continue
    cmp -s "$f" "$T/$(basename "$(dirname "$f")" | sed 's/^k1$/l1/; s/^klast$/last/')/$(basename "$f")" || { kill_ok=0; echo "  after kill at $delay s: $f differs"; }
  done
  "$BIN" audio-features "${ARGS[@]}" --out "$T/k1" --out-last "$T/klast" 2>"$T/log4" || { kill_ok=0; cat "$T/log4"; }
  for d in l1:k1 last:klast; do
    for f in "$T/${d%%:*}"/*.npy; do
      cmp -s "$f" "$T/${d##*:}/$(basename "$f")" || { kill_ok=0; echo "  resumed after kill at $delay s: $(basename "$f") differs"; }
    done
  done
done
[ $kill_ok = 1 ] && echo "PASS audio_features_kill_resume" || echo "FAIL audio_features_kill_resume"

# ---- bad recordings: named, the rest written, exit status 1 ----
mkdir -p "$T/bad"
cp "$T/wav/mono16k.wav" "$T/bad/good.wav"
echo "this is not audio" > "$T/bad/text.wav"
sox -n -r 16000 -c 1 "$T/bad/short.wav" trim 0 0.01   # 160 samples < 400
sox -n -r 16000 -c 1 -b 16 "$T/bad/empty.wav" trim 0 0
mkdir "$T/bad/folder.wav"
"$BIN" audio-features --wavlm "$MODEL" --wav "$T/bad" --out "$T/bad_out" --layer 1 2>"$T/log5"
rc=$?
if [ $rc = 1 ] && [ -s "$T/bad_out/good.npy" ] && grep -q "text.wav: cannot read as audio" "$T/log5" &&
   grep -q "short.wav: 10.0 ms of audio, shorter than WavLM's first frame" "$T/log5" &&
   grep -q "empty.wav: no audio samples" "$T/log5" && grep -q "1 written, 0 already done, 3 failed" "$T/log5" &&
   [ "$(ls "$T/bad_out" | wc -l)" = 1 ]; then
  echo "PASS audio_features_bad_recordings"; else echo "FAIL audio_features_bad_recordings (exit $rc)"; cat "$T/log5"; fi

expect_error() { # name, exit status, expected message part, args...
  local name=$1 want_rc=$2 want=$3; shift 3
  "$BIN" audio-features "$@" >/dev/null 2>"$T/err"
  local rc=$?
  if [ $rc = "$want_rc" ] && grep -q -- "$want" "$T/err"; then echo "PASS $name"
  else echo "FAIL $name (exit $rc)"; cat "$T/err"; fi
}
expect_error audio_features_layer_range 2 "has hidden states 0..3 (3 layers); give --layer" --wavlm "$MODEL" --wav "$T/wav" --out "$T/o1"
expect_error audio_features_layer_word 2 "--layer 'first'" --wavlm "$MODEL" --wav "$T/wav" --out "$T/o1" --layer first
expect_error audio_features_last_twice 2 "write the last layer twice" --wavlm "$MODEL" --wav "$T/wav" --out "$T/o1" --layer last --out-last "$T/o2"
expect_error audio_features_overlap 2 "--overlap-seconds 4: must be in" --wavlm "$MODEL" --wav "$T/wav" --out "$T/o1" --layer 1 --chunk-seconds 6 --overlap-seconds 4
expect_error audio_features_no_model 1 "nothing.safetensors" --wavlm "$T/nothing.safetensors" --wav "$T/wav" --out "$T/o1" --layer 1
expect_error audio_features_no_audio 1 "no audio files" --wavlm "$MODEL" --wav "$T/src/../l1" --out "$T/o1" --layer 1
expect_error audio_features_required 2 "are required" --wavlm "$MODEL"
[ ! -e "$T/o1" ] && echo "PASS audio_features_nothing_written_on_option_errors" || echo "FAIL audio_features_nothing_written_on_option_errors"
exit 0
