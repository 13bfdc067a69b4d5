#!/usr/bin/env bash
# sdumc train --seeds, sdumc robustness and sdumc compare end to end on a small synthetic corpus:
# the files each writes, rate 0 / noise 0 / all-present equal to `sdumc eval` (same printed
# digits), monotone degradation as a property (mean MAE over seeds never falls as more of every
# modality is removed: missing frames and dropped runs; noise need not hurt, and on this corpus the
# baseline's MAE even falls a little under noise), option validation, and the HTML report opened in headless
# Chromium (screenshot not empty, no script error, its script ran). Chromium is skipped (SKIP
# line) only when it is not installed.
set -u
cd "$(dirname "$0")/../.."
BIN=$(pwd)/${BUILD:-build}/sdumc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "PASS robustness.$1"; }
bad() { echo "FAIL robustness.$1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
py=/usr/bin/python3

"$BIN" synth --out "$tmp/data" --n 400 --seed 5 >/dev/null 2>&1 || { bad synth; exit 1; }
common=(--data "$tmp/data" --hidden 16 --epochs 8 --batch-size 16 --lr 2e-3 --threads 1)

# Training with several seeds: one model per seed, then the summary (sequential, then 2 at once).
"$BIN" train "${common[@]}" --seeds 1,2 --out "$tmp/sdumc.safetensors" >"$tmp/train.out" 2>"$tmp/train.err" || cat "$tmp/train.err"
check seeds_files test -s "$tmp/sdumc.seed1.safetensors" -a -s "$tmp/sdumc.seed2.safetensors" -a -s "$tmp/sdumc.seeds.csv" \
  -a -s "$tmp/sdumc.seeds.txt" -a -s "$tmp/sdumc.seed2.safetensors.report.html"
check seeds_table grep -q "valid full .*+-" "$tmp/sdumc.seeds.txt"
check seeds_csv $py -c "
import csv
rows = list(csv.DictReader(open('$tmp/sdumc.seeds.csv')))
assert {(r['condition'], r['flow'], r['seed']) for r in rows} == {(c, f, s) for c in ('valid', 'test') for f in ('full', 'missing') for s in ('1', '2')}, rows
"
"$BIN" train "${common[@]}" --seeds 1,2 --jobs 2 --w-miss 0 --w-tf 0 --w-tq 0 --w-f 0 --w-rnc 0 --select full \
  --out "$tmp/base.safetensors" >"$tmp/base.out" 2>"$tmp/base.err" || cat "$tmp/base.err"
check seeds_parallel test -s "$tmp/base.seed1.safetensors" -a -s "$tmp/base.seed2.safetensors" -a -s "$tmp/base.seeds.csv"
# A seed's model is the model of a plain run with that seed (parallel runs get threads/jobs = 1 here).
"$BIN" train "${common[@]}" --seed 2 --w-miss 0 --w-tf 0 --w-tq 0 --w-f 0 --w-rnc 0 --select full \
  --out "$tmp/plain2.safetensors" >/dev/null 2>&1
check seeds_same_as_plain_run cmp -s "$tmp/plain2.safetensors" "$tmp/base.seed2.safetensors"
"$BIN" train "${common[@]}" --seeds 1,2 --seed 3 --out "$tmp/x.safetensors" >"$tmp/x.err" 2>&1; rc=$?
check seeds_refuses_seed bash -c "[ $rc -eq 2 ] && grep -q 'excludes --seed' '$tmp/x.err' && ! ls '$tmp'/x.safetensors* >/dev/null 2>&1"

# A folder without a valid split: each seed's run carves its own (--valid-fraction, seeded by the
# run's seed), and the summary evaluates each model on its own carved split.
mkdir -p "$tmp/novalid" && cp -r "$tmp/data/." "$tmp/novalid/"
sed -i 's/,valid$/,train/' "$tmp/novalid/labels.csv"
"$BIN" train --data "$tmp/novalid" --hidden 16 --epochs 1 --batch-size 32 --threads 1 --seeds 1,2 --valid-fraction 0.2 \
  --out "$tmp/vf.safetensors" >"$tmp/vf.out" 2>"$tmp/vf.err" || cat "$tmp/vf.err"
check seeds_valid_fraction $py -c "
import csv
rows = [r for r in csv.DictReader(open('$tmp/vf.seeds.csv')) if r['condition'] == 'valid']
valid1 = set(open('$tmp/vf.seed1.safetensors.valid.txt').read().split())
valid2 = set(open('$tmp/vf.seed2.safetensors.valid.txt').read().split())
assert len(rows) == 4 and all(int(r['n']) == len(valid1) == len(valid2) for r in rows), rows
assert valid1 != valid2, 'both seeds carved the same split'
"

# The robustness evaluation.
rob=("$BIN" robustness --model "sdumc=$tmp/sdumc.seed{seed}.safetensors" --model "$tmp/base.seed{seed}.safetensors"
     --data "$tmp/data" --seeds 1,2 --rates 0:0.9:0.3 --noise 0:1.5:0.5 --threads 1)
"${rob[@]}" --out "$tmp/rob" >"$tmp/rob.out" 2>"$tmp/rob.err" || cat "$tmp/rob.err"
check writes_outputs test -s "$tmp/rob/results.csv" -a -s "$tmp/rob/summary.json" -a -s "$tmp/rob/report.html"
for s in 1 2; do
  for m in sdumc base; do
    "$BIN" eval --model "$tmp/$m.seed$s.safetensors" --data "$tmp/data" --format json --threads 1 >"$tmp/eval_${m}_$s.json" 2>/dev/null
  done
done
check unchanged_conditions_equal_eval $py -c "
import csv, json
rows = list(csv.DictReader(open('$tmp/rob/results.csv')))
keys = ['mae','mse','corr','acc7','acc5','acc2_has0','f1_has0','acc2_non0','f1_non0']
n = 0
for r in rows:
    flow = r['flow']
    plain = (r['condition'] == 'clean' or (r['condition'] in ('missing','drop','noise') and float(r['rate']) == 0)
             or (r['condition'] == 'pattern' and r['target'] == ('a+t+v' if flow == 'full' else 'a+v')))
    if not plain: continue
    e = json.load(open('$tmp/eval_%s_%s.json' % (r['model'], r['seed'])))[flow]
    for k in keys:
        want = '' if e[k] is None else '%.6f' % e[k]
        assert r[k] == want, (r, k, e[k])
    n += 1
# 2 models x 2 seeds x 2 flows x (clean + 3 kinds x 4 targets + 1 pattern)
assert n == 2 * 2 * 2 * 14, n
"
check monotone_degradation $py -c "
import csv, collections
rows = list(csv.DictReader(open('$tmp/rob/results.csv')))
g = collections.defaultdict(list)
for r in rows:
    if r['condition'] in ('missing','drop') and r['target'] == 'all':
        g[(r['model'], r['condition'], r['flow'])].append((float(r['rate']), float(r['mae'])))
assert len(g) == 8, g.keys()
for key, pts in g.items():
    by = collections.defaultdict(list)
    for rate, mae in pts: by[rate].append(mae)
    curve = [sum(v) / len(v) for _, v in sorted(by.items())]
    assert all(b >= a for a, b in zip(curve, curve[1:])), (key, curve)
    assert curve[-1] > curve[0], (key, curve)
"
check summary_json $py -c "
import json
s = json.load(open('$tmp/rob/summary.json'))
assert [m['name'] for m in s['models']] == ['sdumc', 'base'] and s['seeds'] == [1, 2], s['models']
m = s['models'][0]
assert set(m['clean']) == {'full', 'missing'} and m['clean']['full']['mae']['n'] == 2
sw = [w for w in m['sweeps'] if w['condition'] == 'missing' and w['target'] == 'all' and w['flow'] == 'full'][0]
assert sw['levels'] == [0, 0.3, 0.6, 0.9], sw['levels']
assert sw['auilc']['mae']['mean'] > m['clean']['full']['mae']['mean']
assert len(m['patterns']) == 10 and {p['text'] for p in m['patterns'] if p['present'] == 'a+v'} == {'zeros', 'simulated'}
"
# Every model sees the same corrupted inputs: a second run writes the same results.
"${rob[@]}" --out "$tmp/rob2" >/dev/null 2>&1
check repeatable cmp -s "$tmp/rob/results.csv" "$tmp/rob2/results.csv"

# Paired comparison.
"$BIN" compare "$tmp/rob/results.csv" --a base --b sdumc >"$tmp/cmp.txt" 2>&1
check compare_one_file bash -c "grep -q 'paired-t interval' '$tmp/cmp.txt' && grep -q '^missing,all,full,0.9 ' '$tmp/cmp.txt' && tail -1 '$tmp/cmp.txt' | grep -q 'conditions: B better in'"
"$BIN" compare "$tmp/base.seeds.csv" "$tmp/sdumc.seeds.csv" --format csv >"$tmp/cmp.csv" 2>&1
check compare_seed_summaries $py -c "
import csv
rows = list(csv.DictReader(open('$tmp/cmp.csv')))
assert [(r['condition'], r['flow']) for r in rows] == [('valid','full'),('valid','missing'),('test','full'),('test','missing')], rows
assert all(r['n'] == '2' and float(r['ci_lo']) <= float(r['diff']) <= float(r['ci_hi']) for r in rows), rows
"
check compare_needs_names bash -c "! '$BIN' compare '$tmp/rob/results.csv' '$tmp/rob/results.csv' 2>/dev/null"

# Option validation: exit 2 naming the option, nothing written.
expect_refused() {
  local name=$1 needle=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$needle" <<<"$out" && [ ! -e "$tmp/none" ]; then ok "refuses_$name"; else
    echo "  exit $rc, output: $out"; bad "refuses_$name"; fi
}
base=("$BIN" robustness --model "$tmp/sdumc.seed1.safetensors" --data "$tmp/data" --out "$tmp/none")
expect_refused rate_range "--rates" "${base[@]}" --rates 0:2:0.5
expect_refused rate_syntax "--rates" "${base[@]}" --rates 0.5,0.1
expect_refused patterns "--patterns" "${base[@]}" --patterns a+x
expect_refused targets "--targets" "${base[@]}" --targets sound
expect_refused seeds "--seeds" "${base[@]}" --seeds 1,1
expect_refused same_names "two models" "${base[@]}" --model "$tmp/sdumc.seed1.safetensors"
out=$("${base[@]/$tmp\/sdumc.seed1.safetensors/$tmp/nope.safetensors}" 2>&1); rc=$?
check refuses_missing_model bash -c "[ $rc -eq 1 ] && grep -q nope.safetensors <<<'$out' && [ ! -e '$tmp/none' ]"

# The reports in a real browser: the robustness report (its script records errors in the page and
# marks the body when it has run) and a training report (no script).
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "SKIP robustness.reports_in_chromium (chromium is not installed: scripts/setup.sh installs it)"
else
  flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
         --disable-component-update --disable-sync)
  open_page() { # page, name: screenshot and DOM into $tmp/NAME.png and $tmp/NAME.dom, fresh profiles
    timeout 120 "$browser" "${flags[@]}" --user-data-dir="$tmp/chrome_$2_1" --window-size=1400,2000 \
      --screenshot="$tmp/$2.png" "file://$1" >/dev/null 2>&1
    timeout 120 "$browser" "${flags[@]}" --user-data-dir="$tmp/chrome_$2_2" --dump-dom "file://$1" >"$tmp/$2.dom" 2>/dev/null
  }
  open_page "$tmp/rob/report.html" robust
  open_page "$tmp/sdumc.seed1.safetensors.report.html" training
  check report_in_chromium $py -c "
import re
png = open('$tmp/robust.png', 'rb').read()
assert png[:8] == b'\\x89PNG\\r\\n\\x1a\\n' and len(png) > 20000, len(png)
dom = open('$tmp/robust.dom').read()
assert re.search(r'<body[^>]*data-ready=\"1\"', dom), 'the page script did not run'
errors = re.search(r'<div id=\"errors\">(.*?)</div>', dom, re.S)
assert errors and errors.group(1).strip() == '', errors and errors.group(1)
assert dom.count('<svg') >= 24 * 6, dom.count('<svg')
"
  check training_report_in_chromium $py -c "
png = open('$tmp/training.png', 'rb').read()
assert png[:8] == b'\\x89PNG\\r\\n\\x1a\\n' and len(png) > 20000, len(png)
dom = open('$tmp/training.dom').read()
for needle in ('Configuration', 'predicting the training mean', 'Rank-N-Contrast (own axis)', 'train, complete flow'):
    assert needle in dom, needle
assert dom.count('<svg') == 6, dom.count('<svg')
"
fi
