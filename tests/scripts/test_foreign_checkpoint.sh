#!/usr/bin/env bash
# A converted checkpoint of the reference module runs as its code ran (issue 13, item 1).
# The reference module (tests/reference/sdumc_ref.py) registers the MIA tensors even when MIA is not
# used, so a converted checkpoint holds them; without sdumc metadata sdumc must still run MIA off.
#  - tools/pt2safetensors.py without --mia: `sdumc predict` (both flows, each utterance alone), the
#    C API (`predict-one`) and the Python binding equal the reference module with MIA off
#    (<= 1e-4 relative), and say once on stderr that MIA is off;
#  - `--mia on` (CLI, C API params, Python) equals the module with MIA on; `--mia off` on a file
#    converted with `--mia on` (sdumc metadata) equals MIA off again, and such a file keeps its
#    setting without the option (no note);
#  - `--mia on` on a checkpoint without MIA tensors is an error naming them.
# The dataset holds only the test split (a folder of new data to score).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PY=/usr/bin/python3
S=$BUILD/sdumc
if ! "$PY" -c "import torch, numpy" >/dev/null 2>&1; then
  echo "SKIP foreign_checkpoint: $PY cannot import torch and numpy"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1

# The reference module (random weights, MIA tensors registered), its checkpoints, a test-only
# dataset and the module's predictions of each utterance alone, with MIA off and on.
if ! "$PY" - "$tmp" >"$tmp/make.log" 2>&1 <<'PYEOF'; then
import os, sys
import numpy as np, torch
sys.path.insert(0, "tests/reference")
from sdumc_ref import SDUMCRef
tmp = sys.argv[1]
torch.manual_seed(13)
dims = (40, 96, 24)
model = SDUMCRef(*dims, hidden=32).eval()
sd = model.state_dict()
torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 7}, tmp + "/ckpt.pt")
torch.save({k: v for k, v in sd.items() if "imagination" not in k}, tmp + "/no_mia.pt")
ds = tmp + "/ds"
for sub in ("audio", "text", "video", "text_sim"):
    os.makedirs(os.path.join(ds, sub))
rng = np.random.default_rng(5)
rows = ["name,label,split"]
with open(tmp + "/ref.csv", "w") as out:
    out.write("name,full,missing_off,missing_on\n")
    for i in range(6):
        name = "utt%d" % i
        T = [int(x) for x in rng.integers(3, 20, size=4)]
        x = {s: rng.standard_normal((T[k], dims[[0, 1, 2, 1][k]])).astype(np.float32)
             for k, s in enumerate(("audio", "text", "video", "text_sim"))}
        for s, a in x.items():
            np.save(os.path.join(ds, s, name + ".npy"), a)
        rows.append("%s,%.3f,test" % (name, rng.uniform(-3, 3)))
        t = {s: torch.from_numpy(a)[None].double() for s, a in x.items()}
        L = {s: torch.tensor([a.shape[0]]) for s, a in x.items()}
        m64 = model.double()
        with torch.no_grad():
            full = m64(t["audio"], L["audio"], t["text"], L["text"], t["video"], L["video"], missing=False)[0]
            off = m64(t["audio"], L["audio"], t["text_sim"], L["text_sim"], t["video"], L["video"], missing=True, mia=False)[0]
            on = m64(t["audio"], L["audio"], t["text_sim"], L["text_sim"], t["video"], L["video"], missing=True, mia=True)[0]
        out.write("%s,%.17g,%.17g,%.17g\n" % (name, full.item(), off.item(), on.item()))
with open(os.path.join(ds, "labels.csv"), "w") as f:
    f.write("\n".join(rows) + "\n")
PYEOF
  cat "$tmp/make.log"; echo "FAIL foreign_checkpoint (could not build the reference checkpoint and dataset)"; exit 0
fi

fail_setup() { cat "$tmp/log"; echo "FAIL foreign_checkpoint.$1"; }
"$PY" tools/pt2safetensors.py "$tmp/ckpt.pt" "$tmp/plain.safetensors" >"$tmp/log" 2>&1 || { fail_setup convert; exit 0; }
"$PY" tools/pt2safetensors.py "$tmp/ckpt.pt" "$tmp/meta_on.safetensors" --mia on >"$tmp/log" 2>&1 ||
  { fail_setup convert_mia_on; exit 0; }
"$PY" tools/pt2safetensors.py "$tmp/no_mia.pt" "$tmp/no_mia.safetensors" >"$tmp/log" 2>&1 ||
  { fail_setup convert_no_mia; exit 0; }

# predict MODEL FLOW OUT [options]: sdumc predict on the test split, stderr kept in OUT.err.
predict() {
  local model=$1 flow=$2 out=$3; shift 3
  "$S" predict --model "$model" --data "$tmp/ds" --split test --flow "$flow" --out "$out" --batch-size 4 \
    --threads 1 "$@" 2>"$out.err"
}
# compare NAME CSV COLUMN: CSV's predictions vs ref.csv's COLUMN, each utterance, <= 1e-4 relative.
compare() {
  "$PY" - "$tmp/ref.csv" "$2" "$3" <<'PYEOF'
import csv, sys
ref = {r["name"]: float(r[sys.argv[3]]) for r in csv.DictReader(open(sys.argv[1]))}
got = {r["name"]: float(r["prediction"]) for r in csv.DictReader(open(sys.argv[2]))}
assert set(got) == set(ref), "names differ: %s vs %s" % (sorted(got), sorted(ref))
worst = max(abs(got[n] - ref[n]) / max(abs(ref[n]), 1e-3) for n in ref)
print("%d utterances, worst relative difference %.3g" % (len(ref), worst))
sys.exit(0 if worst <= 1e-4 else 1)
PYEOF
}
check() { # check NAME CSV COLUMN [extra condition result]
  local detail
  detail=$(compare "$1" "$2" "$3" 2>&1)
  if [ $? = 0 ] && [ "${4:-0}" = 0 ]; then echo "PASS foreign_checkpoint.$1 ($detail)"; else
    cat "$2.err" 2>/dev/null; echo "FAIL foreign_checkpoint.$1 ($detail)"; fi
}
notes() { grep -c "has no sdumc metadata" "$1" ; }

# The references differ where MIA matters, so the comparisons below can tell MIA on from off.
if "$PY" -c "
import csv, sys
r = list(csv.DictReader(open('$tmp/ref.csv')))
sys.exit(0 if max(abs(float(x['missing_on']) - float(x['missing_off'])) / abs(float(x['missing_off'])) for x in r) > 1e-2 else 1)"
then echo "PASS foreign_checkpoint.reference_mia_matters"; else echo "FAIL foreign_checkpoint.reference_mia_matters"; fi

# 1. No sdumc metadata: MIA off, said once.
predict "$tmp/plain.safetensors" full "$tmp/full.csv"
check default_complete_flow "$tmp/full.csv" full "$([ "$(notes "$tmp/full.csv.err")" = 1 ]; echo $?)"
predict "$tmp/plain.safetensors" missing "$tmp/miss.csv"
check default_text_missing_is_mia_off "$tmp/miss.csv" missing_off "$([ "$(notes "$tmp/miss.csv.err")" = 1 ]; echo $?)"

# 2. --mia on / off overrides.
predict "$tmp/plain.safetensors" missing "$tmp/miss_on.csv" --mia on
check mia_on_override "$tmp/miss_on.csv" missing_on "$([ "$(notes "$tmp/miss_on.csv.err")" = 0 ]; echo $?)"
predict "$tmp/plain.safetensors" full "$tmp/full_on.csv" --mia on
check mia_on_complete_flow_unchanged "$tmp/full_on.csv" full
predict "$tmp/meta_on.safetensors" missing "$tmp/meta_on.csv"
check metadata_mia_on_kept "$tmp/meta_on.csv" missing_on "$([ "$(notes "$tmp/meta_on.csv.err")" = 0 ]; echo $?)"
predict "$tmp/meta_on.safetensors" missing "$tmp/meta_off.csv" --mia off
check metadata_mia_on_overridden_off "$tmp/meta_off.csv" missing_off

# 3. eval takes --mia as well, and says the same once.
if "$S" eval --model "$tmp/plain.safetensors" --data "$tmp/ds" --flow missing --format json --threads 1 \
     >"$tmp/eval.json" 2>"$tmp/eval.err" &&
   "$S" eval --model "$tmp/plain.safetensors" --data "$tmp/ds" --flow missing --format json --threads 1 --mia on \
     >"$tmp/eval_on.json" 2>"$tmp/eval_on.err" &&
   [ "$(notes "$tmp/eval.err")" = 1 ] && [ "$(notes "$tmp/eval_on.err")" = 0 ] &&
   ! cmp -s "$tmp/eval.json" "$tmp/eval_on.json"; then
  echo "PASS foreign_checkpoint.eval_mia_option"
else
  cat "$tmp/eval.err" "$tmp/eval_on.err"; echo "FAIL foreign_checkpoint.eval_mia_option"
fi

# 4. predict-one (the C API with sdumc_model_params.mia) and the Python binding, utterance by utterance.
one() { # one MODEL [options]: name,prediction of every utterance through predict-one's text-missing flow
  echo "name,prediction"
  for i in 0 1 2 3 4 5; do
    local d=$tmp/ds
    printf 'utt%d,%s\n' $i "$("$S" predict-one --model "$1" --audio "$d/audio/utt$i.npy" --sim-text "$d/text_sim/utt$i.npy" \
      --video "$d/video/utt$i.npy" --threads 1 "${@:2}" 2>>"$tmp/one.err")"
  done
}
: >"$tmp/one.err"
one "$tmp/plain.safetensors" >"$tmp/one_off.csv"
check predict_one_default_mia_off "$tmp/one_off.csv" missing_off "$([ "$(notes "$tmp/one.err")" = 6 ]; echo $?)"
: >"$tmp/one.err"
one "$tmp/plain.safetensors" --mia on >"$tmp/one_on.csv"
check predict_one_mia_on "$tmp/one_on.csv" missing_on "$([ "$(notes "$tmp/one.err")" = 0 ]; echo $?)"

preload=
[ "${SD_SANITIZED:-0}" = 1 ] && preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0 "$PY" - "$tmp" "$BUILD/libsdumc.so.$(sed -n 's/^#define SDUMC_VERSION_MAJOR *\([0-9]*\).*/\1/p' include/sdumc.h)" <<'PYEOF'
import csv, os, sys
import numpy as np
sys.path.insert(0, "python")
import sdumc
tmp, lib = sys.argv[1], sys.argv[2]
ref = list(csv.DictReader(open(tmp + "/ref.csv")))
def run(model, column):
    worst = 0.0
    for r in ref:
        x = {s: np.load("%s/ds/%s/%s.npy" % (tmp, s, r["name"])) for s in ("audio", "video", "text_sim")}
        got = model.predict(x["audio"], video=x["video"], sim_text=x["text_sim"])
        worst = max(worst, abs(got - float(r[column])) / max(abs(float(r[column])), 1e-3))
    return worst
plain = sdumc.Model(tmp + "/plain.safetensors", library=lib)
on = sdumc.Model(tmp + "/plain.safetensors", library=lib, mia="on")
w_off, w_on = run(plain, "missing_off"), run(on, "missing_on")
ok = (w_off <= 1e-4 and w_on <= 1e-4 and plain.info["mia_source"] == "default" and not plain.info["mia"]
      and on.info["mia_source"] == "params" and on.info["mia"])
print("%s foreign_checkpoint.python_mia (default %.3g, mia='on' %.3g; sources %s, %s)"
      % ("PASS" if ok else "FAIL", w_off, w_on, plain.info["mia_source"], on.info["mia_source"]))
try:
    sdumc.Model(tmp + "/no_mia.safetensors", library=lib, mia=True)
    print("FAIL foreign_checkpoint.python_mia_on_without_tensors (loaded)")
except sdumc.Error as e:
    ok = e.code == 5 and "missing_text_imagination_mlp.transition.0.weight" in e.message
    print("%s foreign_checkpoint.python_mia_on_without_tensors (%s)" % ("PASS" if ok else "FAIL", e.message[:160]))
PYEOF

# 5. MIA on for a checkpoint without MIA tensors: an error naming them, nothing written.
predict "$tmp/no_mia.safetensors" missing "$tmp/no_mia.csv" --mia on
rc=$?
if [ $rc = 1 ] && [ ! -e "$tmp/no_mia.csv" ] &&
   grep -q "lacks 16 MIA tensors: missing_text_imagination_mlp.transition.0.weight, " "$tmp/no_mia.csv.err"; then
  echo "PASS foreign_checkpoint.mia_on_without_tensors ($(head -c 150 "$tmp/no_mia.csv.err")...)"
else
  cat "$tmp/no_mia.csv.err"; echo "FAIL foreign_checkpoint.mia_on_without_tensors (exit $rc)"
fi
predict "$tmp/no_mia.safetensors" missing "$tmp/no_mia_off.csv"
check no_mia_tensors_default "$tmp/no_mia_off.csv" missing_off
