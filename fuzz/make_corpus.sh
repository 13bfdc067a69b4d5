#!/usr/bin/env bash
# Regenerates the committed seed corpora fuzz/corpus/<harness>/ (run from anywhere, after `make`).
# Seeds are small valid files of every kind the parsers accept plus a few typical rejections; the
# fuzzers mutate from there. Sources: tests/fixtures (npy, safetensors, GGUF), a 1-epoch model and
# training state from `sdumc train --hidden 4` on a synthetic corpus, a tiny GGUF vocabulary
# written with tests/reference/gguf_writer.py, hand-written labels.csv files and argument lists,
# MMSA-style pickles from tests/reference/mmsa_pickle.py.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PY=/usr/bin/python3
C=fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$C"
mkdir -p "$C"/{npy,safetensors,model,train_state,gguf,tokenizer,labels,args,csv,pickle,audio,wavlm}

cp tests/fixtures/npy/*.npy "$C/npy/"
cp tests/fixtures/safetensors/*.safetensors "$C/safetensors/"
cp tests/fixtures/llm/gguf_types.gguf tests/fixtures/llm/vocab.gguf "$C/gguf/"
cp tests/fixtures/llm/vocab.gguf "$C/tokenizer/"

"$BUILD/sdumc" synth --out "$tmp/ds" --n 200 --seed 1 >/dev/null
"$BUILD/sdumc" train --data "$tmp/ds" --out "$tmp/m.safetensors" --hidden 4 --epochs 1 --batch-size 64 \
  --threads 1 >/dev/null 2>&1
cp "$tmp/m.safetensors" "$C/model/sdumc_h4.safetensors"
cp "$tmp/m.safetensors" "$C/safetensors/model_h4.safetensors"
cp "$tmp/m.safetensors.state" "$C/train_state/state_h4.safetensors"

$PY - "$tmp/m.safetensors" "$C" <<'PYEOF'
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head, data = json.loads(raw[8:8 + n]), raw[8 + n:]

def dump(path, header, data):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)

# A converted PyTorch state_dict: no sdumc metadata, DataParallel's "module." prefix.
conv = {("module." + k): v for k, v in head.items() if k != "__metadata__"}
dump(out + "/model/converted_module_prefix.safetensors", conv, data)
# Minimal safetensors files: empty, a scalar, one F16 / BF16 / F64 tensor.
dump(out + "/safetensors/empty.safetensors", {}, b"")
dump(out + "/safetensors/scalar_f32.safetensors",
     {"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}, struct.pack("<f", 1.5))
dump(out + "/safetensors/mixed.safetensors",
     {"__metadata__": {"k": "v"},
      "a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
      "b": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [4, 8]},
      "c": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]}},
     struct.pack("<2e", 1.0, -2.0) + b"\x80\x3f\x00\xc0" + struct.pack("<d", 3.25))
PYEOF

$PY - "$C/tokenizer" <<'PYEOF'
import sys
sys.path.insert(0, "tests/reference")
import gguf_writer as gw
out = sys.argv[1]
# A tiny SentencePiece vocabulary: specials, a few byte tokens, characters and merges.
pieces = ["<unk>", "<s>", "</s>", "<0x0A>", "<0x41>", "<0xFF>", "\u2581", "a", "b", "\u2581a", "ab",
          "\u2581ab", "\u00e9", "\u65e5"]
types = [2, 3, 3, 6, 6, 6, 1, 1, 1, 1, 1, 1, 4, 1]
scores = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -0.5, -0.7, -0.1, 0.0, -9.0]
w = gw.GGUFWriter(out + "/tiny_vocab.gguf")
w.add_string("tokenizer.ggml.model", "llama")
w.add_array("tokenizer.ggml.tokens", gw.STRING, pieces)
w.add_array("tokenizer.ggml.scores", gw.F32, scores)
w.add_array("tokenizer.ggml.token_type", gw.I32, types)
w.add_u32("tokenizer.ggml.bos_token_id", 1)
w.add_u32("tokenizer.ggml.eos_token_id", 2)
w.add_bool("tokenizer.ggml.add_space_prefix", True)
w.write()
PYEOF
cp "$C/tokenizer/tiny_vocab.gguf" "$C/gguf/"

printf 'name,label,split\na,0.5,train\nb,-1.25,valid\nc,3,test\n' > "$C/labels/ok.csv"
printf '\xef\xbb\xbfsplit,extra,label,name\r\ntrain,x,-3,a\r\nvalid,,2.5e0,b\r\ntest,y,0,c\r\n' > "$C/labels/bom_crlf_reordered.csv"
printf 'name,label,split\n"a",1,train\n"b,x",1,valid\na,2,test\nbad,0,train\nc,nan,test\nc,9,test\nd,1,dev\n../c,1,train\n' > "$C/labels/problems.csv"
printf 'name,label\na,1\n' > "$C/labels/missing_column.csv"
printf '\n\n  \nname,label,split\n\na,1,train\nb,1,valid\nc,1,test\n' > "$C/labels/blank_lines.csv"
printf 'name,label,split\na,1,train\nb,1,valid\x00junk\nc,1,test\n' > "$C/labels/nul_row.csv"
printf 'name,prediction,label\r\n"a,b ""q""",0.5,1\r\n "two\nlines" ,,\r\nplain, 2 ,""\r\n\r\n' > "$C/csv/quoted.csv"
printf 'name,label,split\na,1,train\nb\0,1,valid\nc,1,test\n' > "$C/csv/nul_byte.csv"
printf '\xff\xfen\0a\0m\0e\0\n\0' > "$C/csv/utf16.csv"
printf 'h\n"unclosed,1\n"a"b,2\n' > "$C/csv/unclosed.csv"

args() { local f=$1; shift; printf '%s\0' "$@" > "$C/args/$f"; }
args all_kinds --data d --epochs 10 --seed 18446744073709551615 --lr 1e-3 --mia on --select mean --quiet
args out_of_range --epochs 0
args not_finite --lr inf
args negative_u64 --seed -1
args overflow_u64 --seed 18446744073709551616
args twice --quiet --quiet
args bad_choice --select 'full|miss'
args help --epochs 3 --help
args missing_value --epochs
args positional positional
args empty_value --data ''
# MMSA-style feature pickles (tests/reference/mmsa_pickle.py --tiny): every protocol the reader
# takes, numpy 2's module names, and two refusals (a call of os.system, a truncated file).
P=tests/reference/mmsa_pickle.py
$PY $P write "$C/pickle/aligned_p2.pkl" aligned --protocol 2 --tiny --n 2
$PY $P write "$C/pickle/aligned_p3_numpy2.pkl" aligned --protocol 3 --numpy2 --tiny --n 2
$PY $P write "$C/pickle/unaligned_p4.pkl" unaligned --protocol 4 --tiny --n 2
$PY $P write "$C/pickle/unaligned_p5_sims.pkl" unaligned --protocol 5 --sims --tiny --n 2
$PY $P hostile "$tmp" /nonexistent/marker
cp "$tmp/exec_os_system.pkl" "$tmp/truncated_proto2.pkl" "$C/pickle/"
# Audio (sox): short files of each kind the reader takes, and two rejections.
sox -n -r 8000 -c 1 -b 16 "$C/audio/pcm16_8k.wav" synth 0.02 sine 440
sox -n -r 44100 -c 2 -e floating-point -b 32 "$C/audio/stereo_float_44k.wav" synth 0.01 sine 300 sine 500
sox -n -r 22050 -c 1 "$C/audio/flac_22k.flac" synth 0.03 sine 200
sox -n -r 16000 -c 1 "$C/audio/vorbis_16k.ogg" synth 0.1 sine 1000
sox -n -r 16000 -c 1 -b 16 "$C/audio/empty.wav" trim 0 0
printf 'RIFF$\0\0\0WAVEnot audio' > "$C/audio/not_audio.wav"
# WavLM models: the small test fixtures, and one without the gated relative position bias.
cp tests/fixtures/wavlm/tiny_base.safetensors tests/fixtures/wavlm/odd_conv.safetensors "$C/wavlm/"
$PY - "$C/wavlm" <<'PYEOF'
import sys
sys.path.insert(0, "tools")
import safetensors_np as s
t, m = s.read("tests/fixtures/wavlm/odd_conv.safetensors")
s.write(sys.argv[1] + "/no_gate.safetensors", {k: v for k, v in t.items() if "gru_rel_pos" not in k}, m)
PYEOF

for d in "$C"/*/; do echo "$(basename "$d"): $(ls "$d" | wc -l) seeds, $(cat "$d"* | wc -c) bytes"; done
