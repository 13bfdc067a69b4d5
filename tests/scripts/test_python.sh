#!/usr/bin/env bash
# The Python binding (python/sdumc.py, ctypes + Debian's python3-numpy) and `sdumc predict-one`:
#  - predict-one (the C API) on every test utterance prints what `sdumc predict` wrote, both flows;
#  - the binding's predictions equal predict-one's exactly, and `sdumc predict`'s to float rounding;
#  - the batch call, embeddings, threads, info, and errors raised with the library's message.
# Uses $BUILD/sdumc and $BUILD/libsdumc.so.MAJOR (under `make test-asan` the library is instrumented:
# the sanitizer runtimes are preloaded into Python, leak checks off for the interpreter).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! $PY -c 'import numpy' 2>/dev/null; then
  echo "SKIP python_binding (Debian's python3-numpy is not installed: make setup)"
  exit 0
fi
lib=$BUILD/libsdumc.so.$(sed -n 's/^#define SDUMC_VERSION_MAJOR *\([0-9]*\).*/\1/p' include/sdumc.h)
if [ ! -f "$lib" ] || [ ! -x "$BUILD/sdumc" ]; then
  echo "FAIL python_binding ($lib or $BUILD/sdumc missing: make tests builds them)"
  exit 0
fi

# A corpus and two models: MIA on (paper preset) and off.
S=$BUILD/sdumc
if ! { $S synth --out "$tmp/ds" --n 40 --seed 6 &&
       $S train --data "$tmp/ds" --out "$tmp/mia.safetensors" --epochs 1 --hidden 16 --batch-size 8 --threads 1 &&
       $S train --data "$tmp/ds" --out "$tmp/plain.safetensors" --epochs 1 --hidden 16 --batch-size 8 --mia off \
          --threads 1 &&
       $S predict --model "$tmp/mia.safetensors" --data "$tmp/ds" --split test --out "$tmp/full.csv" --batch-size 4 &&
       $S predict --model "$tmp/mia.safetensors" --data "$tmp/ds" --split test --flow missing --out "$tmp/miss.csv" \
          --batch-size 4; } >"$tmp/setup.log" 2>&1; then
  cat "$tmp/setup.log"
  echo "FAIL python_binding (could not make the corpus, models or sdumc predict's CSVs)"
  exit 0
fi

# sdumc predict-one on each test utterance, both flows, as name,complete,text-missing.
ok=1
tail -n +2 "$tmp/full.csv" | cut -d, -f1 | while read -r name; do
  d=$tmp/ds
  a=$($S predict-one --model "$tmp/mia.safetensors" --audio "$d/audio/$name.npy" --text "$d/text/$name.npy" \
      --video "$d/video/$name.npy" --threads 1) || exit 1
  b=$($S predict-one --model "$tmp/mia.safetensors" --audio "$d/audio/$name.npy" --sim-text "$d/text_sim/$name.npy" \
      --video "$d/video/$name.npy" --threads 1 --json --require-mia) || exit 1
  echo "$name,$a,$b"
done >"$tmp/one.csv" || ok=0
json=$($S predict-one --model "$tmp/plain.safetensors" --audio "$tmp/ds/audio/$(sed -n 2p "$tmp/full.csv" | cut -d, -f1).npy" \
  --sim-text "$tmp/ds/text_sim/$(sed -n 2p "$tmp/full.csv" | cut -d, -f1).npy" \
  --video "$tmp/ds/video/$(sed -n 2p "$tmp/full.csv" | cut -d, -f1).npy" --json --require-mia 2>&1)
rc=$?
if [ $ok = 1 ] && [ $rc = 1 ] && echo "$json" | grep -q "no Modality Imagination Autoencoder"; then
  echo "PASS predict_one_cli_runs (and --require-mia on a model without MIA fails with the library's message)"
else
  echo "  $json (exit $rc)"
  echo "FAIL predict_one_cli_runs"
fi

preload=
if [ "${SD_SANITIZED:-0}" = 1 ]; then
  preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
fi
cat >"$tmp/check.py" <<'EOF'
import csv, json, os, sys, threading
import numpy as np
sys.path.insert(0, os.path.join(os.getcwd(), "python"))
import sdumc

tmp, lib = sys.argv[1], sys.argv[2]
ds = os.path.join(tmp, "ds")
results = []

def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + (" (%s)" % detail if detail else ""))

def feats(name, slot):
    return np.load(os.path.join(ds, slot, name + ".npy"))

rows = {}
for line in open(os.path.join(tmp, "one.csv")):
    n, a, j = line.rstrip("\n").split(",", 2)
    rows[n] = (a, json.loads(j))
full = {r["name"]: float(r["prediction"]) for r in csv.DictReader(open(os.path.join(tmp, "full.csv")))}
miss = {r["name"]: float(r["prediction"]) for r in csv.DictReader(open(os.path.join(tmp, "miss.csv")))}
names = list(full)

m = sdumc.Model(os.path.join(tmp, "mia.safetensors"), library=lib)
info = m.info
check("python_info", info["dim_audio"] == 32 and info["dim_text"] == 48 and info["dim_video"] == 24
      and info["hidden"] == 16 and m.embedding_dim == 8 and info["mia"] is True and info["mask"] is True
      and info["preset"] == "paper" and info["param_count"] > 0 and info["mia_source"] == "metadata"
      and info["mapped"] is True and 1 <= info["n_threads"] <= 4, str(info))
check("python_version", sdumc.__version__ == sdumc.version(lib) and "version" in sdumc.__all__
      and sdumc.Model(os.path.join(tmp, "mia.safetensors"), library=lib, threads=2, mmap=False).info["n_threads"] == 2,
      "__version__ %s, library %s" % (sdumc.__version__, sdumc.version(lib)))

# predict-one (the C API, printed with %.9g, which round-trips a float32) vs sdumc predict.
cli_err = max(max(abs(float(rows[n][0]) - full[n]), abs(rows[n][1]["score"] - miss[n])) for n in names)
shape_ok = all(rows[n][1]["flow"] == "text-missing" and rows[n][1]["embedding_dim"] == 8 and rows[n][1]["mia"]
               for n in names)
scale = max(abs(v) for v in list(full.values()) + list(miss.values()))
check("predict_one_equals_sdumc_predict", len(names) == len(rows) and cli_err <= 1e-5 * max(scale, 0.01) and shape_ok,
      "%d utterances x 2 flows, max abs diff %.3g, max |score| %.3g" % (len(names), cli_err, scale))

# The binding vs the C API (predict-one): bit for bit; vs sdumc predict: float rounding.
exact, worst = 0, 0.0
py = {}
for n in names:
    a, v = feats(n, "audio"), feats(n, "video")
    s_full = m.predict(a, feats(n, "text"), v)
    s_miss = m.predict(a, video=v, sim_text=feats(n, "text_sim"), require_mia=True)
    py[n] = (s_full, s_miss)
    exact += np.float32(s_full) == np.float32(float(rows[n][0])) and np.float32(s_miss) == np.float32(rows[n][1]["score"])
    worst = max(worst, abs(s_full - full[n]), abs(s_miss - miss[n]))
check("python_equals_c_api", exact == len(names), "%d of %d utterances bitwise equal to predict-one, both flows" % (exact, len(names)))
check("python_equals_sdumc_predict", worst <= 1e-5 * max(scale, 0.01), "max abs diff %.3g" % worst)

# Batch and embeddings.
au = [feats(n, "audio") for n in names]
vi = [feats(n, "video") for n in names]
si = [feats(n, "text_sim") for n in names]
sc, z = m.predict_batch(au, videos=vi, sim_texts=si, embeddings=True)
sc2 = m.predict_batch(au, [feats(n, "text") for n in names], vi)
one_z = [m.embed(au[i], video=vi[i], sim_text=si[i]) for i in range(len(names))]
d_batch = max(max(abs(float(sc[i]) - py[n][1]), abs(float(sc2[i]) - py[n][0])) for i, n in enumerate(names))
d_z = max(float(np.max(np.abs(z[i] - one_z[i][1]))) for i in range(len(names)))
same_score = all(one_z[i][0] == py[n][1] for i, n in enumerate(names))
check("python_batch_and_embed", sc.shape == (len(names),) and z.shape == (len(names), 8) and d_batch <= 1e-5 * max(scale, 0.01)
      and d_z <= 1e-5 * max(float(np.max(np.abs(z))), 1e-3) and same_score and float(np.max(np.abs(z))) > 0,
      "batch vs single: %.3g (scores), %.3g (embeddings)" % (d_batch, d_z))

# Threads sharing the model (the GIL is released in the calls).
out = [None] * 8
def worker(t):
    out[t] = [m.predict(au[i], video=vi[i], sim_text=si[i]) for i in range(len(names))]
ths = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
[t.start() for t in ths]
[t.join() for t in ths]
check("python_threads", all(o == [py[n][1] for n in names] for o in out), "8 threads, identical to one")

# Errors carry the library's status and message.
def raises(name, fn, code, needle):
    try:
        fn()
    except sdumc.Error as e:
        check(name, e.code == code and needle in e.message, "code %d: %s" % (e.code, e.message))
        return
    except Exception as e:
        check(name, False, "raised %r" % e)
        return
    check(name, False, "no exception")

a, t, v = au[0], feats(names[0], "text"), vi[0]
raises("python_error_dims", lambda: m.predict(a[:, :30], t, v), 5, "audio features have dim 30, the model expects 32")
raises("python_error_sim_dims", lambda: m.predict(a, video=v, sim_text=t[:, :40]), 5, "cannot run the text-missing flow")
nan = t.copy(); nan[1, 2] = np.nan
raises("python_error_nan", lambda: m.predict(a, nan, v), 6, "NaN at frame 1, column 2")
raises("python_error_zero_frames", lambda: m.predict(a, t, np.zeros((0, 24), np.float32)), 1, "0 frames")
raises("python_error_batch_names_index", lambda: m.predict_batch(au[:3], [t, nan, t], vi[:3]), 6, "utterance 1")
raises("python_error_missing_file", lambda: sdumc.Model(os.path.join(tmp, "nope.safetensors"), library=lib), 3, "nope.safetensors")
plain = sdumc.Model(os.path.join(tmp, "plain.safetensors"), library=lib)
raises("python_error_no_mia", lambda: plain.predict(a, video=v, sim_text=si[0], require_mia=True), 7, "no Modality Imagination Autoencoder")
ok_plain = plain.predict(a, video=v, sim_text=si[0])

# Python-side argument errors name the argument the caller used.
def value_error(fn, needle):
    try:
        fn()
    except ValueError as e:
        return needle in str(e) or print("  message: %s" % e)
    except Exception as e:
        return print("  raised %r" % e)
    return print("  no ValueError for %s" % needle)
arg_checks = [
    value_error(lambda: m.predict(a, t, v, sim_text=si[0]), "exactly one of text= (complete flow) and sim_text="),
    value_error(lambda: m.predict(a, t), "video is required"),
    value_error(lambda: m.predict(a, video=v, sim_text=np.zeros((2, 3, 4))), "sim_text must be [frames, dim]"),
    value_error(lambda: m.predict(a, t, v, require_mia=True), "require_mia applies to the text-missing flow (sim_text=)"),
    value_error(lambda: m.predict_batch(au[:2], vi[:2], sim_texts=si[:3]), "exactly one of texts="),
    value_error(lambda: m.predict_batch(au[:2], videos=vi[:2], sim_texts=si[:3]), "audios, sim_texts and videos have different lengths (2, 3, 2)"),
    value_error(lambda: m.predict_batch(au[:2], [t, "x"], vi[:2]), "texts[1]: not an array of numbers"),
    value_error(lambda: m.predict_batch(au[:2], [t, t], [v, np.zeros((1, 2, 3))]), "videos[1] must be [frames, dim]"),
    value_error(lambda: sdumc.Model(os.path.join(tmp, "mia.safetensors"), library=lib, threads=0), "threads must be"),
]
try:
    m.predict(a, v, text=t)  # the old (audio, video) order fails loudly
    old_order = False
except TypeError:
    old_order = True
check("python_argument_errors", all(arg_checks) and old_order and isinstance(ok_plain, float),
      "%d of %d ValueErrors name the argument; the old (audio, video, text=) order raises TypeError: %s"
      % (sum(bool(x) for x in arg_checks), len(arg_checks), old_order))
plain.close()

# close() while other threads are inside calls on the model: it waits for them (no use-after-free,
# which the sanitizers would report under make test-asan), the calls in flight finish with the
# right results, and later calls raise ValueError.
busy = sdumc.Model(os.path.join(tmp, "mia.safetensors"), library=lib, threads=1)
import time
reps = 100
stop_loops = threading.Event()
errors, loop_calls, loop_end = [], [0, 0, 0], [None, None, None]
def long_call(out):
    try:
        out["batch"] = busy.predict_batch(big_a, videos=big_v, sim_texts=big_s)
    except Exception as e:
        errors.append(e)
def loop(k):
    try:
        while not stop_loops.is_set():
            busy.predict(au[k], video=vi[k], sim_text=si[k])
            loop_calls[k] += 1
    except ValueError as e:
        loop_end[k] = str(e)
    except Exception as e:
        errors.append(e)
for attempt in range(6):  # until close() meets the long call in flight (longer each time)
    big_a, big_s, big_v = au * reps, si * reps, vi * reps
    out, loop_calls[:], loop_end[:] = {}, [0, 0, 0], [None, None, None]
    stop_loops.clear()
    lc = threading.Thread(target=long_call, args=(out,))
    lc.start()
    t0 = time.time()
    while busy._calls < 1 and lc.is_alive() and time.time() - t0 < 30:  # only the long call calls now
        time.sleep(0.0005)
    loops = [threading.Thread(target=loop, args=(k,)) for k in range(3)]
    [t.start() for t in loops]
    while min(loop_calls) < 1 and lc.is_alive() and time.time() - t0 < 30:
        time.sleep(0.0005)
    if "batch" not in out and lc.is_alive():
        busy.close()  # the long call (and maybe loop calls) in flight
        lc.join()
        [t.join() for t in loops]
        break
    stop_loops.set()
    lc.join()
    [t.join() for t in loops]
    reps *= 2
try:
    busy.predict(au[0], video=vi[0], sim_text=si[0])
    after = "no error"
except ValueError as e:
    after = str(e)
with sdumc.Model(os.path.join(tmp, "mia.safetensors"), library=lib, threads=1) as ref:
    want = ref.predict_batch(big_a, videos=big_v, sim_texts=big_s)
same = "batch" in out and np.array_equal(out["batch"], want)
ok = not errors and same and all(e == "the model is closed" for e in loop_end) and after == "the model is closed"
check("python_close_waits_for_calls_in_flight", ok,
      "close() during a batch call of %d utterances and 3 looping callers: batch %s; loops stopped with %r; "
      "errors %r" % (len(big_a), "finished, equal to the reference" if same else "WRONG or missing", loop_end, errors))
busy.close()  # twice is fine
m.close()
try:
    m.predict(a, t, v)
    closed = False
except ValueError:
    closed = True
check("python_closed_model", closed)
EOF
# LD_PRELOAD only for Python, and only under the sanitizers.
if [ -n "$preload" ]; then
  LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0 $PY "$tmp/check.py" "$tmp" "$lib" 2>&1
else
  $PY "$tmp/check.py" "$tmp" "$lib" 2>&1
fi
rc=$?
[ $rc -eq 0 ] || echo "FAIL python_binding (python exited with status $rc)"
